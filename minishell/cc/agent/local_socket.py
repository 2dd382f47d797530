"""The agent's local socket, `<path>/miniccc`: `-pipe` and `-tag` inside the machine.

The exchange is miniccc's, so its own `miniccc -pipe` and `miniccc -tag` work
against the agent and `minishell-agent -pipe` against a miniccc. Each connection
is a gob stream each way: the client sends an int, MODE_TAG (then two strings,
key and value) or MODE_PIPE (then the pipe's name); after a pipe's name both
sides send strings, each one message with its newline. The connection is one
local reader and one local writer of the pipe: what the client sends goes to the
server (an empty string is skipped), and every message the agent receives for
the pipe comes back, its own included (the server's mode all sends them back).

Where the agent does better than miniccc: a pipe deleted on the server closes
the connections reading it (the client sees EOF and exits 0, where miniccc's
would wait for ever), a client that does not read loses what its queue cannot
hold (counted in the log) rather than wedge the agent, and a message of a line
of LINE_MAX bytes or more closes that one connection.

The clients (`minishell-agent -pipe NAME`, `-tag K V`) are plain blocking code
with no trio: a thread copies stdin to the socket while the main thread copies
the socket to stdout. `-pipe` exits 0 at the end of its stdin, as miniccc's
does, and when the agent closes the connection; unlike miniccc's, it exits 1
with a one-line error when no agent is running, and drops (and reports) a
stdin line of LINE_MAX bytes or more instead of dying.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import stat
import sys
import threading
from typing import Protocol, TypeVar

import trio

from minishell.cc.agent.plumber import LocalPlumber, LocalReader
from minishell.cc.agent.processes import LINE_MAX, go_error_text
from minishell.protocol.gob import INT, RAW_STRING, Decoder, Encoder, GobError, GoType, Limits

logger = logging.getLogger("minishell.cc.agent")
T = TypeVar("T")

SOCKET_NAME = "miniccc"
MODE_TAG = 0
MODE_PIPE = 1
CONNECTIONS_MAX = 256
READ_SIZE = 64 * 1024
# a gob string of a line under LINE_MAX: its bytes, a length, a type id and a frame
LOCAL_LIMITS = Limits(max_message_size=LINE_MAX + 32)


class AgentRunning(Exception):
    """Another agent (or a miniccc) already serves this -path."""


def socket_path(path: str) -> str:
    return os.path.join(path, SOCKET_NAME)


def bind_local_socket(path: str) -> trio.SocketListener:
    """The listening socket; AgentRunning if something answers there already. A socket
    left by an agent that died is replaced."""
    where = socket_path(path)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(where)
    except OSError:
        pass
    else:
        raise AgentRunning(f"an agent is already running on {where}")
    finally:
        probe.close()
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.lstat(where).st_mode):
            os.unlink(where)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(where)
        sock.listen(64)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))


class LocalHost(Protocol):
    """What the local socket needs from the agent."""

    plumber: LocalPlumber

    def add_tag(self, key: str, value: str) -> None: ...

    async def send_pipe_data(self, pipe: str, data: bytes) -> None: ...


async def serve_local_socket(listener: trio.SocketListener, where: str, host: LocalHost) -> None:
    """Serve -pipe and -tag until cancelled; then the socket is closed and removed."""
    try:
        async with trio.open_nursery() as nursery:
            open_connections = 0

            async def serve_one(stream: trio.SocketStream) -> None:
                nonlocal open_connections
                try:
                    await _serve_connection(stream, host)
                finally:
                    open_connections -= 1
                    await trio.aclose_forcefully(stream)

            while True:
                try:
                    stream = await listener.accept()
                except OSError as error:  # out of descriptors: try again shortly
                    logger.error("command socket: %s", go_error_text(error))
                    await trio.sleep(0.1)
                    continue
                if open_connections >= CONNECTIONS_MAX:
                    logger.error("command socket: more than %d connections, one refused",
                                 CONNECTIONS_MAX)
                    await trio.aclose_forcefully(stream)
                    continue
                open_connections += 1
                nursery.start_soon(serve_one, stream)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(where)
        await trio.aclose_forcefully(listener)


class _GobReader:
    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._decoder: Decoder[bytes] = Decoder(RAW_STRING, limits=LOCAL_LIMITS)

    async def next(self, kind: GoType[T]) -> T | None:
        """The next value; None at the end of the stream. GobError on a bad stream."""
        while (value := self._decoder.next_value(kind)) is None:
            data = await self._stream.receive_some(READ_SIZE)
            if not data:
                self._decoder.end_of_stream()
                return None
            self._decoder.feed(data)
        return value


async def _serve_connection(stream: trio.SocketStream, host: LocalHost) -> None:
    values = _GobReader(stream)
    try:
        mode = await values.next(INT)
        if mode == MODE_TAG:
            key, value = await values.next(RAW_STRING), await values.next(RAW_STRING)
            if isinstance(key, bytes) and isinstance(value, bytes):
                logger.debug("adding key/value: %r : %r", key, value)
                host.add_tag(key.decode("utf-8", "surrogateescape"),
                             value.decode("utf-8", "surrogateescape"))
        elif mode == MODE_PIPE:
            name = await values.next(RAW_STRING)
            if isinstance(name, bytes) and name:
                await _serve_pipe(stream, values, host, name.decode("utf-8", "surrogateescape"))
        elif mode is not None:
            logger.error("command socket: unknown mode: %s", mode)
    except GobError as error:
        logger.error("command socket: %s", error)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the client left


async def _serve_pipe(stream: trio.SocketStream, values: _GobReader, host: LocalHost,
                      pipe: str) -> None:
    logger.debug("got pipe: %s", pipe)
    plumber = host.plumber
    reader = plumber.open_reader(pipe)
    plumber.open_writer(pipe)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_to_client, stream, reader, nursery.cancel_scope)
            while (line := await values.next(RAW_STRING)) is not None:
                if isinstance(line, bytes) and line:
                    await host.send_pipe_data(pipe, line)
            nursery.cancel_scope.cancel()
    finally:
        plumber.close_reader(reader)
        plumber.close_writer(pipe)
        if reader.dropped_messages:
            logger.error("%s (a -pipe that did not read)", reader.drop_note())


async def _to_client(stream: trio.SocketStream, reader: LocalReader,
                     connection: trio.CancelScope) -> None:
    encoder = Encoder()
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        while (data := await reader.receive()) is not None:
            await stream.send_all(encoder.encode(RAW_STRING, data))
    connection.cancel()  # the pipe was deleted, or the client left: the connection ends


# --- the clients: no trio, plain blocking calls -------------------------------------------


class ClientError(Exception):
    """One line for the user, exit status 1."""


def _connect(path: str) -> socket.socket:
    where = socket_path(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(where)
    except OSError as error:
        sock.close()
        hint = " (is minishell-agent running?)" if error.errno in (
            errno.ENOENT, errno.ECONNREFUSED) else ""
        raise ClientError(f"cannot connect to {where}: {go_error_text(error)}{hint}") from None
    return sock


def tag(path: str, key: str, value: str) -> None:
    """miniccc -tag: one key and value for the agent's next heartbeat."""
    encoder = Encoder()
    with _connect(path) as sock:
        try:
            sock.sendall(encoder.encode(INT, MODE_TAG) + encoder.encode(RAW_STRING, key.encode())
                         + encoder.encode(RAW_STRING, value.encode()))
        except OSError as error:
            raise ClientError(f"sending the tag: {go_error_text(error)}") from None


def pipe(path: str, name: str) -> int:
    """miniccc -pipe: stdin to the pipe, the pipe to stdout; the exit status."""
    sock = _connect(path)
    encoder = Encoder()
    try:
        sock.sendall(encoder.encode(INT, MODE_PIPE) + encoder.encode(RAW_STRING, name.encode()))
    except OSError as error:
        sock.close()
        raise ClientError(f"cannot attach to pipe {name}: {go_error_text(error)}") from None
    stdin_done = threading.Event()
    threading.Thread(target=_copy_stdin, args=(sock, encoder, stdin_done), daemon=True).start()
    decoder: Decoder[bytes] = Decoder(RAW_STRING, limits=LOCAL_LIMITS)
    try:
        while data := sock.recv(READ_SIZE):
            decoder.feed(data)
            for message in decoder:
                _write_stdout(message)
    except BrokenPipeError:
        return 141  # our reader left: say nothing more
    except GobError as error:
        raise ClientError(f"bad stream from the agent: {error}") from None
    except OSError as error:
        if not stdin_done.is_set():
            raise ClientError(f"connection to the agent lost: {go_error_text(error)}") from None
    finally:
        sock.close()
    return 0


def _write_stdout(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]


def _copy_stdin(sock: socket.socket, encoder: Encoder, done: threading.Event) -> None:
    """Each line of stdin as one string; at EOF, the main thread is woken to exit 0."""
    held = bytearray()
    skipping = False  # inside a line already reported as too long
    try:
        while data := os.read(0, READ_SIZE):
            start = 0
            while (end := data.find(b"\n", start)) >= 0:
                if not skipping:
                    held += data[start:end + 1]
                    if len(held) > LINE_MAX:
                        _too_long()
                    else:
                        sock.sendall(encoder.encode(RAW_STRING, bytes(held)))
                held.clear()
                skipping = False
                start = end + 1
            if not skipping:
                held += data[start:]
                if len(held) >= LINE_MAX:
                    _too_long()
                    held.clear()
                    skipping = True
        if held and not skipping:
            sock.sendall(encoder.encode(RAW_STRING, bytes(held) + b"\n"))
    except OSError:
        pass  # the connection broke, or stdin did: the main thread ends either way
    done.set()
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _too_long() -> None:
    with contextlib.suppress(OSError):
        sys.stderr.write(f"minishell-agent: a line of {LINE_MAX} bytes or more on stdin "
                         "was dropped\n")
        sys.stderr.flush()
