"""The control socket: minimega's wire protocol on `<base>/minimega`, so that
`minishell -pipe/-e/-attach`, minimega's own clients and its Python bindings
reach a running minishell. The bytes are minishell.protocol.control's; this
module moves them.

A command connection is a few tasks: one reads and frames requests ahead of
the one being answered (a bounded number of them), and notices the client
going away; one answers them in order, through `_answer`, the one place
where the server asks the session; replies to requests sent ahead go out
together, and one more task sees that none waits long (_Replies). A client
that goes away cancels its command, as Ctrl-C at the prompt does; one that
does not take its replies for `reply_patience` seconds is disconnected.

A `PlumbPipe` request turns the connection into a pipe attachment for good:
one reader and one writer of the pipe. minimega's clients then exchange a
JSON string per message; minishell's client asks for `Raw` and both
directions become plain newline-terminated bytes, moved in blocks: 256 KiB
reads split at the last newline, one `Writer.write_lines` per block, one
`send_all` per reader wake-up; a raw reader waiting for more takes small
blocks straight from the writer's task (`Reader.send_directly`), which saves
a scheduling round per sparse message.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import select
import stat
from collections import deque
from collections.abc import Callable
from typing import Final

import trio

from minishell.commands.registry import registry
from minishell.plumber import Chunk, Reader, Writer
from minishell.plumber.pipe import split_messages
from minishell.protocol.control import (
    LINE_MAX,
    RAW_ACK,
    JsonFramer,
    ProtocolError,
    RawLines,
    Request,
    RequestFramer,
    TooLong,
    decode_message,
    encode_reply,
    encode_suggest_reply,
    go_json_string,
    socket_path,
)
from minishell.render import json_responses, render
from minishell.reply import Flags, Reply
from minishell.session import Session

__all__ = ["LINE_MAX", "ControlServer", "ServeError", "socket_path"]

log = logging.getLogger("minishell.server")

READ_SIZE = 256 * 1024
# The JSON encoding of a line under LINE_MAX is at most 6 bytes per byte (\u00XX), plus quotes.
_JSON_LINE_MAX = 6 * LINE_MAX + 2
_PROBE_TIMEOUT = 1.0
_NEITHER = "must specify either command or suggest"
# How long a reply may wait for its client to read, by default.
REPLY_PATIENCE = 10.0
# How often accept() is tried again while the process is out of file descriptors.
ACCEPT_RETRY = 0.1
# Requests read ahead of the one being answered, at most (either bound).
_AHEAD_REQUESTS = 1024
_AHEAD_BYTES = LINE_MAX
# Reply bytes held back while more requests wait, at most, and for at most how long.
_OUTBOX_MAX = 64 * 1024
_LINGER = 0.002
# A client that has half-closed may still vanish; looked for this often while it waits.
_HANGUP_POLL = 0.5
_ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})


class ServeError(Exception):
    """The socket cannot be served; str(error) is the one line to show."""


class ControlServer:
    """Serves one Session on a Unix socket from `run` until `close` (or cancellation)."""

    def __init__(self, session: Session, path: str, *, reply_patience: float = REPLY_PATIENCE,
                 accept_retry: float = ACCEPT_RETRY) -> None:
        self.session = session
        self.plumber = session.plumber  # for pipe attachments
        self.path = path
        self.reply_patience = reply_patience
        self.accept_retry = accept_retry
        self._scope = trio.CancelScope()
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the socket we bound
        self._empty_replies: dict[tuple[tuple[str, ...], Flags, bool], bytes] = {}

    async def run(self, *, force: bool = False,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen (ServeError, before `started`, if that is impossible), then serve.

        Every connection is a task in this server's nursery: when the server
        ends, each attachment ends and its socket closes. The socket file is
        removed on the way out, whatever the way.
        """
        try:
            with self._scope:
                sock = await self._listen(force)
                with sock:
                    task_status.started()
                    await self._serve(trio.SocketListener(sock))
        finally:
            self._unlink()

    def close(self) -> None:
        """Stop now: the socket file goes at once, the connections as soon as they run."""
        self._unlink()
        self._scope.cancel()

    # -- listening --------------------------------------------------------------------------

    async def _listen(self, force: bool) -> trio.socket.SocketType:
        base = os.path.dirname(self.path)
        try:
            os.makedirs(base, mode=0o700, exist_ok=True)
            info = os.stat(base)
            if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) != 0o700:
                os.chmod(base, 0o700)  # it may hold a socket that runs commands
        except OSError as error:
            raise ServeError(f"minishell: cannot create {base}: {_reason(error)}") from None
        await self._remove_stale(force)
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        try:
            await sock.bind(self.path)
            info = os.lstat(self.path)
            self._identity = (info.st_dev, info.st_ino)
            os.chmod(self.path, 0o600)
            sock.listen(trio.socket.SOMAXCONN)
        except OSError as error:
            sock.close()
            if error.errno == errno.EADDRINUSE:  # another instance bound it after our probe
                raise ServeError(self._running_message()) from None
            raise ServeError(f"minishell: cannot listen on {self.path}: {_reason(error)}") from None
        return sock

    async def _remove_stale(self, force: bool) -> None:
        """A socket nobody answers on is left over by a crash: remove it. A live one is
        another instance: refuse, or with `force` take its place."""
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        except OSError as error:
            raise ServeError(f"minishell: cannot use {self.path}: {_reason(error)}") from None
        if not stat.S_ISSOCK(info.st_mode):
            raise ServeError(f"minishell: {self.path} exists and is not a socket")
        if await self._answers() and not force:
            raise ServeError(self._running_message())
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise ServeError(f"minishell: cannot remove {self.path}: {_reason(error)}") from None

    async def _answers(self) -> bool:
        with trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM) as probe:
            # A live instance with a full backlog makes connect wait: it is live.
            with trio.move_on_after(_PROBE_TIMEOUT):
                try:
                    await probe.connect(self.path)
                except ConnectionRefusedError:
                    return False
                except FileNotFoundError:  # gone meanwhile
                    return False
                except OSError as error:
                    raise ServeError(
                        f"minishell: cannot connect to {self.path}: {_reason(error)}") from None
        return True

    def _running_message(self) -> str:
        return f"minishell: another minishell is running on {self.path} (use -force to replace it)"

    def _unlink(self) -> None:
        """Remove the socket file, unless another instance (-force) has replaced it."""
        if self._identity is None:
            return
        try:
            info = os.lstat(self.path)
            if (info.st_dev, info.st_ino) == self._identity:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as error:
            log.error("cannot remove %s: %s", self.path, _reason(error))
        self._identity = None

    async def _serve(self, listener: trio.SocketListener) -> None:
        """Accept connections, each a task of this nursery.

        Out of file descriptors (or memory), accept() fails until a connection
        closes: one warning when that starts, one when it ends, however long it
        lasts (trio's serve_listeners logs a traceback every 0.1 s).
        """
        async with trio.open_nursery() as connections:
            short = False
            while True:
                try:
                    stream = await listener.accept()
                except OSError as error:
                    if error.errno not in _ACCEPT_CAPACITY_ERRNOS:
                        raise
                    if not short:
                        log.warning("cannot accept connections: %s; clients wait until "
                                    "some close", _capacity(error))
                        short = True
                    await trio.sleep(self.accept_retry)
                    continue
                if short:
                    log.warning("accepting connections again")
                    short = False
                connections.start_soon(self._handle, stream)

    # -- one connection ---------------------------------------------------------------------

    async def _handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            try:
                attachment = await self._converse(stream)
                if attachment is not None:
                    await self._attach(stream, *attachment)
            except trio.BrokenResourceError:
                log.info("a client went away without waiting for its answer")
            except Exception:
                # A bug must not take the daemon, its pipes and its other clients down.
                log.exception("unexpected error on the control socket")

    async def _converse(self, stream: trio.SocketStream) -> tuple[Request, bytes] | None:
        """Answer requests until the client leaves (None), or until one asks for a
        pipe: that request and the bytes that came after it."""
        requests = _Requests(stream)
        answered = None
        replies = _Replies(stream, self.reply_patience)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(requests.receive)
            nursery.start_soon(replies.linger)
            # The client's departure cancels this, and the command it was waiting for.
            with requests.answering:
                answered = await self._answer_in_turn(requests, replies)
            nursery.cancel_scope.cancel()
        if requests.answering.cancelled_caught:
            log.info("a client went away: its command, if any, was cancelled")
        return answered

    async def _answer_in_turn(self, requests: _Requests,
                              replies: _Replies) -> tuple[Request, bytes] | None:
        try:
            while True:
                request = requests.take()
                if request is None:
                    await replies.flush()
                    request = await requests.wait()
                if request is _END:
                    await replies.flush()
                    return None
                if request.plumb_pipe:
                    await replies.flush()
                    return request, requests.rest()
                await self._answer(request, replies, hold=requests.waiting())
                if request.refusal:
                    await replies.flush()
                    return None
        except (trio.BrokenResourceError, ConnectionError):
            log.info("a client went away before its replies were sent")
        except _Stalled:
            log.info("a client took no reply for %s s: disconnected", self.reply_patience)
        return None

    async def _answer(self, request: Request, replies: _Replies, *, hold: bool) -> None:
        """Answer a request: the one place where the server asks the session (its
        replies to a command line, and completion).

        A command's replies go out as they come (`read` of a long script makes
        one per line), each but the last with More set: so the one before is
        held back until the next one shows whether more come, as minimega does.
        """
        session = self.session
        if request.refusal or (request.command == "") == (request.suggest == ""):
            refused = session.error_reply(request.refusal or _NEITHER)
            await replies.send(encode_reply(json_responses(refused), render(refused),
                                            more=False), hold=hold)
            return
        if request.suggest:
            await replies.send(encode_suggest_reply(registry().complete(request.suggest, session)),
                               hold=hold)
            return
        previous: Reply | None = None

        async def stream(reply: Reply) -> None:
            nonlocal previous
            if previous is not None:
                await replies.send(self._encode(previous, more=True), hold=True)
            previous = reply

        await session.run(request.command, stream)
        last = encode_reply(None, "", more=False) if previous is None else self._encode(
            previous, more=False)
        await replies.send(last, hold=hold)

    def _encode(self, reply: Reply, *, more: bool) -> bytes:
        """A reply's bytes; those without any output (most writes) are made once."""
        if any(r.response or r.error or r.header is not None or r.tabular is not None
               for r in reply.responses):
            return encode_reply(json_responses(reply), render(reply), more=more)
        key = (tuple(r.host for r in reply.responses), reply.flags, more)
        encoded = self._empty_replies.get(key)
        if encoded is None:
            if len(self._empty_replies) > 256:  # host names or flags that keep changing
                self._empty_replies.clear()
            encoded = encode_reply(json_responses(reply), render(reply), more=more)
            self._empty_replies[key] = encoded
        return encoded

    # -- a pipe attachment ------------------------------------------------------------------

    async def _attach(self, stream: trio.SocketStream, request: Request, leftover: bytes) -> None:
        """One reader and one writer of the pipe until the client's EOF (then drained),
        a refused line, a broken connection, or the end of the pipe."""
        name = request.plumb_pipe
        plumber = self.plumber
        async with plumber.open_reader(name) as reader, trio.open_nursery() as nursery:
            async with plumber.open_writer(name) as writer:
                # The body of the nursery handles its own errors: anything
                # raised here would come out wrapped in an exception group.
                if request.raw:
                    if not await _send_ack(stream):
                        return
                    reader.send_directly(_sender(stream.socket.fileno()))
                nursery.start_soon(_deliver, stream, reader, request.raw, nursery.cancel_scope)
                if request.raw:
                    at_eof = await _take_raw(stream, writer, leftover)
                else:
                    values = JsonFramer(_JSON_LINE_MAX, "message too long", leftover)
                    at_eof = await _take_json(stream, writer, values)
            if at_eof:
                reader.close()  # _deliver sends what is left, then ends the attachment
            else:
                nursery.cancel_scope.cancel()


# -- a command connection's two halves ------------------------------------------------------


# Not a request: no more requests come on this connection (compared by identity).
_END: Final = Request()


class _Requests:
    """A command connection's requests, read and framed ahead of the one being answered
    (at most _AHEAD_REQUESTS or _AHEAD_BYTES of them), and its client's departure."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._framer = RequestFramer()
        self._queue: deque[tuple[Request, int]] = deque()
        self._queued_bytes = 0
        self._arrival = trio.lowlevel.ParkingLot()
        self._room = trio.lowlevel.ParkingLot()
        self.answering = trio.CancelScope()  # cancelled when the client leaves

    def waiting(self) -> bool:
        """Whether more requests wait to be answered."""
        return bool(self._queue)

    def take(self) -> Request | None:
        """The next request, or None if none has come yet."""
        if not self._queue:
            return None
        request, size = self._queue.popleft()
        self._queued_bytes -= size
        self._room.unpark_all()
        return request

    async def wait(self) -> Request:
        while not self._queue:
            await self._arrival.park()
        request = self.take()
        assert request is not None
        return request

    def rest(self) -> bytes:
        return self._framer.rest()

    def _push(self, request: Request, size: int = 0) -> None:
        self._queue.append((request, size))
        self._queued_bytes += size
        self._arrival.unpark_all()

    async def receive(self) -> None:
        """Read, frame and queue requests until a PlumbPipe request (whose bytes
        after it are the attachment's), the end, or the client's departure."""
        framer = self._framer
        try:
            while True:
                before = framer.scanned
                request = framer.next_request()
                if request is None:
                    data = await self._stream.receive_some(READ_SIZE)
                    if not data:
                        break
                    framer.feed(data)
                    continue
                self._push(request, framer.scanned - before)
                if request.plumb_pipe:
                    return
                while len(self._queue) >= _AHEAD_REQUESTS or self._queued_bytes >= _AHEAD_BYTES:
                    await self._room.park()
        except TooLong as error:
            log.info("refusing a request of %d bytes or more", error.length)
            self._push(Request(refusal=str(error)))
            return
        except ProtocolError as error:
            log.info("closing a connection: %s", error)
            self._push(_END)
            return
        except trio.BrokenResourceError:
            self._went_away()
            return
        await self._at_eof()

    async def _at_eof(self) -> None:
        """The client sent its last request. It may still wait for the replies
        (shut down its writing only), or have gone (closed the socket)."""
        self._push(_END)
        fd = self._stream.socket.fileno()
        while True:
            if _hung_up(fd):
                self._went_away()
                return
            await trio.sleep(_HANGUP_POLL)

    def _went_away(self) -> None:
        """Nobody will read the replies: drop what is queued, cancel what runs."""
        self._queue.clear()
        self._queued_bytes = 0
        self._push(_END)
        self.answering.cancel()


class _Stalled(Exception):
    """A client did not take a reply within the patience."""


class _Replies:
    """A command connection's replies.

    A reply goes out at once, unless more requests wait to be answered: then
    it is held, with those that follow, until no request waits, _OUTBOX_MAX
    bytes are held, or _LINGER seconds have passed (`linger`, a task of the
    connection, sees to that), so that a client sending ahead gets its replies
    in a few large writes rather than one each, and no reply waits long behind
    a command that takes its time. Waiting for the client to take them lasts at
    most `patience` seconds.
    """

    def __init__(self, stream: trio.SocketStream, patience: float) -> None:
        self._fd = stream.socket.fileno()
        self._patience = patience
        self._pending = bytearray()
        self._failure: OSError | None = None  # met by `linger`, raised by `flush`
        self._held = trio.lowlevel.ParkingLot()

    async def send(self, reply: bytes, *, hold: bool) -> None:
        if not self._pending and hold:
            self._held.unpark_all()
        self._pending += reply
        if not hold or len(self._pending) > _OUTBOX_MAX:
            await self.flush()

    async def flush(self) -> None:
        """Send what is held, waiting for room at most `patience` seconds."""
        with trio.move_on_after(self._patience) as waited:
            while self._write():
                await trio.lowlevel.wait_writable(self._fd)
        if waited.cancelled_caught:
            raise _Stalled
        if self._failure is not None:
            raise self._failure

    async def linger(self) -> None:
        while True:
            await self._held.park()
            await trio.sleep(_LINGER)
            self._write()

    def _write(self) -> bool:
        """Write what the socket takes now; True if some is left for later."""
        try:
            while self._pending and self._failure is None:
                del self._pending[:os.write(self._fd, self._pending)]
        except BlockingIOError:
            return True
        except OSError as error:  # the client is gone
            self._failure = error
        return False


def _hung_up(fd: int) -> bool:
    """Whether the peer has closed its socket (not merely shut down its writing)."""
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    return any(events & (select.POLLHUP | select.POLLERR) for _, events in poll.poll(0))


# -- the pipe data path -----------------------------------------------------------------------


async def _send_ack(stream: trio.SocketStream) -> bool:
    try:
        await stream.send_all(RAW_ACK)
    except trio.BrokenResourceError:
        return False
    return True


async def _take_raw(stream: trio.SocketStream, writer: Writer, leftover: bytes) -> bool:
    """Client bytes -> pipe; True at the client's EOF, False if the attachment must go.

    An unterminated last line is written only at a clean end: the client shut
    down its writing and is still there for its echo. A client that died
    mid-line (closed, reset) leaves its fragment unwritten.
    """
    lines = RawLines("line too long", skip_newline=True)
    fd = stream.socket.fileno()
    data = leftover  # sent right behind the request
    try:
        while True:
            if data:
                if block := lines.feed(data):
                    await writer.write_lines(block)
                await trio.lowlevel.checkpoint()  # a fair task yields once per read
            data = await _read(fd)
            if not data:
                break
    except TooLong as error:
        _refused(writer, error.length)
        return False
    except ConnectionError:  # reset by a client that died with data unread
        return False
    if _hung_up(fd):
        return False
    await writer.write_lines(lines.final())
    return True


async def _read(fd: int) -> bytes:
    """Up to READ_SIZE bytes (b"" at EOF), waiting only if there are none yet.

    Unlike receive_some, it does not yield after reading: the caller yields
    once the block is routed, so that the readers' tasks send it in the very
    next scheduling round (about 40 us sooner per message at low rates).
    """
    while True:
        try:
            return os.read(fd, READ_SIZE)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(fd)


async def _take_json(stream: trio.SocketStream, writer: Writer, values: JsonFramer) -> bool:
    """minimega's clients: each JSON string one message. Runs of one-line messages
    go to the pipe as one block."""
    try:
        while True:
            if not await _write_json_strings(writer, values):
                return False
            try:
                data = await stream.receive_some(READ_SIZE)
            except trio.BrokenResourceError:
                return True
            if not data:
                return True
            values.feed(data)
    except TooLong as error:
        _refused(writer, error.length)
        return False
    except ProtocolError as error:
        log.info("pipe %s: closing an attachment: %s", writer.pipe_name, error)
        return False


async def _write_json_strings(writer: Writer, values: JsonFramer) -> bool:
    """Write the whole strings received so far; False if one was refused."""
    block = bytearray()
    while (value := values.next_value()) is not None:
        message = decode_message(value)
        if message is None:
            continue
        newline = message.find(b"\n")
        length = len(message) - message.endswith(b"\n")
        if length >= LINE_MAX:
            await writer.write_lines(bytes(block))
            _refused(writer, length)
            return False
        if newline == -1:
            block += message
            block += b"\n"
        elif newline == len(message) - 1:
            block += message
        else:  # inner newlines: one message all the same, as in minimega
            await writer.write_lines(bytes(block))
            block.clear()
            await writer.write_message(message)
    await writer.write_lines(bytes(block))
    return True


def _refused(writer: Writer, length: int) -> None:
    log.warning("pipe %s: a client sent a line of %d bytes or more (the limit is %d); "
                "it is dropped and the client detached", writer.pipe_name, length, LINE_MAX)


def _json_messages(chunk: Chunk) -> bytes:
    """A chunk as minimega sends it to its clients: each message a JSON string."""
    messages = [chunk.data] if chunk.one_message else split_messages(chunk.data)
    return "".join(go_json_string(message.decode("utf-8", "surrogateescape")) + "\n"
                   for message in messages).encode()


def _sender(fd: int) -> Callable[[bytes], int]:
    """What a raw attachment's reader takes straight from the writer's task: the
    bytes the socket has room for, at once."""

    def send_now(data: bytes) -> int:
        try:
            return os.write(fd, data)
        except OSError:  # no room (EAGAIN), or broken: _deliver meets it and says so
            return 0

    return send_now


async def _deliver(stream: trio.SocketStream, reader: Reader, raw: bool,
                   attachment: trio.CancelScope) -> None:
    """Pipe -> client, one send per wake-up; its end (EOF or a dead client) ends the attachment."""
    try:
        async for chunk in reader:
            await stream.send_all(chunk.data if raw else _json_messages(chunk))
    except trio.BrokenResourceError:
        log.info("pipe %s: a client went away", reader.pipe_name)
    attachment.cancel()


def _capacity(error: OSError) -> str:
    """Why accept() failed, with the limit to raise if it is ours."""
    reason = _reason(error)
    if error.errno == errno.EMFILE:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        reason += f" (the limit is {soft}: ulimit -n)"
    return reason


def _reason(error: OSError) -> str:
    """Go's wording of an OS error: strerror in lower case."""
    return (error.strerror or str(error)).lower()
