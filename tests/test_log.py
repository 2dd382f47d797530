"""`log ...` and `clear log ...`: minimega's loggers over Python's logging."""

from __future__ import annotations

import io
import logging
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_session import output

from minishell import logs
from minishell.session import Session

plumber_log = logging.getLogger("minishell.plumber")


@pytest.fixture
async def stderr() -> AsyncIterator[io.StringIO]:
    """Logging as `minishell -level error` sets it up, stderr being this buffer;
    the root logger as it was afterwards."""
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    state = logs.configure("error", stream)
    yield stream
    await state.aclose()
    logs.install(None)
    root.setLevel(level)


async def test_level_reports_the_start_level_and_changes(session: Session,
                                                         stderr: io.StringIO) -> None:
    assert await output(session, "log level") == [("error", "")]
    assert await output(session, "log level i") == [("", "")]
    assert await output(session, "log level") == [("info", "")]
    assert logging.getLogger().level == logging.INFO
    assert await output(session, "log level bogus") == [
        ("", "invalid command: `log level bogus`")]
    await session.run_line("clear log level")
    assert await output(session, "log level") == [("error", "")]


@pytest.mark.parametrize(("level", "name"), [
    (logging.NOTSET, "debug"), (logging.DEBUG, "debug"), (logging.INFO, "info"),
    (logging.WARNING, "warn"), (logging.ERROR, "error"), (logging.CRITICAL, "fatal"),
    (25, "warn"), (100, "fatal"),
])
async def test_level_of_a_root_logger_set_by_others(session: Session, level: int,
                                                     name: str) -> None:
    """Embedded (no `configure`), `log level` names the level the root logger lets through."""
    root = logging.getLogger()
    before = root.level
    logs.install(None)
    try:
        root.setLevel(level)
        assert await output(session, "log level") == [(name, "")]
    finally:
        root.setLevel(before)
        logs.install(None)


async def test_stderr_on_and_off(session: Session, stderr: io.StringIO) -> None:
    assert await output(session, "log stderr") == [("true", "")]
    plumber_log.error("first %s", "line")
    assert stderr.getvalue().endswith(" ERROR minishell.plumber: first line\n")
    await session.run_line("log stderr false")
    assert await output(session, "log stderr") == [("false", "")]
    plumber_log.error("unseen")
    assert "unseen" not in stderr.getvalue()
    handlers = len(logging.getLogger().handlers)
    await session.run_line("log stderr true")
    await session.run_line("log stderr true")  # already on: still one logger
    assert len(logging.getLogger().handlers) == handlers + 1


async def test_pipe_log_messages_reach_a_log_file(session: Session, stderr: io.StringIO,
                                                  tmp_path: Path) -> None:
    """The file is made with its folders, written in minilog's format, and closed
    when cleared; `pipe foo log true` messages are there at level debug."""
    path = tmp_path / "made" / "for" / "log.txt"
    assert await output(session, f"log file {path}") == [("", "")]
    assert await output(session, "log file") == [(str(path), "")]
    assert stat.S_IMODE(path.stat().st_mode) == 0o660 & ~_umask()
    await session.run_line("pipe logged log true")
    await session.run_line("pipe logged quiet")  # below the level: not logged
    await session.run_line("log level debug")
    await session.run_line("pipe logged hello")
    handler = logs.current().file
    assert handler is not None
    await session.run_line("clear log file")
    assert handler.stream is None  # closed
    assert await output(session, "log file") == [("", "")]
    await session.run_line("pipe logged after")
    lines = path.read_text().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [
        "DEBUG minishell.plumber: pipe minimega//logged: hello"]
    await session.run_line("clear pipe logged")


async def test_a_new_log_file_closes_the_old_one(session: Session, stderr: io.StringIO,
                                                 tmp_path: Path) -> None:
    await session.run_line(f"log file {tmp_path / 'one'}")
    first = logs.current().file
    await session.run_line(f"log file {tmp_path / 'two'}")
    assert first is not None and first.stream is None
    plumber_log.error("to the second")
    assert "to the second" not in (tmp_path / "one").read_text()
    assert "to the second" in (tmp_path / "two").read_text()
    await session.run_line("clear log")
    assert logs.current().file is None


@pytest.mark.parametrize(("path", "error"), [
    ("/dev/null/x", "mkdir /dev/null: not a directory"),
    ("/dev/null/x/y", "mkdir /dev/null: not a directory"),
    ("/", "open /: is a directory"),
])
async def test_log_file_errors(session: Session, stderr: io.StringIO, path: str,
                               error: str) -> None:
    assert await output(session, f"log file {path}") == [("", error)]
    assert logs.current().file is None


async def test_filters_drop_matching_lines(session: Session, stderr: io.StringIO,
                                           tmp_path: Path) -> None:
    assert await output(session, "log filter") == [("", "")]
    await session.run_line("log filter secret")
    await session.run_line('log filter "ERROR minishell.plumber: drop"')  # minilog's prologue
    await session.run_line("log filter secret")  # once only
    assert await output(session, "log filter") == [("[secret ERROR minishell.plumber: drop]", "")]
    await session.run_line(f"log file {tmp_path / 'log'}")  # a later logger: no filters
    plumber_log.error("a secret")
    plumber_log.error("drop this")
    plumber_log.error("keep this")
    assert [line.split(" ", 2)[2] for line in stderr.getvalue().splitlines()] == [
        "ERROR minishell.plumber: keep this"]
    assert len((tmp_path / "log").read_text().splitlines()) == 3
    await session.run_line("clear log filter")
    assert await output(session, "log filter") == [("", "")]
    plumber_log.error("a secret")
    assert stderr.getvalue().endswith("ERROR minishell.plumber: a secret\n")
    await session.run_line("clear log file")


async def test_ring_keeps_the_newest_lines(session: Session, stderr: io.StringIO) -> None:
    assert await output(session, "log ring") == [("", "cannot dump log ring, not enabled")]
    assert await output(session, "log ring x") == [
        ("", 'strconv.Atoi: parsing "x": invalid syntax')]
    assert await output(session, "log ring 0") == [
        ("", f"log ring size must be between 1 and {logs.RING_LINES_MAX}")]
    await session.run_line("log ring 2")
    for word in ("one", "two", "three"):
        plumber_log.error(word)
    [(dump, error)] = await output(session, "log ring")
    assert error == ""
    assert [line.split(" ", 2)[2] for line in dump.splitlines()] == [
        "ERROR minishell.plumber: two", "ERROR minishell.plumber: three"]
    await session.run_line("log ring 5")  # a new ring starts empty
    assert await output(session, "log ring") == [("", "")]
    await session.run_line("clear log ring")
    assert logs.current().ring is None


async def test_clear_log_resets_everything(session: Session, stderr: io.StringIO,
                                           tmp_path: Path) -> None:
    await session.run_line("log level debug")
    await session.run_line(f"log file {tmp_path / 'log'}")
    await session.run_line("log ring 10")
    await session.run_line("log filter x")
    state = logs.current()
    ours = {state.stderr, state.file, state.ring}
    assert await output(session, "clear log") == [("", "")]
    assert await output(session, "log level") == [("error", "")]
    assert await output(session, "log stderr") == [("false", "")]  # as in minimega
    assert await output(session, "log file") == [("", "")]
    assert await output(session, "log filter") == [("", "")]
    assert not ours & set(logging.getLogger().handlers)
    for word in ("mesh", "syslog"):  # never on here: nothing to clear
        assert await output(session, f"clear log {word}") == [("", "")]
    assert await output(session, "log syslog") == [("", "invalid command: `log syslog`")]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
