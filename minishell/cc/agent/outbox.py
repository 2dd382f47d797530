"""What one connection will send, in order: the only way anything reaches the server.

Everything goes through one queue so that the wire keeps the order the agent
meant: a pipe's NEW_WRITER before its DATA, a program's last lines before the
response that says it ended. Control messages (pipe opens and closes, tunnel
answers) are queued at once from plain code; data (pipe lines, file parts)
waits while the queued data passes its bound, which is how a slow server slows
the programs that write to it instead of growing memory. A client-info item (a
heartbeat, or responses to report) is built only when it is written, so it
carries the processes as they are then; the responses it carries are fixed when
it is queued, behind the lines they follow.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import trio

from minishell.protocol.ron import Message, PipeLines, Response

DATA_BYTES_MAX = 1024 * 1024  # queued pipe lines and file parts, not yet taken by the writer
# Responses one CLIENT message may carry (their output, bytes): a response keeps at most
# 1 MiB of each stream, and the message must stay under the connection's 4 MiB bound.
CLIENT_INFO_BYTES_MAX = 2 * 1024 * 1024


@dataclass(slots=True)
class ClientInfo:
    """A CLIENT message to build when written: a heartbeat, with these responses."""

    responses: list[Response] = field(default_factory=list)

    def size(self) -> int:
        return sum(len(r.stdout) + len(r.stderr) for r in self.responses)


Item = Message | PipeLines | ClientInfo


class OutboxClosed(Exception):
    """The connection ended; what was being queued will not be sent."""


class Outbox:
    def __init__(self, data_bytes_max: int = DATA_BYTES_MAX) -> None:
        self._items: deque[tuple[Item, int]] = deque()  # (item, its data bytes)
        self._data_bytes = 0
        self._data_bytes_max = data_bytes_max
        self._closed = False
        self._writer = trio.lowlevel.ParkingLot()  # the writer, waiting for items
        self._producers = trio.lowlevel.ParkingLot()  # data, waiting for room

    @property
    def closed(self) -> bool:
        return self._closed

    def put_control(self, message: Message) -> None:
        """Queue a message that must not wait (its order matters more than its size)."""
        if not self._closed:
            self._append(message, 0)

    async def put_data(self, message: Message | PipeLines, size: int) -> None:
        """Queue a message of `size` data bytes once there is room; OutboxClosed if the
        connection ends first. One message always fits into an empty queue."""
        while (not self._closed and self._data_bytes
               and self._data_bytes + size > self._data_bytes_max):
            await self._producers.park()
        if self._closed:
            raise OutboxClosed
        self._data_bytes += size
        self._append(message, size)

    def put_client_info(self, responses: list[Response]) -> None:
        """Queue a client message, or add to the last one if it is still the last item:
        a burst of endings becomes one message."""
        if self._closed:
            return
        last = self._items[-1][0] if self._items else None
        adding = ClientInfo(list(responses)).size()
        if isinstance(last, ClientInfo) and last.size() + adding <= CLIENT_INFO_BYTES_MAX:
            last.responses.extend(responses)
            return
        self._append(ClientInfo(list(responses)), 0)

    async def take(self) -> list[Item]:
        """Everything queued, waiting for at least one item; OutboxClosed once closed."""
        while not self._items and not self._closed:
            await self._writer.park()
        if self._closed:
            raise OutboxClosed
        items = [item for item, _ in self._items]
        self._items.clear()
        self._data_bytes = 0
        self._producers.unpark_all()
        return items

    def close(self) -> list[Response]:
        """End the queue; the responses it held unsent, for the next connection."""
        self._closed = True
        unsent = [response for item, _ in self._items if isinstance(item, ClientInfo)
                  for response in item.responses]
        self._items.clear()
        self._writer.unpark_all()
        self._producers.unpark_all()
        return unsent

    def _append(self, item: Item, size: int) -> None:
        self._items.append((item, size))
        self._writer.unpark_all()
