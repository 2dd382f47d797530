"""Helpers shared by the plumber tests."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import trio

from minishell.plumber import Chunk, PipeInfo, Plumber, Reader


def info(plumber: Plumber, name: str) -> PipeInfo:
    return next(pipe for pipe in plumber.pipes() if pipe.name == name)


def children() -> set[int]:
    """Our child processes, zombies included (a child not reaped is still listed)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat_line = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat_line.rsplit(")", 1)[1].split()[1]) == os.getpid():
                found.add(int(entry.name))
    return found


def running(*argv: str) -> set[int]:
    """Every process on the machine whose command line is exactly `argv`, whoever its parent:
    what a child started and left behind has been handed to init."""
    wanted = b"".join(word.encode() + b"\0" for word in argv)
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "cmdline").read_bytes() == wanted:
                    found.add(int(entry.name))
    return found


@contextlib.contextmanager
def leftovers_killed(*argv: str) -> Any:
    """Kill whatever a test left running under `argv`, after the test has looked for it."""
    try:
        yield
    finally:
        for pid in running(*argv):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def executable(folder: Path, name: str, script: str) -> Path:
    path = folder / name
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@contextlib.asynccontextmanager
async def open_plumber(nursery: trio.Nursery, **settings: Any) -> AsyncIterator[Plumber]:
    """A plumber with the given settings and a seeded rng; closed after the block, and then
    no child process may be left."""
    plumber = Plumber(nursery, rng=random.Random(7), **settings)
    try:
        yield plumber
    finally:
        await plumber.aclose()
    assert children() == set()


def messages(chunk: Chunk) -> list[bytes]:
    if chunk.one_message:
        return [chunk.data]
    return [line + b"\n" for line in chunk.data.split(b"\n")[:-1]]


async def receive_messages(reader: Reader, count: int, *, seconds: float = 5) -> list[bytes]:
    got: list[bytes] = []
    with trio.fail_after(seconds):
        while len(got) < count:
            got += messages(await reader.receive())
    return got


async def collect(plumber: Plumber, name: str, into: list[bytes], *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """A reader task that keeps every message it receives, until EOF."""
    async with plumber.open_reader(name) as reader:
        task_status.started()
        async for chunk in reader:
            into += messages(chunk)


async def settled(condition: Callable[[], bool], *, seconds: float = 5) -> None:
    """Wait for what runs apart (programs, other tasks) to make `condition` true."""
    with trio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 - programs run apart, there is no event
            await trio.sleep(0.01)
