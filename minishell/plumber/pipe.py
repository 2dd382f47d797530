"""A named pipe: its state, and routing blocks of messages to its readers' outboxes.

Routing is plain synchronous code on whole blocks: mode `all` puts the same
block in every outbox; round-robin and random split it per line. The count and
`previous` come from the block (`bytes.count`, one slice). The only awaits are
one checkpoint per block and, when an outbox is full, waiting for room: nothing
is decided before the wait and acted on after it.
"""

from __future__ import annotations

import bisect
import functools
import logging
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import trio

from minishell.gostr import trim_space
from minishell.plumber.outbox import Chunk, Outbox
from minishell.plumber.via import Vias

logger = logging.getLogger("minishell.plumber")

MODES = ("all", "round-robin", "random")


@dataclass(frozen=True, slots=True)
class PipeInfo:
    """One row of the `pipe` listing."""

    name: str
    mode: str
    readers: int
    writers: int
    count: int
    via: tuple[str, ...]
    previous: str


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


async def _wait_for_room(outboxes: Collection[Outbox]) -> None:
    """Return once no outbox is full; the caller then puts without awaiting in between."""
    while True:
        full = next((outbox for outbox in outboxes if outbox.full), None)
        if full is None:
            return
        await full.wait_for_room()


class Pipe:
    def __init__(self, name: str, *, rng: random.Random, vias: Vias) -> None:
        self.name = name
        self.mode = "all"
        self.via: tuple[str, ...] = ()
        self.log = False
        self.writers = 0
        self.count = 0
        self._previous = b""
        self._readers: dict[int, Outbox] = {}  # ascending ids: registration order
        self._last_recipient = 0
        self._closed = False
        self._rng = rng
        self._vias = vias

    def info(self) -> PipeInfo:
        return PipeInfo(self.name, self.mode, len(self._readers), self.writers, self.count,
                        self.via, display(self._previous))

    def attach(self, reader_id: int, outbox: Outbox) -> None:
        if self._closed:
            outbox.close()
        else:
            self._readers[reader_id] = outbox

    def detach(self, reader_id: int) -> None:
        outbox = self._readers.pop(reader_id, None)
        if outbox is not None:
            outbox.close()

    def close(self) -> None:
        """The pipe is deleted (or the plumber closes): every reader gets EOF."""
        self._closed = True
        for outbox in self._readers.values():
            outbox.close()
        self._readers.clear()

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

    async def accept_message(self, message: bytes) -> None:
        """One message, whatever newlines it holds; a newline is added unless it ends in one."""
        await self.accept(*_one_message(message))

    def takes_at_once(self) -> bool:
        """True when a message can be routed without waiting: no via, no full outbox."""
        return not self.via and not any(outbox.full for outbox in self._readers.values())

    def route_message(self, message: bytes) -> None:
        """accept_message for when takes_at_once(): no await at all."""
        self._route(*_one_message(message))

    async def accept(self, data: bytes, one_message: bool) -> None:
        """Take a block of lines (or one message) from a writer; return once it is routed.

        It yields to other tasks only when it has to wait (a full outbox, a via):
        writers reach it from a loop that already yields per chunk (a socket
        read, a stage's receive, the session between commands), and a schedule
        point per CLI write would cost a third of a command's time.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if via := self.via:  # the via in force when the block came applies to all of it
            for message in [data] if one_message else split_messages(data):
                await self._accept_through_via(via, message)
            return
        if self._readers and any(outbox.full for outbox in self._readers.values()):
            await _wait_for_room(self._readers.values())
        self._route(data, one_message)

    def _route(self, data: bytes, one_message: bool) -> None:
        if one_message:
            count, last = 1, data
        else:
            count = data.count(b"\n")
            last = data[data.rfind(b"\n", 0, len(data) - 1) + 1:]
        if self.log:
            self._log_messages([data] if one_message else split_messages(data))
        readers = self._readers
        if self.mode == "all" or not readers:
            chunk = Chunk(data, one_message)
            for outbox in readers.values():
                outbox.put(chunk)
        elif count == 1:
            self._choose().put(Chunk(data, one_message))
        else:
            self._spread(data.split(b"\n")[:-1])
        self.count += count
        self._previous = last

    def _choose(self) -> Outbox:
        """The one recipient in round-robin or random mode (there is at least one reader)."""
        if self.mode == "random":
            return self._rng.choice(list(self._readers.values()))
        ids = list(self._readers)
        position = bisect.bisect_right(ids, self._last_recipient) % len(ids)
        self._last_recipient = ids[position]
        return self._readers[self._last_recipient]

    def _spread(self, lines: list[bytes]) -> None:
        """Round-robin or random over a block: one joined share per reader."""
        ids = list(self._readers)
        outboxes = list(self._readers.values())
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
        if readers > 256:
            return self._rng.choices(range(readers), k=count)
        keep, dropped, modulo = _byte_picking(readers)
        picks = b""
        while len(picks) < count:
            wanted = count - len(picks)
            picks += self._rng.randbytes(wanted * 256 // keep + 16).translate(None, dropped)
        return picks[:count].translate(modulo)

    async def _accept_through_via(self, argv: tuple[str, ...], message: bytes) -> None:
        """minimega's counters with a via (spec §9.4), but every reader is tried.

        Everyone-mode: `previous` moves first; the message counts only if every
        reader's via succeeded, and the readers whose via succeeded get their
        output (2.9 stops at the first failure). One-reader modes: a failure
        changes nothing.
        """
        if self.mode == "all" or not self._readers:
            self._previous = message
            if self.log:
                self._log_messages([message])
            targets = list(self._readers.values())
            if not targets:
                self.count += 1
                return
            outputs = await self._vias.run_each(argv, message, len(targets))
            deliveries = [(outbox, Chunk(output, one_message=True))
                          for outbox, output in zip(targets, outputs, strict=True)
                          if output is not None]
            await self._deliver(deliveries)
            if len(deliveries) == len(targets):
                self.count += 1
            return
        target = self._choose()
        if self.log:
            self._log_messages([message])
        output = await self._vias.run(argv, message)
        if output is None:
            return
        await self._deliver([(target, Chunk(output, one_message=True))])
        self._previous = message
        self.count += 1

    @staticmethod
    async def _deliver(deliveries: list[tuple[Outbox, Chunk]]) -> None:
        await _wait_for_room([outbox for outbox, _ in deliveries])
        for outbox, chunk in deliveries:
            outbox.put(chunk)

    def _log_messages(self, messages: list[bytes]) -> None:
        for message in messages:
            logger.debug("pipe %s: %s", self.name, display(message))
