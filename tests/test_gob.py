"""The gob codec against Go's own bytes, Go's documented examples, and hostile input.

The hex vectors below were written by Go 1.19's encoding/gob, one fresh process per
vector (gob's type ids and names depend on what a process encoded before), from small
scratch programs that are not part of this repository.
"""

from __future__ import annotations

import dataclasses
import enum
import tracemalloc
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minishell.protocol.gob import (
    BOOL,
    BYTES,
    GO_WIRE_TYPE,
    INT,
    INT32,
    RAW_STRING,
    STRING,
    UINT,
    UINT64,
    WIRE_TYPE_ID,
    Decoder,
    Encoder,
    GobError,
    GoType,
    Limits,
    Map,
    Ptr,
    Slice,
    Struct,
    TypeIds,
)


def hexbytes(*lines: str) -> bytes:
    return bytes.fromhex("".join(lines))


# doc.go's worked example: type Point struct {X, Y int}; Point{22, 33}, sent twice
POINT_FIRST = hexbytes(
    "1fff8103010105506f696e7401ff8200", "01020101580104000101590104000000",
    "07ff82012c014200",
)
POINT_AGAIN = hexbytes("07ff82012c014200")

# Encode(1), "pipename", "data\n", -129, uint64(MaxUint64), []string{"x", "y"},
# map[string]string{"k": "v"}, true, []byte("raw"): top-level values ("singletons")
SINGLETONS = hexbytes(
    "030400020b0c0008706970656e616d65080c0005646174610a050400fe01010b0600f8ffffffffffffffff0c",
    "ff81020102ff8200010c000008ff820002017801790eff83040102ff8400010c010c000008ff840001016b01",
    "7603020001060a0003726177",
)

# type Node struct { Val int; Next *Node }
# type Message struct { Type int; Float float64; Complex complex128; Array [3]int;
#     Nested map[string][]int; List *Node; When time.Time; Blob []byte; Count uint;
#     Flag bool; UUID string; Strings [2]string; Version string }
# its type descriptors (float, complex, arrays, a recursive type, a GobEncoder) ...
OTHER_TYPES = hexbytes(
    "ff9dff81030101074d65737361676501ff8200010d0104547970650104000105466c6f61740108000107436f",
    "6d706c6578010e000105417272617901ff840001064e657374656401ff880001044c69737401ff8a00010457",
    "68656e01ff8c000104426c6f62010a000105436f756e740106000104466c6167010200010455554944010c00",
    "0107537472696e677301ff8e00010756657273696f6e010c00000016ff83010101065b335d696e7401ff8400",
    "01040106000021ff87040101106d61705b737472696e675d5b5d696e7401ff8800010c01ff8600000cff8502",
    "0102ff86000104000024ff89030101044e6f646501ff8a000102010356616c01040001044e65787401ff8a00",
    "000010ff8b0501010454696d6501ff8c00000019ff8d010101095b325d737472696e6701ff8e00010c010400",
    "00",
)
# ... then Message{Type: 6, Float: 17.0, Complex: 1.5-2i, Array: {1, -2, 3},
#     Nested: {"a": {1, 2}}, List: &Node{1, &Node{2, nil}}, When: 2024-01-02T03:04:05.000000006Z,
#     Blob: "blob", Count: 300, Flag: true, UUID: "u", Strings: {"x", ""}, Version: "v1"}
OTHER_VALUE = hexbytes(
    "4cff82010c01fe314001fef83fffc00103020306010101610202040101020101040000010f010000000edd",
    "25742500000006ffff0104626c6f6201fe012c010101017501020178000102763100",
)
# ... and Message{Type: 1, List: a list of 100 nodes}
OTHER_DEEP = hexbytes(
    "fe01c3ff82010203030000000201ffc80101ffc60101ffc40101ffc20101ffc00101ffbe0101ffbc0101ff",
    "ba0101ffb80101ffb60101ffb40101ffb20101ffb00101ffae0101ffac0101ffaa0101ffa80101ffa60101ff",
    "a40101ffa20101ffa00101ff9e0101ff9c0101ff9a0101ff980101ff960101ff940101ff920101ff900101ff",
    "8e0101ff8c0101ff8a0101ff880101ff860101ff840101ff820101ff8001017e01017c01017a010178010176",
    "01017401017201017001016e01016c01016a01016801016601016401016201016001015e01015c01015a0101",
    "5801015601015401015201015001014e01014c01014a01014801014601014401014201014001013e01013c01",
    "013a01013801013601013401013201013001012e01012c01012a01012801012601012401012201012001011e",
    "01011c01011a01011801011601011401011201011001010e01010c01010a0101080101060101040101020000",
    "00" * 88,
    "000000000000000000000602000000",
)
# type WithInterface struct { Type int; Shape Shape; UUID string }, Shape an interface,
# holding a registered Square{3}
WITH_INTERFACE = hexbytes(
    "37ff810301010d57697468496e7465726661636501ff82000103010454797065010400010553686170650110",
    "00010455554944010c00000036ff8201020113676f627665632f6f746865722e537175617265ff8303010106",
    "53717561726501ff8400010101045369646501040000000aff840301060001017500",
)


@dataclass(kw_only=True)
class Point:
    x: int = 0
    y: int = 0


GO_POINT = Struct(Point, "main.Point", [("X", "x", INT), ("Y", "y", INT)])


@dataclass(kw_only=True)
class Known:
    """The fields of the other side's Message that this side knows."""

    type: int = 0
    uuid: str = ""
    version: str = ""


GO_KNOWN = Struct(Known, "ours.Message", [
    ("Type", "type", INT), ("UUID", "uuid", STRING), ("Version", "version", STRING),
])


@dataclass(kw_only=True)
class Wider:
    type: int = 0
    nested: dict[str, list[int]] | None = None
    blob: bytes = b""
    count: int = 0
    flag: bool = False


GO_WIDER = Struct(Wider, "ours.Message", [
    ("Type", "type", INT), ("Nested", "nested", Map(STRING, Slice(INT))),
    ("Blob", "blob", BYTES), ("Count", "count", UINT), ("Flag", "flag", BOOL),
])


@dataclass(kw_only=True)
class Inner:
    n: int = 0
    s: str = ""


GO_INNER = Struct(Inner, "test.Inner", [("N", "n", INT), ("S", "s", STRING)])


@dataclass(kw_only=True)
class Rich:
    """Every kind the codec describes, for round trips and fuzzing."""

    flag: bool = False
    small: int = 0
    big: int = 0
    text: str = ""
    raw: bytes = b""
    blob: bytes = b""
    words: list[str] = dataclasses.field(default_factory=list)
    table: dict[str, int] | None = None
    by_id: dict[int, Inner] | None = None
    inner: Inner | None = None
    value: Inner = dataclasses.field(default_factory=Inner)
    level: int | None = None
    items: list[Inner] = dataclasses.field(default_factory=list)


GO_RICH = Struct(Rich, "test.Rich", [
    ("Flag", "flag", BOOL),
    ("Small", "small", INT32),
    ("Big", "big", UINT64),
    ("Text", "text", STRING),
    ("Raw", "raw", RAW_STRING),
    ("Blob", "blob", BYTES),
    ("Words", "words", Slice(STRING)),
    ("Table", "table", Map(STRING, INT)),
    ("ByID", "by_id", Map(INT, Ptr(GO_INNER))),
    ("Inner", "inner", Ptr(GO_INNER)),
    ("Value", "value", GO_INNER),
    ("Level", "level", Ptr(INT)),
    ("Items", "items", Slice(Ptr(GO_INNER))),
])


def decode_all(target: GoType[Any], data: bytes, limits: Limits | None = None) -> list[Any]:
    decoder = Decoder(target, limits=limits or Limits())
    decoder.feed(data)
    values = list(decoder)
    decoder.end_of_stream()
    return values


def frame(body: bytes) -> bytes:
    """A message as gob frames it: its byte count first."""
    if len(body) < 0x80:
        return bytes([len(body)]) + body
    count = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([256 - len(count)]) + count + body


def body_of(message: bytes) -> bytes:
    width = 0 if message[0] < 0x80 else 256 - message[0]
    return message[1 + width:]


# --- Go's bytes ------------------------------------------------------------------------


def test_docs_point_example_byte_for_byte() -> None:
    encoder = Encoder()
    assert encoder.encode(GO_POINT, Point(x=22, y=33)) == POINT_FIRST
    assert encoder.encode(GO_POINT, Point(x=22, y=33)) == POINT_AGAIN
    assert decode_all(GO_POINT, POINT_FIRST + POINT_AGAIN) == [Point(x=22, y=33)] * 2


@pytest.mark.parametrize(("value", "wire"), [
    (0, "00"), (7, "0e"), (-1, "01"), (63, "7e"), (64, "ff80"), (256, "fe0200"),
    (-129, "fe0101"), (2**63 - 1, "f8fffffffffffffffe"), (-(2**63), "f8ffffffffffffffff"),
])
def test_signed_integers_are_zig_zag(value: int, wire: str) -> None:
    # a singleton int: length, type id 2 (as int: 04), field delta 0, then the value
    body = bytes.fromhex("0400" + wire)
    encoded = Encoder().encode(INT, value)
    assert encoded == frame(body)
    assert decode_all(INT, encoded) == [value]


@pytest.mark.parametrize(("value", "wire"), [
    (0, "00"), (7, "07"), (127, "7f"), (128, "ff80"), (256, "fe0100"),
    (2**64 - 1, "f8ffffffffffffffff"),
])
def test_unsigned_integers_are_minimal_big_endian(value: int, wire: str) -> None:
    encoded = Encoder().encode(UINT, value)
    assert encoded == frame(bytes.fromhex("0600" + wire))
    assert decode_all(UINT, encoded) == [value]


def test_singletons_as_go_writes_them() -> None:
    kinds: list[tuple[GoType[Any], Any]] = [
        (INT, 1), (STRING, "pipename"), (RAW_STRING, b"data\n"), (INT, -129),
        (UINT64, 2**64 - 1), (Slice(STRING), ["x", "y"]), (Map(STRING, STRING), {"k": "v"}),
        (BOOL, True), (BYTES, b"raw"),
    ]
    encoder = Encoder()
    assert b"".join(encoder.encode(kind, value) for kind, value in kinds) == SINGLETONS
    decoder = Decoder(INT)
    decoder.feed(SINGLETONS)
    assert [decoder.next_value(kind) for kind, _ in kinds] == [value for _, value in kinds]
    assert decoder.next_value(INT) is None
    decoder.end_of_stream()


def test_unknown_fields_of_every_kind_are_skipped() -> None:
    # float, complex, arrays, a map of slices, a recursive struct, a GobEncoder, ...
    assert decode_all(GO_KNOWN, OTHER_TYPES + OTHER_VALUE) == [
        Known(type=6, uuid="u", version="v1"),
    ]


def test_fields_are_matched_by_name_into_the_receivers_types() -> None:
    assert decode_all(GO_WIDER, OTHER_TYPES + OTHER_VALUE) == [
        Wider(type=6, nested={"a": [1, 2]}, blob=b"blob", count=300, flag=True),
    ]


def test_descriptors_received_are_kept_by_id() -> None:
    decoder = Decoder(GO_KNOWN)
    decoder.feed(OTHER_TYPES)
    assert list(decoder) == []
    names = {type_id: wire.common.name for type_id, wire in decoder.wire_types.items()}
    # []int is unnamed: Go first reached it as a map's element
    assert names == {65: "Message", 66: "[3]int", 67: "", 68: "map[string][]int",
                     69: "Node", 70: "Time", 71: "[2]string"}


@pytest.mark.parametrize(("go_name", "local"), [
    ("Float", INT),  # "change of type": a float into an int
    ("Count", INT),  # "change of signedness": a uint into an int
    ("Nested", Slice(INT)),  # a map into a slice
    ("Array", Slice(INT)),  # arrays have no Python description
    ("When", BYTES),  # nor have GobEncoder values
])
def test_a_field_of_another_type_is_a_mismatch(go_name: str, local: GoType[Any]) -> None:
    @dataclass(kw_only=True)
    class Clash:
        value: Any = dataclasses.field(default_factory=local.zero)

    target = Struct(Clash, "ours.Clash", [(go_name, "value", local)])
    with pytest.raises(GobError, match="type mismatch"):
        decode_all(target, OTHER_TYPES + OTHER_VALUE)


def test_a_struct_with_no_field_in_common_is_a_mismatch() -> None:
    with pytest.raises(GobError, match="no fields matched"):
        decode_all(GO_POINT, OTHER_TYPES + OTHER_VALUE)


def test_recursive_wire_types_are_bounded_by_depth() -> None:
    with pytest.raises(GobError, match="nested deeper than 64"):
        decode_all(GO_KNOWN, OTHER_TYPES + OTHER_DEEP)
    deep_enough = Limits(max_depth=120)
    assert decode_all(GO_KNOWN, OTHER_TYPES + OTHER_DEEP, deep_enough) == [Known(type=1)]


def test_a_hostile_type_name_stays_printable_in_the_error() -> None:
    @dataclass(kw_only=True)
    class Named:
        x: int = 0

    # a name of bytes that are not UTF-8, as a peer may send one
    stream = Encoder().encode(Struct(Named, "x.\udcff\udcfe", [("Z", "x", INT)]), Named(x=1))
    with pytest.raises(GobError) as caught:
        decode_all(GO_POINT, stream)
    assert "'\\udcff\\udcfe'" in str(caught.value)
    str(caught.value).encode("utf-8")


def test_depth_is_kept_within_pythons_recursion_limit() -> None:
    with pytest.raises(ValueError, match="max_depth"):
        Limits(max_depth=1000)


def test_interface_values_are_an_error_even_when_skipped() -> None:
    with pytest.raises(GobError, match="interface"):
        decode_all(GO_KNOWN, WITH_INTERFACE)


def test_gos_own_descriptor_types_get_gos_ids() -> None:
    # encoding/gob/type.go checks 16-21 and 23; 22 is []*fieldType, 24 gobEncoderType
    ids = TypeIds([GO_WIRE_TYPE], first_id=WIRE_TYPE_ID)
    assert sorted((type_id, wire.common.name) for type_id, wire in ids.wire_types.items()) == [
        (16, "wireType"), (17, "arrayType"), (18, "CommonType"), (19, "sliceType"),
        (20, "structType"), (21, ""), (22, "[]*gob.fieldType"), (23, "mapType"),
        (24, "gobEncoderType"),
    ]


@dataclass(kw_only=True)
class Counter:
    n: int = 0


GO_COUNTER = Struct(Counter, "main.Inner", [("N", "n", INT)])


@pytest.mark.parametrize(("kind", "value", "go_wrote"), [
    # a struct first reached as a slice's element is named, unless through a pointer;
    # as a map's element it never is
    (Slice(GO_COUNTER), [Counter(n=1)], "0dff83020102ff840001ff82000019ff8103010105496e6e65"
                                        "7201ff8200010101014e010400000007ff840001010200"),
    (Slice(Ptr(GO_COUNTER)), [Counter(n=1)], "0dff83020102ff840001ff82000012ff81030102ff8200"
                                             "010101014e010400000007ff840001010200"),
    (Map(STRING, GO_COUNTER), {"a": Counter(n=1)}, "0fff83040102ff8400010c01ff82000012ff8103"
                                                   "0102ff8200010101014e010400000009ff84000101"
                                                   "61010200"),
])
def test_types_are_named_by_how_go_first_reached_them(kind: GoType[Any], value: Any,
                                                      go_wrote: str) -> None:
    assert Encoder().encode(kind, value) == bytes.fromhex(go_wrote)
    assert decode_all(kind, bytes.fromhex(go_wrote)) == [value]


# --- values ----------------------------------------------------------------------------


def test_zero_fields_are_left_out_but_empty_maps_and_struct_values_are_sent() -> None:
    encoder = Encoder()
    encoder.encode(GO_RICH, Rich())  # the descriptors
    # Value (field 10) is a struct, not a pointer: sent even when empty
    assert encoder.encode(GO_RICH, Rich()) == frame(bytes.fromhex("ff82" + "0b00" + "00"))
    assert encoder.encode(GO_RICH, Rich(table={})) == frame(
        bytes.fromhex("ff82" + "0800" + "0300" + "00"))
    # a pointer to a zero int is left out, as Go leaves it out
    assert encoder.encode(GO_RICH, Rich(level=0)) == encoder.encode(GO_RICH, Rich())


def test_bytes_that_are_not_utf8_survive_a_go_string() -> None:
    text = b"\xff\xfeok\xc3".decode("utf-8", "surrogateescape")
    values = decode_all(GO_RICH, Encoder().encode(GO_RICH, Rich(text=text, raw=b"\xff")))
    assert (values[0].text, values[0].raw) == (text, b"\xff")


def test_int_enums_encode_as_their_value() -> None:
    class Color(enum.IntEnum):
        RED = 5

    assert Encoder().encode(INT, Color.RED) == Encoder().encode(INT, 5)


@pytest.mark.parametrize(("kind", "value", "complaint"), [
    (Ptr(GO_INNER), None, "nil"),
    (Map(INT, Ptr(GO_INNER)), {1: None}, "nil"),
    (Slice(Ptr(GO_INNER)), [None], "nil"),
    (INT32, 2**31, "out of range"),
    (UINT, -1, "out of range"),
    (STRING, "\ud800", "cannot be sent"),
    (GO_INNER, Point(), "is not a Inner"),
])
def test_values_gob_cannot_carry_are_refused(kind: GoType[Any], value: Any,
                                             complaint: str) -> None:
    with pytest.raises(GobError, match=complaint):
        Encoder().encode(kind, value)


def test_a_value_that_fails_to_encode_leaves_its_types_unsent() -> None:
    encoder = Encoder()
    with pytest.raises(GobError):
        encoder.encode(GO_RICH, Rich(small=2**40))
    sent = encoder.encode(GO_RICH, Rich(small=1))
    assert decode_all(GO_RICH, sent) == [Rich(small=1)]


def test_a_message_above_the_limit_is_refused_on_encode() -> None:
    with pytest.raises(GobError, match="exceeds the limit"):
        Encoder(limits=Limits(max_message_size=64)).encode(BYTES, bytes(64))


def test_a_description_table_must_match_its_dataclass() -> None:
    with pytest.raises(TypeError, match="described"):
        Struct(Point, "main.Point", [("X", "x", INT)])
    with pytest.raises(TypeError, match="zero"):
        Struct(Point, "main.Point", [("X", "x", INT), ("Y", "y", STRING)])
    with pytest.raises(TypeError, match="hashable"):
        Map(BYTES, INT)


# --- streams, split and cut ------------------------------------------------------------


def test_a_value_split_across_feeds_waits_for_the_rest() -> None:
    stream = Encoder().encode(GO_RICH, Rich(words=["a"] * 100, text="x" * 300))
    decoder = Decoder(GO_RICH)
    for at in range(len(stream) - 1):
        decoder.feed(stream[at:at + 1])
        assert list(decoder) == []
        with pytest.raises(GobError, match="ended"):
            decoder.end_of_stream()
    decoder.feed(stream[-1:])
    assert list(decoder) == [Rich(words=["a"] * 100, text="x" * 300)]
    decoder.end_of_stream()


def test_descriptors_without_their_value_are_an_unexpected_end() -> None:
    descriptors = Encoder().encode_messages(GO_RICH, Rich())[:-1]
    decoder = Decoder(GO_RICH)
    decoder.feed(b"".join(descriptors))
    assert list(decoder) == []
    with pytest.raises(GobError, match="before their value"):
        decoder.end_of_stream()


def test_every_message_cut_short_is_an_error() -> None:
    # a gob value never ends early: any shorter body, reframed, fails to decode
    messages = Encoder().encode_messages(GO_RICH, Rich(
        flag=True, text="t", words=["w"], table={"k": 1}, by_id={2: Inner(n=3)},
        inner=Inner(s="s"), level=4, items=[Inner()]))
    for index, message in enumerate(messages):
        before = b"".join(messages[:index])
        body = body_of(message)
        for cut in range(1, len(body)):
            decoder = Decoder(GO_RICH)
            decoder.feed(before + frame(body[:cut]))
            with pytest.raises(GobError):
                list(decoder)


# --- hostile framing and descriptors ---------------------------------------------------


def fails_with(data: bytes, complaint: str, target: GoType[Any] = GO_RICH,
               limits: Limits | None = None) -> None:
    decoder = Decoder(target, limits=limits or Limits())
    decoder.feed(data)
    with pytest.raises(GobError, match=complaint):
        list(decoder)
    # the stream stays failed
    with pytest.raises(GobError, match=complaint):
        decoder.feed(b"\x00")


def rich_types() -> bytes:
    return b"".join(Encoder().encode_messages(GO_RICH, Rich())[:-1])


@pytest.mark.parametrize(("data", "target", "complaint"), [
    (b"\xfc\x01\x00\x00\x01", INT, "exceeds the limit"),  # 16 MiB + 1: refused at once
    (b"\xf7", INT, "invalid message length"),  # a 9-byte count
    (b"\x00", INT, "empty message"),
    (frame(b"\x04\x00\xf7"), INT, "invalid unsigned integer"),
    (frame(b"\x04\x00\xfe\x01"), INT, "inside an integer"),
    (frame(b"\x04\x01\x02"), INT, "nonzero field delta"),
    (frame(b"\x04\x00\x02\x00"), INT, "left over"),
    (frame(b"\x0c\x00\x05ab"), STRING, "exceeds the 2 bytes left"),
    (frame(b"\xff\x82\x00"), INT, "never defined"),
    (frame(b"\x0a\x00\x01\x00"), INT, "cannot receive \\[\\]byte into int"),
    (frame(b"\x13\x00"), INT, "reserved"),  # defines id 10
    (frame(b"\xff\x81\x00"), INT, "exactly one"),  # defines 65 as nothing
])
def test_hostile_framing_is_one_error(data: bytes, target: GoType[Any], complaint: str) -> None:
    fails_with(data, complaint, target)


def test_a_count_larger_than_the_bytes_left_fails_before_allocating() -> None:
    descriptor = Encoder().encode_messages(Slice(STRING), [])[0]
    tracemalloc.start()
    try:
        # a []string claiming 2**60 elements in a message of 12 bytes
        fails_with(descriptor + frame(b"\xff\x82\x00\xf8\x10" + bytes(7)), "count",
                   target=Slice(STRING))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_elements_per_message_are_bounded() -> None:
    stream = Encoder().encode(Slice(INT), list(range(11)))
    assert decode_all(Slice(INT), stream, Limits(max_elements=11)) == [list(range(11))]
    fails_with(stream, "too many elements", Slice(INT), Limits(max_elements=10))


def test_type_descriptors_are_bounded_in_number_and_size() -> None:
    types = rich_types()
    fails_with(types, "more than 2 type descriptors", limits=Limits(max_type_descriptors=2))
    fails_with(types, "type descriptors exceed 100 bytes", limits=Limits(max_type_bytes=100))


def test_a_type_defined_twice_is_an_error() -> None:
    first = Encoder().encode_messages(GO_POINT, Point())[0]
    fails_with(first + first, "defined twice", target=GO_POINT)


def test_a_field_number_past_the_struct_is_an_error() -> None:
    descriptor = Encoder().encode_messages(GO_POINT, Point())[0]
    fails_with(descriptor + frame(b"\xff\x82\x03\x02\x00"), "out of range", target=GO_POINT)


# --- properties ------------------------------------------------------------------------

go_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20) | st.binary(
    max_size=20).map(lambda raw: raw.decode("utf-8", "surrogateescape"))
inners = st.builds(Inner, n=st.integers(-(2**63), 2**63 - 1), s=go_text)
riches = st.builds(
    Rich,
    flag=st.booleans(),
    small=st.integers(-(2**31), 2**31 - 1),
    big=st.integers(0, 2**64 - 1),
    text=go_text,
    raw=st.binary(max_size=20),
    blob=st.binary(max_size=20),
    words=st.lists(go_text, max_size=4),
    table=st.none() | st.dictionaries(go_text, st.integers(-(2**63), 2**63 - 1), max_size=3),
    by_id=st.none() | st.dictionaries(st.integers(-5, 5), inners, max_size=3),
    inner=st.none() | inners,
    value=inners,
    level=st.none() | st.integers(1, 2**40),
    items=st.lists(inners, max_size=3),
)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(riches, min_size=1, max_size=4), data=st.data())
def test_values_round_trip_through_any_split(values: list[Rich], data: st.DataObject) -> None:
    encoder = Encoder()
    stream = b"".join(encoder.encode(GO_RICH, value) for value in values)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    decoder = Decoder(GO_RICH)
    received = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        decoder.feed(stream[start:end])
        received.extend(decoder)
    assert received == values
    decoder.end_of_stream()


def only_gob_errors(target: GoType[Any], chunks: list[bytes],
                    limits: Limits | None = None) -> None:
    decoder = Decoder(target, limits=limits or Limits())
    try:
        for chunk in chunks:
            decoder.feed(chunk)
            for _ in decoder:
                pass
        decoder.end_of_stream()
    except GobError:
        pass


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(max_size=300))
def test_arbitrary_bytes_give_only_gob_errors(garbage: bytes) -> None:
    only_gob_errors(GO_RICH, [garbage])
    only_gob_errors(GO_RICH, [rich_types(), garbage])


SAMPLE = Encoder().encode(GO_RICH, Rich(
    flag=True, small=-3, big=2**40, text="t", raw=b"r", blob=b"b", words=["w", ""],
    table={"k": 1}, by_id={2: Inner(n=3), -1: Inner()}, inner=Inner(s="s"), level=4,
    items=[Inner(), Inner(n=-9)]))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_streams_give_only_gob_errors(data: st.DataObject) -> None:
    stream = bytearray(SAMPLE + OTHER_TYPES + OTHER_VALUE)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(stream) - 1))
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "flip":
            stream[at] = data.draw(st.integers(0, 255))
        elif action == "insert":
            stream[at:at] = data.draw(st.binary(min_size=1, max_size=4))
        else:
            del stream[at:at + data.draw(st.integers(1, 4))]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=4)))
    chunks = [bytes(stream[start:end])
              for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    only_gob_errors(GO_RICH, chunks)
    only_gob_errors(GO_WIDER, chunks, Limits(max_depth=8, max_elements=64))
