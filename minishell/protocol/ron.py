"""minimega's ron wire protocol (2.9), sans-IO: its messages, the RON handshake, a connection.

What it covers
    ron.Message and every struct inside it (Client, Process, Response, Command,
    Filter, ConnTest, File) as dataclasses with their gob descriptions; the
    MessageType, PipeMode, UfsMode, TunnelType and LogLevel constants; minitunnel's
    tunnelMessage, the values of the second gob stream that MESSAGE_TUNNEL messages
    carry; the scanner that skips to the `RON` opening each direction; and RonCodec,
    one connection's codec (one gob encoder and one decoder for the connection's
    life, as Go keeps them), whose output is byte for byte what minimega 2.9 and
    miniccc 2.9 send.

How values look in Python
    Attributes are the Go fields in snake_case, in Go's order. Go strings are str,
    except Message.pipe_data, which is bytes because pipe data need not be text.
    A nil pointer, map or slice is None, or [] for slices (gob cannot tell an empty
    slice from a nil one); an empty dict is an empty Go map, which gob does send
    (miniccc sends `Processes: {}`). Type, PipeMode, UfsMode and the tunnel's Type
    are plain ints as received, comparable with the IntEnum constants here.
    ConnTest.wait is a time.Duration in nanoseconds, File.perm os.FileMode's bits,
    Command.level minilog's level (see LogLevel) or None.

What it does not cover
    What the messages mean or when to send them (cc's server and agent do that),
    sockets and timeouts (the 5 s handshake timeout, heartbeats), minitunnel's
    forwarding, and the agent's local socket, which is plain gob singletons
    (gob.Decoder.next_value(gob.INT), then gob.STRING values).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import IntEnum

from minishell.protocol.gob import (
    BOOL,
    BYTES,
    DEFAULT_LIMITS,
    INT,
    INT64,
    RAW_STRING,
    STRING,
    UINT32,
    Decoder,
    Encoder,
    GobError,
    Limits,
    Map,
    Ptr,
    Slice,
    Struct,
    TypeIds,
    frame_size,
    put_int,
    put_uint,
)

MAGIC = b"RON"
# Go waits 5 s for RON with no byte limit; a serial line may hold a dead
# connection's unread tail, up to a 100 KiB file part and more, before it.
DEFAULT_MAX_SKIPPED = 1024 * 1024
# minitunnel's Trunk reads its pipe 32 KiB at a time: one Tunnel payload per read.
TUNNEL_CHUNK_SIZE = 32 * 1024


class MessageType(IntEnum):
    COMMAND = 0
    CLIENT = 1
    TUNNEL = 2
    FILE = 3
    PIPE = 4
    UFS = 5
    HEARTBEAT = 6


class PipeMode(IntEnum):
    NEW_READER = 0
    NEW_WRITER = 1
    CLOSE_READER = 2
    CLOSE_WRITER = 3
    DATA = 4


class UfsMode(IntEnum):
    OPEN = 0
    CLOSE = 1
    DATA = 2


class LogLevel(IntEnum):
    """minilog's levels, for Command.level; they start at 1, so none is gob's left-out zero."""

    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4
    FATAL = 5


class TunnelType(IntEnum):
    HANDSHAKE = 0
    CONNECT = 1
    CLOSED = 2
    DATA = 3
    FORWARD = 4


@dataclass(slots=True, kw_only=True)
class Process:
    pid: int = 0
    command: list[str] = dataclasses.field(default_factory=list)


GO_PROCESS = Struct(Process, "ron.Process", [
    ("PID", "pid", INT),
    ("Command", "command", Slice(STRING)),
])


@dataclass(slots=True, kw_only=True)
class Response:
    id: int = 0
    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    record_exit_code: bool = False


GO_RESPONSE = Struct(Response, "ron.Response", [
    ("ID", "id", INT),
    ("Stdout", "stdout", STRING),
    ("Stderr", "stderr", STRING),
    ("ExitCode", "exit_code", INT),
    ("RecordExitCode", "record_exit_code", BOOL),
])


@dataclass(slots=True, kw_only=True)
class ConnTest:
    endpoint: str = ""
    wait: int = 0
    packet: bytes = b""


GO_CONN_TEST = Struct(ConnTest, "ron.ConnTest", [
    ("Endpoint", "endpoint", STRING),
    ("Wait", "wait", INT64),
    ("Packet", "packet", BYTES),
])


@dataclass(slots=True, kw_only=True)
class Filter:
    uuid: str = ""
    hostname: str = ""
    arch: str = ""
    os: str = ""
    mac: str = ""
    ip: str = ""
    tags: dict[str, str] | None = None


GO_FILTER = Struct(Filter, "ron.Filter", [
    ("UUID", "uuid", STRING),
    ("Hostname", "hostname", STRING),
    ("Arch", "arch", STRING),
    ("OS", "os", STRING),
    ("MAC", "mac", STRING),
    ("IP", "ip", STRING),
    ("Tags", "tags", Map(STRING, STRING)),
])


@dataclass(slots=True, kw_only=True)
class Command:
    id: int = 0
    background: bool = False
    command: list[str] = dataclasses.field(default_factory=list)
    files_send: list[str] = dataclasses.field(default_factory=list)
    files_recv: list[str] = dataclasses.field(default_factory=list)
    conn_test: ConnTest | None = None
    pid: int = 0
    kill_all: str = ""
    level: int | None = None
    filter: Filter | None = None
    checked_in: list[str] = dataclasses.field(default_factory=list)
    prefix: str = ""
    once: bool = False
    sent: bool = False
    stdin: str = ""
    stdout: str = ""
    stderr: str = ""


GO_COMMAND = Struct(Command, "ron.Command", [
    ("ID", "id", INT),
    ("Background", "background", BOOL),
    ("Command", "command", Slice(STRING)),
    ("FilesSend", "files_send", Slice(STRING)),
    ("FilesRecv", "files_recv", Slice(STRING)),
    ("ConnTest", "conn_test", Ptr(GO_CONN_TEST)),
    ("PID", "pid", INT),
    ("KillAll", "kill_all", STRING),
    ("Level", "level", Ptr(INT)),
    ("Filter", "filter", Ptr(GO_FILTER)),
    ("CheckedIn", "checked_in", Slice(STRING)),
    ("Prefix", "prefix", STRING),
    ("Once", "once", BOOL),
    ("Sent", "sent", BOOL),
    ("Stdin", "stdin", STRING),
    ("Stdout", "stdout", STRING),
    ("Stderr", "stderr", STRING),
])


@dataclass(slots=True, kw_only=True)
class Client:
    uuid: str = ""
    arch: str = ""
    os: str = ""
    version: str = ""
    hostname: str = ""
    ips: list[str] = dataclasses.field(default_factory=list)
    macs: list[str] = dataclasses.field(default_factory=list)
    processes: dict[int, Process] | None = None
    tags: dict[str, str] | None = None
    responses: list[Response] = dataclasses.field(default_factory=list)
    last_command_id: int = 0


GO_CLIENT = Struct(Client, "ron.Client", [
    ("UUID", "uuid", STRING),
    ("Arch", "arch", STRING),
    ("OS", "os", STRING),
    ("Version", "version", STRING),
    ("Hostname", "hostname", STRING),
    ("IPs", "ips", Slice(STRING)),
    ("MACs", "macs", Slice(STRING)),
    ("Processes", "processes", Map(INT, Ptr(GO_PROCESS))),
    ("Tags", "tags", Map(STRING, STRING)),
    ("Responses", "responses", Slice(Ptr(GO_RESPONSE))),
    ("LastCommandID", "last_command_id", INT),
])


@dataclass(slots=True, kw_only=True)
class File:
    id: int = 0
    name: str = ""
    perm: int = 0
    data: bytes = b""
    offset: int = 0
    eof: bool = False


GO_FILE = Struct(File, "ron.File", [
    ("ID", "id", INT),
    ("Name", "name", STRING),
    ("Perm", "perm", UINT32),
    ("Data", "data", BYTES),
    ("Offset", "offset", INT64),
    ("EOF", "eof", BOOL),
])


@dataclass(slots=True, kw_only=True)
class Message:
    type: int = 0
    uuid: str = ""
    error: str = ""
    commands: dict[int, Command] | None = None
    client: Client | None = None
    file: File | None = None
    tunnel: bytes = b""
    pipe: str = ""
    pipe_mode: int = 0
    pipe_data: bytes = b""
    ufs_mode: int = 0
    version: str = ""


GO_MESSAGE = Struct(Message, "ron.Message", [
    ("Type", "type", INT),
    ("UUID", "uuid", STRING),
    ("Error", "error", STRING),
    ("Commands", "commands", Map(INT, Ptr(GO_COMMAND))),
    ("Client", "client", Ptr(GO_CLIENT)),
    ("File", "file", Ptr(GO_FILE)),
    ("Tunnel", "tunnel", BYTES),
    ("Pipe", "pipe", STRING),
    ("PipeMode", "pipe_mode", INT),
    ("PipeData", "pipe_data", RAW_STRING),
    ("UfsMode", "ufs_mode", INT),
    ("Version", "version", STRING),
])


@dataclass(slots=True, kw_only=True)
class TunnelMessage:
    """minitunnel's tunnelMessage: one value of the gob stream inside MESSAGE_TUNNEL."""

    type: int = 0
    ack: bool = False
    tid: int = 0
    source: int = 0
    host: str = ""
    port: int = 0
    error: str = ""
    data: bytes = b""


GO_TUNNEL_MESSAGE = Struct(TunnelMessage, "minitunnel.tunnelMessage", [
    ("Type", "type", INT),
    ("Ack", "ack", BOOL),
    ("TID", "tid", INT),
    ("Source", "source", INT),
    ("Host", "host", STRING),
    ("Port", "port", INT),
    ("Error", "error", STRING),
    ("Data", "data", BYTES),
])


def go_type_ids() -> TypeIds:
    """Type ids as minimega and miniccc assign them: ron.Message first, tunnelMessage next."""
    return TypeIds([GO_MESSAGE, GO_TUNNEL_MESSAGE])


class HandshakeError(GobError):
    """No RON within the bound, or none before the stream ended.

    A GobError, so that one except clause covers every way a connection's input fails.
    """


class HandshakeScanner:
    """Skips bytes up to and including the first `RON`, as both ends of ron do.

    Go slides a three-byte window over the input with no limit but a 5 s timeout;
    here at most max_skipped bytes may come before RON, then HandshakeError.
    """

    def __init__(self, max_skipped: int = DEFAULT_MAX_SKIPPED) -> None:
        self.max_skipped = max_skipped
        self.skipped = 0
        self.done = False
        self._candidate = b""  # a tail that may be the start of RON: b"", b"R" or b"RO"

    def feed(self, data: bytes | bytearray | memoryview) -> bytes | None:
        """The bytes after RON once it has been seen (maybe b""); None while still looking."""
        if self.done:
            return bytes(data)
        self._check_bound()
        window = self._candidate + bytes(data)
        at = window.find(MAGIC)
        if at >= 0:
            self.skipped += at
            self._check_bound()
            self.done = True
            self._candidate = b""
            return window[at + len(MAGIC):]
        keep = 2 if window.endswith(MAGIC[:2]) else 1 if window.endswith(MAGIC[:1]) else 0
        self.skipped += len(window) - keep
        self._candidate = window[len(window) - keep:]
        self._check_bound()
        return None

    def _check_bound(self) -> None:
        if self.skipped > self.max_skipped:
            raise HandshakeError(f"no RON within the first {self.max_skipped} bytes")


class SerialSplitter:
    """What a guest sends over one serial line, split into the ron connections on it.

    A serial line outlives the agents at its guest end: an agent that restarts, or
    a guest that reboots, writes a new RON on the same line, after whatever the old
    connection left unfinished. The host reads the line through this: each
    connection starts at a RON (what comes before it is skipped, up to max_skipped
    bytes, then HandshakeError) and ends where the next RON stands at a message
    boundary. That RON cannot be data: a gob message is its length, then its body,
    which starts with a type id; ron's are 65 and up, so a one-byte length `R` (82)
    is never followed by `O` (a type id of -40). A RON at the end of an unfinished
    message is an agent that restarted while the old one was writing only if
    nothing follows it: the new agent waits for the host's RON. `cut()` ends the
    connection there once the caller has seen the line fall silent.

    Use: feed() what the line gives, take() the current connection's bytes (RON
    first) until `ended`, then next_connection(), which begins at the RON that ended
    the last one. The walk from message to message reads only each length: a few
    operations a message, little beside decoding it.
    """

    def __init__(self, max_skipped: int = DEFAULT_MAX_SKIPPED) -> None:
        self.max_skipped = max_skipped
        self._pending = bytearray()  # received, not yet taken
        self.next_connection()

    def next_connection(self) -> None:
        """Start the next connection: skip to its RON."""
        self._scanner: HandshakeScanner | None = HandshakeScanner(self.max_skipped)
        self.ended = False
        self._body_left = 0  # bytes of the message taken in part still to come
        self._tail = b""  # the last bytes taken of that message
        self._framed = True  # False once a length makes no sense: the decoder will say so

    @property
    def started(self) -> bool:
        """The current connection's RON has been seen."""
        return self._scanner is None

    @property
    def may_cut(self) -> bool:
        """The unfinished message ends in RON with nothing after it, and everything
        received has been taken: a restarted agent, if the line stays silent."""
        return self._body_left > 0 and self._tail == MAGIC and not self._pending

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._pending += data

    def take(self) -> bytes:
        """The current connection's bytes received so far (b"" if none yet, and at
        its end); HandshakeError if its RON does not come within max_skipped bytes."""
        if self.ended:
            return b""
        out = b""
        if self._scanner is not None:
            rest = self._scanner.feed(self._pending)
            self._pending.clear()
            if rest is None:
                return b""
            self._scanner = None
            self._pending += rest
            out = MAGIC
        return out + self._frame()

    def cut(self) -> None:
        """End the current connection at the RON that ends its unfinished message."""
        assert self.may_cut
        self.ended = True
        self._pending[:0] = MAGIC

    def _frame(self) -> bytes:
        """Take the bytes up to a RON at a message boundary, or to the end of the input
        but a length prefix not yet whole (or an `R`, `RO` that may be a RON)."""
        pending = self._pending
        size = len(pending)
        if not self._framed:
            at = size
        elif self._body_left:
            at = min(self._body_left, size)
            self._tail = (self._tail + pending[max(0, at - 3):at])[-3:]
            self._body_left -= at
        else:
            at = 0
        while at < size and self._framed and not self._body_left:
            first = pending[at]
            if first < 0x80:
                if first == 0x52 and MAGIC.startswith(pending[at:at + 3]):
                    self.ended = size - at >= 3  # else the next byte says
                    break
                end = at + 1 + first
            elif first < 0xF8:
                self._framed = False
                at = size
                break
            else:
                width = 256 - first
                if at + 1 + width > size:
                    break
                end = at + 1 + width + int.from_bytes(pending[at + 1:at + 1 + width], "big")
            if end > size:  # taken in part: the rest comes in later reads
                self._body_left = end - size
                self._tail = bytes(pending[max(at, size - 3):size])
                end = size
            at = end
        out = bytes(pending[:at])
        del pending[:at]
        return out


class TunnelCodec:
    """minitunnel's gob stream, which rides in the Tunnel bytes of MESSAGE_TUNNEL messages.

    Its messages may be split or joined across Tunnel payloads: feed() takes each
    payload as it comes. encode() gives the payloads Go would send, one per gob
    message (minitunnel writes each through an io.Pipe, read 32 KiB at a time).
    """

    def __init__(self, type_ids: TypeIds | None = None, *,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self._encoder = Encoder(type_ids if type_ids is not None else go_type_ids(),
                                limits=limits)
        self._decoder = Decoder(GO_TUNNEL_MESSAGE, limits=limits)

    def encode(self, message: TunnelMessage) -> list[bytes]:
        return [part[start:start + TUNNEL_CHUNK_SIZE]
                for part in self._encoder.encode_messages(GO_TUNNEL_MESSAGE, message)
                for start in range(0, len(part), TUNNEL_CHUNK_SIZE)]

    def feed(self, payload: bytes) -> list[TunnelMessage]:
        self._decoder.feed(payload)
        return list(self._decoder)


@dataclass(frozen=True, slots=True)
class PipeLines:
    """PIPE DATA messages in a row for one pipe, each a line ending in its newline with no
    other in it: how RonCodec.feed_runs() gives them and encode_pipe_lines() takes them.
    `block` is their data joined, the shape in which the plumbers move lines."""

    pipe: str
    block: bytes

    def messages(self) -> list[Message]:
        return [Message(type=MessageType.PIPE, pipe=self.pipe, pipe_mode=PipeMode.DATA,
                        pipe_data=line + b"\n") for line in self.block.split(b"\n")[:-1]]


Received = Message | PipeLines

_FIELD_INDEX = {field.go_name: index for index, field in enumerate(GO_MESSAGE.fields)}
_ONE_BYTE = tuple(bytes((value,)) for value in range(0x80))
_PIPE_HEADS_MAX = 256  # pipe names whose PIPE DATA head is kept, per connection


def _pipe_data_mode() -> bytes:
    """The bytes between a PIPE DATA message's pipe name and its data's length."""
    out = bytearray()
    put_uint(out, _FIELD_INDEX["PipeMode"] - _FIELD_INDEX["Pipe"])
    put_int(out, PipeMode.DATA)
    put_uint(out, _FIELD_INDEX["PipeData"] - _FIELD_INDEX["PipeMode"])
    return bytes(out)


_DATA_MODE = _pipe_data_mode()


def _pipe_data_head(message_id: int) -> bytes:
    """The bytes of a PIPE DATA message (a ron.Message of this type id) before its pipe
    name: the type id, then Type = PIPE, then the delta to the Pipe field."""
    out = bytearray()
    put_int(out, message_id)
    put_uint(out, _FIELD_INDEX["Type"] + 1)
    put_int(out, MessageType.PIPE)
    put_uint(out, _FIELD_INDEX["Pipe"] - _FIELD_INDEX["Type"])
    return bytes(out)


class RonCodec:
    """One ron connection, both directions, for its whole life.

    feed() takes what the peer sent: it skips to RON, then decodes every complete
    Message buffered (the rest waits for more bytes). encode() gives the bytes of
    one Message, type descriptors included the first time. Writing MAGIC is the
    caller's: a client sends it first, a server after it has seen the client's.
    A GobError (HandshakeError included) ends the connection; complete messages that
    preceded the bad one in the same chunk are lost with it.

    Pipe lines are most of what crosses a busy connection, one message per line as
    minimega and miniccc send them; decoding and encoding each through the general
    gob code costs some 8 us, too slow for a plumber moving 500k lines/s. So
    feed_runs() reads PIPE DATA messages in a row straight from the bytes, as
    PipeLines, and encode_pipe_lines() writes them from a template, byte for byte
    what the general code gives (the tests compare both ways). The shortcut reads
    only messages of the exact shape Go gives them, once the peer's ron.Message is
    known to be Go's; anything else takes the general path. Use feed() or
    feed_runs() on one codec, not both.
    """

    def __init__(self, *, max_skipped: int = DEFAULT_MAX_SKIPPED,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        type_ids = go_type_ids()
        self._handshake = HandshakeScanner(max_skipped)
        self._limits = limits
        self._encoder = Encoder(type_ids, limits=limits)
        self._decoder = Decoder(GO_MESSAGE, limits=limits)
        self.tunnel = TunnelCodec(type_ids, limits=limits)
        self._go_message = type_ids.wire_type(type_ids.id_of(GO_MESSAGE))
        self._pending = bytearray()  # received after RON, not yet decoded
        self._wanted = 0  # bytes _pending must hold before a message can be complete
        self._peer_pipe_head: bytes | None = None  # set once the peer's Message is Go's
        self._pipe_heads: dict[str, bytes] = {}  # by pipe: a PIPE DATA message up to its data
        self._failure: str | None = None

    @property
    def handshake_done(self) -> bool:
        return self._handshake.done

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        return [message for item in self.feed_runs(data)
                for message in (item.messages() if isinstance(item, PipeLines) else (item,))]

    def feed_runs(self, data: bytes | bytearray | memoryview) -> list[Received]:
        """As feed(), with PIPE DATA messages in a row for one pipe as PipeLines."""
        if not self._handshake.done:
            rest = self._handshake.feed(data)
            if rest is None:
                return []
            data = rest
        if self._failure is not None:
            raise GobError(self._failure)
        pending = self._pending
        pending += data
        if len(pending) < self._wanted or not pending:
            return []
        try:
            received, used = self._decode(bytes(pending))
        except GobError as error:
            self._failure = str(error)
            raise
        del pending[:used]
        return received

    def encode(self, message: Message) -> bytes:
        return self._encoder.encode(GO_MESSAGE, message)

    def encode_pipe_lines(self, pipe: str, block: bytes) -> bytes:
        """A PIPE DATA message for each line of `block` (complete lines), its newline kept."""
        if not block.endswith(b"\n"):
            if block:
                raise ValueError("encode_pipe_lines needs complete lines (ending in a newline)")
            return b""
        lines = block.split(b"\n")
        lines.pop()
        out: list[bytes] = []
        if not pipe:  # the zero value: Go leaves the field out, and the template with it
            return b"".join(self.encode(Message(type=MessageType.PIPE, pipe=pipe,
                                                pipe_mode=PipeMode.DATA, pipe_data=line + b"\n"))
                            for line in lines)
        if not self._encoder.has_sent(GO_MESSAGE):
            out.append(self.encode(Message(type=MessageType.PIPE, pipe=pipe,
                                           pipe_mode=PipeMode.DATA, pipe_data=lines[0] + b"\n")))
            del lines[0]
        head = self._pipe_heads.get(pipe)
        if head is None:
            head = self._own_pipe_head(pipe)
        small = 0x80 - len(head) - 3  # lines shorter than this make messages under 0x80 bytes
        for line in lines:
            size = len(line) + 1
            if size < small:
                out += (_ONE_BYTE[len(head) + size + 2], head, _ONE_BYTE[size], line, b"\n\0")
            else:
                out.append(self._long_pipe_data(head, line))
        return b"".join(out)

    def end_of_stream(self) -> None:
        """GobError if the peer's stream, ending here, ended before RON or inside a message."""
        if not self._handshake.done:
            raise HandshakeError("stream ended before RON")
        if self._pending:
            raise GobError(f"stream ended inside a message ({len(self._pending)} bytes unread)")
        self._decoder.end_of_stream()

    # -- the shortcut for pipe lines ----------------------------------------------------------

    def _decode(self, buffer: bytes) -> tuple[list[Received], int]:
        """Every complete message at the start of buffer; how many bytes they took."""
        received: list[Received] = []
        run_pipe = b""
        run: list[bytes] = []
        limits = self._limits
        head = self._peer_pipe_head
        length = len(buffer)
        start = end = 0
        while start < length:
            first = buffer[start]
            if 0 < first < 0x80:
                body, end = start + 1, start + 1 + first
            else:
                framing = frame_size(buffer, start, limits)
                if framing is None:
                    end = length + 1  # a longer prefix: one more byte at least
                    break
                body, end = start + framing[0], start + framing[0] + framing[1]
            if end > length:
                break
            if head is not None and buffer.startswith(head, body):
                name_at = body + len(head)
                name_end = name_at + 1 + (buffer[name_at] if name_at < end else 0x80)
                at = name_end + len(_DATA_MODE)
                if at < end and buffer[name_at] < 0x80 and buffer.startswith(_DATA_MODE, name_end):
                    size = buffer[at]
                    if size < 0x80:
                        data_at = at + 1
                    else:
                        data_at = at + 1 + 256 - size
                        size = int.from_bytes(buffer[at + 1:data_at], "big")
                    if (data_at + size + 1 == end and size and buffer[end - 1] == 0
                            and buffer[end - 2] == 0x0A):
                        name = buffer[name_at + 1:name_end]
                        if name != run_pipe:
                            self._end_run(received, run_pipe, run)
                            run_pipe, run = name, []
                        run.append(buffer[data_at:end - 1])
                        start = end
                        continue
            self._end_run(received, run_pipe, run)
            run = []
            received += self._decode_general(buffer[start:end])
            head = self._peer_pipe_head
            start = end
        self._end_run(received, run_pipe, run)
        self._wanted = end - start if start < length else 0
        return received, start

    def _decode_general(self, message: bytes) -> list[Message]:
        self._decoder.feed(message)
        values = list(self._decoder)
        if values and self._peer_pipe_head is None:
            for type_id, wire in self._decoder.wire_types.items():
                if wire == self._go_message:
                    self._peer_pipe_head = _pipe_data_head(type_id)
        return values

    @staticmethod
    def _end_run(received: list[Received], pipe: bytes, run: list[bytes]) -> None:
        if not run:
            return
        block = b"".join(run)
        name = pipe.decode("utf-8", "surrogateescape")
        if block.count(b"\n") == len(run):
            received.append(PipeLines(name, block))
        else:  # a line with a newline inside: that message is not a line
            received += (Message(type=MessageType.PIPE, pipe=name, pipe_mode=PipeMode.DATA,
                                 pipe_data=data) for data in run)

    def _own_pipe_head(self, pipe: str) -> bytes:
        if len(self._pipe_heads) >= _PIPE_HEADS_MAX:
            self._pipe_heads.clear()
        head = bytearray(_pipe_data_head(self._encoder.type_ids.id_of(GO_MESSAGE)))
        STRING.encode(head, pipe)
        head += _DATA_MODE
        self._pipe_heads[pipe] = bytes(head)
        return self._pipe_heads[pipe]

    def _long_pipe_data(self, head: bytes, line: bytes) -> bytes:
        body = bytearray(head)
        put_uint(body, len(line) + 1)
        body += line
        body += b"\n\0"
        if len(body) > self._limits.max_message_size:
            raise GobError(f"message of {len(body)} bytes exceeds the limit of "
                           f"{self._limits.max_message_size}")
        frame = bytearray()
        put_uint(frame, len(body))
        return bytes(frame + body)
