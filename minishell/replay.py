"""Transcript replay: minimega's minitest, run against minishell.

For each transcript `prolog`, the script and `epilog` run; the script's output
is written to `NAME.got` in minitest's format and compared byte for byte with
`NAME.want` (spec §2). They run in a fresh session of their own, or, as
minitest runs them, through the control socket of a running instance
(`-replay -attach`), where agents and other clients can take part.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import trio

from minishell.client import ClientError, Connection
from minishell.render import render
from minishell.reply import Reply
from minishell.session import Session

# minitest reads scripts with a default bufio.Scanner (spec §2, §15).
SCRIPT_LINE_MAX = 64 * 1024
_NOT_TRANSCRIPTS = {"prolog", "epilog", "enter", "exit"}

SessionFactory = Callable[[], AbstractAsyncContextManager[Session]]


class Runner(Protocol):
    """Where a transcript's lines run: minitest's output for each, and whether the
    instance has quit (after which minitest still echoes the lines)."""

    async def output(self, line: str) -> str: ...

    @property
    def quitting(self) -> bool: ...


RunnerFactory = Callable[[], AbstractAsyncContextManager[Runner]]


def transcript_output(reply: Reply) -> str:
    """minitest's text for one reply: its hosts' `E:` lines sorted, then the output."""
    errors = sorted(f"E: {response.error}" for response in reply.responses if response.error)
    out = "\n".join(errors) + "\n" if errors else ""
    rendered = render(reply)
    return out + rendered + "\n" if rendered else out


class TranscriptError(Exception):
    """A transcript that cannot be replayed at all (minitest's FATAL)."""


async def _script_lines(path: Path) -> list[str]:
    try:
        data = await trio.Path(path).read_bytes()
    except OSError as error:
        raise TranscriptError(f"{path}: {error.strerror}") from None
    lines = data.decode(errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if len(line.encode()) >= SCRIPT_LINE_MAX:
            raise TranscriptError(f"{path.name}:{number}: line longer than 64 KiB")
    return lines


class _InSession:
    """A fresh session of this process's own."""

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def quitting(self) -> bool:
        return self._session.quitting.is_set()

    async def output(self, line: str) -> str:
        out: list[str] = []

        async def record(reply: Reply) -> None:
            out.append(transcript_output(reply))

        await self._session.run(line, record)
        return "".join(out)


def in_sessions(new_session: SessionFactory) -> RunnerFactory:
    @asynccontextmanager
    async def runner() -> AsyncIterator[Runner]:
        async with new_session() as session:
            yield _InSession(session)

    return runner


class _Remote:
    """A running instance, through its control socket, as minitest reaches minimega."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.quitting = False

    async def output(self, line: str) -> str:
        return await trio.to_thread.run_sync(self._output, line)

    def _output(self, line: str) -> str:
        out = []
        for reply in self._connection.command(line):
            errors = sorted(f"E: {error}" for _, error in reply.errors)
            out.append("\n".join(errors) + "\n" if errors else "")
            if reply.rendered:
                out.append(reply.rendered + "\n")
        return "".join(out)


def remote(socket: str) -> RunnerFactory:
    @asynccontextmanager
    async def runner() -> AsyncIterator[Runner]:
        try:
            connection = await trio.to_thread.run_sync(Connection, socket)
        except ClientError as error:
            raise TranscriptError(str(error)) from None
        try:
            yield _Remote(connection)
        finally:
            connection.close()

    return runner


async def _run_lines(runner: Runner, lines: Iterable[str], out: list[str] | None) -> None:
    for line in lines:
        if out is not None:
            out.append(f"## {line}\n" if line else "\n")
        # After `quit` minitest still echoes the script; nothing answers it.
        if not line or runner.quitting:
            continue
        try:
            text = await runner.output(line)
        except ClientError as error:
            raise TranscriptError(str(error)) from None
        if out is not None:
            out.append(text)


async def _optional_lines(path: Path) -> list[str]:
    return await _script_lines(path) if await trio.Path(path).is_file() else []


async def replay_one(script: Path, new_runner: RunnerFactory) -> str:
    """Run prolog, script and epilog; return the script's output."""
    folder = script.parent
    prolog = await _optional_lines(folder / "prolog")
    epilog = await _optional_lines(folder / "epilog")
    lines = await _script_lines(script)
    out: list[str] = []
    async with new_runner() as runner:
        await _run_lines(runner, prolog, None)
        await _run_lines(runner, lines, out)
        await _run_lines(runner, epilog, None)
    return "".join(out)


def find_transcripts(paths: Iterable[str]) -> list[Path]:
    """Files as given; in a folder, every script that has a `.want` beside it."""
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if not path.is_dir():
            found.append(path)
            continue
        for entry in sorted(path.iterdir()):
            if (
                entry.is_file()
                and not entry.name.startswith(".")
                and entry.suffix not in (".got", ".want")
                and entry.name not in _NOT_TRANSCRIPTS
                and entry.with_name(entry.name + ".want").is_file()
            ):
                found.append(entry)
    return found


@dataclass(frozen=True, slots=True)
class Outcome:
    name: str
    passed: bool
    report: str  # what to print for a failure: a headline and a diff


async def replay_file(script: Path, new_runner: RunnerFactory) -> Outcome:
    name = script.name
    try:
        got = await replay_one(script, new_runner)
    except TranscriptError as error:
        return Outcome(name, False, f"FATAL {error}\n")
    got_path = script.with_name(name + ".got")
    # Bytes, not text: text mode would turn a recorded \r into \n.
    await trio.Path(got_path).write_bytes(got.encode())
    want_path = script.with_name(name + ".want")
    if not await trio.Path(want_path).is_file():
        return Outcome(name, False, f"no {want_path.name} for {name}: output in {got_path}\n")
    want = (await trio.Path(want_path).read_bytes()).decode(errors="replace")
    if got == want:
        return Outcome(name, True, "")
    diff = difflib.unified_diff(
        want.splitlines(keepends=True), got.splitlines(keepends=True),
        fromfile=os.fspath(want_path), tofile=os.fspath(got_path),
    )
    return Outcome(name, False, f"got != want for {name}\n" + "".join(diff))


async def replay_all(paths: Iterable[str], new_runner: RunnerFactory,
                     write: Callable[[str], None]) -> int:
    """minitest over PATHs; prints failures and `N passed, N failed`; 0 if all passed."""
    scripts = await trio.to_thread.run_sync(find_transcripts, list(paths))
    passed = failed = 0
    for script in scripts:
        outcome = await replay_file(script, new_runner)
        if outcome.passed:
            passed += 1
        else:
            failed += 1
            write(outcome.report)
    write(f"{passed} passed, {failed} failed\n")
    return 0 if failed == 0 and scripts else 1
