"""`debug` (Python's figures in minimega's columns) and `check` (the programs minishell runs)."""

from __future__ import annotations

import os
import platform
import re
import shutil
from pathlib import Path

import pytest
import trio
from plumbing import children
from test_session import output

from minishell.commands.check import DEPENDENCIES, PLUMBING_HELPERS, SCRIPT_PROGRAMS
from minishell.session import Session, open_session


def _table(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("|")] for line in text.splitlines()]


async def test_debug_shows_pythons_figures(session: Session) -> None:
    [(text, error)] = await output(session, "debug")
    assert error == ""
    header, row = _table(text)
    assert header == ["goversion", "goroutines", "cgocalls", "dropped"]
    assert row[0] == f"cpython{platform.python_version()}"
    assert int(row[1]) >= 2  # the root task and this test's, at least
    assert row[2] == "0"
    assert row[3] == "0"


async def test_debug_counts_readers_dropped_for_not_reading() -> None:
    async with open_session(hostname="vm", base="/tmp/minishell",
                            stalled_reader_timeout=0.2) as session:
        await session.run_line(".annotate false")
        await session.run_line('plumb stuck "sleep 1000"')  # reads nothing it is given
        with trio.fail_after(20):
            while session.plumber.dropped_readers == 0:
                await session.run_line(f"pipe stuck {'x' * 60_000}")
                await trio.sleep(0.05)
        [(text, _)] = await output(session, "debug")
        assert _table(text)[1][3] == "1"


async def test_debug_counts_child_processes(session: Session, tmp_path: Path) -> None:
    started = tmp_path / "started"
    os.mkfifo(started)
    with trio.fail_after(10):
        await session.run_line(f'background sh -c "echo > {started}; exec sleep 30"')
        # The program has started once it writes to the FIFO.
        await trio.to_thread.run_sync(started.read_text, abandon_on_cancel=True)
        assert len(children()) == 1
        [(text, _)] = await output(session, "debug")
        assert _table(text)[1][2] == "1"


async def test_debug_memory_into_the_files_folder(tmp_path: Path) -> None:
    async with open_session(hostname="vm", base=str(tmp_path)) as session:
        assert await output(session, "debug memory mem.txt") == [("", "")]
        summary = (tmp_path / "files" / "mem.txt").read_text()
        assert re.match(r"# minishell cpython[\d.]+, pid \d+\nrss_kib \d+\n", summary)
        assert re.search(r"^\d+ tuple$", summary, re.MULTILINE)
        assert await output(session, f"debug memory {tmp_path}/abs.txt") == [("", "")]
        assert (tmp_path / "abs.txt").exists()
        assert await output(session, "debug memory /nonexistent/x") == [
            ("", "open /nonexistent/x: no such file or directory")]


async def test_debug_goroutine_writes_every_tasks_stack(session: Session, tmp_path: Path) -> None:
    assert await output(session, f"debug goroutine {tmp_path}/stacks") == [("", "")]
    stacks = (tmp_path / "stacks").read_text()
    assert "task <init>:" in stacks
    assert "test_debug_goroutine_writes_every_tasks_stack" in stacks
    assert "thread MainThread:" in stacks


async def test_debug_cpu_is_not_implemented(session: Session) -> None:
    assert await output(session, "debug cpu start /tmp/x") == [
        ("", "minishell does not implement `debug cpu`")]


async def test_check_finds_everything_here(session: Session) -> None:
    assert await output(session, "check") == [("", "")]


async def test_check_names_each_missing_program_in_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH with only `sed` and `echo`, and a helper folder without `count`."""
    path = tmp_path / "path"
    path.mkdir()
    for program in ("sed", "echo"):
        found = shutil.which(program)
        assert found is not None
        (path / program).symlink_to(found)
    helpers = tmp_path / "helpers"
    helpers.mkdir()
    for helper in ("normal", "delay", "execf"):
        (helpers / helper).write_text("#!/bin/sh\n")
        (helpers / helper).chmod(0o755)
    monkeypatch.setenv("PATH", str(path))
    missing = ["count", *(p for p in SCRIPT_PROGRAMS if p not in ("sed", "echo"))]
    async with open_session(hostname="vm", base=str(tmp_path), helper_dir=str(helpers)) as session:
        assert await output(session, "check") == [("", "\n".join(
            f'exec: "{program}": executable file not found in $PATH' for program in missing))]
    assert DEPENDENCIES[:len(PLUMBING_HELPERS)] == ("normal", "count", "delay", "execf")
    assert os.environ["PATH"] == str(path)
