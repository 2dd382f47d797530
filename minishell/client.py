"""The control socket's clients: `minishell -pipe`, `-e` and `-attach`.

The bytes they exchange are minishell.protocol.control's. `-pipe` and `-e`
are timed from the shell (README: at most 12 ms each), so every import here
is weighed: `_socket` rather than socket (8 ms more), `_thread` rather than
threading, the C half of json (`_json`) because json imports re (another
8 ms), and no `from __future__ import annotations` (the first import of a
stdlib .py file lists the stdlib folder: 0.3 ms). prompt_toolkit is for
`-attach` on a terminal, which is interactive.
"""

import _socket
import _thread
import os
import sys

from minishell.protocol.control import (
    ACK_TIMEOUT,
    DEFAULT_NAMESPACE,
    LINE_TOO_LONG,
    NOT_RAW,
    RAW_ACK,
    STDIN_ERROR_ENV,
    ProtocolError,
    RawLines,
    Reply,
    ReplyReader,
    TooLong,
    UnexpectedReply,
    encode_pipe_request,
    encode_request,
    raw_ack_complete,
    socket_path,
)

# typing imports re: mypy honours a TYPE_CHECKING of our own.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

_CHUNK = 1 << 20  # never more than LINE_MAX: see RawLines
# Buffers start this small and grow to _CHUNK once a read fills them: sparse
# traffic and idle attachments touch (and zero) no more than they use.
_FIRST_CHUNK = 1 << 16
# Commands `-attach` sends ahead of their replies, at most.
_WINDOW = 256


class ClientError(Exception):
    """A failure the user sees as one line `minishell: <message>`, exit status 1."""


def full_pipe_name(name: str) -> str:
    """minimega's -pipe: a name without a namespace is in `minimega`."""
    return name if "//" in name else f"{DEFAULT_NAMESPACE}//{name}"


# Inside double quotes minicli's lexer knows only \n \t \r \\ \" \' \#, and
# takes any other character as it stands.
_LEXER_ESCAPES = {ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\t"): "\\t",
                  ord("\r"): "\\r"}


def quote_join(words: "Sequence[str]") -> str:
    """minimega's quoteJoin: words holding Go whitespace are quoted, the others go
    as they are. minimega quotes with strconv.Quote, whose \\x01 and \\u2028 its own
    lexer refuses; these quotes read back as the word, whatever it holds."""
    from minishell.gostr import GO_SPACE

    return " ".join(
        f'"{word.translate(_LEXER_ESCAPES)}"' if any(char in GO_SPACE for char in word)
        else word for word in words)


def with_namespace(namespace: str, command: str) -> str:
    """What minimega's -namespace does to -e and -attach commands."""
    if not namespace:
        return command
    return f"namespace {quote_join([namespace])} {command}"


def _report(message: str) -> int:
    try:  # noqa: SIM105 (contextlib would cost its import)
        sys.stdout.flush()
    except OSError:  # what stdout could not take is lost; the message says why
        pass
    os.write(2, f"minishell: {message}\n".encode(errors="replace"))
    return 1


def _reason(error: OSError) -> str:
    """Go's wording of a system error: lower case (`connect: connection refused`)."""
    return os.strerror(error.errno).lower() if error.errno else str(error)


def connect(path: str) -> _socket.socket:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as error:
        sock.close()
        raise ClientError(f"cannot connect to {path}: {_reason(error)}") from None
    return sock


# stdin and stdout -----------------------------------------------------------------


class _StdinFailure(Exception):
    pass


def _stdin_reader() -> "Iterator[bytes | memoryview]":
    """stdin in blocks of whole lines, then an unterminated last line as it is;
    _StdinFailure if a line reaches LINE_MAX or stdin fails.

    stdin is read into one buffer, kept: os.read allocates its whole size for
    every read, which for a big size is an mmap and an munmap per read,
    measured at tens of us per message at low rates. A block may be a view of
    that buffer: use it before taking the next.
    """
    error = os.environ.get(STDIN_ERROR_ENV)
    if error:  # the C launcher could not give us stdin: it said why
        raise _StdinFailure(f"read stdin: {error}")
    lines = RawLines(LINE_TOO_LONG)
    buffer = bytearray(_FIRST_CHUNK)
    try:
        while count := os.readv(0, (buffer,)):
            if block := lines.feed_buffer(buffer, count):
                yield block
            if count == len(buffer) < _CHUNK:
                buffer = bytearray(_CHUNK)
    except OSError as failure:
        raise _StdinFailure(f"read stdin: {_reason(failure)}") from None
    except TooLong as failure:
        raise _StdinFailure(str(failure)) from None
    yield lines.partial


def _write_all(data: bytes | memoryview, fd: int = 1) -> None:
    view = memoryview(data)
    with _StdoutFailures():
        while view:
            view = view[os.write(fd, view):]


class _StdoutFailures:  # a context manager: contextlib would cost its import
    """A failed write to stdout as a ClientError, but for a reader that left
    (BrokenPipeError), which ends a client quietly with status 141."""

    def __enter__(self) -> None:
        pass

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: object) -> None:
        if isinstance(error, OSError) and not isinstance(error, BrokenPipeError):
            raise ClientError(f"write stdout: {_reason(error)}") from None


# -pipe -----------------------------------------------------------------------


def pipe(base: str, name: str) -> int:
    """Attach stdin and stdout to the pipe NAME until stdin ends; the exit status."""
    path = socket_path(base)
    try:
        sock = connect(path)
        leftover = open_raw_pipe(sock, path, full_pipe_name(name))
    except ClientError as error:
        return _report(str(error))
    return PipeAttachment(sock, path).run(leftover)


def open_raw_pipe(sock: _socket.socket, path: str, full_name: str,
                  ack_timeout: float = ACK_TIMEOUT) -> bytes:
    """Ask for a raw attachment; return what arrived after the server's ack."""
    received = b""
    try:
        sock.sendall(encode_pipe_request(full_name))
        sock.settimeout(ack_timeout)
        while not raw_ack_complete(received):
            data = sock.recv(1 << 16)
            if not data:
                raise ClientError(f"connection to {path} lost")
            received += data
    except ProtocolError as error:
        raise ClientError(str(error)) from None
    except TimeoutError:
        raise ClientError(NOT_RAW) from None
    except OSError:
        raise ClientError(f"connection to {path} lost") from None
    sock.settimeout(None)
    return received[len(RAW_ACK):]


class PipeAttachment:
    """A raw attachment: stdin goes to the socket on a thread of its own, and
    the main thread copies the socket to stdout until the server closes.

    The main thread is the one that ends the process: it is the one that
    Ctrl-C reaches, and the stdin thread may stay blocked in read() for ever.
    """

    def __init__(self, sock: _socket.socket, path: str) -> None:
        self._sock = sock
        self._path = path
        self._stdin_done = False
        self._failure: str | None = None

    def run(self, leftover: bytes) -> int:
        _thread.start_new_thread(self.copy_stdin, ())
        try:
            _write_all(leftover)
            buffer = bytearray(_FIRST_CHUNK)
            while count := self._sock.recv_into(buffer):
                with memoryview(buffer) as view:
                    _write_all(view[:count])
                if count == len(buffer) < _CHUNK:
                    buffer = bytearray(_CHUNK)
        except BrokenPipeError:  # our stdout's reader left: say nothing more
            return 141
        except ConnectionError:
            pass  # reset: the daemon died with our bytes unread
        except ClientError as error:
            return _report(str(error))
        if self._failure is not None:
            return _report(self._failure)
        if self._stdin_done:
            return 0
        return _report(f"connection to {self._path} lost")

    def copy_stdin(self) -> None:
        """Send stdin in blocks of whole lines; a last line without its newline
        goes at the end, and the server adds the newline. Nothing of a line of
        LINE_MAX bytes or more is sent."""
        try:
            for block in _stdin_reader():
                self._sock.sendall(block)
        except _StdinFailure as failure:
            self._failure = str(failure)
        except OSError:
            return  # the connection broke: the main thread sees it too
        else:
            self._stdin_done = True
        # A failure also stops receiving, which wakes the main thread.
        how = _socket.SHUT_WR if self._failure is None else _socket.SHUT_RDWR
        try:  # noqa: SIM105 (contextlib would cost its import)
            self._sock.shutdown(how)
        except OSError:
            pass


# -e and -attach: JSON requests and replies -------------------------------------


class Connection:
    """A command connection: JSON requests out, newline-terminated JSON replies in."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._sock = connect(path)
        self._replies = ReplyReader()

    def close(self) -> None:
        self._sock.close()

    def command(self, line: str) -> "Iterator[Reply]":
        """Every reply to one command, up to the one without More."""
        self.send("Command", line)
        return self.replies()

    def replies(self) -> "Iterator[Reply]":
        """The replies to the next command sent and not yet answered."""
        while True:
            reply = self._receive()
            yield reply
            if not reply.more:
                return

    def suggest(self, text: str) -> list[str]:
        self.send("Suggest", text)
        return self._receive().suggest

    def send(self, field: str, value: str) -> None:
        self.send_requests(encode_request(field, value))

    def send_requests(self, requests: bytes | bytearray) -> None:
        try:
            self._sock.sendall(requests)
        except OSError:
            raise ClientError(f"connection to {self.path} lost") from None

    def _receive(self) -> Reply:
        try:
            while (reply := self._replies.next_reply()) is None:
                try:
                    data = self._sock.recv(1 << 16)
                except OSError:
                    data = b""
                if not data:
                    raise ClientError(f"connection to {self.path} lost")
                self._replies.feed(data)
        except UnexpectedReply as error:
            raise ClientError(f"unexpected reply from {self.path}: {error.excerpt}") from None
        return reply


def show(reply: Reply) -> bool:
    """Print a reply as minimega's clients do; True if it carried an error."""
    if reply.rendered:
        _write_all(f"{reply.rendered}\n".encode())
    if not reply.errors:
        return False
    from minishell.gostr import trim_space

    errors = "\n".join(f"Error ({host}): {error}" for host, error in reply.errors)
    os.write(2, f"{trim_space(errors)}\n".encode())
    return True


def show_all(replies: "Iterator[Reply]") -> bool:
    failed = False
    for reply in replies:
        failed |= show(reply)
    return failed


def execute(base: str, namespace: str, words: "Sequence[str]") -> int:
    """minimega -e: one command on the running instance; 1 if it failed."""
    # A single word goes as it is (minimega's main.go), quotes and all.
    command = words[0] if len(words) == 1 else quote_join(words)
    try:
        connection = Connection(socket_path(base))
        try:
            if not command:  # minimega sends nothing either
                return 0
            return 1 if show_all(connection.command(with_namespace(namespace, command))) else 0
        finally:
            connection.close()
    except ClientError as error:
        return _report(str(error))


# -attach ------------------------------------------------------------------------

ATTACH_BANNER = (
    "CAUTION: calling 'quit' will cause the minishell instance to exit\n"
    "use 'disconnect' or ^d to exit just this command line\n"
)
QUIT_CAUTION = (
    "CAUTION: calling 'quit' will cause the minishell instance to exit\n"
    "If you really want to stop the minishell instance, enter 'quit' again\n"
)
# What a line of -attach asks for (_AttachedLines.decide), and a failure.
_SKIP, _LEAVE, _CAUTION, _RUN, _QUIT, _FAIL = range(6)


class _AttachedLines:
    """minimega's attach loop: blank lines are skipped, `disconnect` leaves, `quit`
    must be said twice in a row, and then leaves."""

    def __init__(self, namespace: str) -> None:
        from minishell.gostr import trim_space

        self._namespace = namespace
        self._quit_warned = False
        self._trim_space = trim_space

    def decide(self, text: str) -> tuple[int, str]:
        """What to do with a line: one of _SKIP, _LEAVE, _CAUTION, or _RUN and _QUIT
        with the command to send."""
        line = self._trim_space(text)
        if not line:
            return _SKIP, ""
        if line == "disconnect":
            return _LEAVE, ""
        quitting = line in ("quit", "exit")  # exit: minishell's own word for quit
        if quitting and not self._quit_warned:
            self._quit_warned = True
            return _CAUTION, ""
        self._quit_warned = False
        return _QUIT if quitting else _RUN, with_namespace(self._namespace, line)


def attach(base: str, namespace: str) -> int:
    """minimega -attach: a prompt whose lines run on the running instance."""
    try:
        connection = Connection(socket_path(base))
        try:
            if not os.isatty(0):
                return _AttachedScript(connection, _AttachedLines(namespace)).run()
            _prompt(connection, namespace, _AttachedLines(namespace))
            return 0
        finally:
            connection.close()
    except ClientError as error:
        return _report(str(error))


class _AttachedScript:
    """-attach without a terminal: stdin's lines, sent ahead of their replies.

    A thread reads stdin and sends the commands of each read together, at most
    _WINDOW of them ahead of their replies; the main thread takes what the
    thread did, in order, and shows the replies, so that the output is what one
    command at a time would print. The main thread is the one that ends the
    process (Ctrl-C reaches it), as for -pipe.
    """

    def __init__(self, connection: Connection, lines: _AttachedLines) -> None:
        import _queue

        self._connection = connection
        self._lines = lines
        self._done: _queue.SimpleQueue[tuple[int, str]] = _queue.SimpleQueue()
        self._room: _queue.SimpleQueue[None] = _queue.SimpleQueue()
        for _ in range(_WINDOW):
            self._room.put(None)

    def run(self) -> int:
        _thread.start_new_thread(self._send, ())
        failed = False
        while True:
            what, text = self._done.get()
            if what == _CAUTION:
                _write_all(QUIT_CAUTION.encode())
            elif what in (_RUN, _QUIT):
                try:
                    failed |= show_all(self._connection.replies())
                except ClientError:
                    if what == _QUIT:  # the instance may close before it answers
                        break
                    raise
                self._room.put(None)
                if what == _QUIT:
                    break
            elif what == _LEAVE:
                break
            else:  # a failure, shown where it happened among the output
                return _report(text)
        return 1 if failed else 0

    def _send(self) -> None:
        done, room, connection = self._done, self._room, self._connection
        requests = bytearray()  # sent before any wait: their replies may be what it waits for
        end = (_LEAVE, "")
        try:
            try:
                for what, command in self._decided():
                    if what == _SKIP or (what in (_RUN, _QUIT) and room.empty()):
                        connection.send_requests(requests)
                        requests.clear()
                    if what in (_RUN, _QUIT):
                        room.get()
                        requests += encode_request("Command", command)
                    if what != _SKIP:
                        done.put((what, command))
                    if what in (_LEAVE, _QUIT):
                        break
            except _StdinFailure as failure:
                end = (_FAIL, str(failure))
            connection.send_requests(requests)  # what came before the end, or a failure
        except ClientError as failure:  # the main thread meets it too, in its turn
            end = (_FAIL, str(failure))
        done.put(end)

    def _decided(self) -> "Iterator[tuple[int, str]]":
        """What each line of stdin asks for, and (_SKIP, "") after each read's lines."""
        for block in _stdin_reader():
            for line in bytes(block).decode("utf-8", "surrogateescape").split("\n"):
                what, command = self._lines.decide(line)
                if what != _SKIP:
                    yield what, command
            yield _SKIP, ""


def _prompt(connection: Connection, namespace: str, lines: _AttachedLines) -> None:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.completion import CompleteEvent, Completer, Completion
    from prompt_toolkit.document import Document
    from prompt_toolkit.history import InMemoryHistory

    class SuggestCompleter(Completer):
        """Candidates for the word under the cursor, from the instance (Suggest)."""

        def get_completions(
            self, document: Document, complete_event: CompleteEvent
        ) -> "Iterator[Completion]":
            text = document.text_before_cursor
            if not text:
                return
            word = document.get_word_before_cursor(WORD=True)
            try:
                candidates = connection.suggest(text)
            except ClientError:  # the next command says so
                return
            for candidate in candidates:
                yield Completion(candidate, start_position=-len(word))

    session: PromptSession[str] = PromptSession(
        history=InMemoryHistory(),
        completer=SuggestCompleter(),
        complete_while_typing=False,  # Tab only, as at the local prompt
        auto_suggest=AutoSuggestFromHistory(),
    )
    message = f"minimega:{connection.path}$ "
    if namespace:
        message = f"minimega:{connection.path}[{namespace}]$ "
    sys.stdout.write(ATTACH_BANNER + "\n")
    sys.stdout.flush()
    while True:
        try:
            text = session.prompt(message)
        except KeyboardInterrupt:  # Ctrl-C at the prompt drops the line
            continue
        except EOFError:
            return
        # A bracketed paste of several lines arrives as one text.
        for line in text.split("\n"):
            what, command = lines.decide(line)
            if what == _CAUTION:
                _write_all(QUIT_CAUTION.encode())
            elif what in (_RUN, _QUIT):
                try:
                    show_all(connection.command(command))
                except ClientError:
                    if what == _QUIT:  # the instance may close before it answers
                        return
                    raise
            if what in (_LEAVE, _QUIT):
                return
