"""Go 1.19's strconv, as far as the kit needs it.

ParseFloat and ParseInt accept exactly Go's syntax (underscores between digits, hexadecimal
mantissas with a binary exponent, "inf", "infinity" and "nan" in any case) and fail with Go's
*NumError text. Quote and FormatFloat produce Go's bytes.
"""

from __future__ import annotations

import math

from _goutf8 import RUNE_ERROR, RUNE_SELF, decode_rune

SYNTAX = "invalid syntax"
OUT_OF_RANGE = "value out of range"

_INF = float("inf")
_MAX_UINT64 = (1 << 64) - 1
_INT64_LIMIT = 1 << 63


class NumError(Exception):
    """*strconv.NumError: which function failed, on what input, and why."""

    def __init__(self, function: str, number: bytes, reason: str) -> None:
        super().__init__(function, number, reason)
        self.function = function
        self.number = number
        self.reason = reason

    @property
    def text(self) -> bytes:
        return b"strconv.%s: parsing %s: %s" % (
            self.function.encode(),
            quote(self.number),
            self.reason.encode(),
        )


def _lower(byte: int) -> int:
    return byte | 0x20


def _is_digit(byte: int) -> bool:
    return 0x30 <= byte <= 0x39


def _underscores_ok(text: bytes) -> bool:
    """underscoreOK: an underscore must sit between digits, or between a base prefix and a digit."""
    saw = "^"  # ^ start, 0 digit or prefix, _ underscore, ! anything else
    if text[:1] in (b"+", b"-"):
        text = text[1:]
    hexadecimal = False
    offset = 0
    if len(text) >= 2 and text[0] == 0x30 and _lower(text[1]) in b"box":
        offset = 2
        saw = "0"
        hexadecimal = _lower(text[1]) == 0x78
    for byte in text[offset:]:
        if _is_digit(byte) or (hexadecimal and 0x61 <= _lower(byte) <= 0x66):
            saw = "0"
        elif byte == 0x5F:
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def _common_prefix_ignore_case(text: bytes, prefix: bytes) -> int:
    for index, (byte, wanted) in enumerate(zip(text, prefix, strict=False)):
        if 0x41 <= byte <= 0x5A:
            byte += 0x20
        if byte != wanted:
            return index
    return min(len(text), len(prefix))


def _special(text: bytes) -> tuple[float, int] | None:
    """Go's special(): a signed "inf"/"infinity" or an unsigned "nan", and its length."""
    if not text:
        return None
    sign_length = 0
    sign = 1.0
    if text[0] in b"+-":
        sign_length = 1
        sign = -1.0 if text[0] == 0x2D else 1.0
    elif text[0] in b"nN":
        return (float("nan"), 3) if _common_prefix_ignore_case(text, b"nan") == 3 else None
    elif text[0] not in b"iI":
        return None
    matched = _common_prefix_ignore_case(text[sign_length:], b"infinity")
    if 3 < matched < 8:
        matched = 3
    return (sign * _INF, sign_length + matched) if matched in (3, 8) else None


def _scan_float(text: bytes) -> tuple[int, bool, bool]:
    """readFloat's syntax check: (bytes consumed, well formed, hexadecimal)."""
    offset = 0
    if offset < len(text) and text[offset] in b"+-":
        offset += 1
    hexadecimal = (
        offset + 2 < len(text) and text[offset] == 0x30 and _lower(text[offset + 1]) == 0x78
    )
    if hexadecimal:
        offset += 2
    underscores = saw_dot = saw_digits = False
    while offset < len(text):
        byte = text[offset]
        if byte == 0x5F:
            underscores = True
        elif byte == 0x2E:
            if saw_dot:
                break
            saw_dot = True
        elif _is_digit(byte) or (hexadecimal and 0x61 <= _lower(byte) <= 0x66):
            saw_digits = True
        else:
            break
        offset += 1
    if not saw_digits:
        return offset, False, hexadecimal
    if offset < len(text) and _lower(text[offset]) == (0x70 if hexadecimal else 0x65):
        offset += 1
        if offset < len(text) and text[offset] in b"+-":
            offset += 1
        if offset >= len(text) or not _is_digit(text[offset]):
            return offset, False, hexadecimal
        while offset < len(text) and (_is_digit(text[offset]) or text[offset] == 0x5F):
            underscores = underscores or text[offset] == 0x5F
            offset += 1
    elif hexadecimal:
        return offset, False, hexadecimal
    if underscores and not _underscores_ok(text[:offset]):
        return offset, False, hexadecimal
    return offset, True, hexadecimal


def parse_float(text: bytes) -> float:
    """strconv.ParseFloat(text, 64)."""
    special = _special(text)
    if special is not None:
        value, length = special
        if length == len(text):
            return value
        raise NumError("ParseFloat", text, SYNTAX)
    length, well_formed, hexadecimal = _scan_float(text)
    if not well_formed or length != len(text):
        raise NumError("ParseFloat", text, SYNTAX)
    digits = text.replace(b"_", b"").decode("ascii")
    # Both Go and Python round correctly, so they agree on every value, including overflow.
    try:
        value = float.fromhex(digits) if hexadecimal else float(digits)
    except OverflowError:
        value = _INF
    if value in (_INF, -_INF):
        raise NumError("ParseFloat", text, OUT_OF_RANGE)
    return value


def _parse_uint64(text: bytes, original: bytes) -> int:
    """ParseUint(text, 0, 64), reporting errors against the signed input as ParseInt does."""
    if not text:
        raise NumError("ParseInt", original, SYNTAX)
    base = 10
    digits = text
    if text[0] == 0x30:
        prefixed = len(text) >= 3 and _lower(text[1]) in b"box"
        base = {0x62: 2, 0x6F: 8, 0x78: 16}[_lower(text[1])] if prefixed else 8
        digits = text[2:] if prefixed else text[1:]
    value = 0
    for byte in digits:
        if byte == 0x5F:
            continue
        if _is_digit(byte):
            digit = byte - 0x30
        elif 0x61 <= _lower(byte) <= 0x7A:
            digit = _lower(byte) - 0x61 + 10
        else:
            raise NumError("ParseInt", original, SYNTAX)
        if digit >= base:
            raise NumError("ParseInt", original, SYNTAX)
        value = value * base + digit
        if value > _MAX_UINT64:
            raise NumError("ParseInt", original, OUT_OF_RANGE)
    if b"_" in digits and not _underscores_ok(text):
        raise NumError("ParseInt", original, SYNTAX)
    return value


def parse_int64(text: bytes) -> int:
    """strconv.ParseInt(text, 0, 64): base prefixes 0b, 0o, 0x and a leading 0 for octal."""
    negative = text[:1] == b"-"
    magnitude = _parse_uint64(text[1:] if text[:1] in (b"+", b"-") else text, text)
    if magnitude > _INT64_LIMIT or (magnitude == _INT64_LIMIT and not negative):
        raise NumError("ParseInt", text, OUT_OF_RANGE)
    return -magnitude if negative else magnitude


# fmt: off
_ESCAPES = {
    0x07: b"\\a", 0x08: b"\\b", 0x0C: b"\\f", 0x0A: b"\\n",
    0x0D: b"\\r", 0x09: b"\\t", 0x0B: b"\\v",
}
# fmt: on


def _is_print(rune: int) -> bool:
    # Go's IsPrint (letters, marks, numbers, punctuation, symbols, ASCII space) is the
    # complement of Python's non-printable classes (other, separator) bar the space.
    return chr(rune).isprintable()


def _escaped_rune(rune: int, ascii_only: bool) -> bytes:
    if rune in (0x22, 0x5C):
        return b"\\" + bytes((rune,))
    printable = _is_print(rune) and (rune < RUNE_SELF or not ascii_only)
    if printable:
        return chr(rune).encode()
    if rune in _ESCAPES:
        return _ESCAPES[rune]
    if rune < 0x20 or rune == 0x7F:
        return b"\\x%02x" % rune
    if rune < 0x10000:
        return b"\\u%04x" % rune
    return b"\\U%08x" % rune


def quote(text: bytes, ascii_only: bool = False) -> bytes:
    """strconv.Quote, or strconv.QuoteToASCII when ascii_only."""
    quoted = bytearray(b'"')
    offset = 0
    while offset < len(text):
        rune, width = decode_rune(text, offset)
        if width == 1 and rune == RUNE_ERROR:
            quoted += b"\\x%02x" % text[offset]
        else:
            quoted += _escaped_rune(rune, ascii_only)
        offset += width
    quoted += b'"'
    return bytes(quoted)


def can_backquote(text: bytes) -> bool:
    """strconv.CanBackquote: fits in a raw string literal on one line."""
    offset = 0
    while offset < len(text):
        rune, width = decode_rune(text, offset)
        offset += width
        if width > 1:
            if rune == 0xFEFF:
                return False
            continue
        if rune == RUNE_ERROR or (rune < 0x20 and rune != 0x09) or rune in (0x60, 0x7F):
            return False
    return True


def format_float(value: float) -> bytes:
    """strconv.FormatFloat(value, 'g', -1, 64), which is also what fmt prints for %v.

    'g' with the shortest digits switches to the exponent form when the decimal exponent is
    below -4 or at least 6 (not 21), and writes at least two exponent digits: 1e+06, 1e-05.
    """
    if math.isnan(value):
        return b"NaN"
    if value in (_INF, -_INF):
        return b"+Inf" if value > 0 else b"-Inf"
    sign = "-" if repr(value).startswith("-") else ""
    # repr gives the shortest digits that read back as the same double, as Go's Ryu does.
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    digits = all_digits.lstrip("0")
    point = len(whole) + int(exponent or 0) - (len(all_digits) - len(digits))
    digits = digits.rstrip("0")
    if not digits:
        return (sign + "0").encode()
    decimal_exponent = point - 1
    if decimal_exponent < -4 or decimal_exponent >= 6:
        head, tail = digits[0], digits[1:]
        text = f"{head}.{tail}" if tail else head
        exponent_sign = "-" if decimal_exponent < 0 else "+"
        return f"{sign}{text}e{exponent_sign}{abs(decimal_exponent):02d}".encode()
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}".encode()
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}".encode()
    return f"{sign}{digits[:point]}.{digits[point:]}".encode()
