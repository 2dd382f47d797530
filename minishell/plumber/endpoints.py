"""The two ends of a pipe, one interface for every kind of endpoint.

A pipeline stage, a socket attachment, later an agent's handle or a mesh peer:
each reads through a Reader and writes through a Writer, and Pipe knows
nothing of which one it serves.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from minishell.plumber.outbox import Chunk, Outbox
from minishell.plumber.pipe import Pipe


class Reader:
    """What a pipe delivers to one registered reader, in chunks, until EOF.

    EOF (trio.EndOfChannel from receive(), the end of `async for`) comes when
    the pipe is deleted, the plumber closes or the reader is closed, after what
    was already delivered; also when the pipe dropped the reader for taking
    nothing with its queue full for the stall timeout, and then `dropped` is
    True. The reader counts in the pipe's `readers` while its `open_reader`
    block is open and it is neither closed nor dropped. One task receives.
    """

    __slots__ = ("_detach", "_outbox", "pipe_name")

    def __init__(self, pipe_name: str, outbox: Outbox, detach: Callable[[], None]) -> None:
        self.pipe_name = pipe_name
        self._outbox = outbox
        self._detach = detach

    @property
    def dropped(self) -> bool:
        """True once the pipe has dropped this reader for not taking (see above)."""
        return self._outbox.dropped

    async def receive(self) -> Chunk:
        """Everything delivered since the last call (at least one message); EndOfChannel at EOF."""
        return await self._outbox.take()

    def send_directly(self, send_now: Callable[[bytes], int]) -> None:
        """Writers may give small chunks to `send_now` while this reader waits in
        receive (Outbox.send_directly): for a reader that passes bytes on as they are."""
        self._outbox.send_directly(send_now)

    def take_directly(self, take_now: Callable[[Chunk], bool]) -> None:
        """Writers may give small chunks to `take_now` while this reader waits in
        receive (Outbox.take_directly): for a reader that passes chunks on whole."""
        self._outbox.take_directly(take_now)

    def close(self) -> None:
        """Take no more: what was delivered still comes, then EOF; the pipe stops counting it."""
        self._detach()

    def abandon(self) -> int:
        """close(), and what was delivered but not yet received is thrown away: how many
        messages that was (a mesh stream to a node that died counts them as lost)."""
        self._detach()
        return self._outbox.discard()

    def withdraw(self) -> list[Chunk]:
        """close(), taking back what was delivered but not yet received, in order (a mesh
        stream to an owner that died gives it back to its pipe, for the next owner)."""
        self._detach()
        return self._outbox.withdraw()

    def __aiter__(self) -> Reader:
        return self

    async def __anext__(self) -> Chunk:
        try:
            return await self._outbox.take()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None


class Writer:
    """Writes messages into a pipe; counts in the pipe's `writers` while its block is open.

    Every call returns once its messages are in the outboxes of their readers
    (waiting while an outbox is full: lossless backpressure, but for readers
    dropped for not taking), or, with a via or behind messages waiting for
    one, once they are in the pipe's bounded queue. Messages of one writer
    reach every reader in the order written.
    """

    __slots__ = ("_pipe", "pipe_name")

    def __init__(self, pipe_name: str, pipe: Pipe) -> None:
        self.pipe_name = pipe_name
        self._pipe = pipe

    async def write_lines(self, block: bytes) -> None:
        """A block of complete lines, each line one message: the fast path."""
        if not block.endswith(b"\n"):
            if block:
                raise ValueError("write_lines needs complete lines (ending in a newline)")
            await trio.lowlevel.checkpoint()
            return
        await self._pipe.accept(block, one_message=False)

    async def write_message(self, message: bytes) -> None:
        """One message, whatever newlines it holds; a newline is added unless it ends in one."""
        await self._pipe.accept_message(message)

    async def send(self, chunk: Chunk) -> None:
        """Pass on a chunk as a Reader received it, message boundaries kept."""
        if chunk.one_message:
            await self.write_message(chunk.data)
        else:
            await self.write_lines(chunk.data)
