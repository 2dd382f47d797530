"""A named pipe: its state, and routing messages to its readers' outboxes.

Routing is plain synchronous code on whole blocks: mode `all` puts the same
block in every outbox; round-robin and random split it per line over the
readers that have room. The count and `previous` come from the block
(`bytes.count`, one slice). Nothing is decided before an await and acted on
after it.

What cannot be routed at once waits in the pipe's queue, in the order
written: messages going through a via (their runs overlap, bounded by a run
window and the plumber's limiter), whatever is written behind them, and CLI
writes that found no room. One task, the conveyor, delivers the queue's head
and lives only while the queue is not empty. The queue is bounded: endpoint
writers wait for space in it, CLI writes past their own bounds are refused.

A reader whose outbox stays full, taking nothing, for the stall timeout is
dropped (its reader sees EOF after what it holds): one stopped reader must not
stop a pipe for ever. Mode `all` otherwise waits for every reader (lossless
backpressure); round-robin and random pass over the full ones.
"""

from __future__ import annotations

import bisect
import functools
import logging
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import trio

from minishell.gostr import trim_space
from minishell.plumber.errors import PlumberError
from minishell.plumber.outbox import Chunk, Outbox, RoomSignal
from minishell.plumber.programs import KillSwitch
from minishell.plumber.via import Vias

logger = logging.getLogger("minishell.plumber")

MODES = ("all", "round-robin", "random")
# What endpoint writers may leave in a pipe's queue before they wait: a few
# chunks, or one big one.
QUEUE_ENTRIES = 64
QUEUE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class PipeInfo:
    """One row of the `pipe` listing, and what the listing does not show."""

    name: str
    mode: str
    readers: int
    writers: int
    count: int
    via: tuple[str, ...]
    previous: str
    dropped_readers: int = 0  # readers dropped for taking nothing while full


@dataclass(slots=True)
class Plumbing:
    """What the pipes of one plumber share: its nursery, vias, settings and counters."""

    nursery: trio.Nursery
    vias: Vias
    rng: random.Random
    stalled_reader_timeout: float
    cli_write_backlog: int
    cli_write_backlog_bytes: int
    run_window: int  # via runs a pipe may have under way or finished but not delivered
    dropped_readers: int = 0


def display(message: bytes) -> str:
    """A message as minimega shows it: Go-TrimSpace'd text."""
    return trim_space(message.decode("utf-8", "replace"))


def _one_message(message: bytes) -> tuple[bytes, bool]:
    """A message as routed: with its newline, and whether inner newlines make it
    a one-message chunk rather than a block of lines."""
    if not message.endswith(b"\n"):
        message += b"\n"
    return message, message.count(b"\n") > 1


def split_messages(block: bytes) -> list[bytes]:
    """The messages of a block of lines, each keeping its newline."""
    return [line + b"\n" for line in block.split(b"\n")[:-1]]


@functools.cache
def _byte_picking(readers: int) -> tuple[int, bytes, bytes]:
    """For uniform picks among `readers` from random bytes: how many byte values are
    kept, the others (to delete), and the translation of each value to value % readers."""
    keep = 256 - 256 % readers
    return keep, bytes(range(keep, 256)), bytes(value % readers for value in range(256))


@dataclass(eq=False, slots=True)
class _Queued:
    """Something in the pipe's queue."""

    seq: int  # when it was written, among all the pipe's messages: `previous` follows it
    size: int
    done: trio.Event | None = None  # for a CLI write: set once delivered or dropped
    again: bool = False  # given back (give_back): counted and logged when first written


@dataclass(eq=False, slots=True)
class _Block(_Queued):
    """Messages without a via, waiting behind the ones before them."""

    data: bytes = b""
    one_message: bool = False


@dataclass(eq=False, slots=True)
class _ViaMessage(_Queued):
    """One message and the via it was written with; `targets` are mode all's readers
    (each gets its own run), None for round-robin and random (one run, its reader
    chosen at delivery among those with room)."""

    message: bytes = b""
    argv: tuple[str, ...] = ()
    targets: list[Outbox] | None = None
    outputs: list[bytes | None] = field(default_factory=list)
    pending: int = 0  # runs not finished
    finished: trio.Event = field(default_factory=trio.Event)
    kill_switch: KillSwitch = field(default_factory=KillSwitch)


class Pipe:
    def __init__(self, name: str, plumbing: Plumbing) -> None:
        self.name = name
        self.mode = "all"
        self.via: tuple[str, ...] = ()
        self.log = False
        self.writers = 0  # endpoints; CLI writes in flight are counted apart
        self.count = 0
        self.dropped_readers = 0
        self._previous = b""
        self._previous_seq = 0
        self._seq = 0
        self._readers: dict[int, Outbox] = {}  # ascending ids: registration order
        # Readers that relay to elsewhere (not listed, not delivered to), and the one
        # that, while attached, takes every write (the pipe is scheduled elsewhere).
        self._hidden: set[int] = set()
        self._upstream: Outbox | None = None
        self._upstream_id = 0
        self.listed = False  # shown by `pipe`: something of this node's own uses it
        self._last_recipient = 0
        self._closed = False
        self._plumbing = plumbing
        self._room = RoomSignal()
        self._queue: deque[_Queued] = deque()
        self._queue_bytes = 0
        self._queue_space = RoomSignal()
        self._not_started: deque[_ViaMessage] = deque()
        self._runs_held = 0
        self._via_epoch = 0  # moves when the via is cleared: what was written through it dies
        self._cli_writes = 0
        self._cli_bytes = 0
        self._conveyor: trio.CancelScope | None = None
        self._conveying = False
        self._tasks = 0  # the conveyor and via runs alive
        self._idle: trio.Event | None = None

    @property
    def cli_writes(self) -> int:
        """CLI writes queued, not yet delivered nor dropped."""
        return self._cli_writes

    def info(self) -> PipeInfo:
        return PipeInfo(self.name, self.mode, len(self._readers) - len(self._hidden),
                        self.writers + self._cli_writes, self.count, self.via,
                        display(self._previous), self.dropped_readers)

    def attach(self, reader_id: int, outbox: Outbox, *, hidden: bool = False,
               upstream: bool = False) -> None:
        if self._closed:
            outbox.close()
            return
        outbox.room_signal = self._room
        if upstream:
            if self._upstream is not None:
                self._upstream.close()
            self._upstream, self._upstream_id = outbox, reader_id
            return
        self._readers[reader_id] = outbox
        if hidden:
            self._hidden.add(reader_id)
        else:
            self.listed = True

    def detach(self, reader_id: int) -> None:
        if reader_id == self._upstream_id and self._upstream is not None:
            self._upstream.close()
            self._upstream, self._upstream_id = None, 0
            return
        self._hidden.discard(reader_id)
        outbox = self._readers.pop(reader_id, None)
        if outbox is not None:
            outbox.close()

    def reader_ids(self) -> list[int]:
        """The ids of the readers that are delivered to (not hidden), in order."""
        return [reader_id for reader_id in self._readers if reader_id not in self._hidden]

    async def deliver(self, chunk: Chunk, reader_id: int | None, *, count: bool) -> bool:
        """Messages scheduled elsewhere, to this pipe's own readers: all of them, or the
        one `reader_id`; never to hidden readers nor upstream. False if that one is gone."""
        while (delivered := self.deliver_now(chunk, reader_id, count=count)) is None:
            await self._wait_for_room(every=True, targets=self._deliver_targets(reader_id))
        return delivered

    def deliver_now(self, chunk: Chunk, reader_id: int | None, *, count: bool) -> bool | None:
        """`deliver` if it need not wait: None (and nothing done) if a reader is full."""
        self.listed = True
        targets = self._deliver_targets(reader_id)
        if reader_id is not None and not targets:
            return False
        if any(outbox.full for outbox in targets):
            return None
        for outbox in targets:
            outbox.put(chunk)
        if count:
            lines = 1 if chunk.one_message else chunk.data.count(b"\n")
            self.count += lines
            last = chunk.data if chunk.one_message else chunk.data[
                chunk.data.rfind(b"\n", 0, len(chunk.data) - 1) + 1:]
            self._set_previous(last, self._next_seq())
        return True

    def _deliver_targets(self, reader_id: int | None) -> list[Outbox]:
        if reader_id is None:
            return [outbox for rid, outbox in self._readers.items() if rid not in self._hidden]
        one = self._readers.get(reader_id)
        return [] if one is None or reader_id in self._hidden else [one]

    def close(self, reason: str) -> None:
        """The pipe is deleted or the plumber closes: its vias are killed, what waits in
        its queue is dropped (logged with a count of CLI writes), every reader gets EOF.
        `wait_idle` then waits for the killed vias to be reaped."""
        self._closed = True
        cli_writes = self._cli_writes
        self._kill_vias()
        if self._conveyor is not None:
            self._conveyor.cancel()
        while self._queue:
            self._finish(self._queue.popleft())
        for outbox in self._readers.values():
            outbox.close()
        self._readers.clear()
        self._hidden.clear()
        if self._upstream is not None:
            self._upstream.close()
            self._upstream = None
        if cli_writes:
            logger.warning("pipe %s %s: %d writes waiting for its readers dropped",
                           self.name, reason, cli_writes)

    async def wait_idle(self) -> None:
        """Return once no task of this pipe (conveyor, via run) is left."""
        while self._tasks:
            if self._idle is None:
                self._idle = trio.Event()
            await self._idle.wait()

    def set_via(self, argv: tuple[str, ...]) -> None:
        """Clearing the via kills its runs and drops what was written through it:
        nothing goes out without the via it was written with."""
        self.via = argv
        if not argv:
            killed = self._kill_vias()
            if killed:
                logger.warning("pipe %s: via cleared: %d messages dropped", self.name, killed)

    def downstream(self) -> list[str]:
        """The pipes that pipe-to-pipe stages reading this pipe pass messages to."""
        return [outbox.forwards_to for outbox in self._readers.values()
                if outbox.forwards_to is not None]

    async def settle(self) -> None:
        """Wait until every pipe-to-pipe stage reading this pipe has passed on all it
        was given so far."""
        marks = [(outbox, outbox.mark()) for outbox in self._readers.values()
                 if outbox.forwards_to is not None]
        for outbox, mark in marks:
            await outbox.wait_settled(mark)

    # -- writing -------------------------------------------------------------------

    async def accept_message(self, message: bytes) -> None:
        """One message, whatever newlines it holds; a newline is added unless it ends in one."""
        await self.accept(*_one_message(message))

    def takes_at_once(self) -> bool:
        """True when a message can be routed without waiting: no via, nothing queued, room."""
        if self._upstream is not None:
            return not self._queue and not self._upstream.full
        return not self.via and not self._queue and self._has_room()

    def route_message(self, message: bytes) -> None:
        """accept_message for when takes_at_once(): no await at all."""
        data, one_message = _one_message(message)
        self._route(data, one_message, self._next_seq())

    def write_cli(self, message: bytes) -> trio.Event | None:
        """Queue a CLI write that takes_at_once() refused; the event is set once it is
        delivered or dropped (None: nothing to wait for). It counts as a writer until then.

        Raises PlumberError when the pipe already holds its limit of CLI writes.
        """
        if self._closed:  # the plumber has closed: nowhere to go
            return None
        plumbing = self._plumbing
        if self._cli_writes >= plumbing.cli_write_backlog:
            raise PlumberError(
                f"pipe {self.name}: {self._cli_writes} writes already waiting for its readers")
        data, one_message = _one_message(message)
        if self._cli_writes and self._cli_bytes + len(data) > plumbing.cli_write_backlog_bytes:
            raise PlumberError(f"pipe {self.name}: {self._cli_bytes} bytes of writes already "
                               "waiting for its readers")
        queued: _Queued | None
        if self.via and self._upstream is None:
            queued = self._accept_via(data, self.via)
            if queued is None:
                return None
        else:
            queued = _Block(self._next_seq(), len(data), data=data, one_message=one_message)
            self._enqueue(queued)
        queued.done = trio.Event()
        self._cli_writes += 1
        self._cli_bytes += queued.size
        return queued.done

    async def accept(self, data: bytes, one_message: bool) -> None:
        """Take a block of lines (or one message) from an endpoint writer; return once it
        is routed, or queued behind what waits (with a via: queued for it).

        It yields to other tasks only when it has to wait (a full outbox or
        queue): writers reach it from a loop that already yields per chunk (a
        socket read, a stage's receive), and a schedule point per write would
        cost a third of a message's time.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        # After a wait, look again: the upstream may have gone (its messages given back
        # to the queue, which this block must now follow), or this node may schedule
        # the pipe itself now, via included.
        while not self._queue and (self._upstream is not None or not self.via):
            if self._has_room():
                self._route(data, one_message, self._next_seq())
                return
            await self._wait_for_room(every=self.mode == "all", targets=self._room_targets())
        # The via in force when the block came applies to all of it; with an upstream
        # the pipe is scheduled (via included) where that leads.
        via = self.via if self._upstream is None else ()
        if not via:
            await self._wait_for_queue_space()
            if not self._closed:
                self._enqueue(_Block(self._next_seq(), len(data), data=data,
                                     one_message=one_message))
            return
        epoch = self._via_epoch
        messages = [data] if one_message else split_messages(data)
        for index, message in enumerate(messages):
            await self._wait_for_queue_space()
            if self._closed:
                return
            if self._via_epoch != epoch:
                logger.warning("pipe %s: via cleared: %d messages dropped", self.name,
                               len(messages) - index)
                return
            self._accept_via(message, via)

    # -- routing -------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _set_previous(self, message: bytes, seq: int) -> None:
        if seq > self._previous_seq:  # a slow via must not bring back an older message
            self._previous, self._previous_seq = message, seq

    def _room_targets(self) -> list[Outbox]:
        """What _wait_for_room waits on for _has_room: the upstream, else the readers."""
        return [] if self._upstream is None else [self._upstream]

    def _has_room(self) -> bool:
        """Room as the mode needs it: in every outbox for `all`, in one for the others."""
        if self._upstream is not None:
            return not self._upstream.full
        readers = self._readers.values()
        if self.mode == "all" or not readers:
            return not any(outbox.full for outbox in readers)
        return not all(outbox.full for outbox in readers)

    def _route(self, data: bytes, one_message: bool, seq: int, *, again: bool = False) -> None:
        """Deliver now: the caller saw to the room. `again`: given back, so counted (and
        logged) already."""
        if one_message:
            count, last = 1, data
        else:
            count = data.count(b"\n")
            last = data[data.rfind(b"\n", 0, len(data) - 1) + 1:]
        if self.log and not again:
            self._log_messages([data] if one_message else split_messages(data))
        readers = self._readers
        if self._upstream is not None:
            self._upstream.put(Chunk(data, one_message))
        elif self.mode == "all" or not readers:
            chunk = Chunk(data, one_message)
            for outbox in readers.values():
                outbox.put(chunk)
        else:
            ids, outboxes = self._readers_with_room()
            if count == 1 or len(ids) == 1:
                self._choose(ids, outboxes).put(Chunk(data, one_message))
            else:
                self._spread(ids, outboxes, data.split(b"\n")[:-1])
        if not again:
            self.count += count
            self._set_previous(last, seq)

    def _readers_with_room(self) -> tuple[list[int], list[Outbox]]:
        """The readers round-robin and random choose from (the caller saw to it that
        there is one); full ones that have taken nothing for the stall timeout are
        dropped on the way."""
        readers = self._readers
        if not any(outbox.full for outbox in readers.values()):
            return list(readers), list(readers.values())
        self._drop_stalled()
        with_room = [(reader_id, outbox) for reader_id, outbox in readers.items()
                     if not outbox.full]
        return [reader_id for reader_id, _ in with_room], [outbox for _, outbox in with_room]

    def _choose(self, ids: list[int], outboxes: list[Outbox]) -> Outbox:
        """The one recipient in round-robin or random mode, among `ids` (not empty)."""
        if self.mode == "random":
            return self._plumbing.rng.choice(outboxes)
        position = bisect.bisect_right(ids, self._last_recipient) % len(ids)
        self._last_recipient = ids[position]
        return outboxes[position]

    def _spread(self, ids: list[int], outboxes: list[Outbox], lines: list[bytes]) -> None:
        """Round-robin or random over a block: one joined share per reader."""
        shares: list[list[bytes]]
        if self.mode == "round-robin":
            start = bisect.bisect_right(ids, self._last_recipient) % len(ids)
            shares = [lines[(position - start) % len(ids)::len(ids)]
                      for position in range(len(ids))]
            self._last_recipient = ids[(start + len(lines) - 1) % len(ids)]
        else:
            shares = [[] for _ in ids]
            appends = [share.append for share in shares]
            for line, pick in zip(lines, self._picks(len(lines), len(ids)), strict=True):
                appends[pick](line)
        for outbox, share in zip(outboxes, shares, strict=True):
            if share:
                outbox.put(Chunk(b"\n".join(share) + b"\n"))

    def _picks(self, count: int, readers: int) -> Sequence[int]:
        """`count` independent uniform choices in range(readers).

        Random bytes, those past the largest multiple of `readers` dropped (so
        that `% readers` favours no one), cost a few ns each against 150 for
        Random.choices; more than 256 readers fall back to the latter.
        """
        rng = self._plumbing.rng
        if readers > 256:
            return rng.choices(range(readers), k=count)
        keep, dropped, modulo = _byte_picking(readers)
        picks = b""
        while len(picks) < count:
            wanted = count - len(picks)
            picks += rng.randbytes(wanted * 256 // keep + 16).translate(None, dropped)
        return picks[:count].translate(modulo)

    async def _wait_for_room(self, *, every: bool, targets: Sequence[Outbox] = ()) -> None:
        """Return once there is room: in every one of `targets` (or of the readers), or,
        `every` False, in one reader. A reader full for the stall timeout is dropped."""
        timeout = self._plumbing.stalled_reader_timeout
        while True:
            outboxes = targets or list(self._readers.values())
            full = [outbox for outbox in outboxes if outbox.full]
            if not full or (not every and len(full) < len(outboxes)):
                return
            if self._drop_stalled():
                continue
            now = trio.current_time()
            first_full = min(now if outbox.full_since is None else outbox.full_since
                             for outbox in full)
            with trio.move_on_at(first_full + timeout):
                await self._room.wait()

    def _drop_stalled(self) -> bool:
        """Drop the readers full for the stall timeout; True if there were any."""
        timeout = self._plumbing.stalled_reader_timeout
        now = trio.current_time()
        stalled = [(reader_id, outbox) for reader_id, outbox in self._readers.items()
                   if outbox.full_since is not None and outbox.full
                   and now - outbox.full_since >= timeout]
        for reader_id, outbox in stalled:
            del self._readers[reader_id]
            outbox.dropped = True
            outbox.close()
            self.dropped_readers += 1
            self._plumbing.dropped_readers += 1
            logger.warning("pipe %s: dropped a reader that took nothing for %gs with its "
                           "queue full", self.name, timeout)
            if outbox.on_drop is not None:
                outbox.on_drop()
        return bool(stalled)

    def _log_messages(self, messages: list[bytes]) -> None:
        for message in messages:
            logger.debug("pipe %s: %s", self.name, display(message))

    # -- the queue -----------------------------------------------------------------

    def _accept_via(self, message: bytes, argv: tuple[str, ...]) -> _ViaMessage | None:
        """minimega's counters with a via (spec §9.4), but every reader is tried.

        Everyone-mode (or no readers): `previous` moves now; the message counts
        once every reader's via has succeeded, and the readers whose via
        succeeded get their output (2.9 stops at the first failure). With no
        readers no via runs and it counts now. One-reader modes: a failure
        changes nothing. Returns what was queued, if anything.
        """
        seq = self._next_seq()
        if self.log:
            self._log_messages([message])
        targets: list[Outbox] | None = None
        if self.mode == "all" or not self._readers:
            self._set_previous(message, seq)
            targets = list(self._readers.values())
            if not targets:
                self.count += 1
                return None
        queued = _ViaMessage(seq, len(message), message=message, argv=argv, targets=targets)
        self._enqueue(queued)
        return queued

    def _enqueue(self, queued: _Queued) -> None:
        self._queue.append(queued)
        self._queue_bytes += queued.size
        if isinstance(queued, _ViaMessage):
            self._not_started.append(queued)
            self._start_runs()
        self._convey_soon()

    def give_back(self, chunks: Sequence[Chunk]) -> None:
        """Messages the pipe's upstream took and never passed on (it led to a node that
        died or no longer schedules the pipe): routed again, ahead of everything written
        since, as the pipe is scheduled now (a new upstream, or here, via included).
        They were counted and logged when first written. The queue may overshoot its
        bound by them: one upstream's outbox and the chunk its stream had in hand."""
        if self._closed or not chunks:
            return
        given: list[_Queued]
        if self.via and self._upstream is None:
            targets = list(self._readers.values()) if self.mode == "all" else None
            if targets == []:
                return  # mode all without readers: nothing to run the via for
            vias = [_ViaMessage(0, len(message), again=True, message=message,
                                argv=self.via, targets=targets)
                    for chunk in chunks for message in
                    ([chunk.data] if chunk.one_message else split_messages(chunk.data))]
            self._not_started.extendleft(reversed(vias))
            given = list(vias)
        else:
            given = [_Block(0, len(chunk.data), again=True, data=chunk.data,
                            one_message=chunk.one_message) for chunk in chunks]
        self._queue.extendleft(reversed(given))
        self._queue_bytes += sum(queued.size for queued in given)
        self._start_runs()
        self._convey_soon()

    def _convey_soon(self) -> None:
        if not self._conveying:
            self._conveying = True
            self._tasks += 1
            self._plumbing.nursery.start_soon(self._convey)

    async def _wait_for_queue_space(self) -> None:
        while not self._closed and (len(self._queue) >= QUEUE_ENTRIES
                                    or self._queue_bytes >= QUEUE_BYTES):
            await self._queue_space.wait()

    def _start_runs(self) -> None:
        """Start the via runs of queued messages, as far as the run window allows."""
        plumbing = self._plumbing
        while self._not_started:
            queued = self._not_started[0]
            runs = 1 if queued.targets is None else len(queued.targets)
            # The queue's head always starts: messages given back ahead of others whose
            # runs hold the window must not wait for those to be delivered.
            if (self._runs_held and self._runs_held + runs > plumbing.run_window
                    and not self._is_head(queued)):
                return
            self._not_started.popleft()
            self._runs_held += runs
            queued.pending = runs
            queued.outputs = [None] * runs
            for index in range(runs):
                self._tasks += 1
                plumbing.nursery.start_soon(self._run_via, queued, index)

    async def _run_via(self, queued: _ViaMessage, index: int) -> None:
        try:
            queued.outputs[index] = await self._plumbing.vias.run(
                self.name, queued.argv, queued.message, queued.kill_switch)
        finally:
            queued.pending -= 1
            if queued.pending == 0:
                queued.finished.set()
            self._task_done()

    def _kill_vias(self) -> int:
        """Kill the runs of the queued via messages not through their via yet, which are
        then dropped; how many. Those through it already go on to their readers."""
        self._via_epoch += 1
        killed = 0
        for queued in self._queue:
            if isinstance(queued, _ViaMessage) and not queued.finished.is_set():
                queued.kill_switch.kill()
                queued.finished.set()
                killed += 1
        self._not_started.clear()
        return killed

    async def _convey(self) -> None:
        """Deliver the queue's head, in order, until the queue is empty."""
        try:
            with trio.CancelScope() as self._conveyor:
                while self._queue:
                    head = self._queue[0]
                    await self._deliver(head)
                    if self._queue and self._queue[0] is head:
                        self._finish(self._queue.popleft())
        finally:
            self._conveyor = None
            self._conveying = False
            self._task_done()

    async def _deliver(self, queued: _Queued) -> None:
        """Deliver the queue's head; if, while it waited, something was given back ahead of
        it (give_back), return without: the conveyor delivers that first."""
        if isinstance(queued, _Block):
            while not self._has_room():
                await self._wait_for_room(every=self.mode == "all",
                                          targets=self._room_targets())
                if not self._is_head(queued):
                    return
            self._route(queued.data, queued.one_message, queued.seq, again=queued.again)
            return
        assert isinstance(queued, _ViaMessage)
        await queued.finished.wait()
        if queued.kill_switch.killed or not self._is_head(queued):
            return
        if queued.targets is None:
            await self._deliver_to_one(queued)
            return
        deliveries = [(outbox, output) for outbox, output
                      in zip(queued.targets, queued.outputs, strict=True) if output is not None]
        if deliveries:
            await self._wait_for_room(every=True, targets=[outbox for outbox, _ in deliveries])
            if not self._is_head(queued):
                return
            for outbox, output in deliveries:
                outbox.put(_via_chunk(output))
        if len(deliveries) == len(queued.targets) and not queued.again:
            self.count += 1

    async def _deliver_to_one(self, queued: _ViaMessage) -> None:
        output = queued.outputs[0]
        if output is None:
            return
        await self._wait_for_room(every=False)
        if not self._is_head(queued):
            return
        ids, outboxes = self._readers_with_room()
        if ids:
            self._choose(ids, outboxes).put(_via_chunk(output))
        if not queued.again:
            self._set_previous(queued.message, queued.seq)
            self.count += 1

    def _is_head(self, queued: _Queued) -> bool:
        return bool(self._queue) and self._queue[0] is queued

    def _finish(self, queued: _Queued) -> None:
        """`queued` has left the queue, delivered or dropped."""
        self._queue_bytes -= queued.size
        if isinstance(queued, _ViaMessage) and queued.outputs:
            self._runs_held -= len(queued.outputs)
        if queued.done is not None:
            self._cli_writes -= 1
            self._cli_bytes -= queued.size
            queued.done.set()
        self._queue_space.notify()
        if not self._closed:
            self._start_runs()

    def _task_done(self) -> None:
        self._tasks -= 1
        if not self._tasks and self._idle is not None:
            self._idle.set()
            self._idle = None


def _via_chunk(output: bytes) -> Chunk:
    """A via's output as one message: with a newline added unless it ends in one, as
    minimega's next stage would make it, so that a raw reader never sees two glued."""
    return Chunk(output if output.endswith(b"\n") else output + b"\n", one_message=True)
