"""What a via may not do: run forever, print without end, leave processes behind, or lose
the via its message was written with; and what `clear pipe` does to a pipe wedged by one."""

from __future__ import annotations

import contextlib
import resource
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from plumbing import (
    children,
    info,
    leftovers_killed,
    open_plumber,
    receive_messages,
    running,
    settled,
)

from minishell.plumber import Plumber, PlumberError, Reader


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]


@contextlib.asynccontextmanager
async def wedged(nursery: trio.Nursery, seconds: str,
                 **settings: Any) -> AsyncIterator[tuple[Plumber, Reader]]:
    """Pipe minimega//v1 with a reader and the via `sleep <seconds>`, which never ends
    by itself (a number of seconds no other test uses, to find its leftovers)."""
    with leftovers_killed("sleep", seconds):
        async with open_plumber(nursery, **settings) as plumber, \
                plumber.open_reader("minimega//v1") as reader:
            plumber.set_via("minimega//v1", ("sleep", seconds))
            yield plumber, reader


async def test_a_via_past_its_deadline_fails_and_the_pipe_goes_on(
        nursery: trio.Nursery, caplog: pytest.LogCaptureFixture) -> None:
    async with wedged(nursery, "1001", via_deadline=0.3) as (plumber, reader):
        await plumber.write("minimega//v1", "stuck")
        await settled(lambda: info(plumber, "minimega//v1").writers == 0)
        await settled(lambda: running("sleep", "1001") == set())  # SIGKILL takes a moment
        assert (info(plumber, "minimega//v1").count,
                info(plumber, "minimega//v1").previous) == (0, "stuck")
        assert errors(caplog) == [
            "pipe minimega//v1: via sleep 1001: still running after 0.3s: killed, "
            "the message is dropped for a reader"]
        plumber.set_via("minimega//v1", ("sed", "s/^/via:/"))
        await plumber.write("minimega//v1", "free")
        assert await receive_messages(reader, 1) == [b"via:free\n"]
        assert info(plumber, "minimega//v1").count == 1


async def test_clearing_the_via_kills_it_and_drops_what_was_written_through_it(
        nursery: trio.Nursery, caplog: pytest.LogCaptureFixture) -> None:
    async with wedged(nursery, "1002", cli_write_patience=0.05) as (plumber, reader):
        for message in ("m1", "m2", "m3"):
            await plumber.write("minimega//v1", message)
        assert info(plumber, "minimega//v1").writers == 3
        plumber.set_via("minimega//v1", ())  # `clear pipe v1 via`
        await settled(lambda: info(plumber, "minimega//v1").writers == 0)
        await settled(lambda: running("sleep", "1002") == set())
        await plumber.write("minimega//v1", "m4")
        # m1..m3 never go out without the via they were written with
        assert await receive_messages(reader, 1) == [b"m4\n"]
        assert info(plumber, "minimega//v1").count == 1
        assert "pipe minimega//v1: via cleared: 3 messages dropped" in [
            record.getMessage() for record in caplog.records]


@pytest.mark.parametrize("everything", [False, True])
async def test_a_pipe_wedged_by_its_own_vias_can_be_deleted(
        nursery: trio.Nursery, caplog: pytest.LogCaptureFixture, everything: bool) -> None:
    async with wedged(nursery, "1003", cli_write_patience=0.05) as (plumber, reader):
        for message in ("m1", "m2"):
            await plumber.write("minimega//v1", message)
        if everything:
            await plumber.delete_all_pipes()  # also `clear all`
        else:
            await plumber.delete_pipe("minimega//v1")
        assert (plumber.pipes(), running("sleep", "1003")) == ([], set())
        assert [chunk async for chunk in reader] == []  # EOF, nothing without its via
        assert "pipe minimega//v1 deleted: 2 writes waiting for its readers dropped" in [
            record.getMessage() for record in caplog.records]


async def test_endpoint_writers_still_keep_a_pipe_with_vias(nursery: trio.Nursery) -> None:
    async with wedged(nursery, "1008", cli_write_patience=0.05) as (plumber, _):
        await plumber.write("minimega//v1", "m1")
        async with plumber.open_writer("minimega//v1"):
            for delete in (plumber.delete_all_pipes(), plumber.delete_pipe("minimega//v1")):
                with pytest.raises(PlumberError,
                                   match=r"^cannot delete named pipe with open writers$"):
                    await delete
            # refused: nothing was dropped
            assert info(plumber, "minimega//v1").writers == 2
        await plumber.delete_pipe("minimega//v1")


async def test_a_message_keeps_the_via_it_was_written_with(
        nursery: trio.Nursery, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    waits_for_gate = ("sh", "-c", f'while [ ! -e "{gate}" ]; do sleep 0.01; done; sed s/^/A:/')
    async with open_plumber(nursery, cli_write_patience=0.05) as plumber, \
            plumber.open_reader("minimega//v") as reader:
        plumber.set_via("minimega//v", waits_for_gate)
        await plumber.write("minimega//v", "m1")
        await plumber.write("minimega//v", "m2")
        plumber.set_via("minimega//v", ("sed", "s/^/B:/"))
        gate.touch()
        await plumber.write("minimega//v", "m3")
        assert await receive_messages(reader, 3) == [b"A:m1\n", b"A:m2\n", b"B:m3\n"]


async def test_via_output_is_bounded(nursery: trio.Nursery,
                                     caplog: pytest.LogCaptureFixture) -> None:
    """A via printing endlessly, or 20 MB without a newline, is killed at 1 MiB."""
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    async with open_plumber(nursery) as plumber, plumber.open_reader("minimega//big") as reader:
        for via in (("head", "-c", "20000000", "/dev/zero"), ("yes",)):
            plumber.set_via("minimega//big", via)
            await plumber.write("minimega//big", "go")
            assert errors(caplog)[-1] == (
                f"pipe minimega//big: via {' '.join(via)}: output over 1048576 bytes: killed, "
                "the message is dropped for a reader")
        plumber.set_via("minimega//big", ("head", "-c", "1048576", "/dev/zero"))
        await plumber.write("minimega//big", "just fits")
        assert await receive_messages(reader, 1) == [b"\0" * 1048576 + b"\n"]
        assert info(plumber, "minimega//big").count == 1
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 16 * 1024


async def test_via_output_ends_with_a_newline(nursery: trio.Nursery) -> None:
    """A raw reader must not see one message glued to the next; empty output is `\\n`."""
    async with open_plumber(nursery) as plumber, plumber.open_reader("minimega//nl") as reader:
        reader.send_directly(lambda data: 0)  # a raw reader: chunks are just bytes
        for via in (("printf", "abc"), ("true",), ("printf", "two\\nlines"), ("cat",)):
            plumber.set_via("minimega//nl", via)
            await plumber.write("minimega//nl", "x\n\n")
        got = b""
        with trio.fail_after(5):
            while got.count(b"\n") < 6:
                got += (await reader.receive()).data
        assert got == b"abc\n\ntwo\nlines\nx\n\n"


async def test_what_a_via_leaves_behind_dies_with_it(nursery: trio.Nursery) -> None:
    with leftovers_killed("sleep", "1006"):
        async with open_plumber(nursery) as plumber, \
                plumber.open_reader("minimega//bg") as reader:
            plumber.set_via("minimega//bg", ("sh", "-c", "sleep 1006 & cat"))
            await plumber.write("minimega//bg", "hello")
            assert await receive_messages(reader, 1) == [b"hello\n"]
            assert info(plumber, "minimega//bg").writers == 0
            await settled(lambda: running("sleep", "1006") == set())
            reader.close()
            await plumber.delete_pipe("minimega//bg")
        assert children() == set()


async def test_a_via_that_ignores_sigterm_is_killed_on_close(nursery: trio.Nursery) -> None:
    stubborn = ("sh", "-c", "trap '' TERM; sleep 1009")
    with leftovers_killed("sleep", "1009"):
        async with open_plumber(nursery, cli_write_patience=0.05, program_grace=0.1) as plumber, \
                plumber.open_reader("minimega//st"):
            plumber.set_via("minimega//st", stubborn)
            await plumber.write("minimega//st", "x")
            await settled(lambda: running("sleep", "1009") != set())
        await settled(lambda: running("sleep", "1009") == set())
