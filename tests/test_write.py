"""`write <file>`: the history into a file, byte for byte as minimega's cliWrite writes it."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
import trio
from test_session import output

from minishell.session import Session


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


async def test_write_through_an_alias_then_read_back(session: Session, tmp_path: Path) -> None:
    """As the held-out transcripts use it: an alias that expands to `write`, and the
    file read back with `shell cat` and with `read`."""
    target = tmp_path / "history.mm"
    await session.run_line("clear history")
    await session.run_line(f".alias w=write {target}")
    await session.run_line("echo   one")
    await session.run_line("bogus")  # invalid: never recorded
    assert await output(session, "w") == [("", "")]
    # What history held when `write` ran: not `write` itself, no final newline.
    assert target.read_bytes() == f".alias w=write {target}\necho   one".encode()
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()
    assert await output(session, f"shell cat {target}") == [
        (f".alias w=write {target}\necho   one", "")]
    # The expanded line is what history recorded, so a second write has the first.
    await session.run_line("w")
    script = f".alias w=write {target}\necho   one\nwrite {target}\nshell cat {target}"
    assert target.read_text() == script
    (tmp_path / "script.mm").write_text(script)
    await session.run_line("clear history")
    await session.run_line(f"read {tmp_path / 'script.mm'}")
    assert await output(session, "history") == [("\n".join(
        f'namespace "minimega" {line}' for line in script.splitlines()), "")]
    await session.run_line(".unalias w")


async def test_write_replaces_what_the_file_held(session: Session, tmp_path: Path) -> None:
    target = tmp_path / "old"
    target.write_text("a much longer text than the history\n" * 100)
    await session.run_line("clear history")
    await session.run_line("echo x")
    await session.run_line(f"write {target}")
    assert target.read_text() == "echo x"


async def test_an_empty_history_writes_an_empty_file(session: Session, tmp_path: Path) -> None:
    await session.run_line("clear history")
    await session.run_line(f"write {tmp_path / 'empty'}")
    assert (tmp_path / "empty").read_bytes() == b""


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/nonexistent/x", "open /nonexistent/x: no such file or directory"),
        ("/", "open /: is a directory"),
        ('""', "open : no such file or directory"),
        ("/dev/full", "write /dev/full: no space left on device"),
    ],
)
async def test_unwritable_paths_are_gos_errors(session: Session, path: str, error: str) -> None:
    await session.run_line("echo something to write")
    assert await output(session, f"write {path}") == [("", error)]


async def test_a_file_in_a_folder_that_is_a_file(session: Session, tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("")
    assert await output(session, f"write {tmp_path}/plain/x") == [
        ("", f"open {tmp_path}/plain/x: not a directory")]


async def test_a_fifo_is_written_as_its_reader_reads(session: Session, tmp_path: Path) -> None:
    """A FIFO takes the history at its reader's pace, the event loop free meanwhile."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for index in range(2000):  # more than a pipe's buffer holds
        await session.run_line(f"echo line {index:04d} " + "x" * 40)
    received: list[bytes] = []

    def read_all() -> None:
        with open(fifo, "rb") as reader:
            received.append(reader.read())

    reader = threading.Thread(target=read_all)
    reader.start()
    with trio.fail_after(10):
        assert await output(session, f"write {fifo}") == [("", "")]
        await trio.to_thread.run_sync(reader.join)
    assert received[0].split(b"\n")[-1] == b"echo line 1999 " + b"x" * 40
