"""Pipes across nodes: a pipe named on several nodes is one pipe.

Each node's plumber holds its own pipes, readers and writers; the mesh adds
endpoints to them (the plumber knows them only as hidden readers):

- mode `all` without a via: every node that has the pipe holds a *relay*
  per other node with readers of it. The relay takes what this node's writers
  write and streams it there, where it is delivered to that node's own
  readers (`Plumber.deliver`). The writer's local readers never wait for a
  remote node's scheduling, and per-writer order holds.
- round-robin, random, or a via: one node, the pipe's *owner*, schedules it
  (owner.py: rendezvous hashing over the live nodes, so every node agrees
  without an election, and a new owner takes over as soon as the old one is
  declared dead). Other nodes that have the pipe hold an *upstream* that takes
  every write and streams it to the owner, which writes it into its own pipe;
  there a *proxy* per remote reader takes part in the rotation (and gets its
  own via run) like a local reader, and streams what it gets to that reader,
  by its id, on its node. Exactly one reader of all nodes' readers gets each
  message, rotating over all of them.

Who reads what: every node announces its own readers of each pipe (ids, with
a sequence number; a gap, or a heartbeat showing a newer sequence, asks for a
snapshot). A remote reader is counted only once its node has heard the
announcement and added its endpoints: `mesh send` answers after that.

Streams: every relay, upstream and proxy is a stream to one node, in chunks
of up to 256 KiB of whole lines, under credits the receiver grants as it
delivers (core NATS silently drops what a slow subscriber cannot take).
While a stream is idle, a chunk goes straight from the writer's task to the
bridge, and on the other node straight from the bridge's dispatch to the
readers, as long as nothing has to wait (credits, room): a lone message wakes
no task on either side. A stream to a node that dies is dropped, and every
line it held for that node is counted (`mesh status`'s dropped column) and
logged: in flight (sent, not yet credited), in hand (waiting for credits), and
queued in its reader. But an upstream's lines were for whoever owns the pipe: when
it is dropped (the owner died, or another node owns the pipe now), only those in
flight are lost; what it had not sent is given back to its pipe (Plumber.give_back),
which schedules it anew, ahead of later writes: through the new upstream, or here.
The new owner, hearing from a node that took the old one for dead first (the old
one is silent here too), waits for its own view to agree before it schedules what
comes, rather than send it on to the old owner, to be lost there too.

Pipe settings (mode, via, log) are mesh-wide: a command on any node sets them
everywhere, the latest one winning (a Lamport clock, ties by node name).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import trio
import trio.lowlevel

from minishell.mesh.node import DEAD_AFTER, HEARTBEAT, Header, Node
from minishell.mesh.owner import owner_of
from minishell.plumber import Plumber
from minishell.plumber.endpoints import Reader
from minishell.plumber.outbox import Chunk

logger = logging.getLogger("minishell.mesh")

# A NATS message of pipe data: whole lines, this much at most. Per message, each node
# pays a wake-up or two and some copies: 256 KiB streamed 15% faster than 64 KiB.
PIECE = 256 * 1024
# Bytes a stream may have in flight before credits come back: 2 MiB streamed as well
# as 4 or 8 MiB, 1 MiB 10% slower (the credit's round trip through both loops and
# both servers, under load, is milliseconds). The bridge's incoming bound (256 MiB)
# is thus 128 streams into one node that takes nothing.
WINDOW = 2 * 1024 * 1024
CREDIT_EVERY = WINDOW // 4
# What a stream's receiver has delivered and not yet granted is granted once the stream
# has been quiet this long (seconds), or at CREDIT_EVERY: at low rates the credit then
# travels after the message's readers have it, not while they wait for their turn on
# the CPU (its sender has the rest of its window meanwhile).
GRANT_DELAY = 0.002
SETTLE_TIMEOUT = 5.0


@dataclass(eq=False, slots=True)
class _Stream:
    """What this node sends through one endpoint: to `node`, for `pipe`."""

    sid: int
    pipe: str
    kind: str  # "fan" (relay, mode all), "up" (to the owner), "proxy" (to one reader)
    node: str
    reader_id: int | None
    reader: Reader
    incarnation: str | None  # the node's, when the stream began
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    seq: int = 0
    inflight: deque[tuple[int, int, int]] = field(default_factory=deque)  # seq, bytes, lines
    inflight_bytes: int = 0
    # The chunk in hand: its pieces not yet sent (waiting for credits), with their lines.
    hand: deque[tuple[bytes, int]] = field(default_factory=deque)
    hand_one_message: bool = False
    credit: trio.Event = field(default_factory=trio.Event)

    @property
    def key(self) -> tuple[str, str, str, int | None]:
        return (self.pipe, self.kind, self.node, self.reader_id)

    def take_back(self) -> list[Chunk]:
        """Stop taking; what the stream holds and has not sent, in order: what is left of
        the chunk in hand, then what is queued in its reader."""
        left = [Chunk(b"".join(piece for piece, _ in self.hand), self.hand_one_message)
                ] if self.hand else []
        self.hand.clear()
        return left + self.reader.withdraw()


@dataclass(eq=False, slots=True)
class _Incoming:
    """What one node sends this one through one stream."""

    sender: str
    incarnation: str
    sid: int
    queue: deque[tuple[Header, bytes]] = field(default_factory=deque)
    arrived: trio.Event = field(default_factory=trio.Event)
    consumed: int = 0
    granted: int = 0
    idle: trio.CancelScope | None = None  # its task waits in it for more, with nothing left
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)


class MeshPipes:
    """Keeps this node's pipes connected to the other nodes' (see the module's doc)."""

    def __init__(self, node: Node, plumber: Plumber) -> None:
        self.node = node
        self.plumber = plumber
        self.interest: dict[str, dict[str, list[int]]] = {}  # node -> pipe -> reader ids
        self.interest_seq: dict[str, tuple[str, int]] = {}  # node -> (incarnation, seq)
        self.config: dict[str, tuple[str, tuple[str, ...], bool, int, str]] = {}
        self.clock = 0
        self._seq = 0  # our own announcements
        self._acked: dict[str, int] = {}  # node -> our seq it has applied
        self._acks = trio.Event()
        self._dirty: set[str] = set()
        self._dirty_event = trio.Event()
        self._announced = trio.Event()
        self._streams: dict[tuple[str, str, str, int | None], _Stream] = {}
        self._by_sid: dict[int, _Stream] = {}
        self._next_sid = 1
        self._incoming: dict[tuple[str, str, int], _Incoming] = {}
        self._nursery: trio.Nursery | None = None
        self._asked: set[str] = set()  # nodes asked for a snapshot, not answered yet
        self._members = trio.Event()  # set (and replaced) when the live nodes change

    # -- the task --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[MeshPipes] = trio.TASK_STATUS_IGNORED,
                  ) -> None:
        node = self.node
        for kind, handler in (("int", self._on_interest), ("ia", self._on_interest_ack),
                              ("snapreq", self._on_snapshot_request), ("snap", self._on_snapshot),
                              ("cfg", self._on_config), ("d", self._on_data),
                              ("e", self._on_end), ("c", self._on_credit)):
            node.on(kind, handler)
        node.on_membership(self._membership)
        node.settle_hooks.append(self.settled)
        node.heartbeat_extras.append(self._heartbeat)
        node.heartbeat_hooks.append(self._heard)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.plumber.watch(self)
            nursery.start_soon(self._announcer)
            for name in self.plumber.names():
                self._mark(name)
            task_status.started(self)
            self._request_snapshots(self.node.live())
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    # -- the plumber's news (PipeWatcher) --------------------------------------------------------

    def pipe_created(self, name: str) -> None:
        settings = self.config.get(name)
        if settings is not None:
            self.plumber.apply_settings(name, settings[0], settings[1], settings[2])
        self._reconcile([name])

    def pipe_deleted(self, name: str) -> None:
        for stream in [s for s in self._streams.values() if s.pipe == name]:
            self._drop(stream, lost=False)
        self._mark(name)

    def settings_changed(self, name: str) -> None:
        found = self.plumber.settings(name)
        if found is None:
            return
        mode, via, log = found
        self.clock += 1
        self.config[name] = (mode, via, log, self.clock, self.node.name)
        header = self.node.header("cfg")
        header.update(p=name, m=mode, v=list(via), l=log, t=self.clock)
        self.node.broadcast(header)
        self._reconcile([name])

    def readers_changed(self, name: str) -> None:
        self._mark(name)

    # -- announcing our readers -----------------------------------------------------------------

    def _mark(self, name: str) -> None:
        self._dirty.add(name)
        self._dirty_event.set()

    async def _announcer(self) -> None:
        """Announce changed reader sets, a batch at a time."""
        while True:
            await self._dirty_event.wait()
            self._dirty_event = trio.Event()
            dirty, self._dirty = self._dirty, set()
            for name in sorted(dirty):
                self._seq += 1
                header = self.node.header("int")
                header.update(q=self._seq, p=name, r=self.plumber.reader_ids(name))
                self.node.broadcast(header)
            self._announced.set()
            self._announced = trio.Event()
            await trio.lowlevel.checkpoint()

    async def settled(self) -> None:
        """Return once every live node has applied our announcements (or died), at most
        SETTLE_TIMEOUT: what `mesh send` waits for before it answers."""
        with trio.move_on_after(SETTLE_TIMEOUT):
            while self._dirty:
                await self._announced.wait()
            target = self._seq
            while True:
                behind = [name for name in self.node.live() if name != self.node.name
                          and self._acked.get(name, 0) < target]
                if not behind:
                    return
                await self._acks.wait()

    def _heartbeat(self, header: Header) -> None:
        header["iq"] = self._seq

    def _heard(self, header: Header) -> None:
        """A heartbeat: if it shows announcements we have not had, ask for a snapshot."""
        known = self.interest_seq.get(header["n"])
        behind = known is None or known[0] != header["i"] or header.get("iq", 0) > known[1]
        if behind and header["n"] not in self._asked:
            self._asked.add(header["n"])
            self._request_snapshots([header["n"]])

    def _on_interest(self, header: Header, body: bytes) -> None:
        sender, incarnation, seq = header["n"], header["i"], header["q"]
        known = self.interest_seq.get(sender)
        if known is not None and known[0] == incarnation and seq <= known[1]:
            self._ack(sender, seq)
            return
        if known is None or known[0] != incarnation or seq != known[1] + 1:
            self._request_snapshots([sender])
            return
        self.interest_seq[sender] = (incarnation, seq)
        self._set_interest(sender, header["p"], header["r"])
        self._reconcile([header["p"]])
        self._ack(sender, seq)

    def _set_interest(self, sender: str, pipe: str, readers: list[int]) -> None:
        pipes = self.interest.setdefault(sender, {})
        if readers:
            pipes[pipe] = list(readers)
        else:
            pipes.pop(pipe, None)

    def _ack(self, sender: str, seq: int) -> None:
        header = self.node.header("ia")
        header["q"] = seq
        self.node.send(sender, header)

    def _on_interest_ack(self, header: Header, body: bytes) -> None:
        if header.get("ti") not in (None, self.node.incarnation):
            return
        name = header["n"]
        self._acked[name] = max(self._acked.get(name, 0), header["q"])
        self._acks.set()
        self._acks = trio.Event()

    def _request_snapshots(self, names: Iterable[str]) -> None:
        for name in names:
            if name != self.node.name:
                self.node.send(name, self.node.header("snapreq"))

    def _on_snapshot_request(self, header: Header, body: bytes) -> None:
        answer = self.node.header("snap")
        answer["q"] = self._seq
        answer["int"] = {name: ids for name in self.plumber.names()
                         if (ids := self.plumber.reader_ids(name))}
        answer["cfg"] = {name: [mode, list(via), log, clock, by]
                         for name, (mode, via, log, clock, by) in self.config.items()}
        self.node.send(header["n"], answer)

    def _on_snapshot(self, header: Header, body: bytes) -> None:
        sender, incarnation = header["n"], header["i"]
        self._asked.discard(sender)
        self.interest_seq[sender] = (incarnation, header["q"])
        old = self.interest.get(sender, {})
        self.interest[sender] = {name: list(ids) for name, ids in header["int"].items()}
        changed = set(old) | set(self.interest[sender])
        for name, (mode, via, log, clock, by) in header["cfg"].items():
            if self._newer(name, clock, by):
                self._take_config(name, mode, tuple(via), log, clock, by)
                changed.add(name)
        self._reconcile(changed)
        self._ack(sender, header["q"])

    # -- settings ----------------------------------------------------------------------------

    def _newer(self, name: str, clock: int, by: str) -> bool:
        current = self.config.get(name)
        return current is None or (clock, by) > (current[3], current[4])

    def _take_config(self, name: str, mode: str, via: tuple[str, ...], log: bool,
                     clock: int, by: str) -> None:
        self.clock = max(self.clock, clock)
        self.config[name] = (mode, via, log, clock, by)
        self.plumber.apply_settings(name, mode, via, log)

    def _on_config(self, header: Header, body: bytes) -> None:
        name, clock, by = header["p"], header["t"], header["n"]
        if self._newer(name, clock, by):
            self._take_config(name, header["m"], tuple(header["v"]), header["l"], clock, by)
            self._reconcile([name])

    # -- membership ---------------------------------------------------------------------------

    def _membership(self) -> None:
        live = set(self.node.live())
        fresh = [name for name in live if name != self.node.name
                 and self.interest_seq.get(name, ("", 0))[0] != self.node.incarnation_of(name)]
        for key, incoming in list(self._incoming.items()):
            if not self.node.alive(incoming.sender, incoming.incarnation):
                incoming.scope.cancel()
                del self._incoming[key]
        self._asked &= live
        self._request_snapshots(fresh)
        self._reconcile(self.plumber.names())
        self._acks.set()  # a node gone is one less to wait for
        self._acks = trio.Event()
        self._members.set()
        self._members = trio.Event()

    # -- endpoints ------------------------------------------------------------------------------

    def _wanted(self, name: str) -> set[tuple[str, str, str, int | None]]:
        """The endpoints pipe `name` should have on this node now."""
        me = self.node.name
        live = self.node.live()
        settings = self.plumber.settings(name)
        if settings is None:
            return set()
        mode, via, _ = settings
        remote = {node: ids for node in live if node != me
                  and (ids := self.interest.get(node, {}).get(name))}
        if mode == "all" and not via:
            return {(name, "fan", node, None) for node in remote}
        owner = owner_of(name, live)
        if owner != me:
            return {(name, "up", owner, None)}
        return {(name, "proxy", node, reader_id) for node, ids in remote.items()
                for reader_id in ids}

    def _reconcile(self, names: Iterable[str]) -> None:
        if self._nursery is None:
            return
        for name in set(names):
            wanted = self._wanted(name)
            have = {key for key in self._streams if key[0] == name}
            unsent: list[Chunk] = []
            for key in have - wanted:
                unsent += self._drop(self._streams[key], lost=True)
            for key in sorted(wanted - have, key=str):
                self._add(*key)
            # Once the new endpoints are in place: to the new owner, or into our rotation.
            self.plumber.give_back(name, unsent)

    def _add(self, pipe: str, kind: str, node: str, reader_id: int | None) -> None:
        assert self._nursery is not None
        sid = self._next_sid
        self._next_sid += 1
        reader = self.plumber.attach_reader(pipe, hidden=kind != "up", upstream=kind == "up")
        stream = _Stream(sid, pipe, kind, node, reader_id, reader, self.node.incarnation_of(node))
        self._streams[stream.key] = stream
        self._by_sid[sid] = stream
        reader.take_directly(lambda chunk: self._send_now(stream, chunk))
        self._nursery.start_soon(self._pump, stream)

    def _drop(self, stream: _Stream, *, lost: bool) -> list[Chunk]:
        """Stop a stream now; what it had in flight is counted as lost if `lost`. What an
        upstream had not sent yet is returned (unless the pipe is going), for its pipe
        to schedule anew (Plumber.give_back): it was not meant for the owner, and goes
        to the next one."""
        if self._streams.get(stream.key) is stream:
            del self._streams[stream.key]
        self._by_sid.pop(stream.sid, None)
        stream.scope.cancel()
        unsent = stream.take_back() if stream.kind == "up" and lost else []
        if unsent:
            logger.info("mesh: %d messages of %s not sent to %s go to its next owner",
                        sum(_lines(chunk) for chunk in unsent), stream.pipe, stream.node)
        if lost and not self.node.alive(stream.node):
            # Every line meant for a node that died is lost, and counted: those sent and
            # not yet credited, and (but for an upstream's) those of the chunk in hand
            # and those queued for the stream.
            inflight = sum(entry[2] for entry in stream.inflight)
            queued = sum(lines for _, lines in stream.hand) + stream.reader.abandon()
            if inflight + queued:
                self.node.dropped += inflight + queued
                logger.warning("mesh: %d messages of %s for %s are lost (%s is gone): %d in "
                               "flight, %d queued", inflight + queued, stream.pipe,
                               stream.node, stream.node, inflight, queued)
        else:
            stream.reader.close()
        stream.inflight.clear()
        stream.hand.clear()
        return unsent

    async def _pump(self, stream: _Stream) -> None:
        """Send what the endpoint takes, in pieces, under credits."""
        node = self.node
        with stream.scope:
            async for chunk in stream.reader:
                stream.hand.extend(_pieces(chunk))
                stream.hand_one_message = chunk.one_message
                while stream.hand:
                    piece, lines = stream.hand[0]
                    while stream.inflight and stream.inflight_bytes + len(piece) > WINDOW:
                        await stream.credit.wait()
                    while not self._send_piece(stream, piece, lines, chunk.one_message):
                        await node.bridge.room()
                    stream.hand.popleft()
            if stream.reader.dropped:
                logger.warning("mesh: %s's stream to %s was dropped: it took nothing for "
                               "too long", stream.pipe, stream.node)
            end = node.header("e")
            end["s"] = stream.sid
            node.send(stream.node, end)
        if self._streams.get(stream.key) is stream:  # ended by itself (pipe deleted, dropped)
            del self._streams[stream.key]
            self._by_sid.pop(stream.sid, None)
            self._reconcile([stream.pipe])

    def _send_now(self, stream: _Stream, chunk: Chunk) -> bool:
        """A chunk from a writer's task while the stream's task waits for more: sent now
        if nothing has to wait (it is one piece: take_directly's chunks are small)."""
        if (len(chunk.data) > PIECE or stream.scope.cancel_called
                or (stream.inflight and stream.inflight_bytes + len(chunk.data) > WINDOW)):
            return False
        lines = 1 if chunk.one_message else chunk.data.count(b"\n")
        return self._send_piece(stream, chunk.data, lines, chunk.one_message)

    def _send_piece(self, stream: _Stream, piece: bytes, lines: int, one_message: bool) -> bool:
        """Send one piece if the bridge has room for it (True), else nothing (False)."""
        header: dict[str, Any] = {"k": "d", "s": stream.sid, "q": stream.seq + 1,
                                  "p": stream.pipe, "w": stream.kind}
        if stream.incarnation is not None:
            header["ti"] = stream.incarnation
        if one_message:
            header["m"] = 1
        if stream.reader_id is not None:
            header["r"] = stream.reader_id
        if not self.node.send_data_now(stream.node, header, piece):
            return False
        stream.seq += 1
        stream.inflight.append((stream.seq, len(piece), lines))
        stream.inflight_bytes += len(piece)
        return True

    def _on_credit(self, header: Header, body: bytes) -> None:
        stream = self._by_sid.get(header["s"])
        if stream is None or stream.node != header["n"]:
            return
        upto = header["q"]
        while stream.inflight and stream.inflight[0][0] <= upto:
            _, size, _ = stream.inflight.popleft()
            stream.inflight_bytes -= size
            if not stream.inflight:
                logger.debug("mesh: %s's stream to %s: all it sent is credited", stream.pipe,
                             stream.node)
        stream.credit.set()
        stream.credit = trio.Event()

    # -- receiving ------------------------------------------------------------------------------

    def _on_data(self, header: Header, body: bytes) -> None:
        key = (header["n"], header["i"], header["s"])
        incoming = self._incoming.get(key)
        if incoming is None:
            if not self.node.alive(header["n"], header["i"]) or self._nursery is None:
                return
            incoming = self._incoming[key] = _Incoming(*key)
            self._nursery.start_soon(self._deliver, incoming)
        elif (incoming.idle is not None and not incoming.queue
              and self._deliver_now(incoming, header, body)):
            return
        incoming.queue.append((header, body))
        incoming.arrived.set()

    def _deliver_now(self, incoming: _Incoming, header: Header, body: bytes) -> bool:
        """Deliver a piece at once if nothing has to wait (True); the stream's task is idle."""
        kind, pipe = header["w"], header["p"]
        if kind == "up":
            return False  # a write into the owner's pipe: its task's job
        chunk = Chunk(body, bool(header.get("m")))
        delivered = self.plumber.deliver_now(pipe, chunk, header.get("r"))
        if delivered is None:
            return False
        if not delivered:
            self.node.dropped += _lines(chunk)
        incoming.consumed = header["q"]
        self._grant(incoming, force=False, size=len(body))
        self._grant_soon(incoming)
        return True

    def _on_end(self, header: Header, body: bytes) -> None:
        incoming = self._incoming.get((header["n"], header["i"], header["s"]))
        if incoming is not None:
            incoming.queue.append((header, b""))
            incoming.arrived.set()

    async def _deliver(self, incoming: _Incoming) -> None:
        plumber = self.plumber
        with incoming.scope:
            while True:
                while not incoming.queue:
                    idle = incoming.idle = trio.CancelScope()
                    self._grant_soon(incoming)
                    try:
                        with idle:
                            await incoming.arrived.wait()
                    finally:
                        incoming.idle = None
                    if incoming.arrived.is_set():
                        incoming.arrived = trio.Event()
                    if idle.cancelled_caught:  # quiet for GRANT_DELAY
                        self._grant(incoming, force=True)
                header, body = incoming.queue.popleft()
                if header["k"] == "e":
                    break
                chunk = Chunk(body, bool(header.get("m")))
                kind, pipe = header["w"], header["p"]
                if kind == "up":
                    if self._silent_owner(pipe):
                        await self._until_owner(pipe)
                    async with plumber.open_writer(pipe, hidden=True) as writer:
                        await writer.send(chunk)
                elif kind == "proxy":
                    if not await plumber.deliver(pipe, chunk, header["r"]):
                        self.node.dropped += _lines(chunk)
                else:
                    await plumber.deliver(pipe, chunk)
                incoming.consumed = header["q"]
                self._grant(incoming, force=False, size=len(body))
        self._incoming.pop((incoming.sender, incoming.incarnation, incoming.sid), None)

    async def _until_owner(self, pipe: str) -> None:
        """Writes for the owner of `pipe` came, and this node sees another owner still,
        one that has missed heartbeats: the sender has most likely taken it for dead
        first, and writing now would send them on to it, to be lost. Wait (at most
        DEAD_AFTER) for it to be taken out here too, or heard from again."""
        with trio.move_on_after(DEAD_AFTER):
            while self._silent_owner(pipe):
                with trio.move_on_after(HEARTBEAT):
                    await self._members.wait()

    def _silent_owner(self, pipe: str) -> bool:
        """True if this node does not schedule `pipe` and its owner has missed heartbeats."""
        owner = next((key[2] for key in self._streams if key[0] == pipe and key[1] == "up"),
                     None)
        return owner is not None and self.node.quiet_for(owner) > 2 * HEARTBEAT

    def _grant_soon(self, incoming: _Incoming) -> None:
        """Grant what is not granted yet once the idle stream has been quiet GRANT_DELAY."""
        idle = incoming.idle
        if idle is not None and incoming.granted and idle.deadline == math.inf:
            idle.deadline = trio.current_time() + GRANT_DELAY

    def _grant(self, incoming: _Incoming, *, force: bool, size: int = 0) -> None:
        incoming.granted += size
        if incoming.consumed and (force or incoming.granted >= CREDIT_EVERY):
            if force and incoming.granted == 0:
                return
            incoming.granted = 0
            header = self.node.header("c")
            header.update(s=incoming.sid, q=incoming.consumed, ti=incoming.incarnation)
            self.node.send(incoming.sender, header)


def _lines(chunk: Chunk) -> int:
    return 1 if chunk.one_message else chunk.data.count(b"\n")


def _pieces(chunk: Chunk) -> list[tuple[bytes, int]]:
    """A chunk as NATS messages of whole lines, PIECE bytes at most unless a line is
    longer; a one-message chunk stays whole. With each, its number of messages."""
    data = chunk.data
    if chunk.one_message:
        return [(data, 1)]
    if len(data) <= PIECE:
        return [(data, data.count(b"\n"))]
    pieces = []
    start = 0
    while start < len(data):
        end = data.rfind(b"\n", start, start + PIECE) + 1
        if end <= start:
            end = data.index(b"\n", start + PIECE) + 1
        piece = data[start:end]
        pieces.append((piece, piece.count(b"\n")))
        start = end
    return pieces
