"""Pipelines of pipes and real programs: start, data flow, teardown, errors, no leftovers."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import pytest
import trio
from plumbing import children, info, leftovers_killed, open_plumber, settled

from minishell.plumber import Chunk, PipeInfo, Plumber, PlumberError, Reader


def rows(plumber: Plumber) -> list[tuple[str, int, int, int, str]]:
    return [(pipe.name, pipe.readers, pipe.writers, pipe.count, pipe.previous)
            for pipe in plumber.pipes()]


async def receive(reader: Reader) -> Chunk:
    with trio.fail_after(5):
        return await reader.receive()


async def test_a_tree_of_pipes(plumber: Plumber) -> None:
    """The plumb_basic transcript."""
    await plumber.plumb(("src", "left"), "minimega")
    await plumber.plumb(("src", "right"), "minimega")
    await plumber.plumb(("left", "leaf"), "minimega")
    assert plumber.pipelines() == ["minimega//left minimega//leaf",
                                   "minimega//src minimega//left",
                                   "minimega//src minimega//right"]
    assert rows(plumber) == [("minimega//leaf", 0, 1, 0, ""), ("minimega//left", 1, 1, 0, ""),
                             ("minimega//right", 0, 1, 0, ""), ("minimega//src", 2, 0, 0, "")]
    await plumber.write("minimega//src", "hello tree")
    await settled(lambda: info(plumber, "minimega//leaf").count == 1)
    assert [(pipe.count, pipe.previous) for pipe in plumber.pipes()] == [(1, "hello tree")] * 4


async def test_a_program_stage(plumber: Plumber) -> None:
    """The plumb_program transcript."""
    await plumber.plumb(("raw", "sed -u s/cat/dog/", "cooked"), "minimega")
    assert plumber.pipelines() == ["minimega//raw sed -u s/cat/dog/ minimega//cooked"]
    await plumber.write("minimega//raw", "the cat sat")
    await plumber.write("minimega//raw", "cat cat")
    await settled(lambda: info(plumber, "minimega//cooked").count == 2)
    assert plumber.pipes() == [PipeInfo("minimega//cooked", "all", 0, 1, 2, (), "dog cat"),
                               PipeInfo("minimega//raw", "all", 1, 0, 2, (), "cat cat")]


async def test_a_multi_line_message_stays_one_between_pipes_and_splits_through_a_program(
        plumber: Plumber) -> None:
    await plumber.plumb(("s1", "s2"), "minimega")
    await plumber.plumb(("s3", "sed -u s/x/y/", "s4"), "minimega")
    async with plumber.open_reader("minimega//s2") as reader:
        await plumber.write("minimega//s1", "a\nb")
        await plumber.write("minimega//s3", "xa\nxb")
        assert await receive(reader) == Chunk(b"a\nb\n", one_message=True)
    await settled(lambda: info(plumber, "minimega//s4").count == 2)
    assert [(pipe.name, pipe.count, pipe.previous) for pipe in plumber.pipes()] == [
        ("minimega//s1", 1, "a\nb"), ("minimega//s2", 1, "a\nb"),
        ("minimega//s3", 1, "xa\nxb"), ("minimega//s4", 2, "yb")]


async def test_a_program_that_exits_tears_its_pipeline_down(plumber: Plumber) -> None:
    """The plumb_program_exits transcript."""
    await plumber.plumb(("e1", "true", "e2"), "minimega")
    await settled(lambda: plumber.pipelines() == [])
    assert rows(plumber) == [("minimega//e1", 0, 0, 0, ""), ("minimega//e2", 0, 0, 0, "")]
    await plumber.write("minimega//e1", "hello")
    assert rows(plumber) == [("minimega//e1", 0, 0, 1, "hello"), ("minimega//e2", 0, 0, 0, "")]


async def test_a_quick_first_program_loses_no_output(plumber: Plumber) -> None:
    for attempt in range(5):
        name = f"minimega//first{attempt}"
        async with plumber.open_reader(name) as reader:
            await plumber.plumb(("echo first", name), "minimega")
            assert await receive(reader) == Chunk(b"first\n")
        await settled(lambda: plumber.pipelines() == [])


async def test_what_an_exited_program_wrote_goes_all_the_way_down(plumber: Plumber) -> None:
    async with plumber.open_reader("minimega//down") as down, \
            plumber.open_reader("minimega//end") as end:
        await plumber.plumb(("printf x1\\nx2\\n", "mid", "sed -u s/x/y/", "down"), "minimega")
        await plumber.plumb(("echo hello", "tr a-z A-Z", "end"), "minimega")  # tr buffers
        got = b""
        while got.count(b"\n") < 2:
            got += (await receive(down)).data
        assert got == b"y1\ny2\n"
        assert await receive(end) == Chunk(b"HELLO\n")
    await settled(lambda: plumber.pipelines() == [])
    assert [(pipe.name, pipe.count) for pipe in plumber.pipes()] == [
        ("minimega//down", 2), ("minimega//end", 1), ("minimega//mid", 2)]


async def test_a_program_writing_crlf_and_no_final_newline(plumber: Plumber) -> None:
    async with plumber.open_reader("minimega//crlf") as reader:
        await plumber.plumb(("printf a\\r\\nb\\r", "crlf"), "minimega")
        got = b""
        while got.count(b"\n") < 2:
            got += (await receive(reader)).data
    assert got == b"a\nb\n"


async def test_a_stage_not_on_path_is_a_pipe_even_with_spaces(plumber: Plumber) -> None:
    """The plumb_missing_program transcript."""
    await plumber.plumb(("in", "nosuchprogram --flag", "out"), "minimega")
    assert plumber.pipelines() == ["minimega//in minimega//nosuchprogram --flag minimega//out"]
    assert rows(plumber) == [("minimega//in", 1, 0, 0, ""),
                             ("minimega//nosuchprogram --flag", 1, 1, 0, ""),
                             ("minimega//out", 0, 1, 0, "")]
    await plumber.write("minimega//in", "data")
    await settled(lambda: info(plumber, "minimega//out").count == 1)
    assert [pipe.previous for pipe in plumber.pipes()] == ["data"] * 3


async def test_names_found_on_path_are_programs(plumber: Plumber) -> None:
    """The plumb_path_names transcript."""
    await plumber.plumb(("head", "tail"), "minimega")
    await settled(lambda: plumber.pipelines() == [])
    assert plumber.pipes() == []
    await plumber.plumb(("head2", "tail2"), "other")
    assert plumber.pipelines() == ["other//head2 other//tail2"]
    assert rows(plumber) == [("other//head2", 1, 0, 0, ""), ("other//tail2", 0, 1, 0, "")]


async def test_a_pipeline_is_known_by_its_namespaced_stages(plumber: Plumber) -> None:
    """The plumb_duplicate transcript."""
    await plumber.plumb(("a", "b"), "minimega")
    for stages in (("a", "b"), ("minimega//a", "b"), ("a", "minimega//b")):
        with pytest.raises(PlumberError,
                           match=r"^pipeline already exists: \[minimega//a minimega//b\]$"):
            await plumber.plumb(stages, "minimega")
    await plumber.plumb(("b", "a"), "minimega")
    assert plumber.pipelines() == ["minimega//a minimega//b", "minimega//b minimega//a"]


@pytest.mark.parametrize(("stage", "shown"), [("", '""'), (" ", '" "'), ("\t", '"\\t"'),
                                              ('"unterminated quote', '"\\"unterminated quote"')])
async def test_an_empty_stage_is_refused(plumber: Plumber, stage: str, shown: str) -> None:
    with pytest.raises(PlumberError) as refused:
        await plumber.plumb(("a", stage, "b"), "minimega")
    assert str(refused.value) == f"invalid pipeline stage: {shown}"
    assert (plumber.pipes(), plumber.pipelines()) == ([], [])


@pytest.mark.parametrize("stages", [("loop", "loop"), ("a", "b", "a"),
                                    ("a", "sed -u s/x/y/", "minimega//a")])
async def test_a_pipeline_feeding_itself_is_refused(plumber: Plumber,
                                                    stages: tuple[str, ...]) -> None:
    with pytest.raises(PlumberError, match=r"^pipeline would feed itself: \[.*\]$") as refused:
        await plumber.plumb(stages, "minimega")
    assert str(refused.value) == "pipeline would feed itself: [{}]".format(" ".join(
        stage if "sed" in stage else "minimega//" + stage.removeprefix("minimega//")
        for stage in stages))
    assert (plumber.pipes(), plumber.pipelines(), children()) == ([], [], set())


async def test_clear_plumb_forms(plumber: Plumber) -> None:
    """The clear_plumb_forms transcript."""
    await plumber.plumb(("p", "q"), "minimega")
    await plumber.plumb(("q", "r"), "minimega")
    with pytest.raises(PlumberError, match=r"^no such pipeline: \[p q\]$"):
        await plumber.clear_plumb(("p", "q"))
    await plumber.clear_plumb(("minimega//p", "minimega//q"))
    assert plumber.pipelines() == ["minimega//q minimega//r"]
    await plumber.clear_plumb(("minimega//q minimega//r",))
    assert plumber.pipelines() == []
    with pytest.raises(PlumberError, match=r"^no such pipeline: \[minimega//q minimega//r\]$"):
        await plumber.clear_plumb(("minimega//q", "minimega//r"))
    await plumber.plumb(("p", "sed -u s/x/y/", "q"), "minimega")
    await plumber.plumb(("sleep 30", "cat"), "minimega")
    await plumber.clear_plumb(())
    assert plumber.pipelines() == []
    assert children() == set()
    assert rows(plumber) == [("minimega//p", 0, 0, 0, ""), ("minimega//q", 0, 0, 0, ""),
                             ("minimega//r", 0, 0, 0, "")]


async def test_deleting_a_source_pipe_tears_its_pipeline_down_at_once(plumber: Plumber) -> None:
    """clear_pipe_writers, with names that are not programs."""
    await plumber.plumb(("hd9", "sed -u s/x/y/", "tl9"), "minimega")
    with pytest.raises(PlumberError, match=r"^cannot delete named pipe with open writers$"):
        await plumber.delete_pipe("minimega//tl9")
    await plumber.delete_pipe("minimega//hd9")
    assert (plumber.pipelines(), rows(plumber), children()) == (
        [], [("minimega//tl9", 0, 0, 0, "")], set())
    await plumber.delete_pipe("minimega//tl9")
    with pytest.raises(PlumberError, match=r"^no such pipe: minimega//hd9$"):
        await plumber.delete_pipe("minimega//hd9")


@pytest.mark.skipif(shutil.which("hd") is None, reason="needs the hd program")
async def test_the_clear_pipe_writers_transcript_runs_the_hd_program(plumber: Plumber) -> None:
    """`hd` is on PATH (hexdump), so `plumb hd tl` is a program feeding tl, gone once hd exits."""
    await plumber.plumb(("hd", "tl"), "minimega")
    await settled(lambda: plumber.pipelines() == [])
    await plumber.delete_pipe("minimega//tl")
    with pytest.raises(PlumberError, match=r"^no such pipe: minimega//hd$"):
        await plumber.delete_pipe("minimega//hd")


async def test_bare_clear_pipe_deletes_pipelines_pipes_in_either_order(plumber: Plumber) -> None:
    await plumber.plumb(("a", "b"), "minimega")
    await plumber.plumb(("y", "x"), "minimega")
    await plumber.delete_all_pipes()
    assert (plumber.pipes(), plumber.pipelines()) == ([], [])


async def test_a_program_closing_its_stdin_ends_the_pipeline(plumber: Plumber) -> None:
    await plumber.plumb(("feed", 'sh -c "exec 0<&-; sleep 30"'), "minimega")
    assert plumber.pipelines() == ['minimega//feed sh -c "exec 0<&-; sleep 30"']
    with trio.fail_after(5):
        while plumber.pipelines():  # a write may land before sh has closed its stdin
            await plumber.write("minimega//feed", "nobody reads this")
            await trio.sleep(0.01)
    assert children() == set()


async def test_a_line_too_long_ends_the_pipeline(plumber: Plumber,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    await plumber.plumb(('sh -c "head -c 1100000 /dev/zero; sleep 30"', "big"), "minimega")
    await settled(lambda: plumber.pipelines() == [])
    assert info(plumber, "minimega//big").count == 0
    assert "bufio.Scanner: token too long" in caplog.text


async def test_children_ignoring_sigterm_are_killed_after_the_grace(plumber: Plumber) -> None:
    await plumber.plumb(('sh -c "trap \'\' TERM; while :; do sleep 0.1; done"', "stubborn"),
                        "minimega")
    started = time.monotonic()
    await plumber.clear_plumb(())
    assert time.monotonic() - started < 3
    assert children() == set()


async def test_children_run_apart_from_the_terminal_and_nothing_leaks(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="minishell.plumber")
    fds = len(os.listdir("/proc/self/fd"))
    async with trio.open_nursery() as nursery:
        plumber = Plumber(nursery)
        await plumber.plumb(("in", "sed -u s/x/y/", "cat", "out"), "minimega")
        await plumber.plumb(("in", "sh -c \"echo oops >&2; cat\"", "sleep 30"), "minimega")
        await plumber.plumb(("sleep 30", "cat"), "minimega")
        running = children()
        assert len(running) == 6
        assert all(os.getpgid(pid) == pid != os.getpgid(0) for pid in running)
        plumber.set_via("minimega//in", ("cat",))
        async with plumber.open_reader("minimega//out") as reader:
            await plumber.write("minimega//in", "x marks")
            assert await receive(reader) == Chunk(b"y marks\n")
        await settled(lambda: "oops" in caplog.text)
        await plumber.aclose()
        await plumber.aclose()
        assert (plumber.pipelines(), children()) == ([], set())
    assert len(os.listdir("/proc/self/fd")) == fds


async def test_a_write_has_gone_through_every_pipe_stage_when_it_returns(
        plumber: Plumber) -> None:
    # a -> b -> c -> x and a -> x: x is fed by a long and a short path
    for stages in (("a", "b"), ("b", "c"), ("c", "x"), ("a", "x")):
        await plumber.plumb(stages, "minimega")
    await plumber.write("minimega//a", "hello")
    assert [(name, count) for name, _, _, count, _ in rows(plumber)] == [
        ("minimega//a", 1), ("minimega//b", 1), ("minimega//c", 1), ("minimega//x", 2)]


async def test_a_write_does_not_wait_for_plain_readers(plumber: Plumber) -> None:
    async with plumber.open_reader("minimega//p"):
        with trio.fail_after(5):
            for _ in range(3):
                await plumber.write("minimega//p", "nobody reads me yet")
    assert info(plumber, "minimega//p").count == 3


async def test_a_pipeline_whose_reader_is_dropped_ends(nursery: trio.Nursery,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """A program that never reads its stdin stalls its stage's reader of `feed`."""
    with leftovers_killed("sleep", "1010"):
        async with open_plumber(nursery, stalled_reader_timeout=0.2) as plumber:
            await plumber.plumb(("feed", "sleep 1010"), "minimega")
            async with plumber.open_writer("minimega//feed") as writer:
                with trio.fail_after(5):  # 2 MB: more than the program's stdin and the outbox
                    for _ in range(200):
                        await writer.write_lines(b"x" * 9999 + b"\n")
            await settled(lambda: plumber.pipelines() == [])
            assert (info(plumber, "minimega//feed").readers,
                    info(plumber, "minimega//feed").dropped_readers) == (0, 1)
            assert [record.getMessage() for record in caplog.records
                    if record.levelname == "ERROR"] == [
                "pipeline minimega//feed sleep 1010: its reader of minimega//feed was dropped"]
