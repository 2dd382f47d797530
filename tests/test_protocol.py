"""minishell.protocol.control on its own: bytes in, values and bytes out."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import subprocess
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from minishell.protocol import control
from minishell.protocol.control import (
    LINE_MAX,
    JsonFramer,
    ProtocolError,
    RawLines,
    Request,
    RequestFramer,
    TooLong,
    UnexpectedReply,
    decode_reply,
    decode_request,
)

# -- framing ----------------------------------------------------------------------------------


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` cut at these positions (any, in any order)."""
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[start:end] for start, end in itertools.pairwise(points)]


def frame(stream: list[bytes], limit: int = 64, *,
          decode: bool = False) -> tuple[list[object], str, bytes, int]:
    """What a framer makes of a stream fed in these pieces: the values (decoded as
    requests, if `decode`), the error that stopped it (if any), what was left over,
    and the bytes it scanned (-1 after an error, which may come before all is
    scanned). It may raise nothing but its own errors."""
    framer = RequestFramer() if decode else JsonFramer(limit, "too long")
    take = framer.next_request if isinstance(framer, RequestFramer) else framer.next_value
    values: list[object] = []
    try:
        for piece in stream:
            framer.feed(piece)
            while (value := take()) is not None:
                values.append(value)
    except ProtocolError as error:
        # Never more than what came, and the backslash of an escape still to come.
        assert framer.scanned <= sum(map(len, stream)) + 1
        return values, f"{type(error).__name__}: {error}", b"", -1
    return values, "", framer.rest(), framer.scanned


JSONISH = st.lists(st.sampled_from(
    [b"{", b"}", b"[", b"]", b'"', b"\\", b":", b",", b" ", b"\n", b"1", b"a", b"null",
     b'"Command"', b'{"Command":"pipe foo x"}', b"\\u00e9", b"\xff", b"\xc3\xa9"]),
    max_size=40).map(b"".join)


@settings(max_examples=400)
@given(data=JSONISH | st.binary(max_size=80), cuts=st.lists(st.integers(0, 200), max_size=12))
@example(data=b'{"a":"\\"}"} "x\\\\" 12 ', cuts=[4, 5, 6, 17])
def test_the_framer_frames_alike_however_the_stream_is_cut(data: bytes, cuts: list[int]) -> None:
    whole = frame([data])
    assert frame(pieces(data, cuts)) == whole
    assert frame([data[index:index + 1] for index in range(len(data))]) == whole


@settings(max_examples=200)
@given(data=JSONISH | st.binary(max_size=80), cuts=st.lists(st.integers(0, 200), max_size=12))
def test_requests_decode_alike_however_the_stream_is_cut(data: bytes, cuts: list[int]) -> None:
    assert frame(pieces(data, cuts), decode=True) == frame([data], decode=True)


def test_values_are_framed_by_their_own_syntax_not_by_newlines() -> None:
    stream = b' {"command": "pipe a 1"} {"COMMAND":\n"pipe b 2"}null "s\\"}" [1,{"a":"]"}] 12 x'
    assert frame([stream], limit=100)[:2] == ([
        b'{"command": "pipe a 1"}', b'{"COMMAND":\n"pipe b 2"}', b"null", b'"s\\"}"',
        b'[1,{"a":"]"}]', b"12"], "")


def test_each_byte_is_scanned_once_however_small_the_pieces() -> None:
    value = b'{"Command":"pipe foo ' + b"x\\\"" * 100_000 + b'"}'
    framer = RequestFramer()
    for start in range(0, len(value), 7):
        framer.feed(value[start:start + 7])
        request = framer.next_request()
    assert request is not None and request.command.startswith("pipe foo x\"x")
    assert framer.scanned == len(value)


@pytest.mark.parametrize(("opening", "filler"), [
    (b"", b"["), (b'{"Command":"', b"x"), (b'{"Command":"', b'\\"'), (b"{", b'"a":['),
])
def test_an_unterminated_value_is_refused_once_past_the_limit(
        opening: bytes, filler: bytes) -> None:
    """12 MiB of `[` (or of a string) in 64 KiB reads: refused after 1 MiB, each
    byte looked at once."""
    framer = RequestFramer()
    framer.feed(opening)
    fed = len(opening)
    data = filler * ((1 << 16) // len(filler))
    error = None
    for _ in range(12 * 16):
        framer.feed(data)
        fed += len(data)
        try:
            framer.next_request()
        except TooLong as too_long:
            error = too_long
            break
    assert str(error) == "request longer than 1 MiB"
    assert LINE_MAX < fed <= LINE_MAX + len(data)
    assert framer.scanned == fed


def test_whitespace_between_values_is_not_kept() -> None:
    framer = RequestFramer()
    for _ in range(100):
        framer.feed(b" \n" * 50_000)
        assert framer.next_request() is None
    assert framer.buffered() == 0


# -- requests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "request_"), [
    (b'{"Command":"pipe"}', Request(command="pipe")),
    (b'{"cOMMAND":"a","command":"b"}', Request(command="b")),  # Go: the last one
    (b'{"Suggest":"pi","Other":[1e999,{"x":null}]}', Request(suggest="pi")),
    (b'{"PlumbPipe":"ns//p","Raw":true}', Request(plumb_pipe="ns//p", raw=True)),
    (b'{"Command":null}', Request()),
    (b"null", Request()),
    (b'{"Command":"pipe \\ud800 x\\udfff"}', Request(command="pipe \ufffd x\ufffd")),
    (b'{"Command":"\\ud83d\\ude00 \xff"}', Request(command="\U0001f600 \ufffd")),
    (b'{"Other":' + b"7" * 5000 + b"}", Request()),  # more digits than Python's int() takes
])
def test_requests_decode_as_go_decodes_them(value: bytes, request_: Request) -> None:
    assert decode_request(value) == request_


@pytest.mark.parametrize("value", [
    b"[1]", b'"x"', b'{"Command":1}', b'{"Raw":"yes"}', b'{"Command":"x",}', b'{"X":NaN}',
    b'{"Command":"a\tb"}', b"[" * 5000 + b"]" * 5000,
])
def test_a_request_that_is_not_one_is_a_protocol_error(value: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_request(value)


def test_json_strings_messages() -> None:
    assert control.decode_message(b'"hi\\n"') == b"hi\n"
    assert control.decode_message(b'""') is None
    assert control.decode_message(b"null") is None
    assert control.decode_message(b'"\\udc80x"') == "\ufffdx".encode()
    with pytest.raises(ProtocolError):
        control.decode_message(b"42")


# -- replies ----------------------------------------------------------------------------------


@settings(max_examples=500)
@given(st.text())
@example("<b> & \u2028\u2029 \b\f\x00\x1f\x7f \ud800 \U0001f600 \\ \"")
def test_strings_are_encoded_as_go_encodes_them(text: str) -> None:
    assert control.go_json_string(text) == go_json_model(text)


# encoding/json as of go1.19, escape by escape: \b and \f are still \u0008 and
# \u000c (Go 1.22 changed that); <, >, & and U+2028/9 are escaped for HTML; a lone
# surrogate stands for an invalid UTF-8 byte, which Go writes as \ufffd.
_GO_ESCAPES = {chr(code): f"\\u{code:04x}" for code in range(0x20)} | {
    '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
    "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029",
}
_GO_SPECIAL = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029\ud800-\udfff]')


def go_json_model(text: str) -> str:
    return '"' + _GO_SPECIAL.sub(lambda m: _GO_ESCAPES.get(m[0], "\\ufffd"), text) + '"'



def test_replies_are_minimegas_bytes() -> None:
    assert control.encode_reply(None, "", more=False) == (
        b'{"Resp":null,"Rendered":"","More":false,"Status":false}\n')
    assert control.encode_reply('[{"Host":"h"}]', "a\n<b>", more=True) == (
        b'{"Resp":[{"Host":"h"}],"Rendered":"a\\n\\u003cb\\u003e","More":true,"Status":false}\n')
    assert control.encode_suggest_reply(["pipe", "plumb"]) == (
        b'{"Resp":null,"Rendered":"","More":false,"Status":false,"Suggest":["pipe","plumb"]}\n')
    assert control.encode_suggest_reply([]) == (
        b'{"Resp":null,"Rendered":"","More":false,"Status":false}\n')


def shown(line: bytes) -> tuple[str, list[tuple[str, str]], bool, list[str]] | None:
    reply = decode_reply(line)
    return None if reply is None else (reply.rendered, reply.errors, reply.more, reply.suggest)


@pytest.mark.parametrize(("line", "expected"), [
    (b"", None),
    (b" \t\r", None),
    (b'{"Resp":null,"Rendered":"","More":false,"Status":false}', ("", [], False, [])),
    (b"{}", ("", [], False, [])),
    (b' {"Rendered":"a\\u003c\\ud800","More":true}\r', ("a<\ufffd", [], True, [])),
    (b'{"Rendered":"caf\xc3\xa9 \xff"}', ("caf\u00e9 \ufffd", [], False, [])),
    (b'{"Suggest":["a","\\udc00"],"Status":true}', ("", [], False, ["a", "\ufffd"])),
    (b'{"Resp":[{"Host":"h1","Response":"","Header":null,"Tabular":null,"Error":"e1",'
     b'"Data":null},{"Host":"h2","Error":""},{"Error":"e3","Header":["a"],'
     b'"Tabular":[["1"],[]],"Data":{"n":[1.5e999,-0,{"k":1,"k":2}],"t":true}}]}',
     ("", [("h1", "e1"), ("", "e3")], False, [])),
    (b'{"Resp":[{"Data":' + b"[" * 64 + b"]" * 64 + b"}]}", ("", [], False, [])),
])
def test_replies_decode_strictly(
        line: bytes, expected: tuple[str, list[tuple[str, str]], bool, list[str]] | None) -> None:
    assert shown(line) == expected


@pytest.mark.parametrize("line", [
    b"[]", b"null", b'"x"', b'{"Rendered":5}', b'{"Rendered":null}', b'{"More":1}',
    b'{"More":null}', b'{"Rendered":"a","Rendered":"a"}', b'{"Other":1}', b'{"Resp":{}}',
    b'{"Resp":[null]}', b'{"Resp":[[]]}', b'{"Resp":[{"Host":1}]}', b'{"Resp":[{"X":""}]}',
    b'{"Resp":[{"Error":"a","Error":"b"}]}', b'{"Resp":[{"Header":[1]}]}',
    b'{"Resp":[{"Tabular":["a"]}]}', b'{"Resp":[{"Data":NaN}]}', b'{"Suggest":null}',
    b'{"Resp":[{"Data":' + b"[" * 65 + b"]" * 65 + b"}]}", b'{"Rendered":"x"} x', b'{"a"',
    b'{"Rendered":"raw\ttab"}', b"\x0b{}", b"{}\x0c", b'{"Rendered":"x"}{}',
])
def test_anything_else_is_an_unexpected_reply(line: bytes) -> None:
    with pytest.raises(UnexpectedReply) as raised:
        decode_reply(line)
    assert raised.value.excerpt == line.decode("utf-8", "replace")[:80]


@settings(max_examples=300)
@given(st.binary(max_size=60) | st.text(max_size=30).map(lambda text: json.dumps(
    {"Rendered": text}).encode()))
def test_reply_decoding_raises_only_its_own_error(line: bytes) -> None:
    with contextlib.suppress(UnexpectedReply):
        decode_reply(line.replace(b"\n", b" "))


def test_the_reply_reader_splits_lines_and_decodes_repeats_once() -> None:
    reader = control.ReplyReader()
    line = b'{"Resp":null,"Rendered":"x","More":false,"Status":false}\n'
    reader.feed(line * 3 + b"\n  \n" + line[:10])
    replies = [reader.next_reply() for _ in range(4)]
    assert replies[0] is replies[1] is replies[2]
    assert replies[3] is None
    reader.feed(line[10:])
    assert reader.next_reply() is replies[0]


# -- raw pipe mode ----------------------------------------------------------------------------


@settings(max_examples=300)
@given(data=st.binary(max_size=60).map(lambda data: data.replace(b"\x00", b"\n")),
       cuts=st.lists(st.integers(0, 100), max_size=8), skip=st.booleans())
def test_raw_lines_are_the_same_however_the_stream_is_cut(
        data: bytes, cuts: list[int], skip: bool) -> None:
    def split(stream: list[bytes]) -> tuple[bytes, bytes]:
        lines = RawLines("too long", skip_newline=skip)
        return b"".join(bytes(lines.feed(piece)) for piece in stream), lines.final()

    blocks, final = split(pieces(data, cuts))
    assert (blocks, final) == split([data])
    expected = data[1:] if skip and data.startswith(b"\n") else data
    assert blocks + final.removesuffix(b"\n") == expected


def test_raw_lines_refuse_a_line_of_1_mib() -> None:
    lines = RawLines("too long")
    assert lines.feed(b"a\n" + b"x" * (LINE_MAX - 1)) == b"a\n"
    assert lines.feed(b"\nb\n") == b"x" * (LINE_MAX - 1) + b"\nb\n"
    with pytest.raises(TooLong):
        lines.feed(b"y" * LINE_MAX)
    buffer = bytearray(b"c\nd\nrest")
    lines = RawLines("too long")
    assert bytes(lines.feed_buffer(buffer, 6)) == b"c\nd\n"
    assert lines.partial == b"re"


def test_the_raw_ack() -> None:
    assert not control.raw_ack_complete(b'{"Raw"')
    assert control.raw_ack_complete(control.RAW_ACK + b"data")
    with pytest.raises(ProtocolError, match="does not speak minishell's raw pipe protocol"):
        control.raw_ack_complete(b'"hello\\n"\n')


def test_the_module_imports_nothing_heavy() -> None:
    """The clients start with it: it must not load what they avoid (client.py)."""
    heavy = ("re", "json", "trio", "lark", "prompt_toolkit", "dataclasses", "argparse",
             "logging", "typing", "enum", "socket", "threading", "collections")
    script = (
        "import sys; before = set(sys.modules)\n"
        "from minishell.protocol import control\n"
        "control.decode_reply(b'{\"Rendered\":\"x\",\"Resp\":[{\"Error\":\"e\"}]}')\n"
        "control.encode_request('Command', 'caf\\u00e9'); control.RawLines('x').feed(b'a\\n')\n"
        f"print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in {heavy!r}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=30, check=True)
    assert done.stdout == "[]\n"
