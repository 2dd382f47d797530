"""Vias: one run per (message, reader), minimega's counters when they fail, the one-word rule,
runs that overlap while every reader keeps the order written, and how the program is found."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import trio
import trio.testing
from plumbing import executable, info, receive_messages, settled

from minishell.plumber import Chunk, PipeInfo, Plumber

NORMAL_STANDIN = '#!/bin/sh\nwhile IFS= read -r line; do echo "normal($*) $line"; done\n'


async def collect(plumber: Plumber, name: str, into: list[Chunk], *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    async with plumber.open_reader(name) as reader:
        task_status.started()
        async for chunk in reader:
            into.append(chunk)


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
        await writer.write_lines(b"a\nb\n")  # returns once queued for the via
    await settled(lambda: len(got) == 2)
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


async def test_via_output_is_one_message(plumber: Plumber) -> None:
    """Not split; empty output reaches the next pipe as an empty message."""
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


async def test_runs_overlap_and_every_reader_keeps_the_order_written(
        plumber: Plumber, nursery: trio.Nursery, tmp_path: Path) -> None:
    """All 8 runs (4 messages, 2 readers) are under way at once; later messages finish
    first, yet each reader gets them in the order written."""
    started, gate = tmp_path / "started", tmp_path / "gate"
    started.mkdir()
    script = (f'read -r line; touch "{started}/$$"; '
              f'while [ ! -e "{gate}" ]; do sleep 0.01; done; '
              'sleep "0.0$((9 - line))"; echo "$line"')
    plumber.set_via("minimega//o", ("sh", "-c", script))
    async with plumber.open_reader("minimega//o") as first, \
            plumber.open_reader("minimega//o") as second:

        async def write_all() -> None:
            async with plumber.open_writer("minimega//o") as writer:
                await writer.write_lines(b"0\n1\n2\n3\n")

        nursery.start_soon(write_all)
        await settled(lambda: len(os.listdir(started)) == 8)
        gate.touch()
        for reader in (first, second):
            assert await receive_messages(reader, 4) == [b"0\n", b"1\n", b"2\n", b"3\n"]
    assert info(plumber, "minimega//o").count == 4


async def test_the_program_is_found_again_when_path_changes_or_it_goes(
        plumber: Plumber, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    folders = {tag: tmp_path / tag for tag in ("one", "two")}
    for tag, folder in folders.items():
        folder.mkdir()
        executable(folder, "tagger", f"#!/bin/sh\nsed s/^/{tag}:/\n")
    lookups = 0
    which = shutil.which

    def counting_which(*args: object, **kwargs: object) -> str | None:
        nonlocal lookups
        lookups += 1
        return which(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(shutil, "which", counting_which)
    path = os.environ["PATH"]
    async with plumber.open_reader("minimega//t") as reader:
        plumber.set_via("minimega//t", ("tagger",))
        monkeypatch.setenv("PATH", f"{folders['one']}:{path}")
        for index in range(20):
            await plumber.write("minimega//t", f"m{index}")
        assert await receive_messages(reader, 20) == [b"one:m%d\n" % i for i in range(20)]
        assert lookups == 1  # not once per message and reader
        monkeypatch.setenv("PATH", f"{folders['two']}:{path}")
        await plumber.write("minimega//t", "moved")
        assert await receive_messages(reader, 1) == [b"two:moved\n"]
        (folders["two"] / "tagger").unlink()
        await plumber.write("minimega//t", "gone")
        assert caplog.messages[-1] == 'exec: "tagger": executable file not found in $PATH'
        executable(folders["two"], "tagger", "#!/bin/sh\nsed s/^/back:/\n")
        await plumber.write("minimega//t", "again")
        assert await receive_messages(reader, 1) == [b"back:again\n"]
    assert info(plumber, "minimega//t").count == 22
