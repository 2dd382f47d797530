"""One slow, stopped or hostile reader or writer must not block the others or grow memory:
bounded CLI writes, round-robin and random passing over full readers, stalled readers dropped."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing
from plumbing import collect, info, open_plumber, receive_messages

from minishell.plumber import Plumber, PlumberError
from minishell.plumber.outbox import OUTBOX_LIMIT

HUNDRED_KB = "x" * 100_000


async def test_cli_writes_behind_a_stopped_reader_are_bounded_by_count(
        nursery: trio.Nursery) -> None:
    async with open_plumber(nursery, cli_write_backlog=5, cli_write_patience=0.01) as plumber, \
            plumber.open_reader("minimega//slow") as reader:
        for _ in range(3 + 5):  # three fill the reader's outbox, five wait
            await plumber.write("minimega//slow", HUNDRED_KB)
        assert info(plumber, "minimega//slow").writers == 5
        with pytest.raises(PlumberError) as refused:
            await plumber.write("minimega//slow", HUNDRED_KB)
        assert str(refused.value) == (
            "pipe minimega//slow: 5 writes already waiting for its readers")
        assert (info(plumber, "minimega//slow").writers,
                info(plumber, "minimega//slow").count) == (5, 3)
        assert len(await receive_messages(reader, 8)) == 8  # nothing that was taken is lost
        await plumber.write("minimega//slow", "room again")
        assert await receive_messages(reader, 1) == [b"room again\n"]


async def test_cli_writes_behind_a_stopped_reader_are_bounded_by_bytes(
        nursery: trio.Nursery) -> None:
    async with open_plumber(nursery, cli_write_backlog_bytes=350_000,
                            cli_write_patience=0.01) as plumber, \
            plumber.open_reader("minimega//slow"):
        for _ in range(3 + 3):
            await plumber.write("minimega//slow", HUNDRED_KB)
        with pytest.raises(PlumberError) as refused:
            await plumber.write("minimega//slow", HUNDRED_KB)
        assert str(refused.value) == (
            "pipe minimega//slow: 300003 bytes of writes already waiting for its readers")
        await plumber.write("minimega//slow", "small still fits")
        assert info(plumber, "minimega//slow").writers == 4


async def write_lines(plumber: Plumber, name: str, lines: list[bytes]) -> None:
    async with plumber.open_writer(name) as writer:
        for line in lines:
            await writer.write_lines(line)


@pytest.mark.parametrize("mode", ["round-robin", "random"])
async def test_a_full_reader_is_passed_over(nursery: trio.Nursery, mode: str) -> None:
    lines = [b"%099d\n" % index for index in range(12000)]  # a third is more than an outbox
    async with open_plumber(nursery) as plumber, \
            plumber.open_reader("minimega//rr") as stopped:
        plumber.set_mode("minimega//rr", mode)
        got: list[list[bytes]] = [[], []]
        for into in got:
            await nursery.start(collect, plumber, "minimega//rr", into)
        with trio.fail_after(5):
            await write_lines(plumber, "minimega//rr", lines)
        await trio.testing.wait_all_tasks_blocked()
        held = await receive_messages(stopped, 1)
        while len(held) + sum(map(len, got)) < len(lines):
            held += await receive_messages(stopped, 1)
        assert sorted(held + got[0] + got[1]) == lines  # each exactly once
        assert OUTBOX_LIMIT <= len(b"".join(held)) < OUTBOX_LIMIT + 100_000
        for into in got:
            assert into == sorted(into)  # in the order written
        if mode == "round-robin":  # fair among the readers with room
            assert abs(len(got[0]) - len(got[1])) <= 1


async def test_round_robin_waits_for_any_reader_with_room(nursery: trio.Nursery) -> None:
    async with open_plumber(nursery) as plumber, \
            plumber.open_reader("minimega//rr") as first, \
            plumber.open_reader("minimega//rr") as second:
        plumber.set_mode("minimega//rr", "round-robin")
        lines = [b"%099d\n" % index for index in range(6000)]
        done = trio.Event()

        async def write_all() -> None:
            await write_lines(plumber, "minimega//rr", lines)
            done.set()

        nursery.start_soon(write_all)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()  # both full: the writer waits
        taken = await receive_messages(second, 1)  # room in one of them is enough
        while not done.is_set():
            taken += await receive_messages(second, 1)
            await trio.testing.wait_all_tasks_blocked()
        held = await receive_messages(first, 1)
        assert sorted(taken + held) == lines
        assert len(b"".join(held)) < OUTBOX_LIMIT + 100_000  # the stopped one got no more


async def test_a_stalled_reader_is_dropped_and_counted(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock,
        caplog: pytest.LogCaptureFixture) -> None:
    lines = [b"%099d\n" % index for index in range(6000)]
    async with open_plumber(nursery, stalled_reader_timeout=10) as plumber:
        kept: list[bytes] = []
        await nursery.start(collect, plumber, "minimega//all", kept)
        async with plumber.open_reader("minimega//all") as stalled:
            started = trio.current_time()
            with trio.fail_after(60):
                await write_lines(plumber, "minimega//all", lines)  # lossless until the drop
            assert trio.current_time() - started >= 10
            assert stalled.dropped
            held = [line async for chunk in stalled for line in chunk.data.splitlines(True)]
        assert held == lines[:len(held)] and len(b"".join(held)) >= OUTBOX_LIMIT
        await trio.testing.wait_all_tasks_blocked()
        assert kept == lines
        assert (info(plumber, "minimega//all").readers,
                info(plumber, "minimega//all").dropped_readers,
                plumber.dropped_readers) == (1, 1, 1)
        assert [(record.levelno, record.getMessage()) for record in caplog.records] == [
            (logging.WARNING, "pipe minimega//all: dropped a reader that took nothing for 10s "
                              "with its queue full")]


async def test_a_stalled_round_robin_reader_is_dropped_on_a_later_write(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    lines = [b"%099d\n" % index for index in range(6000)]
    async with open_plumber(nursery, stalled_reader_timeout=10) as plumber:
        plumber.set_mode("minimega//rr", "round-robin")
        kept: list[bytes] = []
        await nursery.start(collect, plumber, "minimega//rr", kept)
        async with plumber.open_reader("minimega//rr") as stalled:
            with trio.fail_after(1):
                await write_lines(plumber, "minimega//rr", lines)
            await trio.sleep(5)
            await plumber.write("minimega//rr", "not yet")
            assert not stalled.dropped
            await trio.sleep(5)
            await plumber.write("minimega//rr", "now")
            assert stalled.dropped
            assert info(plumber, "minimega//rr").readers == 1
            assert info(plumber, "minimega//rr").dropped_readers == 1


async def test_a_reader_that_keeps_taking_is_never_dropped(
        nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    lines = [b"%099d\n" % index for index in range(6000)]
    async with open_plumber(nursery, stalled_reader_timeout=10) as plumber, \
            plumber.open_reader("minimega//slow") as slow:

        async def read_slowly() -> None:
            taken = 0
            while taken < len(lines):
                await trio.sleep(9)
                taken += len(await receive_messages(slow, 1))

        nursery.start_soon(read_slowly)
        with trio.fail_after(600):
            await write_lines(plumber, "minimega//slow", lines)
        assert not slow.dropped
        assert plumber.dropped_readers == 0
