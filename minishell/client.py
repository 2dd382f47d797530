"""The control socket's clients: `minishell -pipe`, `-e` and `-attach`.

`-pipe` and `-e` are timed from the shell (README: at most 12 ms each), so
every import here is weighed: `_socket` rather than socket (8 ms more),
`_thread` rather than threading, the C half of json (`_json`) because json
imports re (another 8 ms), and no `from __future__ import annotations` (the
first import of a stdlib .py file lists the stdlib folder: 0.3 ms).
`-pipe` loads neither `_json` nor `gostr`; prompt_toolkit is for `-attach`,
which is interactive.
"""

import _socket
import _thread
import os
import sys

# typing imports re: mypy honours a TYPE_CHECKING of our own.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

DEFAULT_NAMESPACE = "minimega"
# minimega's TOKEN_MAX: a line this long (without its newline) is refused.
LINE_MAX = 1 << 20
# How long -pipe waits for the server's `{"Raw":true}`: a minishell answers at
# once; a real minimega never does (it ignores the Raw field).
ACK_TIMEOUT = 5.0
RAW_ACK = b'{"Raw":true}\n'
NOT_RAW = "the server does not speak minishell's raw pipe protocol"
_CHUNK = 1 << 20  # never more than LINE_MAX: see PipeAttachment._send_lines
# Buffers start this small and grow to _CHUNK once a read fills them: sparse
# traffic and idle attachments touch (and zero) no more than they use.
_FIRST_CHUNK = 1 << 16


class ClientError(Exception):
    """A failure the user sees as one line `minishell: <message>`, exit status 1."""


def socket_path(base: str) -> str:
    return os.path.join(base, "minimega")


def full_pipe_name(name: str) -> str:
    """minimega's -pipe: a name without a namespace is in `minimega`."""
    return name if "//" in name else f"{DEFAULT_NAMESPACE}//{name}"


def quote_join(words: "Sequence[str]") -> str:
    """minimega's quoteJoin: words holding Go whitespace are strconv.Quote'd."""
    from minishell.gostr import GO_SPACE, quote

    return " ".join(
        quote(word) if any(char in GO_SPACE for char in word) else word for word in words)


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
        sock.sendall(b'{"PlumbPipe":%s,"Raw":true}\n' % json_string(full_name).encode())
        sock.settimeout(ack_timeout)
        while len(received) < len(RAW_ACK):
            data = sock.recv(1 << 16)
            if not data:
                raise ClientError(f"connection to {path} lost")
            received += data
            if not RAW_ACK.startswith(received[: len(RAW_ACK)]):
                raise ClientError(NOT_RAW)
    except TimeoutError:
        raise ClientError(NOT_RAW) from None
    except OSError:
        raise ClientError(f"connection to {path} lost") from None
    sock.settimeout(None)
    return received[len(RAW_ACK):]


def json_string(text: str) -> str:
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'  # most pipe names: no need to load _json
    import _json

    return str(_json.encode_basestring_ascii(text))


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
        try:
            self._send_lines()
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

    def _send_lines(self) -> None:
        """Send stdin in whole chunks, holding back a line until its newline
        arrives, so that nothing of a line of LINE_MAX bytes or more is sent.

        Only a line that spans reads needs counting: one inside a read of at
        most _CHUNK bytes is shorter than LINE_MAX.

        stdin is read into one buffer, kept: os.read allocates its whole size
        for every read, which for a big size is an mmap and an munmap per
        read, measured at tens of us per message at low rates.
        """
        sock = self._sock
        buffer = bytearray(_FIRST_CHUNK)
        held = bytearray()  # the start of a line whose newline has not come
        while count := _read_stdin(buffer):
            with memoryview(buffer) as view:
                last = buffer.rfind(b"\n", 0, count)
                if last < 0:
                    held += view[:count]
                    if len(held) >= LINE_MAX:
                        raise _StdinFailure("line longer than 1 MiB on stdin")
                else:
                    if held:
                        if len(held) + buffer.find(b"\n", 0, count) >= LINE_MAX:
                            raise _StdinFailure("line longer than 1 MiB on stdin")
                        sock.sendall(held)
                    sock.sendall(view[: last + 1])
                    held = bytearray(view[last + 1: count])
            if count == len(buffer) < _CHUNK:
                buffer = bytearray(_CHUNK)
        if held:  # a last line without its newline: the server adds it
            sock.sendall(held)


class _StdinFailure(Exception):
    pass


def _read_stdin(buffer: bytearray) -> int:
    try:
        return os.readv(0, (buffer,))
    except OSError as error:
        raise _StdinFailure(f"read stdin: {_reason(error)}") from None


def _write_all(data: bytes | memoryview) -> None:
    view = memoryview(data)
    with _StdoutFailures():
        while view:
            view = view[os.write(1, view):]


class _StdoutFailures:  # a context manager: contextlib would cost its import
    """A failed write to stdout as a ClientError, but for a reader that left
    (BrokenPipeError), which ends a client quietly with status 141."""

    def __enter__(self) -> None:
        pass

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: object) -> None:
        if isinstance(error, OSError) and not isinstance(error, BrokenPipeError):
            raise ClientError(f"write stdout: {_reason(error)}") from None


# -e and -attach: JSON requests and replies -------------------------------------


class _JsonOptions:
    """What the C scanner of json reads from its JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float


Reply = dict[str, object]


class Connection:
    """A command connection: JSON requests out, newline-terminated JSON replies in."""

    def __init__(self, path: str) -> None:
        import _json

        self.path = path
        self._scan_json = _json.make_scanner(_JsonOptions())  # type: ignore[arg-type]
        self._sock = connect(path)
        self._received = bytearray()
        self._scanned = 0  # bytes of _received known to hold no newline

    def close(self) -> None:
        self._sock.close()

    def command(self, line: str) -> "Iterator[Reply]":
        """Every reply to one command, up to the one without More."""
        self._send("Command", line)
        while True:
            reply = self._receive()
            yield reply
            if not reply.get("More"):
                return

    def suggest(self, text: str) -> list[str]:
        self._send("Suggest", text)
        found = self._receive().get("Suggest")
        return [str(word) for word in found] if isinstance(found, list) else []

    def _send(self, field: str, value: str) -> None:
        request = f'{{"{field}":{json_string(value)}}}\n'
        try:
            self._sock.sendall(request.encode())
        except OSError:
            raise ClientError(f"connection to {self.path} lost") from None

    def _receive(self) -> Reply:
        while True:
            end = self._received.find(b"\n", self._scanned)
            if end >= 0:
                line = self._received[:end].decode(errors="replace")
                del self._received[: end + 1]
                self._scanned = 0
                if line.strip():
                    return self._decode(line)
                continue
            self._scanned = len(self._received)
            try:
                data = self._sock.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                raise ClientError(f"connection to {self.path} lost")
            self._received += data

    def _decode(self, line: str) -> Reply:
        try:
            value, _ = self._scan_json(line, len(line) - len(line.lstrip()))
        except (StopIteration, ValueError):
            value = None
        except SystemError:
            # _json raises most syntax errors as json.decoder.JSONDecodeError,
            # which it finds only when json is loaded; here it is not, on purpose.
            value = None
        except RecursionError:  # nested deeper than the interpreter's stack allows
            value = None
        if not isinstance(value, dict):
            raise ClientError(f"unexpected reply from {self.path}: {line[:80]}")
        return value


def show(reply: Reply) -> bool:
    """Print a reply as minimega's clients do; True if it carried an error."""
    from minishell.gostr import trim_space

    rendered = reply.get("Rendered")
    with _StdoutFailures():
        if isinstance(rendered, str) and rendered:
            sys.stdout.write(rendered + "\n")
        sys.stdout.flush()
    responses = reply.get("Resp")
    errors = [
        f"Error ({response.get('Host', '')}): {response['Error']}"
        for response in (responses if isinstance(responses, list) else [])
        if isinstance(response, dict) and response.get("Error")
    ]
    if errors:
        sys.stderr.write(trim_space("\n".join(errors)) + "\n")
        sys.stderr.flush()
    return bool(errors)


def run_and_show(connection: Connection, command: str) -> bool:
    failed = False
    for reply in connection.command(command):
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
            return 1 if run_and_show(connection, with_namespace(namespace, command)) else 0
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


class _AttachedLines:
    """minimega's attach loop, one line at a time: blank lines are skipped,
    `disconnect` leaves, `quit` must be said twice in a row."""

    def __init__(self, connection: Connection, namespace: str) -> None:
        self._connection = connection
        self._namespace = namespace
        self._quit_warned = False
        self.failed = False

    def run(self, text: str) -> bool:
        """Run a line; False when the attachment is over."""
        from minishell.gostr import trim_space

        line = trim_space(text)
        if not line:
            return True
        if line == "disconnect":
            return False
        quitting = line in ("quit", "exit")  # exit: minishell's own word for quit
        if quitting and not self._quit_warned:
            sys.stdout.write(QUIT_CAUTION)
            sys.stdout.flush()
            self._quit_warned = True
            return True
        self._quit_warned = False
        try:
            self.failed |= run_and_show(self._connection, with_namespace(self._namespace, line))
        except ClientError:
            if quitting:  # the instance may close before it answers
                return False
            raise
        return not quitting


def attach(base: str, namespace: str) -> int:
    """minimega -attach: a prompt whose lines run on the running instance."""
    try:
        connection = Connection(socket_path(base))
        try:
            lines = _AttachedLines(connection, namespace)
            if not sys.stdin.isatty():
                for line in sys.stdin:
                    if not lines.run(line):
                        break
                return 1 if lines.failed else 0
            _prompt(connection, namespace, lines)
            return 0
        finally:
            connection.close()
    except ClientError as error:
        return _report(str(error))


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
            if not lines.run(line):
                return
