"""Pipelines (`plumb a "sed -u s/x/y/" b`): stages, and the production that runs them.

A production is one task with its own cancel scope. Setting it up registers
every pipe endpoint and spawns every program before `plumb` returns; then one
task per connection moves data from a stage to the next.

Ending: `clear plumb`, `clear pipe` of a source, shutdown, a failed write to a
program, a line too long, or a source pipe dropping the stage's reader for not
taking (a program that does not read) cancel the production at once, as miniplumber's
`defer pl.cancel()` does. A program whose stdout reaches EOF (it exited) ends
it too, but only after what it wrote has gone all the way down (spec §16.5):
the end travels downstream like EOF in a Unix pipeline (a pipe stage passes on
what it already holds, a program stage gets EOF on its stdin and finishes),
and the production is cancelled when it reaches the last stage. On the way out
every child is stopped and reaped and every endpoint unregistered, so the pipes
remain with their reader/writer counts back to 0.
"""

from __future__ import annotations

import functools
import itertools
import logging
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from typing import Protocol

import trio

from minishell.gostr import quote, trim_space
from minishell.plumber.endpoints import Reader, Writer
from minishell.plumber.errors import PlumberError
from minishell.plumber.fields import fields_quote_escape
from minishell.plumber.programs import ProgramFinder, stop_processes

logger = logging.getLogger("minishell.plumber")

READ_SIZE = 64 * 1024
TOKEN_MAX = 1024 * 1024  # miniplumber's bufio.Scanner limit for a program's output line


@dataclass(frozen=True, slots=True)
class PipeStage:
    name: str  # full name, namespaced


@dataclass(frozen=True, slots=True)
class ProgramStage:
    name: str  # the stage as written
    argv: tuple[str, ...]
    path: str


Stage = PipeStage | ProgramStage
Source = Reader | trio.abc.ReceiveStream
Sink = Writer | trio.abc.SendStream


class Endpoints(Protocol):
    def open_reader(self, name: str, *, forwards_to: str | None = None,
                    on_drop: Callable[[], None] | None = None,
                    ) -> AbstractAsyncContextManager[Reader]: ...

    def open_writer(self, name: str) -> AbstractAsyncContextManager[Writer]: ...


class LineTooLong(Exception):
    pass


def resolve_stages(stages: Sequence[str], namespace: str, programs: ProgramFinder,
                   ) -> tuple[Stage, ...]:
    """minimega's stage classification: a first word found on PATH is a program, else a pipe.

    A stage with no words (empty, blank, or only an unterminated quote) is refused;
    2.9 crashes on it (spec §16.1).
    """
    resolved: list[Stage] = []
    for stage in stages:
        argv = fields_quote_escape(stage)
        if not argv:
            raise PlumberError(f"invalid pipeline stage: {quote(stage)}")
        path = programs.lookup(argv[0])
        if path is not None:
            resolved.append(ProgramStage(stage, tuple(argv), path))
        else:
            resolved.append(PipeStage(stage if "//" in stage else f"{namespace}//{stage}"))
    return tuple(resolved)


def feeds_itself(stages: Sequence[Stage]) -> bool:
    """True when the pipeline would carry its own output back into one of its pipes.

    The rule: a pipe appearing twice in one pipeline (`plumb loop loop`,
    `plumb a b a`, `plumb a "sed -u s/x/y/" a`). Its earlier occurrence reads
    and its later one writes, so every message would circle forever (2.9 spins
    at 0.8M messages/s until `clear plumb`, spec §9.7, §16.13). A loop made of
    two pipelines (`plumb a b` then `plumb b a`) is NOT refused: the conformance
    transcript plumb_duplicate pins that 2.9 accepts exactly that pair.
    """
    names = [stage.name for stage in stages if isinstance(stage, PipeStage)]
    return len(set(names)) != len(names)


async def pump_lines(stdout: trio.abc.ReceiveStream,
                     sink: Callable[[bytes], Awaitable[None]]) -> None:
    """Pass a program's stdout on as blocks of complete lines, as bufio.Scanner would split it.

    A line ending in CR-LF loses its CR and an unterminated last line gets its
    newline (Go's ScanLines); a line of TOKEN_MAX bytes or more raises LineTooLong.
    """
    partial = b""
    while data := bytes(await stdout.receive_some(READ_SIZE)):
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            partial += data
        else:
            block = partial + data[:cut] if partial else data[:cut]
            partial = data[cut:]
            if len(block) > TOKEN_MAX and max(map(len, block.split(b"\n"))) >= TOKEN_MAX:
                raise LineTooLong
            if b"\r" in block:
                block = block.replace(b"\r\n", b"\n")
            await sink(block)
        if len(partial) >= TOKEN_MAX:
            raise LineTooLong
    if partial:
        await sink(partial.removesuffix(b"\r") + b"\n")


async def log_stderr(stderr: trio.abc.ReceiveStream, program: str) -> None:
    """A program's stderr goes to the DEBUG log, as miniplumber does."""
    partial = b""
    while data := await stderr.receive_some(READ_SIZE):
        *lines, partial = (partial + data).split(b"\n")
        if len(partial) >= TOKEN_MAX:  # endless text without a newline: log it in pieces
            lines.append(partial)
            partial = b""
        for line in lines:
            if text := trim_space(line.decode("utf-8", "replace")):
                logger.debug("plumber: %s: %s", program, text)
    if text := trim_space(partial.decode("utf-8", "replace")):
        logger.debug("plumber: %s: %s", program, text)


class Production:
    """One running pipeline."""

    def __init__(self, name: str, stages: tuple[Stage, ...], *, endpoints: Endpoints,
                 programs: ProgramFinder, on_exit: Callable[[Production], None]) -> None:
        if len(stages) < 2:
            raise ValueError("a pipeline has at least two stages")
        self.name = name
        self.stages = stages
        self.reads = frozenset(stage.name for stage in stages[:-1]
                               if isinstance(stage, PipeStage))
        self.done = trio.Event()
        self._scope = trio.CancelScope()
        self._endpoints = endpoints
        self._programs = programs
        self._on_exit = on_exit
        self._ends: list[tuple[Sink | None, Source | None]] = []
        self._finishing = False  # an end is travelling down (see _finish)

    def cancel(self) -> None:
        self._scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
                  ) -> None:
        """Set up, report started (plumb returns), run until cancelled, clean up."""
        started = False
        try:
            with self._scope:
                async with AsyncExitStack() as stack:
                    processes: list[trio.Process] = []
                    stack.push_async_callback(stop_processes, processes)
                    try:
                        await self._open_stages(stack, processes)
                    except (OSError, ValueError) as error:  # ValueError: a NUL in an argument
                        logger.error("pipeline %s: %s", self.name, error)
                    else:
                        async with trio.open_nursery() as nursery:
                            self._start_tasks(nursery, processes)
                            task_status.started()
                            started = True
            if not started:
                # A failed spawn, or clear plumb during set-up: plumb() still returns.
                task_status.started()
        finally:
            self._on_exit(self)
            self.done.set()

    async def _open_stages(self, stack: AsyncExitStack, processes: list[trio.Process]) -> None:
        """Each stage's (input, output): a pipe's writer/reader, a program's stdin/stdout."""
        last = len(self.stages) - 1
        for index, stage in enumerate(self.stages):
            if isinstance(stage, PipeStage):
                sink = None if index == 0 else await stack.enter_async_context(
                    self._endpoints.open_writer(stage.name))
                source = None if index == last else await stack.enter_async_context(
                    self._endpoints.open_reader(
                        stage.name, forwards_to=self._next_pipe(index),
                        on_drop=functools.partial(self._reader_dropped, stage.name)))
                self._ends.append((sink, source))
            else:
                process = await trio.lowlevel.open_process(
                    list(stage.argv), executable=stage.path,
                    stdin=subprocess.DEVNULL if index == 0 else subprocess.PIPE,
                    stdout=subprocess.DEVNULL if index == last else subprocess.PIPE,
                    stderr=subprocess.PIPE, start_new_session=True,
                    env=self._programs.child_env())
                processes.append(process)
                self._ends.append((process.stdin, process.stdout))

    def _reader_dropped(self, pipe: str) -> None:
        """The pipe dropped our reader (a stage that stopped taking): as when the pipe is
        deleted, the pipeline ends."""
        logger.error("pipeline %s: its reader of %s was dropped", self.name, pipe)
        self.cancel()

    def _next_pipe(self, index: int) -> str | None:
        """The pipe stage `index` passes its messages straight on to, if it is one."""
        following = self.stages[index + 1]
        return following.name if isinstance(following, PipeStage) else None

    def _start_tasks(self, nursery: trio.Nursery, processes: list[trio.Process]) -> None:
        for index, ((_, source), (sink, _)) in enumerate(itertools.pairwise(self._ends)):
            assert source is not None and sink is not None
            nursery.start_soon(self._connect, index, source, sink)
        programs = [stage for stage in self.stages if isinstance(stage, ProgramStage)]
        for program, process in zip(programs, processes, strict=True):
            assert process.stderr is not None
            nursery.start_soon(log_stderr, process.stderr, program.path)
        if isinstance(self.stages[-1], ProgramStage):
            # Nothing reads a last program's output, so its exit is what ends the pipeline.
            nursery.start_soon(self._cancel_on_exit, processes[-1])

    async def _connect(self, index: int, source: Source, sink: Sink) -> None:
        """Move data from stage `index` to the next one until the source ends."""
        try:
            if isinstance(source, Reader):
                if isinstance(sink, Writer):
                    async for chunk in source:
                        await sink.send(chunk)
                else:
                    async for chunk in source:
                        if chunk.data:
                            await sink.send_all(chunk.data)
            else:
                await pump_lines(source, sink.write_lines if isinstance(sink, Writer)
                                 else sink.send_all)
        except trio.BrokenResourceError as error:
            if not self._finishing:
                logger.error("pipeline %s: writing to a program: %s", self.name,
                             error.__cause__ or error)
                self.cancel()
            # Else the end travelling down will end the pipeline; cutting it short would lose data.
        except LineTooLong:
            logger.error("pipeline %s: bufio.Scanner: token too long", self.name)
            self.cancel()
        else:
            await self._finish(index + 1)

    async def _finish(self, index: int) -> None:
        """The input of stage `index` has ended: let it pass on what it holds, then end."""
        self._finishing = True
        sink, source = self._ends[index]
        if isinstance(self.stages[index], ProgramStage):
            assert isinstance(sink, trio.abc.SendStream)
            await sink.aclose()  # EOF on its stdin: it finishes its work and exits
        elif isinstance(source, Reader):
            source.close()  # what the pipe already holds goes on, then EOF
        else:
            self.cancel()  # the last stage: everything has arrived

    async def _cancel_on_exit(self, process: trio.Process) -> None:
        await process.wait()
        self.cancel()
