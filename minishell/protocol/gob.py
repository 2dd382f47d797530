"""Go's encoding/gob, sans-IO: the part of the format that minimega's ron uses.

What it covers
    Gob streams in both directions: the byte-count framing of messages, type
    descriptors (wireType with its structType, sliceType, mapType, arrayType and the
    GobEncoder kinds; CommonType names and ids), and values of the kinds ron uses:
    bool, signed int (zig-zag), unsigned int, string, []byte, slices, maps, structs
    (matched by field name; fields of zero value left out on encode; fields the
    receiver does not know skipped on decode) and pointers (never on the wire).
    Top-level non-struct values (Go's "singletons", such as the int and strings of
    miniccc's local socket) work as well.

How Python values are described
    A GoType says how one Go type travels and what Python holds for it: BOOL, INT,
    UINT (and sized variants, range-checked), STRING (str), RAW_STRING (a Go string
    kept as bytes: Go strings may hold any bytes), BYTES ([]byte), Slice(elem)
    (list), Map(key, elem) (dict; None is a nil map, which gob leaves out, while an
    empty dict is sent), Ptr(elem) (the value, or None for nil) and Struct(cls,
    "pkg.Name", table) for a dataclass, the table listing its fields in Go's order
    as (Go name, attribute, GoType); Struct checks at import that the table covers
    the dataclass and that every default is Go's zero. Go strings become str
    through UTF-8 with surrogateescape, so any bytes survive a round trip.

Type ids
    Go numbers types per process in the order it first meets them (a struct when it
    is entered, a slice or map after its elements) and names each by the way it
    was first reached. TypeIds does the same from the root types it is given, so an
    Encoder sends the descriptors, ids and order Go sends, byte for byte. A Decoder
    assumes no ids: it learns them from the descriptors it receives.

Errors and limits
    Every failure is one GobError: hostile, corrupt or truncated input, and values
    gob cannot carry. A Decoder that raised one stays failed, since the rest of its
    stream cannot be framed or typed with confidence. Limits (defaults in
    brackets) bound what one stream can cost: a message's size [16 MiB, far above
    ron's largest, a file part of 100 KiB], the number [1024] and total size
    [1 MiB] of type descriptors, nesting depth [64] and elements per message
    [2**20]. A length or count larger than the bytes left in its message fails at
    once, before anything is allocated, so strings and byte slices are bounded by
    the message size.

What it does not cover
    Floats, complex numbers, arrays and GobEncoder/BinaryMarshaler/TextMarshaler
    values have no Python description: in a field the receiver does not know they
    are skipped, as Go skips them; received into a described field they are a type
    mismatch (GobError). Interface values are a GobError even when skipped, because
    their type descriptors travel inside the value. Recursive local types cannot be
    described (ron has none); recursive wire types are skipped fine.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar

T = TypeVar("T")
U = TypeVar("U")
K = TypeVar("K")
V = TypeVar("V")

# Go's predefined type ids (encoding/gob/doc.go); 9-15 are reserved and unused.
BOOL_ID = 1
INT_ID = 2
UINT_ID = 3
FLOAT_ID = 4
BYTES_ID = 5
STRING_ID = 6
COMPLEX_ID = 7
INTERFACE_ID = 8
WIRE_TYPE_ID = 16
# "0 through 64 are reserved": the first id Go gives a user's type.
FIRST_USER_ID = 65

_BUILTIN_NAMES = {
    BOOL_ID: "bool", INT_ID: "int", UINT_ID: "uint", FLOAT_ID: "float", BYTES_ID: "[]byte",
    STRING_ID: "string", COMPLEX_ID: "complex", INTERFACE_ID: "interface",
}
# Draining a big buffer one message at a time must not move its tail each time.
_COMPACT_AFTER = 64 * 1024


class GobError(Exception):
    """A gob stream cannot go on: bad, hostile or truncated input, or a value gob cannot carry."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What one stream may cost; past any of these the stream fails with GobError."""

    max_message_size: int = 16 * 1024 * 1024  # ron's largest: a file part of 100 KiB
    max_type_descriptors: int = 1024  # ron sends 13, minitunnel 1
    max_type_bytes: int = 1024 * 1024  # ron's 13 take 1001 bytes
    max_depth: int = 64  # ron's values nest 3 deep
    max_elements: int = 1 << 20  # slice elements and map entries, per message

    def __post_init__(self) -> None:
        # each level of nesting costs a few Python frames; stay clear of the recursion limit
        if not 0 < self.max_depth <= 200:
            raise ValueError(f"max_depth {self.max_depth} is not within 1..200")


DEFAULT_LIMITS = Limits()


def put_uint(out: bytearray, value: int) -> None:
    """Append gob's unsigned integer: one byte below 0x80, else its byte count negated
    and its big-endian bytes."""
    if value < 0x80:
        out.append(value)
        return
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    out.append(256 - len(raw))  # the byte count, negated
    out += raw


def put_int(out: bytearray, value: int) -> None:
    # Bit 0 says "complement the rest", so the most negative int is no special case.
    put_uint(out, (~value << 1) | 1 if value < 0 else value << 1)


def frame_size(buffer: bytes | bytearray, start: int,
               limits: Limits = DEFAULT_LIMITS) -> tuple[int, int] | None:
    """The message framed at `start`: its length prefix's size and its own; None while the
    prefix is incomplete. GobError for a prefix no stream may send (judged as soon as the
    length is known, so a hostile length costs no buffering)."""
    available = len(buffer) - start
    if available <= 0:
        return None
    first = buffer[start]
    if first < 0x80:
        size, header = first, 1
    else:
        width = 256 - first
        if width > 8:
            raise GobError(f"invalid message length prefix 0x{first:02x}")
        if available <= width:
            return None
        size = int.from_bytes(buffer[start + 1:start + 1 + width], "big")
        header = 1 + width
    if size == 0:
        raise GobError("empty message")
    if size > limits.max_message_size:
        raise GobError(f"message of {size} bytes exceeds the limit of "
                       f"{limits.max_message_size}")
    return header, size


def _framed(body: bytearray, limits: Limits) -> bytes:
    if len(body) > limits.max_message_size:
        # never send what our own decoder (and a peer with the same limits) would refuse
        raise GobError(f"message of {len(body)} bytes exceeds the limit of "
                       f"{limits.max_message_size}")
    out = bytearray()
    put_uint(out, len(body))
    return bytes(out + body)


class _Reader:
    """A cursor over one message; every read checks the bytes that are left."""

    __slots__ = ("_data", "_elements_left", "pos")

    def __init__(self, data: bytes, max_elements: int) -> None:
        self._data = data
        self.pos = 0
        self._elements_left = max_elements

    @property
    def left(self) -> int:
        return len(self._data) - self.pos

    def read_uint(self) -> int:
        data, pos = self._data, self.pos
        if pos >= len(data):
            raise GobError("message ends inside a value")
        first = data[pos]
        if first < 0x80:
            self.pos = pos + 1
            return first
        width = 256 - first
        if width > 8:
            raise GobError(f"invalid unsigned integer prefix 0x{first:02x}")
        end = pos + 1 + width
        if end > len(data):
            raise GobError("message ends inside an integer")
        self.pos = end
        return int.from_bytes(data[pos + 1:end], "big")

    def read_int(self) -> int:
        value = self.read_uint()
        return ~(value >> 1) if value & 1 else value >> 1

    def read_bytes(self) -> bytes:
        start = self._length_checked()
        return self._data[start:self.pos]

    def skip_bytes(self) -> None:
        self._length_checked()

    def _length_checked(self) -> int:
        size = self.read_uint()
        if size > self.left:
            raise GobError(f"length {size} exceeds the {self.left} bytes left in the message")
        start = self.pos
        self.pos = start + size
        return start

    def read_count(self, min_bytes_each: int) -> int:
        """An element count; each element takes at least min_bytes_each bytes on the wire."""
        count = self.read_uint()
        if count * min_bytes_each > self.left:
            raise GobError(f"count {count} exceeds the {self.left} bytes left in the message")
        self._elements_left -= count
        if self._elements_left < 0:
            raise GobError("too many elements in one message")
        return count


# --- how Python values are described -------------------------------------------------


class GoType(abc.ABC, Generic[T]):
    """How one Go type travels, and what Python holds for it."""

    go_string: str  # reflect.Type.String(): Go names unnamed types by it
    go_name: str  # reflect.Type.Name(): "" for pointers, slices and maps

    @property
    def base(self) -> GoType[Any]:
        """The type with pointers removed: what the wire carries."""
        return self

    @abc.abstractmethod
    def zero(self) -> T: ...

    @abc.abstractmethod
    def is_zero(self, value: T) -> bool:
        """Whether gob leaves this value out of a struct."""

    @abc.abstractmethod
    def encode(self, out: bytearray, value: T) -> None: ...

    @abc.abstractmethod
    def decode(self, types: _WireTypes, reader: _Reader, wire_id: int, depth: int) -> T: ...

    @abc.abstractmethod
    def accepts(self, types: _WireTypes, wire_id: int) -> bool:
        """Whether a value of wire type wire_id may be received into this type (kind only)."""

    def __repr__(self) -> str:
        return f"<GoType {self.go_string}>"


def _mismatch(types: _WireTypes, wire_id: int, local: GoType[Any]) -> GobError:
    return GobError(f"type mismatch: cannot receive {types.describe(wire_id)} "
                    f"into {local.go_string}")


class _Scalar(GoType[T]):
    wire_id: int

    def __init__(self, go_string: str) -> None:
        self.go_string = self.go_name = go_string

    def accepts(self, types: _WireTypes, wire_id: int) -> bool:
        return wire_id == self.wire_id

    def decode(self, types: _WireTypes, reader: _Reader, wire_id: int, depth: int) -> T:
        if wire_id != self.wire_id:
            raise _mismatch(types, wire_id, self)
        return self._read(reader)

    @abc.abstractmethod
    def _read(self, reader: _Reader) -> T: ...


class Bool(_Scalar[bool]):
    wire_id = BOOL_ID

    def __init__(self) -> None:
        super().__init__("bool")

    def zero(self) -> bool:
        return False

    def is_zero(self, value: bool) -> bool:
        return not value

    def encode(self, out: bytearray, value: bool) -> None:
        out.append(1 if value else 0)

    def _read(self, reader: _Reader) -> bool:
        return reader.read_uint() != 0  # as Go: any nonzero is true


class _Integer(_Scalar[int]):
    def __init__(self, go_string: str, low: int, high: int) -> None:
        super().__init__(go_string)
        self._low = low
        self._high = high

    def zero(self) -> int:
        return 0

    def is_zero(self, value: int) -> bool:
        return value == 0

    def _checked(self, value: int) -> int:
        # bounds, not `in range(...)`: for an IntEnum or a bool that test walks the range
        if not isinstance(value, int) or not self._low <= value <= self._high:
            raise GobError(f"{value!r} is out of range for {self.go_string}")
        return value


class Int(_Integer):
    """A signed Go integer of the given size, zig-zag on the wire."""

    wire_id = INT_ID

    def __init__(self, bits: int = 64, go_string: str = "int") -> None:
        super().__init__(go_string, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)

    def encode(self, out: bytearray, value: int) -> None:
        put_int(out, self._checked(value))

    def _read(self, reader: _Reader) -> int:
        return self._checked(reader.read_int())


class Uint(_Integer):
    """An unsigned Go integer of the given size."""

    wire_id = UINT_ID

    def __init__(self, bits: int = 64, go_string: str = "uint") -> None:
        super().__init__(go_string, 0, (1 << bits) - 1)

    def encode(self, out: bytearray, value: int) -> None:
        put_uint(out, self._checked(value))

    def _read(self, reader: _Reader) -> int:
        return self._checked(reader.read_uint())


class String(_Scalar[str]):
    """A Go string as str; bytes that are not UTF-8 survive as surrogate escapes."""

    wire_id = STRING_ID

    def __init__(self, go_string: str = "string") -> None:
        super().__init__(go_string)

    def zero(self) -> str:
        return ""

    def is_zero(self, value: str) -> bool:
        return value == ""

    def encode(self, out: bytearray, value: str) -> None:
        if not isinstance(value, str):
            raise GobError(f"{value!r} is not a str for {self.go_string}")
        try:
            raw = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as error:
            raise GobError(f"{value!r} cannot be sent as a Go string: {error.reason}") from None
        put_uint(out, len(raw))
        out += raw

    def _read(self, reader: _Reader) -> str:
        return reader.read_bytes().decode("utf-8", "surrogateescape")


class _ByteString(_Scalar[bytes]):
    def zero(self) -> bytes:
        return b""

    def is_zero(self, value: bytes) -> bool:
        return len(value) == 0

    def encode(self, out: bytearray, value: bytes) -> None:
        if not isinstance(value, bytes | bytearray):
            raise GobError(f"{value!r} is not bytes for {self.go_string}")
        put_uint(out, len(value))
        out += value

    def _read(self, reader: _Reader) -> bytes:
        return reader.read_bytes()


class RawString(_ByteString):
    """A Go string kept as bytes, for data that need not be text."""

    wire_id = STRING_ID

    def __init__(self, go_string: str = "string") -> None:
        super().__init__(go_string)


class Bytes(_ByteString):
    """Go's []byte, which gob treats as a basic type, not as a slice."""

    wire_id = BYTES_ID

    def __init__(self) -> None:
        super().__init__("[]uint8")


BOOL = Bool()
INT = Int()
INT32 = Int(32, "int32")
INT64 = Int(64, "int64")
UINT = Uint()
UINT32 = Uint(32, "uint32")
UINT64 = Uint(64, "uint64")
STRING = String()
RAW_STRING = RawString()
BYTES = Bytes()


class Ptr(GoType[T | None]):
    """*elem: transparent on the wire; None is nil, and a nil pointer is left out."""

    def __init__(self, elem: GoType[T]) -> None:
        self.elem = elem
        self.go_string = "*" + elem.go_string
        self.go_name = ""

    @property
    def base(self) -> GoType[Any]:
        return self.elem.base

    def zero(self) -> T | None:
        return None

    def is_zero(self, value: T | None) -> bool:
        # gob skips a pointer to a zero int or string too; a pointer to a struct never
        return value is None or self.elem.is_zero(value)

    def encode(self, out: bytearray, value: T | None) -> None:
        if value is None:
            raise GobError(f"a nil {self.go_string} cannot be sent")
        self.elem.encode(out, value)

    def decode(self, types: _WireTypes, reader: _Reader, wire_id: int, depth: int) -> T | None:
        return self.elem.decode(types, reader, wire_id, depth)

    def accepts(self, types: _WireTypes, wire_id: int) -> bool:
        return self.elem.accepts(types, wire_id)


def _check_depth(types: _WireTypes, depth: int) -> None:
    if depth > types.limits.max_depth:
        raise GobError(f"values nested deeper than {types.limits.max_depth}")


class Slice(GoType[list[T]]):
    """[]elem as a list; an empty slice is left out of a struct, as Go does."""

    def __init__(self, elem: GoType[T]) -> None:
        self.elem = elem
        self.go_string = "[]" + elem.go_string
        self.go_name = ""

    def zero(self) -> list[T]:
        return []

    def is_zero(self, value: list[T]) -> bool:
        return len(value) == 0

    def encode(self, out: bytearray, value: list[T]) -> None:
        put_uint(out, len(value))
        for item in value:
            self.elem.encode(out, item)

    def decode(self, types: _WireTypes, reader: _Reader, wire_id: int, depth: int) -> list[T]:
        wire = types.lookup(wire_id)
        if wire is None or wire.slice_t is None:
            raise _mismatch(types, wire_id, self)
        _check_depth(types, depth)
        elem_id = wire.slice_t.elem
        return [self.elem.decode(types, reader, elem_id, depth + 1)
                for _ in range(reader.read_count(1))]

    def accepts(self, types: _WireTypes, wire_id: int) -> bool:
        wire = types.lookup(wire_id)
        return wire is not None and wire.slice_t is not None


class Map(GoType[dict[K, V] | None]):
    """map[key]elem as a dict in wire order; None is a nil map (left out), {} is sent."""

    def __init__(self, key: GoType[K], elem: GoType[V]) -> None:
        self.key = key
        if not isinstance(key, Bool | _Integer | String | RawString):
            raise TypeError(f"map key {key.go_string} has no hashable Python form")
        self.elem = elem
        self.go_string = f"map[{key.go_string}]{elem.go_string}"
        self.go_name = ""

    def zero(self) -> dict[K, V] | None:
        return None

    def is_zero(self, value: dict[K, V] | None) -> bool:
        return value is None

    def encode(self, out: bytearray, value: dict[K, V] | None) -> None:
        entries = value or {}
        put_uint(out, len(entries))
        for key, elem in entries.items():
            self.key.encode(out, key)
            self.elem.encode(out, elem)

    def decode(self, types: _WireTypes, reader: _Reader, wire_id: int,
               depth: int) -> dict[K, V] | None:
        wire = types.lookup(wire_id)
        if wire is None or wire.map_t is None:
            raise _mismatch(types, wire_id, self)
        _check_depth(types, depth)
        key_id, elem_id = wire.map_t.key, wire.map_t.elem
        entries: dict[K, V] = {}
        for _ in range(reader.read_count(2)):
            key = self.key.decode(types, reader, key_id, depth + 1)
            entries[key] = self.elem.decode(types, reader, elem_id, depth + 1)
        return entries

    def accepts(self, types: _WireTypes, wire_id: int) -> bool:
        wire = types.lookup(wire_id)
        return wire is not None and wire.map_t is not None


@dataclass(frozen=True, slots=True)
class StructField:
    go_name: str
    attr: str
    type: GoType[Any]


class Struct(GoType[T]):
    """A Go struct as a dataclass: fields listed in Go's order as (Go name, attribute, type).

    Every dataclass field must be listed, with Go's zero as its default, because a
    field left out on the wire is a zero in Go.
    """

    def __init__(self, cls: type[T], go_string: str,
                 fields: Sequence[tuple[str, str, GoType[Any]]]) -> None:
        self.cls = cls
        self.fields = tuple(StructField(go_name, attr, go_type)
                            for go_name, attr, go_type in fields)
        self.by_go_name = {field.go_name: field for field in self.fields}
        self.go_string = go_string
        self.go_name = go_string.rpartition(".")[2]
        _check_defaults(cls, self.fields)

    def zero(self) -> T:
        return self.cls()

    def is_zero(self, value: T) -> bool:
        return False  # gob sends a struct field whenever it is there, even an empty one

    def encode(self, out: bytearray, value: T) -> None:
        if not isinstance(value, self.cls):
            raise GobError(f"{value!r} is not a {self.cls.__name__} for {self.go_string}")
        previous = -1
        for number, field in enumerate(self.fields):
            item = getattr(value, field.attr)
            if field.type.is_zero(item):
                continue
            put_uint(out, number - previous)
            previous = number
            field.type.encode(out, item)
        out.append(0)

    def decode(self, types: _WireTypes, reader: _Reader, wire_id: int, depth: int) -> T:
        plan = types.struct_plan(wire_id, self)
        _check_depth(types, depth)
        values: dict[str, Any] = {}
        number = -1
        while delta := reader.read_uint():
            number += delta
            if number >= len(plan):
                raise GobError(f"field number {number} is out of range for "
                               f"{types.describe(wire_id)}")
            field_wire_id, local = plan[number]
            if local is None:
                types.skip(reader, field_wire_id, depth + 1)
            else:
                values[local.attr] = local.type.decode(types, reader, field_wire_id, depth + 1)
        return self.cls(**values)

    def accepts(self, types: _WireTypes, wire_id: int) -> bool:
        wire = types.lookup(wire_id)
        return wire is not None and wire.struct_t is not None


def _check_defaults(cls: type[Any], fields: tuple[StructField, ...]) -> None:
    """A mistake in a description table fails at import, not on the wire."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    declared = {field.name: field for field in dataclasses.fields(cls)}
    listed = [field.attr for field in fields]
    if sorted(listed) != sorted(declared):
        raise TypeError(f"{cls.__name__}: fields {sorted(declared)} but described {listed}")
    for field in fields:
        spec = declared[field.attr]
        if spec.default is not dataclasses.MISSING:
            default = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            default = spec.default_factory()
        else:
            raise TypeError(f"{cls.__name__}.{field.attr} needs Go's zero as its default")
        if default != field.type.zero():
            raise TypeError(f"{cls.__name__}.{field.attr} defaults to {default!r}, "
                            f"not Go's zero {field.type.zero()!r}")


# --- Go's own type descriptors, described like any other struct ----------------------

TYPE_ID = Int(32, "gob.typeId")


@dataclass(slots=True, kw_only=True)
class CommonType:
    name: str = ""
    id: int = 0


GO_COMMON_TYPE = Struct(CommonType, "gob.CommonType", [
    ("Name", "name", STRING),
    ("Id", "id", TYPE_ID),
])


@dataclass(slots=True, kw_only=True)
class ArrayType:
    common: CommonType = dataclasses.field(default_factory=CommonType)
    elem: int = 0
    len: int = 0


@dataclass(slots=True, kw_only=True)
class SliceType:
    common: CommonType = dataclasses.field(default_factory=CommonType)
    elem: int = 0


@dataclass(slots=True, kw_only=True)
class FieldType:
    name: str = ""
    id: int = 0


@dataclass(slots=True, kw_only=True)
class StructType:
    common: CommonType = dataclasses.field(default_factory=CommonType)
    fields: list[FieldType] = dataclasses.field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class MapType:
    common: CommonType = dataclasses.field(default_factory=CommonType)
    key: int = 0
    elem: int = 0


@dataclass(slots=True, kw_only=True)
class GobEncoderType:
    common: CommonType = dataclasses.field(default_factory=CommonType)


@dataclass(slots=True, kw_only=True)
class WireType:
    """One type descriptor: exactly one of its fields is set."""

    array_t: ArrayType | None = None
    slice_t: SliceType | None = None
    struct_t: StructType | None = None
    map_t: MapType | None = None
    gob_encoder_t: GobEncoderType | None = None
    binary_marshaler_t: GobEncoderType | None = None
    text_marshaler_t: GobEncoderType | None = None

    def _described(self) -> list[ArrayType | SliceType | StructType | MapType | GobEncoderType]:
        return [kind for kind in (self.array_t, self.slice_t, self.struct_t, self.map_t,
                                  self.gob_encoder_t, self.binary_marshaler_t,
                                  self.text_marshaler_t) if kind is not None]

    @property
    def common(self) -> CommonType:
        """The name and id of the type described (empty if it describes none)."""
        described = self._described()
        return described[0].common if described else CommonType()


_GO_GOB_ENCODER_TYPE = Ptr(Struct(GobEncoderType, "gob.gobEncoderType", [
    ("CommonType", "common", GO_COMMON_TYPE),
]))
GO_WIRE_TYPE = Struct(WireType, "gob.wireType", [
    ("ArrayT", "array_t", Ptr(Struct(ArrayType, "gob.arrayType", [
        ("CommonType", "common", GO_COMMON_TYPE),
        ("Elem", "elem", TYPE_ID),
        ("Len", "len", INT),
    ]))),
    ("SliceT", "slice_t", Ptr(Struct(SliceType, "gob.sliceType", [
        ("CommonType", "common", GO_COMMON_TYPE),
        ("Elem", "elem", TYPE_ID),
    ]))),
    ("StructT", "struct_t", Ptr(Struct(StructType, "gob.structType", [
        ("CommonType", "common", GO_COMMON_TYPE),
        ("Field", "fields", Slice(Ptr(Struct(FieldType, "gob.fieldType", [
            ("Name", "name", STRING),
            ("Id", "id", TYPE_ID),
        ])))),
    ]))),
    ("MapT", "map_t", Ptr(Struct(MapType, "gob.mapType", [
        ("CommonType", "common", GO_COMMON_TYPE),
        ("Key", "key", TYPE_ID),
        ("Elem", "elem", TYPE_ID),
    ]))),
    ("GobEncoderT", "gob_encoder_t", _GO_GOB_ENCODER_TYPE),
    ("BinaryMarshalerT", "binary_marshaler_t", _GO_GOB_ENCODER_TYPE),
    ("TextMarshalerT", "text_marshaler_t", _GO_GOB_ENCODER_TYPE),
])


# --- type ids, as Go assigns them ------------------------------------------------------


def _field_type_name(go_type: GoType[Any]) -> str:
    # a struct field's type is named by its base type's name, or its type string if unnamed
    base = go_type.base
    return base.go_name or base.go_string


class TypeIds:
    """Type ids and descriptors as a Go process assigns them, from the roots given in order.

    Go keeps one id per type for the whole process, given the first time any encoder
    meets the type; a TypeIds is that table, made explicit. To match a Go peer byte
    for byte, build it from the root types in the order that peer first encodes them.
    Types are told apart by their Go type string (go_string).
    """

    def __init__(self, roots: Iterable[GoType[Any]] = (), *,
                 first_id: int = FIRST_USER_ID) -> None:
        self._next_id = first_id
        self._ids: dict[str, int] = {}
        self._wire: dict[int, WireType] = {}
        for root in roots:
            self.id_of(root)

    def id_of(self, go_type: GoType[Any]) -> int:
        """The type's id, assigning ids to it and to the types within it if new."""
        base = go_type.base
        return self._build(base, base.go_name)

    def wire_type(self, type_id: int) -> WireType:
        return self._wire[type_id]

    @property
    def wire_types(self) -> Mapping[int, WireType]:
        return MappingProxyType(self._wire)

    def _take_id(self, go_type: GoType[Any]) -> int:
        type_id = self._next_id
        self._next_id += 1
        self._ids[go_type.go_string] = type_id
        return type_id

    def _build(self, go_type: GoType[Any], name: str) -> int:
        base = go_type.base
        if isinstance(base, _Scalar):
            return base.wire_id
        known = self._ids.get(base.go_string)
        if known is not None:
            return known
        common = CommonType(name=name)
        if isinstance(base, Struct):
            # a struct takes its id on entry, before its fields
            common.id = type_id = self._take_id(base)
            fields = [FieldType(name=field.go_name,
                                id=self._build(field.type, _field_type_name(field.type)))
                      for field in base.fields]
            wire = WireType(struct_t=StructType(common=common, fields=fields))
        elif isinstance(base, Slice):
            # slices and maps take theirs after their elements (Go keeps this for old ids)
            elem_id = self._build(base.elem, base.elem.go_name)
            common.id = type_id = self._take_id(base)
            wire = WireType(slice_t=SliceType(common=common, elem=elem_id))
        elif isinstance(base, Map):
            key_id = self._build(base.key, "")
            elem_id = self._build(base.elem, "")
            common.id = type_id = self._take_id(base)
            wire = WireType(map_t=MapType(common=common, key=key_id, elem=elem_id))
        else:
            raise TypeError(f"no gob type for {base!r}")
        self._wire[type_id] = wire
        return type_id


# The descriptors of Go's own descriptor types (ids 16-24), which every decoder knows.
_BOOTSTRAP = TypeIds([GO_WIRE_TYPE], first_id=WIRE_TYPE_ID).wire_types


def _children(go_type: GoType[Any]) -> tuple[GoType[Any], ...]:
    base = go_type.base
    if isinstance(base, Struct):
        return tuple(field.type for field in base.fields)
    if isinstance(base, Slice):
        return (base.elem,)
    if isinstance(base, Map):
        return (base.key, base.elem)
    return ()


class Encoder:
    """One direction of a gob stream: each value's bytes, with its type descriptors the first
    time each type is sent, in the order Go sends them (depth first, from the value's type).
    """

    def __init__(self, type_ids: TypeIds | None = None, *,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.type_ids = type_ids if type_ids is not None else TypeIds()
        self.limits = limits
        self._sent: set[int] = set()

    def encode(self, go_type: GoType[T], value: T) -> bytes:
        return b"".join(self.encode_messages(go_type, value))

    def has_sent(self, go_type: GoType[Any]) -> bool:
        """Whether the type's descriptors went out already (its values go alone now)."""
        return self.type_ids.id_of(go_type) in self._sent

    def encode_messages(self, go_type: GoType[T], value: T) -> list[bytes]:
        """The gob messages for one value, each framed: new type descriptors, then the value.

        Go writes each with a write of its own, which matters where writes become
        messages of a carrier, as in minitunnel's stream inside ron.
        """
        type_id = self.type_ids.id_of(go_type)
        messages: list[bytes] = []
        newly_sent: list[int] = []
        self._describe(go_type, messages, newly_sent)
        body = bytearray()
        put_int(body, type_id)
        if not isinstance(go_type.base, Struct):
            body.append(0)  # a singleton reads like field 0 of a struct
        go_type.encode(body, value)
        messages.append(_framed(body, self.limits))
        # only once the value encoded: a failed value must not leave its types marked sent
        self._sent.update(newly_sent)
        return messages

    def _describe(self, go_type: GoType[Any], messages: list[bytes],
                  newly_sent: list[int]) -> None:
        base = go_type.base
        if isinstance(base, _Scalar):
            return
        type_id = self.type_ids.id_of(base)
        if type_id in self._sent or type_id in newly_sent:
            return
        body = bytearray()
        put_int(body, -type_id)
        GO_WIRE_TYPE.encode(body, self.type_ids.wire_type(type_id))
        messages.append(_framed(body, self.limits))
        newly_sent.append(type_id)
        for child in _children(base):
            self._describe(child, messages, newly_sent)


class _WireTypes:
    """The types one stream has defined, and how to read or skip their values."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.received: dict[int, WireType] = {}
        self._plans: dict[tuple[int, Struct[Any]],
                          tuple[tuple[int, StructField | None], ...]] = {}

    def lookup(self, wire_id: int) -> WireType | None:
        """The descriptor of a composite type; None for a basic or an undefined id."""
        return self.received.get(wire_id) or _BOOTSTRAP.get(wire_id)

    def require(self, wire_id: int) -> None:
        if wire_id not in _BUILTIN_NAMES and self.lookup(wire_id) is None:
            raise GobError(f"type id {wire_id} is used but was never defined")

    def describe(self, wire_id: int) -> str:
        if wire_id in _BUILTIN_NAMES:
            return _BUILTIN_NAMES[wire_id]
        wire = self.lookup(wire_id)
        if wire is None:
            return f"undefined type {wire_id}"
        # repr: a hostile name must not put raw bytes or lone surrogates into a log line
        name = wire.common.name
        return f"type {wire_id} {name!r}" if name else f"type {wire_id}"

    def struct_plan(self, wire_id: int,
                    local: Struct[Any]) -> tuple[tuple[int, StructField | None], ...]:
        """For each wire field number: its wire type and the local field it fills, if any."""
        key = (wire_id, local)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        wire = self.lookup(wire_id)
        if wire is None or wire.struct_t is None:
            raise _mismatch(self, wire_id, local)
        steps = []
        for wire_field in wire.struct_t.fields:
            self.require(wire_field.id)
            field = local.by_go_name.get(wire_field.name)
            if field is not None and not field.type.accepts(self, wire_field.id):
                raise GobError(f"type mismatch in field {wire_field.name!r}: cannot receive "
                               f"{self.describe(wire_field.id)} into {field.type.go_string}")
            steps.append((wire_field.id, field))
        self._plans[key] = plan = tuple(steps)
        return plan

    def skip(self, reader: _Reader, wire_id: int, depth: int) -> None:
        """Read past a value the receiver has no field for."""
        _check_depth(self, depth)
        if wire_id in (BOOL_ID, INT_ID, UINT_ID, FLOAT_ID):
            reader.read_uint()
        elif wire_id in (BYTES_ID, STRING_ID):
            reader.skip_bytes()
        elif wire_id == COMPLEX_ID:
            reader.read_uint()
            reader.read_uint()
        elif wire_id == INTERFACE_ID:
            raise GobError("interface values are not supported")
        else:
            self._skip_composite(reader, wire_id, depth)

    def _skip_composite(self, reader: _Reader, wire_id: int, depth: int) -> None:
        wire = self.lookup(wire_id)
        if wire is None:
            raise GobError(f"type id {wire_id} is used but was never defined")
        if wire.struct_t is not None:
            fields = wire.struct_t.fields
            number = -1
            while delta := reader.read_uint():
                number += delta
                if number >= len(fields):
                    raise GobError(f"field number {number} is out of range for "
                                   f"{self.describe(wire_id)}")
                self.skip(reader, fields[number].id, depth + 1)
        elif wire.slice_t is not None:
            for _ in range(reader.read_count(1)):
                self.skip(reader, wire.slice_t.elem, depth + 1)
        elif wire.array_t is not None:
            count = reader.read_count(1)
            if count != wire.array_t.len:
                raise GobError(f"array of {count} elements for {self.describe(wire_id)} "
                               f"of length {wire.array_t.len}")
            for _ in range(count):
                self.skip(reader, wire.array_t.elem, depth + 1)
        elif wire.map_t is not None:
            for _ in range(reader.read_count(2)):
                self.skip(reader, wire.map_t.key, depth + 1)
                self.skip(reader, wire.map_t.elem, depth + 1)
        else:  # GobEncoder, BinaryMarshaler, TextMarshaler: opaque bytes
            reader.skip_bytes()


class Decoder(Generic[T]):
    """The receiving end of one gob stream, fed bytes as they arrive.

    feed() buffers; iterating yields every complete value of the target type now
    buffered and stops at an incomplete message, which waits for more bytes. Type
    descriptors are taken in on the way and never yielded. next_value() reads one
    value into a type of the caller's choice, for streams that mix types.
    """

    def __init__(self, target: GoType[T], *, limits: Limits = DEFAULT_LIMITS) -> None:
        self.target = target
        self.limits = limits
        self._types = _WireTypes(limits)
        self._buffer = bytearray()
        self._start = 0
        self._failure: str | None = None
        self._type_bytes = 0
        self._types_awaiting_value = False

    @property
    def wire_types(self) -> Mapping[int, WireType]:
        """The type descriptors received so far, by id."""
        return MappingProxyType(self._types.received)

    @property
    def buffered(self) -> int:
        """Bytes received and not yet decoded."""
        return len(self._buffer) - self._start

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._check_alive()
        self._buffer += data

    def __iter__(self) -> Iterator[T]:
        while (value := self.next_value(self.target)) is not None:
            yield value

    def next_value(self, target: GoType[U]) -> U | None:
        """The next complete value, received into target; None if more bytes are needed."""
        self._check_alive()
        try:
            return self._next_value(target)
        except GobError as error:
            self._failure = str(error)
            raise

    def end_of_stream(self) -> None:
        """GobError if the input, ending here, would end inside a value (Go's ErrUnexpectedEOF).

        Call it after draining the decoder: any byte left then belongs to a message cut
        short. It changes nothing, so it may be asked at any point of a stream.
        """
        self._check_alive()
        if self.buffered:
            raise GobError(f"stream ended inside a message ({self.buffered} bytes unread)")
        if self._types_awaiting_value:
            raise GobError("stream ended after type descriptors, before their value")

    def _check_alive(self) -> None:
        if self._failure is not None:
            raise GobError(self._failure)

    def _next_value(self, target: GoType[U]) -> U | None:
        while (message := self._next_message()) is not None:
            reader = _Reader(message, self.limits.max_elements)
            type_id = reader.read_int()
            if type_id < 0:
                self._receive_type(-type_id, reader, len(message))
                continue
            value = self._decode_value(type_id, target, reader)
            if reader.left:
                raise GobError(f"{reader.left} bytes left over after a value")
            self._types_awaiting_value = False
            return value
        return None

    def _next_message(self) -> bytes | None:
        buffer, start = self._buffer, self._start
        framing = frame_size(buffer, start, self.limits)
        if framing is None:
            return None
        header, size = framing
        end = start + header + size
        if end > len(buffer):
            return None
        message = bytes(buffer[start + header:end])
        if end == len(buffer):
            buffer.clear()
            self._start = 0
        elif end > _COMPACT_AFTER:
            del buffer[:end]
            self._start = 0
        else:
            self._start = end
        return message

    def _receive_type(self, type_id: int, reader: _Reader, size: int) -> None:
        received = self._types.received
        if type_id < FIRST_USER_ID:
            raise GobError(f"type id {type_id} is reserved for Go's own types")
        if type_id in received:
            raise GobError(f"type id {type_id} defined twice")
        if len(received) >= self.limits.max_type_descriptors:
            raise GobError(f"more than {self.limits.max_type_descriptors} type descriptors")
        self._type_bytes += size
        if self._type_bytes > self.limits.max_type_bytes:
            raise GobError(f"type descriptors exceed {self.limits.max_type_bytes} bytes")
        wire = GO_WIRE_TYPE.decode(self._types, reader, WIRE_TYPE_ID, 0)
        if reader.left:
            raise GobError(f"{reader.left} bytes left over after a type descriptor")
        if len(wire._described()) != 1:
            raise GobError(f"type descriptor {type_id} does not describe exactly one type")
        received[type_id] = wire
        self._types_awaiting_value = True

    def _decode_value(self, type_id: int, target: GoType[U], reader: _Reader) -> U:
        self._types.require(type_id)
        wire = self._types.lookup(type_id)
        if wire is not None and wire.struct_t is not None:
            local = target.base
            if isinstance(local, Struct) and local.fields and wire.struct_t.fields:
                plan = self._types.struct_plan(type_id, local)
                if all(field is None for _, field in plan):
                    # as Go: a struct sharing no field with ours is another type
                    raise GobError(f"type mismatch: no fields matched receiving "
                                   f"{self._types.describe(type_id)} into {local.go_string}")
        elif reader.read_uint() != 0:
            raise GobError("corrupted singleton: nonzero field delta")
        return target.decode(self._types, reader, type_id, 0)
