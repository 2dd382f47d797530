"""Transcript replay: minimega's minitest, run against minishell.

For each transcript a fresh session runs `prolog`, the script and
`epilog`; the script's output is written to `NAME.got` in minitest's format
and compared byte for byte with `NAME.want` (spec §2).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

import trio

from minishell.render import render
from minishell.reply import Reply
from minishell.session import Session

# minitest reads scripts with a default bufio.Scanner (spec §2, §15).
SCRIPT_LINE_MAX = 64 * 1024
_NOT_TRANSCRIPTS = {"prolog", "epilog", "enter", "exit"}

SessionFactory = Callable[[], AbstractAsyncContextManager[Session]]


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


async def _run_lines(session: Session, lines: Iterable[str], out: list[str] | None) -> None:
    async def record(reply: Reply) -> None:
        if out is not None:
            out.append(transcript_output(reply))

    for line in lines:
        if out is not None:
            out.append(f"## {line}\n" if line else "\n")
        # After `quit` minitest still echoes the script; nothing answers it.
        if not line or session.quitting.is_set():
            continue
        await session.run(line, record)


async def _optional_lines(path: Path) -> list[str]:
    return await _script_lines(path) if await trio.Path(path).is_file() else []


async def replay_one(script: Path, new_session: SessionFactory) -> str:
    """Run prolog, script and epilog in a fresh session; return the script's output."""
    folder = script.parent
    prolog = await _optional_lines(folder / "prolog")
    epilog = await _optional_lines(folder / "epilog")
    lines = await _script_lines(script)
    out: list[str] = []
    async with new_session() as session:
        await _run_lines(session, prolog, None)
        await _run_lines(session, lines, out)
        await _run_lines(session, epilog, None)
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


async def replay_file(script: Path, new_session: SessionFactory) -> Outcome:
    name = script.name
    try:
        got = await replay_one(script, new_session)
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


async def replay_all(paths: Iterable[str], new_session: SessionFactory,
                     write: Callable[[str], None]) -> int:
    """minitest over PATHs; prints failures and `N passed, N failed`; 0 if all passed."""
    scripts = await trio.to_thread.run_sync(find_transcripts, list(paths))
    passed = failed = 0
    for script in scripts:
        outcome = await replay_file(script, new_session)
        if outcome.passed:
            passed += 1
        else:
            failed += 1
            write(outcome.report)
    write(f"{passed} passed, {failed} failed\n")
    return 0 if failed == 0 and scripts else 1
