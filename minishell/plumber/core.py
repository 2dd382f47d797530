"""The Plumber: named pipes and pipelines, as the session and the socket server see them.

Names are full names (`ns//name`): the caller namespaces what the user typed;
only `plumb` namespaces its own pipe stages. Every background task (the
pipelines) lives in the nursery the Plumber is given; the state below is
touched only from trio tasks, between awaits, so it needs no lock.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Protocol

import trio

from minishell.plumber.endpoints import Reader, Writer
from minishell.plumber.errors import PlumberError
from minishell.plumber.outbox import Chunk, Outbox
from minishell.plumber.pipe import MODES, Pipe, PipeInfo, Plumbing
from minishell.plumber.pipeline import Production, feeds_itself, resolve_stages
from minishell.plumber.programs import GRACE_SECONDS, ProgramFinder
from minishell.plumber.via import VIA_CONCURRENCY, VIA_DEADLINE, Vias

# How long a CLI write waits for its delivery before the command returns anyway.
CLI_WRITE_PATIENCE = 1.0
# CLI writes a pipe may hold for its readers before `pipe p data` is refused.
CLI_WRITE_BACKLOG = 1000
CLI_WRITE_BACKLOG_BYTES = 16 * 1024 * 1024
# How long a reader may take nothing with its queue full before it is dropped.
STALLED_READER_TIMEOUT = 10.0


def _byte_order(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


class Plumber:
    """Every pipe and pipeline of one daemon.

    The time limits are parameters so that tests can make them short:
    `via_deadline` (a via still running then is killed and fails),
    `stalled_reader_timeout` (a reader taking nothing that long with its
    queue full is dropped), `cli_write_patience` (how long `write` waits for
    its delivery), `program_grace` (between SIGTERM and SIGKILL when vias are
    stopped). `cli_write_backlog` and `cli_write_backlog_bytes` bound the CLI
    writes one pipe holds for its readers; `via_concurrency` the via programs
    running at once, over all pipes.
    """

    def __init__(self, nursery: trio.Nursery, *, helper_dir: str | None = None,
                 rng: random.Random | None = None, via_deadline: float = VIA_DEADLINE,
                 stalled_reader_timeout: float = STALLED_READER_TIMEOUT,
                 cli_write_backlog: int = CLI_WRITE_BACKLOG,
                 cli_write_backlog_bytes: int = CLI_WRITE_BACKLOG_BYTES,
                 cli_write_patience: float = CLI_WRITE_PATIENCE,
                 program_grace: float = GRACE_SECONDS,
                 via_concurrency: int = VIA_CONCURRENCY) -> None:
        self._nursery = nursery
        self._programs = ProgramFinder(helper_dir)
        self._plumbing = Plumbing(
            nursery, Vias(self._programs, deadline=via_deadline, grace=program_grace,
                          concurrency=via_concurrency),
            rng if rng is not None else random.Random(),
            stalled_reader_timeout=stalled_reader_timeout,
            cli_write_backlog=cli_write_backlog,
            cli_write_backlog_bytes=cli_write_backlog_bytes,
            run_window=2 * via_concurrency)
        self._cli_write_patience = cli_write_patience
        self._reader_ids = itertools.count(1)  # monotonic: round-robin follows registration
        self._pipes: dict[str, Pipe] = {}
        self._productions: dict[str, Production] = {}
        self._watchers: list[PipeWatcher] = []

    @property
    def programs(self) -> ProgramFinder:
        """How plumb stages, vias and the session's programs are found and started."""
        return self._programs

    # -- listing ---------------------------------------------------------------

    def pipes(self) -> list[PipeInfo]:
        """Every pipe of every namespace, sorted by name (byte order); not those only
        hidden endpoints use (relays of pipes scheduled here for readers elsewhere)."""
        return [self._pipes[name].info() for name in sorted(self._pipes, key=_byte_order)
                if self._pipes[name].listed]

    def pipelines(self) -> list[str]:
        return sorted(self._productions, key=_byte_order)

    def names(self) -> tuple[str, ...]:
        """Pipe names, unsorted, for completion."""
        return tuple(self._pipes)

    # -- pipes -------------------------------------------------------------------

    async def write(self, name: str, data: str) -> None:
        """One message from the CLI (`pipe foo data`), in order with the pipe's other writes.

        The command waits for the delivery — through a via, past a full outbox,
        on through the pipe-to-pipe stages downstream — so that a listing right
        after it is settled (2.9's writes are asynchronous, spec §16.4). But never
        longer than the CLI write patience, and not at all behind an earlier CLI
        write still in flight: a via that runs long or a reader that never reads
        must not hang the prompt, where 2.9's CLI never waits. What is not
        delivered by then is delivered in the background, counting as a writer
        until it is. Raises PlumberError when the pipe already holds its limit
        of such writes. Readers that are programs or clients are not waited
        for: what they do with a message is their affair.
        """
        pipe = self._pipe(name)
        pipe.listed = True
        message = data.encode("utf-8", "surrogateescape")
        if pipe.takes_at_once():
            pipe.route_message(message)  # the common case: no task, no await
            await trio.lowlevel.checkpoint_if_cancelled()
        else:
            delivered = pipe.write_cli(message)
            if delivered is not None:
                if pipe.cli_writes == 1:  # no earlier CLI write in flight
                    with trio.move_on_after(self._cli_write_patience):
                        await delivered.wait()
                if not delivered.is_set():
                    return
        if pipe.downstream():
            with trio.move_on_after(self._cli_write_patience):
                await self._settle_downstream(name)

    def set_mode(self, name: str, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown pipe mode: {mode}")
        pipe = self._pipe(name)
        pipe.mode = mode
        self._settings_changed(pipe)

    def set_log(self, name: str, enabled: bool) -> None:
        pipe = self._pipe(name)
        pipe.log = enabled
        self._settings_changed(pipe)

    def set_via(self, name: str, argv: tuple[str, ...]) -> None:
        """`pipe <p> via ...`; `()` (`clear pipe <p> via`) also kills the pipe's running
        vias and drops the messages written through them."""
        pipe = self._pipe(name)
        pipe.set_via(argv)
        self._settings_changed(pipe)

    # -- watching (a mesh keeps other nodes' pipes in step) ----------------------------------

    def watch(self, watcher: PipeWatcher) -> None:
        """Tell `watcher` (synchronously) of pipes made and deleted, of their settings
        changed by a command, and of their own readers coming and going."""
        self._watchers.append(watcher)

    def settings(self, name: str) -> tuple[str, tuple[str, ...], bool] | None:
        """A pipe's (mode, via, log), None if there is no such pipe."""
        pipe = self._pipes.get(name)
        return None if pipe is None else (pipe.mode, pipe.via, pipe.log)

    def apply_settings(self, name: str, mode: str, via: tuple[str, ...], log: bool) -> None:
        """Settings decided elsewhere, for a pipe that exists: no watcher hears of it."""
        pipe = self._pipes.get(name)
        if pipe is None:
            return
        pipe.mode = mode if mode in MODES else "all"
        pipe.log = log
        if pipe.via != via:
            pipe.set_via(via)

    def reader_ids(self, name: str) -> list[int]:
        """The ids of a pipe's own readers (not hidden ones), in attaching order."""
        pipe = self._pipes.get(name)
        return [] if pipe is None else pipe.reader_ids()

    def attach_reader(self, name: str, *, hidden: bool = False, upstream: bool = False,
                      on_drop: Callable[[], None] | None = None) -> Reader:
        """A reader registered at once, without a block: close() it to unregister.

        `hidden`: not listed, and not given what `deliver` brings (a relay to readers
        elsewhere). `upstream`: while attached, it alone takes every write to the
        pipe, whatever its mode and via (the pipe is scheduled where it leads).
        """
        pipe = self._pipe(name)
        outbox = Outbox(on_drop=on_drop)
        reader_id = next(self._reader_ids)
        pipe.attach(reader_id, outbox, hidden=hidden or upstream, upstream=upstream)
        if not (hidden or upstream):
            self._readers_changed(pipe)
        return Reader(name, outbox, functools.partial(self._detach, pipe, reader_id,
                                                      not (hidden or upstream)))

    async def deliver(self, name: str, chunk: Chunk, reader_id: int | None = None, *,
                      count: bool = True) -> bool:
        """Messages scheduled elsewhere, for this pipe's own readers (all, or one by id):
        waits for room; False if that reader is gone."""
        return await self._pipe(name).deliver(chunk, reader_id, count=count)

    def deliver_now(self, name: str, chunk: Chunk, reader_id: int | None = None, *,
                    count: bool = True) -> bool | None:
        """`deliver` if it need not wait for room; None (nothing done) if it must."""
        return self._pipe(name).deliver_now(chunk, reader_id, count=count)

    def give_back(self, name: str, chunks: Sequence[Chunk]) -> None:
        """Messages an upstream reader of pipe `name` took and could not pass on: routed
        again, ahead of what was written since (Pipe.give_back)."""
        pipe = self._pipes.get(name)
        if pipe is not None:
            pipe.give_back(chunks)

    def _detach(self, pipe: Pipe, reader_id: int, own: bool) -> None:
        pipe.detach(reader_id)
        if own:
            self._readers_changed(pipe)

    def _readers_changed(self, pipe: Pipe) -> None:
        if self._pipes.get(pipe.name) is pipe:
            for watcher in self._watchers:
                watcher.readers_changed(pipe.name)

    def _settings_changed(self, pipe: Pipe) -> None:
        pipe.listed = True
        for watcher in self._watchers:
            watcher.settings_changed(pipe.name)

    @property
    def dropped_readers(self) -> int:
        """Readers dropped for taking nothing with their queue full, over all pipes ever."""
        return self._plumbing.dropped_readers

    async def delete_pipe(self, name: str) -> None:
        """`clear pipe <p>`: EOF to its readers; returns once the pipelines reading it and
        its vias are gone.

        Only endpoints (pipeline stages, socket attachments) count as writers
        here, as in minimega: CLI writes waiting for a via or for room are
        dropped with the pipe (logged with a count), so that a pipe wedged by
        its own vias can be deleted.
        """
        pipe = self._pipes.get(name)
        if pipe is None:
            raise PlumberError(f"no such pipe: {name}")
        if pipe.writers:
            raise PlumberError("cannot delete named pipe with open writers")
        del self._pipes[name]
        pipe.close("deleted")
        for watcher in self._watchers:
            watcher.pipe_deleted(name)
        await self._stop([production for production in self._productions.values()
                          if name in production.reads])
        await pipe.wait_idle()

    async def delete_all_pipes(self) -> None:
        """Bare `clear pipe`: delete every pipe that can be deleted, then report the first refusal.

        Pipes are visited in sorted order, and again as long as a pass deleted
        something: deleting a pipeline's source tears the pipeline down, which
        may free a pipe visited earlier (`plumb b a`: `a` has a writer until `b`
        goes). 2.9 visits in Go map order and stops at the first refusal (§16.2).
        """
        while True:
            first_error: PlumberError | None = None
            deleted = False
            for name in sorted(self._pipes, key=_byte_order):
                if name not in self._pipes:  # deleted meanwhile by someone else
                    continue
                try:
                    await self.delete_pipe(name)
                except PlumberError as error:
                    first_error = first_error or error
                else:
                    deleted = True
            if first_error is None:
                return
            if not deleted:
                raise first_error

    # -- pipelines ---------------------------------------------------------------

    async def plumb(self, stages: tuple[str, ...], namespace: str) -> None:
        """Start a pipeline; returns once its endpoints are registered and its programs spawned."""
        resolved = resolve_stages(stages, namespace, self._programs)
        name = " ".join(stage.name for stage in resolved)
        if name in self._productions:
            raise PlumberError(f"pipeline already exists: [{name}]")
        if feeds_itself(resolved):
            raise PlumberError(f"pipeline would feed itself: [{name}]")
        production = Production(name, resolved, endpoints=self, programs=self._programs,
                                on_exit=self._forget)
        self._productions[name] = production
        await self._nursery.start(production.run)

    async def clear_plumb(self, words: tuple[str, ...]) -> None:
        """Cancel one pipeline by its exact name (words joined by spaces), or all; wait for it."""
        if not words:
            await self._stop(list(self._productions.values()))
            return
        production = self._productions.get(" ".join(words))
        if production is None:
            raise PlumberError(f"no such pipeline: [{' '.join(words)}]")
        await self._stop([production])

    async def aclose(self) -> None:
        """Shutdown: every pipeline and via cancelled and its children reaped, every reader
        at EOF."""
        await self._stop(list(self._productions.values()))
        for pipe in self._pipes.values():
            pipe.close("closed")
        for pipe in self._pipes.values():
            await pipe.wait_idle()

    # -- endpoints -----------------------------------------------------------------

    def open_reader(self, name: str, *, forwards_to: str | None = None,
                    on_drop: Callable[[], None] | None = None,
                    ) -> AbstractAsyncContextManager[Reader]:
        """Register a reader of pipe `name` (created if missing) for the block's duration.

        `forwards_to`: the pipe this reader passes what it takes straight on to
        (a pipe-to-pipe pipeline stage), which CLI writes wait for (see write).
        `on_drop`: called (from the writer's task, so it must not block) if the
        pipe drops the reader for taking nothing with its queue full; the reader
        sees EOF when it next receives, and `Reader.dropped` is then True. An
        endpoint that may sit elsewhere (in a send to a program or a client that
        does not read) learns it at once this way.
        """
        return _ReaderBlock(self._pipe, self._reader_ids, name, forwards_to, on_drop,
                            self._readers_changed)

    def open_writer(self, name: str, *, hidden: bool = False,
                    ) -> AbstractAsyncContextManager[Writer]:
        """Register a writer of pipe `name` (created if missing) for the block's duration;
        a `hidden` one is not counted (writes forwarded from elsewhere)."""
        return _WriterBlock(self._pipe, name, hidden)

    # -- internals -----------------------------------------------------------------

    def _pipe(self, name: str) -> Pipe:
        pipe = self._pipes.get(name)
        if pipe is None:
            pipe = self._pipes[name] = Pipe(name, self._plumbing)
            for watcher in self._watchers:
                watcher.pipe_created(name)
        return pipe

    async def _settle_downstream(self, name: str) -> None:
        """Follow pipe-to-pipe stages from `name` until what was written has gone through.

        Pipes are settled upstream first (a topological order of the stage graph,
        so a pipe fed by two paths is settled after both); each pipe once, so
        pipelines that form a cycle (2.9 accepts them, see `feeds_itself`) cannot
        make a write wait forever.
        """
        for pipe_name in self._downstream_order(name):
            pipe = self._pipes.get(pipe_name)
            if pipe is not None:
                await pipe.settle()

    def _downstream_order(self, name: str) -> list[str]:
        """`name` and the pipes stages carry its messages to, upstream first."""
        postorder: list[str] = []
        seen = {name}
        stack = [(name, iter(self._downstream(name)))]
        while stack:
            current, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                postorder.append(current)
            elif child not in seen:
                seen.add(child)
                stack.append((child, iter(self._downstream(child))))
        return postorder[::-1]

    def _downstream(self, name: str) -> list[str]:
        pipe = self._pipes.get(name)
        return pipe.downstream() if pipe is not None else []

    def _forget(self, production: Production) -> None:
        if self._productions.get(production.name) is production:
            del self._productions[production.name]

    @staticmethod
    async def _stop(productions: list[Production]) -> None:
        for production in productions:
            production.cancel()
        for production in productions:
            await production.done.wait()


class PipeWatcher(Protocol):
    """What a watcher of the plumber hears (Plumber.watch), synchronously."""

    def pipe_created(self, name: str) -> None: ...

    def pipe_deleted(self, name: str) -> None: ...

    def settings_changed(self, name: str) -> None: ...

    def readers_changed(self, name: str) -> None: ...


@asynccontextmanager
async def open_plumber(**options: Any) -> AsyncIterator[Plumber]:
    """A plumber (given Plumber's keyword options) whose pipelines live in a
    nursery of its own.

    Its block ends with every pipeline cancelled and its children reaped, and
    every reader at EOF, whatever ends it (the closing is shielded from the
    cancellation that may be the reason).
    """
    async with trio.open_nursery() as nursery:
        plumber = Plumber(nursery, **options)
        try:
            yield plumber
        finally:
            with trio.CancelScope(shield=True):
                await plumber.aclose()
            nursery.cancel_scope.cancel()


# The blocks of open_reader/open_writer are small classes rather than
# @asynccontextmanager generators: a thousand idle `-pipe` attachments hold one
# of each, and a suspended generator frame costs several times more.


class _ReaderBlock:
    __slots__ = ("_changed", "_forwards_to", "_get_pipe", "_name", "_on_drop", "_pipe",
                 "_reader_id", "_reader_ids")

    def __init__(self, get_pipe: Callable[[str], Pipe], reader_ids: Iterator[int], name: str,
                 forwards_to: str | None, on_drop: Callable[[], None] | None,
                 changed: Callable[[Pipe], None]) -> None:
        self._changed = changed
        self._get_pipe = get_pipe
        self._reader_ids = reader_ids
        self._name = name
        self._forwards_to = forwards_to
        self._on_drop = on_drop
        self._pipe: Pipe | None = None
        self._reader_id = 0

    async def __aenter__(self) -> Reader:
        pipe = self._pipe = self._get_pipe(self._name)
        outbox = Outbox(forwards_to=self._forwards_to, on_drop=self._on_drop)
        self._reader_id = next(self._reader_ids)
        pipe.attach(self._reader_id, outbox)
        self._changed(pipe)
        return Reader(self._name, outbox, self._detach)

    def _detach(self) -> None:
        assert self._pipe is not None
        self._pipe.detach(self._reader_id)
        self._changed(self._pipe)

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, traceback: TracebackType | None) -> None:
        self._detach()


class _WriterBlock:
    __slots__ = ("_get_pipe", "_hidden", "_name", "_pipe")

    def __init__(self, get_pipe: Callable[[str], Pipe], name: str, hidden: bool) -> None:
        self._get_pipe = get_pipe
        self._name = name
        self._hidden = hidden
        self._pipe: Pipe | None = None

    async def __aenter__(self) -> Writer:
        pipe = self._pipe = self._get_pipe(self._name)
        if not self._hidden:
            pipe.writers += 1
            pipe.listed = True
        return Writer(self._name, pipe)

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, traceback: TracebackType | None) -> None:
        assert self._pipe is not None
        if not self._hidden:
            self._pipe.writers -= 1
