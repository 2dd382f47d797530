"""The interactive prompt, driven through prompt_toolkit's pipe input.

No terminal is needed: `create_app_session` set here is seen by the prompt's
worker thread, because trio copies contextvars into `to_thread` (ecosystem.md
§a). What prompt_toolkit draws goes to a StringIO through a VT100 output, so
the tests can read the prompt and the terminal modes it switched.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from glob import glob
from pathlib import Path

import pytest
import trio
from prompt_toolkit.application import create_app_session
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.data_structures import Size
from prompt_toolkit.document import Document
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output.vt100 import Vt100_Output

from minishell.commands.registry import Sink
from minishell.repl import (
    CommandCompleter,
    history_path,
    new_prompt_session,
    prompt_message,
    run_repl,
)
from minishell.session import Session

HOST = "vm"  # the conftest session's; it also turns .annotate off
CTRL_C = "\x03"
CTRL_D = "\x04"
ENTER = "\r"
PASTE_ON = "\x1b[?2004h"
PASTE_OFF = "\x1b[?2004l"


def paste(text: str) -> str:
    """What a terminal in bracketed-paste mode sends for pasted text."""
    return f"\x1b[200~{text}\x1b[201~"


@dataclass(frozen=True, slots=True)
class Ended:
    status: int
    out: str
    err: str
    screen: str  # everything prompt_toolkit drew


def screen_output(screen: io.StringIO) -> Vt100_Output:
    return Vt100_Output(
        screen, lambda: Size(rows=24, columns=80), term="xterm", enable_cpr=False
    )


async def type_into_repl(
    session: Session,
    keys: str,
    tmp_path: Path,
    *,
    history_file: str | None = None,
) -> Ended:
    """Type `keys` at the prompt and run it until it ends."""
    screen, out, err = io.StringIO(), io.StringIO(), io.StringIO()
    with create_pipe_input() as keyboard, create_app_session(
        input=keyboard, output=screen_output(screen)
    ):
        keyboard.send_text(keys)
        with trio.fail_after(10):
            status = await run_repl(
                session,
                history_file=history_file or str(tmp_path / "history"),
                out=out,
                err=err,
            )
    return Ended(status, out.getvalue(), err.getvalue(), screen.getvalue())


def pipe_names_shown(out: str) -> list[str]:
    """The name column of the `pipe` tables in the output."""
    names: list[str] = []
    column = None
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if "name" in cells:
            column = cells.index("name")
        elif column is not None and len(cells) > column:
            names.append(cells[column])
    return names


async def test_typed_lines_run_and_show_the_pipe_table(session: Session, tmp_path: Path) -> None:
    ended = await type_into_repl(
        session, f'pipe foo "hello"{ENTER}echo hi{ENTER}pipe{ENTER}{CTRL_D}', tmp_path
    )
    assert ended.status == 0
    assert ended.err == ""
    assert ended.out.splitlines() == [
        "hi",
        "name          | mode | readers | writers | count | via | previous",
        "minimega//foo | all  | 0       | 0       | 1     |     | hello",
    ]
    assert "minimega$ " in ended.screen


async def test_an_invalid_line_is_reported_and_the_shell_goes_on(
    session: Session, tmp_path: Path
) -> None:
    ended = await type_into_repl(
        session, f"bogus line{ENTER}pipe foo hi{ENTER}pipe{ENTER}{CTRL_D}", tmp_path
    )
    assert ended.status == 0
    assert ended.err == f"Error ({HOST}): invalid command: `bogus line`\n"
    assert pipe_names_shown(ended.out) == ["minimega//foo"]


@pytest.mark.parametrize("ending", [f"quit{ENTER}", f"exit{ENTER}", CTRL_D])
async def test_quit_exit_and_ctrl_d_end_with_status_0(
    session: Session, tmp_path: Path, ending: str
) -> None:
    ended = await type_into_repl(session, f"{ending}pipe never 1{ENTER}", tmp_path)
    assert ended.status == 0
    assert (ended.out, ended.err) == ("", "")
    assert session.plumber.names() == ()


async def test_closed_input_ends_like_ctrl_d(session: Session, tmp_path: Path) -> None:
    screen = io.StringIO()
    with create_pipe_input() as keyboard, create_app_session(
        input=keyboard, output=screen_output(screen)
    ):
        keyboard.send_text(f"pipe foo hi{ENTER}")
        keyboard.close()
        with trio.fail_after(10):
            status = await run_repl(session, history_file=str(tmp_path / "history"))
    assert status == 0
    assert session.plumber.names() == ("minimega//foo",)


async def test_ctrl_c_at_the_prompt_discards_the_line(session: Session, tmp_path: Path) -> None:
    ended = await type_into_repl(
        session, f"pipe dropped 1{CTRL_C}pipe kept 2{ENTER}pipe{ENTER}{CTRL_D}", tmp_path
    )
    assert ended.status == 0
    assert pipe_names_shown(ended.out) == ["minimega//kept"]


def child_processes() -> list[str]:
    """Our children, from /proc: one `children` file per thread."""
    children: list[str] = []
    for path in glob(f"/proc/{os.getpid()}/task/*/children"):
        with open(path) as listing:
            children += listing.read().split()
    return children


async def test_ctrl_c_during_a_command_cancels_only_that_command(
    session: Session, tmp_path: Path
) -> None:
    async def interrupt_once_the_command_runs() -> None:
        with trio.fail_after(5):
            while not child_processes():  # noqa: ASYNC110 - a process of its own: no event
                await trio.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(interrupt_once_the_command_runs)
        with trio.fail_after(5):  # well before `sleep 30` would end
            ended = await type_into_repl(
                session, f"shell sleep 30{ENTER}pipe after 1{ENTER}{CTRL_D}", tmp_path
            )
    assert ended.status == 0
    assert ended.err == "Error (vm): interrupted\n"
    assert session.plumber.names() == ("minimega//after",)
    assert child_processes() == []


async def test_a_paste_of_several_lines_runs_each_line(session: Session, tmp_path: Path) -> None:
    ended = await type_into_repl(
        session, paste(f"pipe one 1{ENTER}pipe two 2{ENTER}pipe") + f"{ENTER}{CTRL_D}", tmp_path
    )
    assert pipe_names_shown(ended.out) == ["minimega//one", "minimega//two"]


async def test_quit_in_a_paste_stops_at_once(session: Session, tmp_path: Path) -> None:
    ended = await type_into_repl(
        session, paste(f"pipe one 1{ENTER}quit{ENTER}pipe two 2") + ENTER, tmp_path
    )
    assert ended.status == 0
    assert session.plumber.names() == ("minimega//one",)


async def test_the_prompt_names_a_namespace_other_than_minimega(
    session: Session, tmp_path: Path
) -> None:
    ended = await type_into_repl(session, f"namespace other{ENTER}{CTRL_D}", tmp_path)
    assert "minimega[other]$ " in ended.screen
    assert prompt_message("minimega") == "minimega$ "
    assert prompt_message("other") == "minimega[other]$ "


async def test_an_unexpected_error_is_logged_and_the_prompt_goes_on(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run: Callable[[str, Sink], Awaitable[None]] = session.run

    async def run_with_a_bug(line: str, sink: Sink) -> None:
        if line == "echo bug":
            raise RuntimeError("a bug")
        await run(line, sink)

    monkeypatch.setattr(session, "run", run_with_a_bug)
    ended = await type_into_repl(session, f"echo bug{ENTER}echo fine{ENTER}{CTRL_D}", tmp_path)
    assert (ended.status, ended.out, ended.err) == (0, "fine\n", "")
    [record] = [r for r in caplog.records if r.name == "minishell.repl"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


async def test_cancelling_at_the_prompt_ends_it_and_restores_the_terminal(
    session: Session,
) -> None:
    screen = io.StringIO()
    with create_pipe_input() as keyboard, create_app_session(
        input=keyboard, output=screen_output(screen)
    ):
        prompt = new_prompt_session(session, InMemoryHistory())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(run_repl, session, prompt_session=prompt))
            with trio.fail_after(5):
                while not prompt.app.is_running:  # noqa: ASYNC110 - runs on another thread
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        assert not prompt.app.is_running
    drawn = screen.getvalue()
    assert PASTE_ON in drawn
    assert drawn.rindex(PASTE_OFF) > drawn.rindex(PASTE_ON)


async def test_completion_offers_commands_and_pipe_names(session: Session) -> None:
    for line in ("pipe foo hi", "namespace other pipe bar hi"):
        await session.run_line(line)
    completer = CommandCompleter(session)

    def complete(text: str) -> list[tuple[str, int]]:
        completions = completer.get_completions(Document(text), CompleteEvent(True))
        return [(c.text, c.start_position) for c in completions]

    assert complete("pi") == [("pipe", -2)]
    assert complete("pipe f") == [("foo", -1)]
    assert complete("clear pipe ") == [("foo", 0), ("minimega//foo", 0), ("other//bar", 0)]
    assert complete("pipe foo m") == [("mode", -1)]
    await session.run_line("namespace other")
    assert complete("plumb b") == [("bar", -1)]


async def test_history_is_written_to_the_given_file(session: Session, tmp_path: Path) -> None:
    history = tmp_path / "state" / "minishell" / "history"
    await type_into_repl(
        session, f"pipe foo hi{ENTER}{CTRL_D}", tmp_path, history_file=str(history)
    )
    assert "+pipe foo hi\n" in history.read_text()
    assert stat.S_IMODE(history.stat().st_mode) == 0o600  # commands are the user's alone


async def test_a_readable_history_file_is_made_private(session: Session, tmp_path: Path) -> None:
    history = tmp_path / "history"
    history.write_text("")
    history.chmod(0o644)
    await type_into_repl(session, f"echo x{ENTER}{CTRL_D}", tmp_path, history_file=str(history))
    assert stat.S_IMODE(history.stat().st_mode) == 0o600


async def test_an_unusable_history_file_falls_back_to_memory(
    session: Session, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    ended = await type_into_repl(
        session, f"echo still{ENTER}{CTRL_D}", tmp_path,
        history_file=str(not_a_folder / "history"),
    )
    assert ended.out == "still\n"
    [warning] = ended.err.splitlines()
    assert warning.startswith(f"minishell: history not saved: {not_a_folder}/history: ")


def test_history_path_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("MINISHELL_HISTFILE", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert history_path(None) == f"{tmp_path}/.local/state/minishell/history"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/is/ignored")
    assert history_path(None) == f"{tmp_path}/.local/state/minishell/history"
    monkeypatch.setenv("XDG_STATE_HOME", "/state")
    assert history_path(None) == "/state/minishell/history"
    monkeypatch.setenv("MINISHELL_HISTFILE", "/env/history")
    assert history_path(None) == "/env/history"
    assert history_path("/flag/history") == "/flag/history"
