"""A reader's bounded queue of chunks: where data waits for its reader.

Writers put chunks in synchronously once there is room; the reader takes
everything pending at once. Room is measured in bytes: a writer may put a
chunk while the outbox holds less than its limit, so one chunk may overshoot
it (a block bigger than the limit must still get through) and the outbox never
holds more than limit + one chunk. When the reader takes, its pipe hears of
the room through a RoomSignal (one per pipe, shared by its outboxes), and the
outbox notes since when it has been full, for the pipe to drop a reader that
stopped taking.

A reader that only passes bytes on (a raw socket attachment) may also take
them straight from the writer, while it waits for more: see `send_directly`;
one that passes whole chunks on (a stream to another node), `take_directly`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import trio

OUTBOX_LIMIT = 256 * 1024
# Bigger chunks are bulk traffic, for the reader's own task: the writer's task
# would copy what the receiver has no room for.
SEND_DIRECTLY_MAX = 64 * 1024


@dataclass(frozen=True, slots=True)
class Chunk:
    """Complete messages, as a reader receives them and a writer sends them.

    Usually `data` is a block of lines, each line one message. `one_message`
    marks the rare exception, `data` being exactly one message: one whose inner
    newlines are not message boundaries (a CLI message with newlines in it, or
    a via's output). Either way `data` ends with a newline.
    """

    data: bytes
    one_message: bool = False


class RoomSignal:
    """Wakes whoever waits for room in any outbox of one pipe (a writer, the pipe's queue)."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: trio.Event | None = None

    def notify(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self) -> None:
        if self._event is None:
            self._event = trio.Event()
        await self._event.wait()


class Outbox:
    """One reader's queue, with a count of what the reader is done with.

    The reader is done with a chunk once it comes back to `take` for more (or
    goes away): for a pipe-to-pipe stage (`forwards_to`) that means the chunk is in
    the next pipe. `mark`/`wait_settled` let a writer wait for that, which is how
    a CLI write returns only once its message has gone through such stages.
    """

    __slots__ = ("_chunks", "_closed", "_data_waiter", "_limit", "_puts", "_send_now",
                 "_settle_waiter", "_settled", "_size", "_take_now", "_taken", "dropped",
                 "forwards_to", "full_since", "on_drop", "room_signal")

    def __init__(self, limit: int = OUTBOX_LIMIT, *, forwards_to: str | None = None,
                 on_drop: Callable[[], None] | None = None) -> None:
        self.forwards_to = forwards_to  # the pipe its reader passes chunks straight on to
        self.on_drop = on_drop  # called when its pipe drops it
        self.room_signal: RoomSignal | None = None  # its pipe's, once attached
        self.full_since: float | None = None  # trio time it became full, None while not full
        self.dropped = False  # its pipe dropped it for taking nothing while full
        # Made by the first put, dropped once emptied: an idle reader costs no queue.
        self._chunks: deque[Chunk] | None = None
        self._size = 0
        self._limit = limit
        self._closed = False
        self._data_waiter: trio.Event | None = None
        self._settle_waiter: trio.Event | None = None
        self._puts = 0  # chunks put, ever
        self._taken = 0  # chunks handed to the reader, ever
        self._settled = 0  # chunks the reader is done with, ever
        self._send_now: Callable[[bytes], int] | None = None
        self._take_now: Callable[[Chunk], bool] | None = None

    @property
    def full(self) -> bool:
        """True while a writer must wait; a closed outbox is never full (puts are dropped)."""
        return self._size >= self._limit and not self._closed

    @property
    def closed(self) -> bool:
        return self._closed

    def send_directly(self, send_now: Callable[[bytes], int]) -> None:
        """Let writers hand small chunks straight to `send_now` while the reader waits
        in `take` with nothing pending, rather than wake its task: at low rates
        that wake-up, a scheduling round, is most of the time a message spends in
        the plumber.

        `send_now(data)` must not block: it takes what it can at once and returns
        how many bytes that was (0 when it cannot, even on an error, which the
        reader then meets on its own). The rest goes through the outbox. Chunks
        are then just bytes: a chunk cut in two is not a message boundary.
        """
        self._send_now = send_now

    def take_directly(self, take_now: Callable[[Chunk], bool]) -> None:
        """Like `send_directly`, for whole chunks: `take_now(chunk)` takes the chunk, all
        of it (True), or none of it (False), without blocking."""
        self._take_now = take_now

    def put(self, chunk: Chunk) -> None:
        if self._closed:
            return
        if (self._data_waiter is not None and self._take_now is not None
                and len(chunk.data) <= SEND_DIRECTLY_MAX and self._take_now(chunk)):
            self._puts += 1
            self._taken += 1
            self._settle()
            return
        if (self._data_waiter is not None and self._send_now is not None
                and len(chunk.data) <= SEND_DIRECTLY_MAX):
            sent = self._send_now(chunk.data)
            if sent == len(chunk.data):
                self._puts += 1
                self._taken += 1
                self._settle()
                return
            if sent:
                chunk = Chunk(chunk.data[sent:])
        if self._chunks is None:
            self._chunks = deque()
        self._chunks.append(chunk)
        self._size += len(chunk.data)
        self._puts += 1
        if self._size >= self._limit and self.full_since is None:
            self.full_since = trio.current_time()
        if self._data_waiter is not None:
            self._data_waiter.set()
            self._data_waiter = None

    def mark(self) -> int:
        """A point in this outbox's stream, for `wait_settled`."""
        return self._puts

    async def wait_settled(self, mark: int) -> None:
        """Return once the reader is done with every chunk put before `mark`, or is gone."""
        while self._settled < mark and not self._closed:
            if self._settle_waiter is None:
                self._settle_waiter = trio.Event()
            await self._settle_waiter.wait()

    async def take(self) -> Chunk:
        """Everything pending, coalesced; after close, what is left and then EndOfChannel."""
        if self._settled != self._taken:  # back for more: done with what it took
            self._settle()
        if self._chunks:
            await trio.lowlevel.checkpoint()
        while not self._chunks:
            if self._closed:
                await trio.lowlevel.checkpoint()
                raise trio.EndOfChannel
            waiter = self._data_waiter = trio.Event()
            try:
                await waiter.wait()
            finally:  # cancelled too: a reader that is not waiting takes nothing directly
                self._data_waiter = None
        chunk = self._coalesce()
        self._size -= len(chunk.data)
        # It took something: a reader still full (a one-message chunk was kept back) starts over.
        self.full_since = trio.current_time() if self._size >= self._limit else None
        if self.room_signal is not None:
            self.room_signal.notify()
        return chunk

    def _settle(self) -> None:
        self._settled = self._taken
        if self._settle_waiter is not None:
            self._settle_waiter.set()
            self._settle_waiter = None

    def close(self) -> None:
        """The reader goes away: the reader gets EOF once drained, waiting writers go on."""
        self._closed = True
        for waiter in (self._data_waiter, self._settle_waiter):
            if waiter is not None:
                waiter.set()
        self._data_waiter = self._settle_waiter = None
        if self.room_signal is not None:  # closed is never full: a writer may go on
            self.room_signal.notify()

    def discard(self) -> int:
        """Close, throwing away what is pending (its reader is gone for good, with no one
        to hand it to); how many messages that was, for the caller to count as lost."""
        return sum(1 if chunk.one_message else chunk.data.count(b"\n")
                   for chunk in self.withdraw())

    def withdraw(self) -> list[Chunk]:
        """Close, taking back what is pending, in order: for someone else to deliver."""
        chunks, self._chunks = self._chunks or (), None
        self._size = 0
        self.full_since = None
        self.close()
        return list(chunks)

    def _coalesce(self) -> Chunk:
        chunks = self._chunks
        assert chunks  # take() only coalesces a queue with chunks in it
        first = chunks.popleft()
        self._taken += 1
        if first.one_message or not chunks or chunks[0].one_message:
            taken = first
        else:
            parts = [first.data]
            while chunks and not chunks[0].one_message:
                parts.append(chunks.popleft().data)
            self._taken += len(parts) - 1
            taken = Chunk(b"".join(parts))
        if not chunks:
            self._chunks = None
        return taken
