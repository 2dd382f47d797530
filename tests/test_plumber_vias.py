"""Vias: one run per (message, reader), minimega's counters when they fail, the one-word rule."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing
from plumbing import info

from minishell.plumber import Chunk, PipeInfo, Plumber

NORMAL_STANDIN = '#!/bin/sh\nwhile IFS= read -r line; do echo "normal($*) $line"; done\n'


def executable(folder: Path, name: str, script: str) -> Path:
    path = folder / name
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


async def collect(plumber: Plumber, name: str, into: list[Chunk], *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    async with plumber.open_reader(name) as reader:
        task_status.started()
        async for chunk in reader:
            into.append(chunk)


async def settled(condition: Callable[[], bool]) -> None:
    """Wait for what pipelines pass on in their own tasks."""
    with trio.fail_after(5):
        while not condition():  # noqa: ASYNC110 - programs run apart, there is no event
            await trio.sleep(0.01)


async def test_a_via_runs_once_per_reader(plumber: Plumber) -> None:
    await plumber.plumb(("vsrc", "vout1"), "minimega")
    await plumber.plumb(("vsrc", "vout2"), "minimega")
    plumber.set_via("minimega//vsrc", ("sed", "-u", "s/a/A/g"))
    await plumber.write("minimega//vsrc", "banana")
    await settled(lambda: info(plumber, "minimega//vout2").count == 1)
    assert plumber.pipes() == [
        PipeInfo("minimega//vout1", "all", 0, 1, 1, (), "bAnAnA"),
        PipeInfo("minimega//vout2", "all", 0, 1, 1, (), "bAnAnA"),
        PipeInfo("minimega//vsrc", "all", 2, 0, 1, ("sed", "-u", "s/a/A/g"), "banana"),
    ]
    plumber.set_via("minimega//vsrc", ())
    await plumber.write("minimega//vsrc", "banana")
    await settled(lambda: info(plumber, "minimega//vout2").count == 2)
    assert [(pipe.count, pipe.previous) for pipe in plumber.pipes()] == [(2, "banana")] * 3


async def test_each_message_of_a_block_goes_through_the_via(plumber: Plumber,
                                                            nursery: trio.Nursery) -> None:
    got: list[Chunk] = []
    await nursery.start(collect, plumber, "minimega//v", got)
    plumber.set_via("minimega//v", ("sed", "-u", "s/^/>/"))
    async with plumber.open_writer("minimega//v") as writer:
        await writer.write_lines(b"a\nb\n")
    await trio.testing.wait_all_tasks_blocked()
    assert got == [Chunk(b">a\n", one_message=True), Chunk(b">b\n", one_message=True)]
    assert info(plumber, "minimega//v").count == 2


async def test_failing_vias_in_mode_all_as_minimega_counts_them(
        plumber: Plumber, caplog: pytest.LogCaptureFixture) -> None:
    """The via_failure transcript."""
    await plumber.plumb(("vf", "sink"), "minimega")
    plumber.set_via("minimega//vf", ("nosuchprogram",))
    await plumber.write("minimega//vf", "one")
    assert [(pipe.name, pipe.count, pipe.previous) for pipe in plumber.pipes()] == [
        ("minimega//sink", 0, ""), ("minimega//vf", 0, "one")]
    plumber.set_via("minimega//vf", ("sed -u s/x/y/",))  # one word: not re-split, still fails
    await plumber.write("minimega//vf", "two")
    assert [(pipe.name, pipe.count, pipe.previous) for pipe in plumber.pipes()] == [
        ("minimega//sink", 0, ""), ("minimega//vf", 0, "two")]
    assert [record.getMessage() for record in caplog.records if record.levelname == "ERROR"] == [
        'exec: "nosuchprogram": executable file not found in $PATH',
        'exec: "sed -u s/x/y/": executable file not found in $PATH']
    caplog.clear()
    plumber.set_via("minimega//novia", ("nosuchprogram",))
    await plumber.write("minimega//novia", "three")
    assert info(plumber, "minimega//novia").count == 1  # no reader, so the via never ran
    assert info(plumber, "minimega//novia").previous == "three"
    assert caplog.records == []


async def test_failing_via_with_one_round_robin_reader_changes_nothing(plumber: Plumber) -> None:
    """The via_rr_failure transcript."""
    await plumber.plumb(("src2", "dst2"), "minimega")
    plumber.set_mode("minimega//src2", "round-robin")
    await plumber.write("minimega//src2", "ok")
    plumber.set_via("minimega//src2", ("nosuchprogram",))
    await plumber.write("minimega//src2", "dropped")
    await settled(lambda: info(plumber, "minimega//dst2").count == 1)
    assert [(pipe.name, pipe.mode, pipe.count, pipe.previous) for pipe in plumber.pipes()] == [
        ("minimega//dst2", "all", 1, "ok"), ("minimega//src2", "round-robin", 1, "ok")]


async def test_a_via_failing_for_one_reader_still_feeds_the_others(
        plumber: Plumber, nursery: trio.Nursery, tmp_path: Path) -> None:
    once = executable(tmp_path, "once", '#!/bin/sh\nmkdir "$1" 2>/dev/null || exit 3\ncat\n')
    got: list[list[Chunk]] = [[], []]
    for into in got:
        await nursery.start(collect, plumber, "minimega//half", into)
    plumber.set_via("minimega//half", (str(once), str(tmp_path / "lock")))
    await plumber.write("minimega//half", "hi")
    await trio.testing.wait_all_tasks_blocked()
    assert sorted(got, key=len) == [[], [Chunk(b"hi\n", one_message=True)]]
    assert (info(plumber, "minimega//half").count, info(plumber, "minimega//half").previous) == (
        0, "hi")


async def test_via_output_is_delivered_as_it_is(plumber: Plumber) -> None:
    """Not split, no newline added: empty output reaches the next pipe as an empty message."""
    await plumber.plumb(("nv", "nvout"), "minimega")
    plumber.set_via("minimega//nv", ("sh", "-c", "cat >/dev/null"))
    await plumber.write("minimega//nv", "abc")
    await settled(lambda: info(plumber, "minimega//nvout").count == 1)
    assert info(plumber, "minimega//nvout").previous == ""
    plumber.set_via("minimega//nv", ("printf", "two\\nlines"))
    await plumber.write("minimega//nv", "abc")
    await settled(lambda: info(plumber, "minimega//nvout").count == 2)
    assert info(plumber, "minimega//nvout").previous == "two\nlines"


async def test_a_quoted_helper_via_is_split_and_nothing_else_is(
        nursery: trio.Nursery, tmp_path: Path) -> None:
    executable(tmp_path, "normal", NORMAL_STANDIN)
    plumber = Plumber(nursery, helper_dir=str(tmp_path))
    got: list[Chunk] = []
    await nursery.start(collect, plumber, "minimega//foo", got)
    plumber.set_via("minimega//foo", ("normal -stddev 5.0",))
    await plumber.write("minimega//foo", "1.5")
    plumber.set_via("minimega//foo", ("normal", "-stddev", "0"))
    await plumber.write("minimega//foo", "2")
    plumber.set_via("minimega//foo", ("sed -u s/x/y/",))
    await plumber.write("minimega//foo", "dropped")
    plumber.set_via("minimega//foo", ("nosuchprogram -x",))
    await plumber.write("minimega//foo", "dropped too")
    await trio.testing.wait_all_tasks_blocked()
    assert got == [Chunk(b"normal(-stddev 5.0) 1.5\n", one_message=True),
                   Chunk(b"normal(-stddev 0) 2\n", one_message=True)]
    assert info(plumber, "minimega//foo").via == ("nosuchprogram -x",)
    assert info(plumber, "minimega//foo").count == 2
    await plumber.aclose()
