"""The control socket's wire protocol, sans I/O: bytes in, values and bytes out.

minimega's protocol (spec §14.1) on the Unix stream socket `<base>/minimega`:

- Requests are JSON objects `{"Command": ...}`, `{"Suggest": ...}` or
  `{"PlumbPipe": "ns//name"}` (plus minishell's `"Raw": true`), framed by their
  own syntax: minimega's Python bindings send no newline between them. Keys
  match field names whatever their case, as Go's decoder matches them;
  invalid UTF-8 and lone surrogate escapes (`\\ud800`) read as U+FFFD, as Go
  reads them. A request longer than LINE_MAX bytes is refused.
- Replies are one line each, as Go's json.Encoder writes miniclient.Response.
- After `PlumbPipe` the connection carries pipe messages: JSON strings both
  ways (minimega's), or with `"Raw": true` (minishell's), after the ack
  RAW_ACK, newline-terminated lines both ways, each shorter than LINE_MAX.

The reply format, as both clients (client.py and launcher/minishell.c) read
it. Anything else is one error, `unexpected reply from <path>: <the line's
first 80 characters>`, in both:

- A reply is one line: an RFC 8259 JSON object, with only JSON whitespace
  (space, tab, CR) before and after it. Lines of whitespace alone are skipped.
  Invalid UTF-8 reads as U+FFFD (Python's "replace"), a lone surrogate escape
  as U+FFFD. NaN and Infinity are not JSON.
- Its keys, each at most once, none other: `Resp` (null, or an array of
  objects), `Rendered` (a string), `More` and `Status` (booleans), `Suggest`
  (an array of strings). A missing key is Go's zero value: null, "", false.
- The objects of `Resp` (minicli.Response), keys each at most once, none
  other: `Host`, `Response`, `Error` (strings), `Header` (null, or an array of
  strings), `Tabular` (null, or an array of arrays of strings), `Data` (any
  JSON value, whose arrays and objects nest at most DATA_DEPTH_MAX deep;
  being any JSON, it may repeat keys and hold numbers of any size).
- Shown: `Rendered` and a newline on stdout when it is not empty; then, if any
  object of `Resp` has a non-empty `Error`, the lines `Error (<Host>):
  <Error>`, joined and trimmed of Go's white space as one text, on stderr.
  Replies follow each other while `More` is true.

Nothing here imports more than `_json`, and that only when JSON is read or
written: the -pipe and -e clients start with this module, and their
start-up is measured in milliseconds (client.py says what else they avoid;
-pipe needs no `_json`). The request framer, used by the server only, loads
`re` when it is first made.
"""

# typing imports re: mypy honours a TYPE_CHECKING of our own.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

# launcher/compile_launcher.py writes these into a C header for minishell.c.
SOCKET_NAME = "minimega"  # the name minimega's own clients dial in their base folder
DEFAULT_BASE = "/tmp/minishell"
DEFAULT_NAMESPACE = "minimega"
# minimega's TOKEN_MAX: a line this long (without its newline) is refused.
LINE_MAX = 1 << 20
LINE_TOO_LONG = "line longer than 1 MiB on stdin"
REQUEST_TOO_LONG = "request longer than 1 MiB"
RAW_ACK = b'{"Raw":true}\n'
# How long -pipe waits for RAW_ACK: a minishell answers at once; a real
# minimega never does (it ignores the Raw field).
ACK_TIMEOUT = 5.0
NOT_RAW = "the server does not speak minishell's raw pipe protocol"
DATA_DEPTH_MAX = 64
EXCERPT_CHARS = 80  # of a reply that is not one, shown in the error
# The C launcher cannot give the Python front end a directory as stdin (the
# interpreter would die before any code runs): it gives /dev/null and says
# why here, for whatever wants to read stdin.
STDIN_ERROR_ENV = "MINISHELL_STDIN_ERROR"


class ProtocolError(Exception):
    """The peer broke the protocol; str(error) says how, in one line."""


class TooLong(ProtocolError):
    """A line or request reached past its limit."""

    def __init__(self, message: str, length: int) -> None:
        super().__init__(message)
        self.length = length


class UnexpectedReply(ProtocolError):
    """A reply line that is not one; `excerpt` is what the client shows of it."""

    def __init__(self, line: bytes) -> None:
        self.excerpt = line.decode("utf-8", "replace")[:EXCERPT_CHARS]
        super().__init__(f"unexpected reply: {self.excerpt}")


def socket_path(base: str) -> str:
    """os.path.join(base, SOCKET_NAME)."""
    return f"{base}{SOCKET_NAME}" if not base or base.endswith("/") else f"{base}/{SOCKET_NAME}"


# -- requests: the clients' side -------------------------------------------------------


def json_string(text: str) -> str:
    """A JSON string, ASCII only (requests may be read by any JSON decoder)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'  # most commands and pipe names
    import _json

    return str(_json.encode_basestring_ascii(text))


def encode_request(field: str, value: str) -> bytes:
    """`{"Command": value}` and the like, newline-terminated as Go's encoder ends it."""
    return f'{{"{field}":{json_string(value)}}}\n'.encode()


def encode_pipe_request(full_name: str) -> bytes:
    """The request that makes a connection a raw attachment to a pipe."""
    return f'{{"PlumbPipe":{json_string(full_name)},"Raw":true}}\n'.encode()


def raw_ack_complete(received: bytes) -> bool:
    """Whether `received` (what came after a raw PlumbPipe request) holds the whole
    ack; ProtocolError(NOT_RAW) once it cannot be one."""
    if not RAW_ACK.startswith(received[: len(RAW_ACK)]):
        raise ProtocolError(NOT_RAW)
    return len(received) >= len(RAW_ACK)


# -- requests: the server's side ---------------------------------------------------------


class Request:
    """miniclient.Request as Go decodes it, plus minishell's `raw`; or, with `refusal`
    set, a request the server refuses with that error instead."""

    __slots__ = ("command", "plumb_pipe", "raw", "refusal", "suggest")

    def __init__(self, command: str = "", suggest: str = "", plumb_pipe: str = "",
                 raw: bool = False, refusal: str = "") -> None:
        self.command = command
        self.suggest = suggest
        self.plumb_pipe = plumb_pipe
        self.raw = raw
        self.refusal = refusal

    def __repr__(self) -> str:
        return (f"Request(command={self.command!r}, suggest={self.suggest!r}, "
                f"plumb_pipe={self.plumb_pipe!r}, raw={self.raw!r}, refusal={self.refusal!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]


# Go's decoder matches keys to field names case-insensitively.
_REQUEST_FIELDS = {"command": "command", "suggest": "suggest", "plumbpipe": "plumb_pipe",
                   "raw": "raw"}


def decode_request(value: bytes) -> Request:
    """One request, as framed by RequestFramer, as Go decodes miniclient.Request."""
    decoded = _decode_json(value)
    if decoded is None:  # null leaves every field empty
        return Request()
    if type(decoded) is not tuple:
        raise ProtocolError("a request must be a JSON object")
    fields: dict[str, str | bool] = {}
    for key, item in decoded:
        field = _REQUEST_FIELDS.get(key.lower())
        if field is None or item is None:
            continue
        if field == "raw":
            if type(item) is not bool:
                raise ProtocolError(f"bad type for request field {key}")
        elif type(item) is not str:
            raise ProtocolError(f"bad type for request field {key}")
        else:
            item = _valid_text(item)
        fields[field] = item
    return Request(**fields)  # type: ignore[arg-type]


def decode_message(value: bytes) -> bytes | None:
    """A message from a JSON-strings attachment; None when there is nothing to write."""
    decoded = _decode_json(value)
    if decoded is None or decoded == "":
        return None
    if type(decoded) is not str:
        raise ProtocolError("a pipe attachment sends JSON strings")
    return _valid_text(decoded).encode()


def _valid_text(text: str) -> str:
    """Lone surrogates (from `\\ud800` escapes) as U+FFFD, one each, as Go decodes them."""
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


_BETWEEN, _STRING, _CONTAINER, _IN_STRING, _SCALAR = range(5)


class _Patterns:
    """The framer's regular expressions, compiled on first use: clients never frame."""

    def __init__(self) -> None:
        import re

        self.space = re.compile(rb"[ \t\r\n]*+")
        # A string's body up to its closing quote, or to the end of what is there
        # (a backslash last of all waits for the byte it escapes).
        self.string_body = re.compile(rb'[^"\\]*+(?:\\.[^"\\]*+)*+', re.DOTALL)
        self.structure = re.compile(rb'["\[\]{}]')
        self.scalar = re.compile(rb'[^ \t\r\n,:\[\]{}"]*+')


_patterns: _Patterns | None = None


class JsonFramer:
    """The JSON values in a byte stream, each as soon as it is whole.

    Values are framed by their own syntax, not by newlines, and the scan keeps
    its state between feeds, so each byte is looked at once (`scanned` counts
    them) however the stream is cut. Only a value's extent is found here; its
    decoding checks the rest. A value longer than `limit` bytes raises TooLong
    as soon as that is certain.
    """

    __slots__ = ("_buffer", "_depth", "_kind", "_pos", "_start", "limit", "scanned",
                 "too_long")

    def __init__(self, limit: int, too_long: str, data: bytes = b"") -> None:
        global _patterns
        if _patterns is None:
            _patterns = _Patterns()
        self.limit = limit
        self.too_long = too_long  # the error's text
        self.scanned = 0
        self._buffer = bytearray(data)
        self._kind = _BETWEEN
        self._pos = 0  # the next byte to look at (one past the end after a final backslash)
        self._start = 0  # where the value being framed starts
        self._depth = 0

    def feed(self, data: bytes) -> None:
        keep = self._pos if self._kind == _BETWEEN else self._start
        if keep:
            del self._buffer[:keep]
            self._pos -= keep
            self._start -= keep
        self._buffer += data

    def buffered(self) -> int:
        """Bytes held: the value being framed and what follows it."""
        return len(self._buffer) - (self._pos if self._kind == _BETWEEN else self._start)

    def rest(self) -> bytes:
        """What follows the last value taken (the start of a raw pipe stream)."""
        return bytes(self._buffer[self._pos:])

    def next_value(self) -> bytes | None:
        """The next whole value's bytes, or None until more is fed."""
        assert _patterns is not None
        patterns = _patterns
        buffer = self._buffer
        size = len(buffer)
        pos = self._pos
        kind = self._kind
        if pos >= size:
            return None
        if kind == _BETWEEN:
            start = patterns.space.match(buffer, pos).end()  # type: ignore[union-attr]
            self.scanned += start - pos
            if start == size:
                self._pos = start
                return None
            first = buffer[start]
            if first in b",:]}":
                raise ProtocolError(f"invalid character {chr(first)!r} where a value begins")
            self._start = start
            pos = start + 1
            self.scanned += 1
            kind = _CONTAINER if first in b"{[" else _STRING if first == 0x22 else _SCALAR
            self._depth = 1
        end = self._scan(patterns, kind, pos, size)
        if end is None:
            if size - self._start > self.limit:
                raise TooLong(self.too_long, size - self._start)
            return None
        if end - self._start > self.limit:
            raise TooLong(self.too_long, end - self._start)
        self._pos = end
        self._kind = _BETWEEN
        return bytes(buffer[self._start:end])

    def _scan(self, patterns: _Patterns, kind: int, pos: int, size: int) -> int | None:
        """Scan on from `pos`: where the value ends, or None (the state saved)."""
        buffer = self._buffer
        depth = self._depth
        while True:
            if kind in (_STRING, _IN_STRING):
                body_end = patterns.string_body.match(buffer, pos).end()  # type: ignore[union-attr]
                if body_end == size:
                    self.scanned += size - pos
                    pos = size
                    break
                if buffer[body_end] == 0x5C:  # a backslash, last: skip the byte to come
                    self.scanned += body_end + 2 - pos
                    pos = body_end + 2
                    break
                self.scanned += body_end + 1 - pos
                pos = body_end + 1
                if kind == _STRING:
                    return pos
                kind = _CONTAINER
            elif kind == _CONTAINER:
                found = patterns.structure.search(buffer, pos)
                if found is None:
                    self.scanned += size - pos
                    pos = size
                    break
                at = found.start()
                self.scanned += at + 1 - pos
                pos = at + 1
                char = buffer[at]
                if char == 0x22:
                    kind = _IN_STRING
                elif char in b"{[":
                    depth += 1
                else:
                    depth -= 1
                    if depth == 0:
                        return pos
            else:  # a number or a literal goes on until a delimiter
                scalar_end = patterns.scalar.match(buffer, pos).end()  # type: ignore[union-attr]
                self.scanned += scalar_end - pos
                pos = scalar_end
                if scalar_end == size:
                    break
                return pos
        self._pos = pos
        self._kind = kind
        self._depth = depth
        return None


class RequestFramer(JsonFramer):
    """A command connection's requests, refused past LINE_MAX bytes."""

    __slots__ = ()

    def __init__(self, data: bytes = b"") -> None:
        super().__init__(LINE_MAX, REQUEST_TOO_LONG, data)

    def next_request(self) -> Request | None:
        value = self.next_value()
        return None if value is None else decode_request(value)


# -- JSON decoding, strict ----------------------------------------------------------------


class _Number(str):
    """A JSON number, kept as its text: never shown, and Python's int() would refuse
    more than 4300 digits."""

    __slots__ = ()


def _not_json(text: str) -> object:
    raise ProtocolError(f"{text} is not JSON")


class _Strict:
    """What _json's scanner reads from its decoder: strings strict, objects as tuples
    of (key, value) pairs (repeated keys stay visible, and an object is never mistaken
    for an array), numbers as _Number, no NaN or Infinity."""

    strict = True
    object_hook = None
    object_pairs_hook = tuple
    parse_float = _Number
    parse_int = _Number
    parse_constant = staticmethod(_not_json)


_scanner: "object | None" = None


def _decode_json(value: bytes) -> object:
    """The one JSON value that is all of `value` (surrounding JSON whitespace aside)."""
    global _scanner
    if _scanner is None:
        import _json

        _scanner = _json.make_scanner(_Strict())  # type: ignore[arg-type]
    text = value.decode("utf-8", "replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    try:
        decoded, end = _scanner(text, start)  # type: ignore[operator]
    except (StopIteration, ValueError, RecursionError, ProtocolError):
        raise ProtocolError("invalid JSON") from None
    except SystemError:
        # _json reports syntax errors with json.decoder.JSONDecodeError, which it
        # cannot raise unless json is loaded; here it need not be.
        raise ProtocolError("invalid JSON") from None
    if text[end:].strip(" \t\r\n"):
        raise ProtocolError("invalid JSON")
    return decoded


# -- replies: the server's side ------------------------------------------------------------

_GO_ESCAPES: dict[int, str] | None = None


def go_json_string(text: str) -> str:
    """A string as Go's encoding/json writes it (go1.19: HTML-safe, \\b and \\f as
    \\u0008 and \\u000c, U+2028/9 escaped; a lone surrogate, which stands for an
    invalid byte, as \\ufffd)."""
    if "\b" in text or "\f" in text or not (text.isascii() or _encodable(text)):
        return _go_json_string_slowly(text)
    import _json

    escaped: str = _json.encode_basestring(text)
    if "<" in escaped or ">" in escaped or "&" in escaped:
        escaped = escaped.replace("<", "\\u003c").replace(">", "\\u003e").replace(
            "&", "\\u0026")
    if not text.isascii():
        escaped = escaped.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return escaped


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _go_json_string_slowly(text: str) -> str:
    global _GO_ESCAPES
    if _GO_ESCAPES is None:
        _GO_ESCAPES = {code: f"\\u{code:04x}" for code in range(0x20)}
        _GO_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n",
                            ord("\r"): "\\r", ord("\t"): "\\t"})
        _GO_ESCAPES.update({ord(char): f"\\u{ord(char):04x}" for char in "<>&\u2028\u2029"})
        _GO_ESCAPES.update(dict.fromkeys(range(0xD800, 0xE000), "\\ufffd"))
    return f'"{text.translate(_GO_ESCAPES)}"'


def encode_reply(resp: str | None, rendered: str, more: bool) -> bytes:
    """One reply line, as Go's json.Encoder writes miniclient.Response: `resp` is the
    JSON text of the Resp array (None for null), `rendered` the Rendered text."""
    return b'{"Resp":%s,"Rendered":%s,"More":%s,"Status":false}\n' % (
        b"null" if resp is None else resp.encode(),
        go_json_string(rendered).encode(),
        b"true" if more else b"false")


def encode_suggest_reply(candidates: "Iterable[str]") -> bytes:
    """The reply to a Suggest request; no candidates, no field (`json:",omitempty"`)."""
    suggest = ",".join(go_json_string(candidate) for candidate in candidates)
    if not suggest:
        return b'{"Resp":null,"Rendered":"","More":false,"Status":false}\n'
    return (b'{"Resp":null,"Rendered":"","More":false,"Status":false,"Suggest":[%s]}\n'
            % suggest.encode())


# -- replies: the clients' side --------------------------------------------------------------


class Reply:
    """What a client shows of one reply (the module's docstring says how)."""

    __slots__ = ("errors", "more", "rendered", "suggest")

    def __init__(self, rendered: str, errors: list[tuple[str, str]], more: bool,
                 suggest: list[str]) -> None:
        self.rendered = rendered
        self.errors = errors  # (Host, Error) of each response whose Error is not empty
        self.more = more
        self.suggest = suggest


_JSON_SPACE = " \t\r"  # a line holds no newline


def decode_reply(line: bytes) -> Reply | None:
    """A reply line (without its newline), or None for a blank one; UnexpectedReply
    for anything the module's docstring does not allow."""
    if not line.strip(b" \t\r"):
        return None
    try:
        decoded = _decode_json(line)
    except ProtocolError:
        raise UnexpectedReply(line) from None
    if type(decoded) is not tuple:
        raise UnexpectedReply(line)
    rendered, errors, more, suggest = "", [], False, []
    seen: set[str] = set()
    for key, item in decoded:
        if key in seen:
            raise UnexpectedReply(line)
        seen.add(key)
        if key == "Rendered" and type(item) is str:
            rendered = _valid_text(item)
        elif key in ("More", "Status") and type(item) is bool:
            more = item if key == "More" else more
        elif key == "Resp" and (item is None or type(item) is list):
            for response in item or ():
                error = _response_error(response)
                if error is None:
                    raise UnexpectedReply(line)
                if error[1]:
                    errors.append(error)
        elif key == "Suggest" and _strings(item):
            suggest = [_valid_text(word) for word in item]
        else:
            raise UnexpectedReply(line)
    return Reply(rendered, errors, more, suggest)


def _response_error(response: object) -> tuple[str, str] | None:
    """(Host, Error) of a valid Resp object, None for anything else."""
    if type(response) is not tuple:
        return None
    host = error = ""
    seen: set[str] = set()
    for key, item in response:
        if key in seen:
            return None
        seen.add(key)
        if key in ("Host", "Response", "Error"):
            if type(item) is not str:
                return None
            if key == "Host":
                host = _valid_text(item)
            elif key == "Error":
                error = _valid_text(item)
        elif key == "Header":
            if item is not None and not _strings(item):
                return None
        elif key == "Tabular":
            if item is not None and not (type(item) is list and all(map(_strings, item))):
                return None
        elif key != "Data" or not _nests_within(item, DATA_DEPTH_MAX):
            return None
    return host, error


def _strings(value: object) -> bool:
    return type(value) is list and all(type(item) is str for item in value)


def _nests_within(value: object, depth: int) -> bool:
    """Whether the arrays and objects in `value` nest at most `depth` deep."""
    if type(value) is list:
        items: Iterable[object] = value
    elif type(value) is tuple:
        items = (item for _, item in value)
    else:
        return True
    return depth > 0 and all(_nests_within(item, depth - 1) for item in items)


class ReplyReader:
    """The replies in a client's stream of bytes, one line each."""

    __slots__ = ("_buffer", "_last_line", "_last_reply", "_scanned", "_start")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._start = 0  # where the next line begins
        self._scanned = 0  # where the search for its newline goes on
        # Most replies repeat the one before (a script of writes): decoded once.
        self._last_line = b""
        self._last_reply: Reply | None = None

    def feed(self, data: bytes) -> None:
        if self._start:
            del self._buffer[:self._start]
            self._scanned -= self._start
            self._start = 0
        self._buffer += data

    def next_reply(self) -> Reply | None:
        """The next reply, or None until more is fed; UnexpectedReply for a bad line."""
        buffer = self._buffer
        while (end := buffer.find(b"\n", self._scanned)) >= 0:
            line = bytes(buffer[self._start:end])
            self._start = self._scanned = end + 1
            if line == self._last_line and self._last_reply is not None:
                return self._last_reply
            reply = decode_reply(line)
            if reply is not None:
                self._last_line, self._last_reply = line, reply
                return reply
        self._scanned = len(buffer)
        return None


# -- raw pipe mode ------------------------------------------------------------------------


class RawLines:
    """Splits a raw byte stream into blocks of whole lines, each shorter than LINE_MAX.

    It is fed reads of at most LINE_MAX bytes: a line can only reach LINE_MAX
    by spanning reads, so only the line carried over from earlier reads is
    measured, never the lines inside one read. What it returns may be a view
    of what it was fed: use it before the next feed.
    """

    __slots__ = ("_partial", "_skip_newline", "too_long")

    def __init__(self, too_long: str, *, skip_newline: bool = False) -> None:
        self._partial = bytearray()  # grown in place: a long line comes in many reads
        self.too_long = too_long
        # The newline that may end the PlumbPipe request, which may come later.
        self._skip_newline = skip_newline

    @property
    def partial(self) -> bytes:
        """The start of a line whose newline has not come."""
        return bytes(self._partial)

    def feed(self, data: bytes) -> bytes:
        """The whole lines that a read completes (b"" if none); raises TooLong."""
        block = self.feed_buffer(data, len(data))
        assert isinstance(block, bytes)  # slices of bytes are bytes
        return block

    def feed_buffer(self, data: bytes | bytearray, size: int) -> bytes | memoryview:
        """The same for the first `size` bytes of `data`; a buffer that is read into
        again gives a view of it, to be used before the next read."""
        begin = 0
        if self._skip_newline and size:
            self._skip_newline = False
            begin = 1 if data[0] == 0x0A else 0
        last = data.rfind(b"\n", begin, size)
        partial = self._partial
        if last < 0:
            partial += memoryview(data)[begin:size]
            if len(partial) >= LINE_MAX:
                raise TooLong(self.too_long, len(partial))
            return b""
        view = data if isinstance(data, bytes) else memoryview(data)
        if partial:
            first = len(partial) + data.find(b"\n", begin, size) - begin
            if first >= LINE_MAX:
                raise TooLong(self.too_long, first)
            # one copy, not two: a slice of bytes would be a copy of its own
            block: bytes | memoryview = b"".join((partial, memoryview(data)[begin:last + 1]))
        elif begin == 0 and last == len(data) - 1:
            block = data if isinstance(data, bytes) else view
        else:
            block = view[begin:last + 1]
        self._partial = bytearray(view[last + 1:size])
        return block

    def final(self) -> bytes:
        """At a clean end of the stream: an unterminated last line, completed."""
        return bytes(self._partial) + b"\n" if self._partial else b""

