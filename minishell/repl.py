"""The interactive `minimega$` prompt.

prompt_toolkit runs its own asyncio loop inside `prompt()`, so the prompt runs
on a worker thread while commands run on trio (style.md §8.4). The terminal
has two states, and Ctrl-C means something different in each: at the prompt it
is raw, Ctrl-C is a key and `prompt()` raises KeyboardInterrupt (the line is
dropped); while a command runs it is cooked, Ctrl-C is SIGINT and cancels
only that command.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TextIO

import trio
from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory

from minishell import osfiles
from minishell.commands.registry import registry
from minishell.console import Shown
from minishell.namespace import DEFAULT_NAMESPACE
from minishell.session import Session

log = logging.getLogger("minishell.repl")

# How long shutting down waits for the prompt thread to restore the terminal.
_PROMPT_EXIT_TIMEOUT = 2.0


async def run_repl(
    session: Session,
    *,
    history_file: str | None = None,
    prompt_session: PromptSession[str] | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Prompt, run, show, until Ctrl-D or `quit`; the exit status is 0."""
    if prompt_session is None:
        prompt_session = new_prompt_session(session, open_history(history_file, err))
    interrupts = _Interrupts()
    async with trio.open_nursery() as nursery:
        await nursery.start(interrupts.watch)
        await _prompt_loop(session, prompt_session, interrupts, out, err)
        nursery.cancel_scope.cancel()
    return 0


def new_prompt_session(session: Session, history: History) -> PromptSession[str]:
    return PromptSession(
        history=history,
        completer=CommandCompleter(session),
        # Tab only: pipe data is free text that live suggestions would disturb.
        complete_while_typing=False,
        auto_suggest=AutoSuggestFromHistory(),
    )


def prompt_message(namespace: str) -> str:
    """minimega's prompt names the namespace only when it is not the default."""
    if namespace == DEFAULT_NAMESPACE:
        return "minimega$ "
    return f"minimega[{namespace}]$ "


def history_path(history_file: str | None) -> str:
    """--history-file, else $MINISHELL_HISTFILE, else the XDG state folder."""
    if history_file:
        return history_file
    if from_env := os.environ.get("MINISHELL_HISTFILE"):
        return from_env
    return os.path.join(osfiles.state_folder(), "history")


def open_history(history_file: str | None, err: TextIO) -> History:
    """A FileHistory, or history in memory (with a warning) if the file is unusable.

    The file is the user's alone (0600), as the socket is: the commands in it
    start programs and may hold secrets. One of ours left readable by an
    older minishell is made private too.
    """
    path = history_path(history_file)
    try:
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        # Checked now: prompt_toolkit would only fail later, on its own thread.
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            info = os.fstat(descriptor)
            if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
                os.fchmod(descriptor, 0o600)
        finally:
            os.close(descriptor)
    except OSError as error:
        err.write(f"minishell: history not saved: {path}: {error.strerror or error}\n")
        err.flush()
        return InMemoryHistory()
    return FileHistory(path)


class CommandCompleter(Completer):
    """Tab completion from the command language.

    prompt_toolkit calls this on the prompt thread, between commands: the
    suggestions only read state (the active namespace, the plumber's tuple of
    pipe names), never trio's.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        word = document.get_word_before_cursor(WORD=True)
        for candidate in registry().complete(document.text_before_cursor, self._session):
            yield Completion(candidate, start_position=-len(word))


async def _prompt_loop(
    session: Session,
    prompt: PromptSession[str],
    interrupts: _Interrupts,
    out: TextIO,
    err: TextIO,
) -> None:
    while not session.quitting.is_set():
        try:
            text = await read_line(prompt, prompt_message(session.namespaces.active.name))
        except KeyboardInterrupt:
            continue
        except EOFError:
            return
        # A bracketed paste of several lines arrives as one text.
        for line in text.split("\n"):
            await _run_line(session, line, interrupts, out, err)
            if session.quitting.is_set():
                return


async def _run_line(
    session: Session, line: str, interrupts: _Interrupts, out: TextIO, err: TextIO
) -> None:
    try:
        with interrupts.cancel_scope() as scope:
            await session.run(line, Shown(out, err))
    except Exception:
        # A bug must not cost the user their shell and its pipelines.
        log.exception("unexpected error running %r", line)
        return
    if scope.cancelled_caught:
        err.write(f"Error ({session.hostname}): interrupted\n")
        err.flush()


class _Interrupts:
    """SIGINT cancels the command that is running, if any, and nothing else.

    One receiver for the whole prompt rather than one per command: trio
    re-raises signals still pending when a receiver closes, so a second
    Ctrl-C during a command's cleanup would otherwise kill the shell.
    """

    def __init__(self) -> None:
        self._command: trio.CancelScope | None = None

    async def watch(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.open_signal_receiver(signal.SIGINT) as signals:
            task_status.started()
            async for _ in signals:
                if self._command is not None:
                    self._command.cancel()

    @contextmanager
    def cancel_scope(self) -> Iterator[trio.CancelScope]:
        """The scope of one command: the one SIGINT cancels while it runs."""
        with trio.CancelScope() as scope:
            self._command = scope
            try:
                yield scope
            finally:
                self._command = None


async def read_line(prompt: PromptSession[str], message: str) -> str:
    """`prompt()` on a worker thread; if cancelled, end it properly.

    Abandoning the thread alone would leave the terminal in raw and
    bracketed-paste mode (ecosystem.md §a, minimega#940), so the prompt is
    ended through its own loop and waited for, within a bound.
    """
    running = threading.Event()
    finished = threading.Event()
    loops: list[asyncio.AbstractEventLoop] = []

    def started() -> None:  # on the prompt's loop, once app.future exists
        loops.append(asyncio.get_running_loop())
        running.set()

    def run() -> str:
        try:
            return prompt.prompt(message, pre_run=started)
        finally:
            finished.set()
            running.set()  # also when prompt() failed before it ran

    try:
        return await trio.to_thread.run_sync(run, abandon_on_cancel=True)
    except trio.Cancelled:
        with trio.CancelScope(shield=True), trio.move_on_after(_PROMPT_EXIT_TIMEOUT):
            # Cancelled while the prompt was still starting: it can only be
            # ended once it runs.
            await trio.to_thread.run_sync(running.wait, abandon_on_cancel=True)
            if loops and not finished.is_set():
                _end_prompt(prompt, loops[0])
            await trio.to_thread.run_sync(finished.wait, abandon_on_cancel=True)
        raise


def _end_prompt(prompt: PromptSession[str], loop: asyncio.AbstractEventLoop) -> None:
    app = prompt.app

    def end() -> None:  # on the prompt's loop: no race with Enter
        if app.future is not None and not app.future.done():
            app.exit(exception=EOFError())

    with suppress(RuntimeError):  # the loop closed meanwhile: the prompt has ended
        loop.call_soon_threadsafe(end)
