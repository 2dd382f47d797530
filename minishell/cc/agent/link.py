"""One ron connection to the server, from `RON` to its end.

Opening: the agent writes `RON`, skips the server's bytes up to its `RON`
(HandshakeScanner, bounded), sends its hello (a CLIENT message) and waits for
the acknowledgement, which must be the server's first message. Then four tasks
share the connection until any of them ends it:

- the reader routes each message: COMMAND to this connection's dispatcher, PIPE
  to the local plumber, FILE to the fetch waiting for it, TUNNEL to a minimal
  minitunnel peer, HEARTBEAT nowhere (any byte counts as a sign of life);
- the writer sends the outbox, batch by batch;
- the heartbeat sends a CLIENT message once HEARTBEAT seconds have passed
  without one (responses are sent as soon as they are ready, not on this beat);
- the dispatcher hands commands to the agent one by one, in order.

A connection ends (and the agent dials again) on EOF, on a stream that cannot be
decoded (garbage, a message over the size bound), on no byte from the server for
LIVENESS seconds (it sends heartbeats every 5 s), or on a write the server does
not take for SEND_STALL seconds. An unknown message type, a PIPE message for a
pipe the agent has no reader of, or an unsolicited FILE part is logged and
ignored: the stream itself is sound.

Tunnels: the agent answers minitunnel's handshake as miniccc does (the server
opens the tunnel right after the acknowledgement), so the server's side of the
tunnel comes up; a port forward it asks for later (`cc tunnel`, `cc rtunnel`) is
refused with an error in minitunnel's own reply, which minimega logs. UFS
(`cc mount`) is not served: its messages are logged and ignored (no reply can
say so without crashing minimega 2.9, which writes a UFS reply to a nil conn).
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import trio

from minishell.cc.agent.outbox import ClientInfo, Outbox, OutboxClosed
from minishell.protocol.gob import GobError, Limits
from minishell.protocol.ron import (
    MAGIC,
    Command,
    Message,
    MessageType,
    PipeLines,
    PipeMode,
    Response,
    RonCodec,
    TunnelMessage,
    TunnelType,
)

logger = logging.getLogger("minishell.cc.agent")

# ron's largest message is a file part of 100 KiB or a command list; pipe lines are
# under 1 MiB. Past this a message is not buffered: the stream is judged bad.
MESSAGE_BYTES_MAX = 4 * 1024 * 1024
RON_LIMITS = Limits(max_message_size=MESSAGE_BYTES_MAX)
READ_SIZE = 64 * 1024
COMMANDS_WAITING_MAX = 10_000  # received on a connection and not yet dispatched
FILE_PARTS_BUFFERED = 16
TUNNEL_REFUSED = "minishell-agent does not serve tunnels"
# how a broken connection shows (trio wraps most OS errors; a serial device's may not be)
_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


@dataclass(frozen=True, slots=True)
class Timing:
    """ron's clocks (seconds); tests shorten them."""

    heartbeat: float = 5.0  # HEARTBEAT_RATE
    liveness: float = 12.5  # 2.5 heartbeats, as miniccc waits
    handshake: float = 5.0  # CLIENT_RECONNECT_RATE: for RON
    send_stall: float = 30.0  # CLIENT_EXPIRED: the server drops a client as silent then


class LinkLost(Exception):
    """The connection cannot go on; the text says why, for the log."""


class LinkOwner(Protocol):
    """What a connection needs from the agent."""

    uuid: str

    def hello(self) -> Message: ...

    def client_info(self, responses: list[Response]) -> Message: ...

    def link_opened(self, link: Link) -> None: ...

    def link_closed(self, link: Link, unsent: list[Response]) -> None: ...

    def pipe_data(self, pipe: str, data: bytes, messages: int = 1) -> None: ...

    def pipe_deleted(self, pipe: str) -> None: ...

    async def dispatch(self, link: Link, command: Command) -> None: ...

    def refuse(self, command: Command, reason: str) -> None: ...


def _type_name(kind: int) -> str:
    try:
        return MessageType(kind).name
    except ValueError:
        return str(kind)


async def _read_some(stream: trio.abc.ReceiveStream, codec: RonCodec,
                     at_eof: str) -> list[Message]:
    """One read's worth of messages (maybe none): LinkLost at EOF or on a bad stream."""
    data = await stream.receive_some(READ_SIZE)
    if not data:
        raise LinkLost(at_eof)
    try:
        return codec.feed(data)
    except GobError as error:
        raise LinkLost(f"bad stream from the server: {error}") from None


async def open_link(stream: trio.abc.Stream, owner: LinkOwner, timing: Timing) -> Link:
    """RON both ways, the hello and its acknowledgement; LinkLost if any of it fails."""
    codec = RonCodec(limits=RON_LIMITS)
    early: list[Message] = []  # what came with RON or the acknowledgement
    try:
        with trio.move_on_after(timing.handshake):
            await stream.send_all(MAGIC)
            while not codec.handshake_done:
                early += await _read_some(stream, codec, "the server closed the connection "
                                          "before its RON")
        if not codec.handshake_done:
            raise LinkLost(f"no RON from the server within {timing.handshake:g} s")
        with trio.move_on_after(timing.send_stall) as sending:
            await stream.send_all(codec.encode(owner.hello()))
        if sending.cancelled_caught:
            raise LinkLost("the server does not take the hello")
        with trio.move_on_after(timing.liveness):
            while not early:
                # minimega closes without a word a uuid it does not know (not a VM it
                # started) or one already connected
                early += await _read_some(stream, codec, "the server closed the connection "
                                          "after the hello: does it refuse this uuid?")
        if not early:
            raise LinkLost(f"no acknowledgement of the hello within {timing.liveness:g} s")
    except _BROKEN as error:
        raise LinkLost(f"the connection broke during the handshake: {error}") from None
    acknowledgement = early.pop(0)
    if acknowledgement.type != MessageType.CLIENT:
        raise LinkLost("the server's first message is a "
                       f"{_type_name(acknowledgement.type)}, not the hello's acknowledgement")
    logger.info("handshake complete")
    return Link(stream, codec, owner, timing, early)


class Link:
    """An open connection; serve() runs it to its end."""

    def __init__(self, stream: trio.abc.Stream, codec: RonCodec, owner: LinkOwner,
                 timing: Timing, early: list[Message]) -> None:
        self.uuid = owner.uuid
        self.outbox = Outbox()
        self.reason = ""  # why it ended
        self.seen_command_ids: set[int] = set()
        self._stream, self._codec, self._owner, self._timing = stream, codec, owner, timing
        self._early = early
        self._scope = trio.CancelScope()
        self._last_client_sent = trio.current_time()  # the hello
        self._commands: deque[Command] = deque()
        self._commands_ready = trio.lowlevel.ParkingLot()
        self._files: dict[str, trio.MemorySendChannel[Message]] = {}
        self._tunnel_broken = False
        self._told_ufs = False
        # responses in the batch being written: given back if the write does not finish
        # (a duplicate on the server is better than a response lost)
        self._writing: list[Response] = []

    async def serve(self) -> str:
        """Run until the connection ends; why it ended."""
        self._owner.link_opened(self)
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_loop)
                    nursery.start_soon(self._heartbeat_loop)
                    nursery.start_soon(self._dispatch_loop)
                    await self._read_loop()
        finally:
            for channel in self._files.values():
                channel.close()
            self._owner.link_closed(self, self._writing + self.outbox.close())
        return self.reason

    @property
    def closed(self) -> bool:
        return self.outbox.closed

    def end(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason
        self._scope.cancel()

    # --- what the agent sends through it ---------------------------------------------

    def send_control(self, message: Message) -> None:
        self.outbox.put_control(message)

    async def send_data(self, message: Message | PipeLines, size: int) -> None:
        """OutboxClosed if the connection ends before there is room."""
        await self.outbox.put_data(message, size)

    def send_client_info(self, responses: list[Response]) -> None:
        self.outbox.put_client_info(responses)

    @contextlib.asynccontextmanager
    async def expect_file(self, name: str) -> AsyncIterator[trio.MemoryReceiveChannel[Message]]:
        """The FILE messages for `name`, while the block runs (one fetch of a name at a time)."""
        send, receive = trio.open_memory_channel[Message](FILE_PARTS_BUFFERED)
        self._files[name] = send
        try:
            async with receive:
                yield receive
        finally:
            if self._files.get(name) is send:
                del self._files[name]
            send.close()

    # --- the four tasks -----------------------------------------------------------------

    async def _read_loop(self) -> None:
        for message in self._early:
            await self._route(message)
        self._early = []
        while True:
            with trio.move_on_after(self._timing.liveness) as waiting:
                try:
                    data = await self._stream.receive_some(READ_SIZE)
                except _BROKEN as error:
                    self.end(f"reading from the server failed: {error}")
                    return
            if waiting.cancelled_caught:
                self.end(f"nothing from the server for {self._timing.liveness:g} s")
                return
            if not data:
                self.end("the server closed the connection")
                return
            try:
                received = self._codec.feed_runs(data)
            except GobError as error:
                self.end(f"bad stream from the server: {error}")
                return
            for item in received:
                if isinstance(item, PipeLines):
                    self._owner.pipe_data(item.pipe, item.block, item.block.count(b"\n"))
                else:
                    await self._route(item)

    async def _write_loop(self) -> None:
        while True:
            try:
                items = await self.outbox.take()
            except OutboxClosed:
                return
            data = bytearray()
            for item in items:
                if isinstance(item, ClientInfo):
                    message: Message | PipeLines = self._owner.client_info(item.responses)
                    self._writing += item.responses
                    self._last_client_sent = trio.current_time()
                else:
                    message = item
                try:
                    if isinstance(message, PipeLines):
                        data += self._codec.encode_pipe_lines(message.pipe, message.block)
                    else:
                        data += self._codec.encode(message)
                except GobError as error:  # a bug: values the bounds should have kept out
                    logger.error("a %s message could not be encoded, not sent: %s",
                                 _type_name(MessageType.PIPE if isinstance(message, PipeLines)
                                            else message.type), error)
            with trio.move_on_after(self._timing.send_stall) as sending:
                try:
                    await self._stream.send_all(data)
                except _BROKEN as error:
                    self.end(f"sending to the server failed: {error}")
                    return
            if sending.cancelled_caught:
                self.end(f"the server took nothing for {self._timing.send_stall:g} s")
                return
            self._writing = []

    async def _heartbeat_loop(self) -> None:
        while True:
            due = self._last_client_sent + self._timing.heartbeat
            if trio.current_time() < due:
                await trio.sleep_until(due)
                continue
            self.outbox.put_client_info([])
            await trio.sleep(self._timing.heartbeat)

    async def _dispatch_loop(self) -> None:
        while True:
            while not self._commands:
                await self._commands_ready.park()
            await self._owner.dispatch(self, self._commands.popleft())

    # --- routing ------------------------------------------------------------------------

    async def _route(self, message: Message) -> None:
        kind = message.type
        if kind == MessageType.COMMAND:
            self._queue_commands(message)
        elif kind == MessageType.PIPE:
            self._pipe(message)
        elif kind == MessageType.FILE:
            await self._file(message)
        elif kind == MessageType.TUNNEL:
            await self._tunnel(message)
        elif kind == MessageType.HEARTBEAT:
            pass
        elif kind == MessageType.CLIENT:
            logger.debug("a CLIENT message after the acknowledgement: ignored")
        elif kind == MessageType.UFS:
            if not self._told_ufs:
                self._told_ufs = True
                logger.error("cc mount (UFS) is not served by minishell-agent: ignored")
        else:
            logger.error("unknown message type %d from the server: ignored", kind)

    def _queue_commands(self, message: Message) -> None:
        for key in sorted(message.commands or {}):
            command = (message.commands or {})[key]
            if command is None:
                continue
            if len(self._commands) >= COMMANDS_WAITING_MAX:
                self._owner.refuse(command, f"more than {COMMANDS_WAITING_MAX} commands waiting")
                continue
            self._commands.append(command)
        self._commands_ready.unpark_all()

    def _pipe(self, message: Message) -> None:
        if message.pipe_mode == PipeMode.DATA:
            self._owner.pipe_data(message.pipe, message.pipe_data)
        elif message.pipe_mode == PipeMode.CLOSE_READER:
            self._owner.pipe_deleted(message.pipe)
        else:
            logger.error("pipe message of mode %d for %s from the server: ignored",
                         message.pipe_mode, message.pipe)

    async def _file(self, message: Message) -> None:
        name = message.file.name if message.file is not None else ""
        channel = self._files.get(name)
        if channel is None or message.file is None:
            logger.error("a file part for %r that was not asked for: ignored", name)
            return
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await channel.send(message)

    async def _tunnel(self, message: Message) -> None:
        if self._tunnel_broken:
            return
        try:
            requests = self._codec.tunnel.feed(message.tunnel)
        except GobError as error:
            self._tunnel_broken = True
            logger.error("bad tunnel stream from the server, tunnel messages ignored: %s", error)
            return
        for request in requests:
            if request.type == TunnelType.HANDSHAKE and not request.ack:
                reply = TunnelMessage(type=TunnelType.HANDSHAKE, ack=True)
            elif request.type == TunnelType.CONNECT:
                reply = TunnelMessage(type=TunnelType.CLOSED, tid=request.tid,
                                      error=TUNNEL_REFUSED)
            elif request.type == TunnelType.FORWARD:
                reply = TunnelMessage(type=TunnelType.DATA, tid=request.tid, ack=True,
                                      error=TUNNEL_REFUSED)
            else:
                logger.debug("tunnel message of type %d for %d: ignored", request.type,
                             request.tid)
                continue
            for payload in self._codec.tunnel.encode(reply):
                try:
                    await self.send_data(Message(type=MessageType.TUNNEL, uuid=self.uuid,
                                                 tunnel=payload), len(payload))
                except OutboxClosed:
                    return
