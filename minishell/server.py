"""The control socket: minimega's wire protocol on `<base>/minimega`, so that
`minishell -pipe/-e/-attach`, minimega's own clients and its Python bindings
reach a running minishell.

Each connection is a stream of JSON requests answered one by one (commands go
through `Session.run_line`, like the prompt's), until a `PlumbPipe` request
turns it into a pipe attachment for good: one reader and one writer of the
pipe. minimega's clients then exchange a JSON string per message; minishell's
client asks for `Raw` and both directions become plain newline-terminated
bytes, moved in blocks: 256 KiB reads split at the last newline, one
`Writer.write_lines` per block, one `send_all` per reader wake-up; a raw
reader waiting for more takes small blocks straight from the writer's task
(`Reader.send_directly`), which saves a scheduling round per sparse message.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import trio

from minishell.commands.registry import registry
from minishell.plumber import Chunk, Reader, Writer
from minishell.plumber.pipe import split_messages
from minishell.render import json_responses, json_string, render
from minishell.reply import Reply
from minishell.session import Session

log = logging.getLogger("minishell.server")

SOCKET_NAME = "minimega"  # the name minimega's own clients dial in their base folder
READ_SIZE = 256 * 1024
LINE_MAX = 1024 * 1024  # a line (newline excluded) this long or longer is refused
RAW_ACK = b'{"Raw":true}\n'
# The JSON encoding of a line under LINE_MAX is at most 6 bytes per byte (\u00XX), plus quotes.
_JSON_LINE_MAX = 6 * LINE_MAX + 2
_PROBE_TIMEOUT = 1.0
_NEITHER = "must specify either command or suggest"


class ServeError(Exception):
    """The socket cannot be served; str(error) is the one line to show."""


def socket_path(base: str) -> str:
    return os.path.join(base, SOCKET_NAME)


class ControlServer:
    """Serves one Session on a Unix socket from `run` until `close` (or cancellation)."""

    def __init__(self, session: Session, path: str) -> None:
        self.session = session
        self.path = path
        self._scope = trio.CancelScope()
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the socket we bound

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
                    await trio.serve_listeners(self._handle, [trio.SocketListener(sock)])
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

    # -- one connection ---------------------------------------------------------------------

    async def _handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            try:
                attachment = await self._converse(stream)
                if attachment is not None:
                    await self._attach(stream, *attachment)
            except trio.BrokenResourceError:
                log.info("client disconnected without waiting for its answer")
            except _ProtocolError as error:
                log.info("closing a connection: %s", error)
            except Exception:
                # A bug must not take the daemon, its pipes and its other clients down.
                log.exception("unexpected error on the control socket")

    async def _converse(self, stream: trio.SocketStream) -> tuple[_Request, bytes] | None:
        """Answer requests until EOF (None), or until one asks for a pipe: that request
        and the bytes that came after it."""
        requests = _JsonValues(stream)
        while True:
            value = requests.next_value()
            if value is _INCOMPLETE:
                if not await requests.receive():
                    return None
                continue
            request = _request(value)
            if request.plumb_pipe:
                return request, requests.rest()
            await stream.send_all(await self._answer(request))

    async def _answer(self, request: _Request) -> bytes:
        session = self.session
        if (request.command == "") == (request.suggest == ""):
            return _reply(session.error_reply(_NEITHER), more=False)
        if request.suggest:
            return _suggest_reply(registry().complete(request.suggest, session))
        replies = await session.run_line(request.command)
        if not replies:
            return _reply(None, more=False)
        last = len(replies) - 1
        return b"".join(_reply(reply, more=index != last) for index, reply in enumerate(replies))

    # -- a pipe attachment ------------------------------------------------------------------

    async def _attach(self, stream: trio.SocketStream, request: _Request, leftover: bytes) -> None:
        """One reader and one writer of the pipe until the client's EOF (then drained),
        a refused line, a broken connection, or the end of the pipe."""
        name = request.plumb_pipe
        plumber = self.session.plumber
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
                    at_eof = await _take_json(stream, writer, _JsonValues(stream, leftover))
            if at_eof:
                reader.close()  # _deliver sends what is left, then ends the attachment
            else:
                nursery.cancel_scope.cancel()


# -- replies ----------------------------------------------------------------------------------


def _reply(reply: Reply | None, *, more: bool) -> bytes:
    """miniclient.Response as Go's json.Encoder writes it, newline included."""
    if reply is None:
        resp, rendered = "null", '""'
    else:
        resp, rendered = json_responses(reply), json_string(render(reply))
    more_text = "true" if more else "false"
    return (f'{{"Resp":{resp},"Rendered":{rendered},"More":{more_text},"Status":false}}\n'
            .encode())


def _suggest_reply(candidates: list[str]) -> bytes:
    if not candidates:  # `json:",omitempty"`
        return b'{"Resp":null,"Rendered":"","More":false,"Status":false}\n'
    suggest = ",".join(json_string(candidate) for candidate in candidates)
    return (f'{{"Resp":null,"Rendered":"","More":false,"Status":false,"Suggest":[{suggest}]}}\n'
            .encode())


# -- requests ---------------------------------------------------------------------------------


class _ProtocolError(Exception):
    """The client broke the protocol; the connection is closed, as minimega does."""


@dataclass(frozen=True, slots=True)
class _Request:
    command: str = ""
    suggest: str = ""
    plumb_pipe: str = ""
    raw: bool = False


# Go's decoder matches keys to field names case-insensitively.
_FIELDS: Final = {"command": "command", "suggest": "suggest", "plumbpipe": "plumb_pipe",
                  "raw": "raw"}


def _request(value: object) -> _Request:
    """A decoded JSON value as Go decodes it into miniclient.Request (plus `Raw`)."""
    if value is None:  # null leaves every field empty
        return _Request()
    if not isinstance(value, dict):
        raise _ProtocolError(f"a request must be a JSON object, not {type(value).__name__}")
    fields: dict[str, str | bool] = {}
    for key, item in value.items():
        field = _FIELDS.get(key.lower())
        if field is None or item is None:
            continue
        if not isinstance(item, bool if field == "raw" else str):
            raise _ProtocolError(f"bad type for request field {key}")
        fields[field] = item
    return _Request(**fields)  # type: ignore[arg-type]


class _Incomplete:
    """The buffer does not hold a whole JSON value yet."""


_INCOMPLETE: Final = _Incomplete()

_SPACE = re.compile(rb"[ \t\r\n]*")
_STRUCTURE = re.compile(rb'["{}\[\]]')
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # after the opening quote
_SCALAR = re.compile(rb'[^ \t\r\n,:{}\[\]"]*')


def _value_end(buffer: bytearray, start: int) -> int | None:
    """Where the JSON value at `start` (not whitespace) ends; None if it is not all there.

    Only the value's extent is found here; json.loads then checks it.
    """
    first = buffer[start]
    if first == ord('"'):
        string = _STRING_REST.match(buffer, start + 1)
        return string.end() if string else None
    if first in b"{[":
        depth = 0
        position = start
        while (found := _STRUCTURE.search(buffer, position)) is not None:
            char = buffer[found.start()]
            if char == ord('"'):
                string = _STRING_REST.match(buffer, found.end())
                if string is None:
                    return None
                position = string.end()
                continue
            depth += 1 if char in b"{[" else -1
            position = found.end()
            if depth == 0:
                return position
        return None
    end = _SCALAR.match(buffer, start).end()  # type: ignore[union-attr]
    if end == start:
        raise _ProtocolError(f"invalid character {chr(first)!r} in the request stream")
    return end if end < len(buffer) else None  # a number goes on until a delimiter


class _JsonValues:
    """The JSON values a connection sends, each decoded as soon as it is whole.

    Go's json.Encoder ends each value with a newline, but Go's decoder needs
    none (minimega's Python bindings send none), so values are framed by
    their own syntax.
    """

    __slots__ = ("_buffer", "_start", "_stream")

    def __init__(self, stream: trio.SocketStream, buffer: bytes = b"") -> None:
        self._stream = stream
        self._buffer = bytearray(buffer)
        self._start = 0

    async def receive(self) -> bool:
        """Read more; False at EOF (or when the connection broke)."""
        try:
            data = await self._stream.receive_some(READ_SIZE)
        except trio.BrokenResourceError:
            return False
        if not data:
            return False
        del self._buffer[:self._start]
        self._start = 0
        self._buffer += data
        return True

    def pending(self) -> int:
        """How many bytes wait for the rest of their value."""
        return len(self._buffer) - self._start

    def next_value(self) -> object:
        """The next whole value, or _INCOMPLETE."""
        buffer = self._buffer
        start = _SPACE.match(buffer, self._start).end()  # type: ignore[union-attr]
        self._start = start
        if start == len(buffer):
            return _INCOMPLETE
        end = _value_end(buffer, start)
        if end is None:
            return _INCOMPLETE
        # Go replaces invalid UTF-8 with U+FFFD when it decodes.
        text = buffer[start:end].decode("utf-8", "replace")
        self._start = end
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as error:
            raise _ProtocolError(f"invalid JSON: {error}") from None

    def rest(self) -> bytes:
        """What follows the last value taken: the start of a raw pipe stream."""
        return bytes(self._buffer[self._start:])


# -- the pipe data path -----------------------------------------------------------------------


class _LineTooLong(Exception):
    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length


class _RawLines:
    """Splits a raw byte stream into blocks of complete lines, checking their length.

    It is fed reads of at most READ_SIZE bytes, less than LINE_MAX: a line can
    only reach LINE_MAX by spanning reads, so only the line carried over from
    earlier reads is measured, never the lines inside one read.
    """

    __slots__ = ("_partial", "_skip_newline")

    def __init__(self) -> None:
        self._partial = b""
        # The newline that ends the `PlumbPipe` request, which may come later.
        self._skip_newline = True

    def feed(self, data: bytes) -> bytes:
        """The complete lines that `data` finishes (b"" if none); raises _LineTooLong."""
        if self._skip_newline:
            self._skip_newline = False
            if data.startswith(b"\n"):
                data = data[1:]
        last = data.rfind(b"\n")
        partial = self._partial
        if last < 0:
            partial += data
            if len(partial) >= LINE_MAX:
                raise _LineTooLong(len(partial))
            self._partial = partial
            return b""
        if partial:
            first = len(partial) + data.find(b"\n")
            if first >= LINE_MAX:
                raise _LineTooLong(first)
            block = b"".join((partial, memoryview(data)[:last + 1]))  # one copy, not two
        else:
            block = data if last == len(data) - 1 else data[:last + 1]
        self._partial = data[last + 1:]
        return block

    def final(self) -> bytes:
        """At EOF: an unterminated last line, completed."""
        return self._partial + b"\n" if self._partial else b""


async def _send_ack(stream: trio.SocketStream) -> bool:
    try:
        await stream.send_all(RAW_ACK)
    except trio.BrokenResourceError:
        return False
    return True


async def _take_raw(stream: trio.SocketStream, writer: Writer, leftover: bytes) -> bool:
    """Client bytes -> pipe; True at the client's EOF, False if the attachment must go."""
    lines = _RawLines()
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
    except _LineTooLong as error:
        _refused(writer, error.length)
        return False
    except ConnectionError:  # reset by a client that died with data unread
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


def _message(value: object) -> bytes | None:
    """A JSON-strings pipe message as bytes; None when there is nothing to write."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _ProtocolError("a pipe attachment sends JSON strings")
    try:
        return value.encode()
    except UnicodeEncodeError:  # a lone surrogate escape, which Go decodes as U+FFFD
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()


async def _take_json(stream: trio.SocketStream, writer: Writer, values: _JsonValues) -> bool:
    """minimega's clients: each JSON string one message. Runs of one-line messages
    go to the pipe as one block."""
    try:
        while True:
            if not await _write_json_strings(writer, values):
                return False
            if values.pending() > _JSON_LINE_MAX:
                _refused(writer, values.pending())
                return False
            if not await values.receive():
                return True
    except _ProtocolError as error:
        log.info("pipe %s: closing an attachment: %s", writer.pipe_name, error)
        return False


async def _write_json_strings(writer: Writer, values: _JsonValues) -> bool:
    """Write the whole strings received so far; False if one was refused."""
    block = bytearray()
    while (value := values.next_value()) is not _INCOMPLETE:
        message = _message(value)
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
    return "".join(json_string(message.decode("utf-8", "surrogateescape")) + "\n"
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


def _reason(error: OSError) -> str:
    """Go's wording of an OS error: strerror in lower case."""
    return (error.strerror or str(error)).lower()
