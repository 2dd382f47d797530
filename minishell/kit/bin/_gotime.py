"""time.ParseDuration and time.Sleep as Go 1.19 has them, with its error texts."""

from __future__ import annotations

import time

from _goutf8 import RUNE_SELF, runes

_NANOSECONDS_PER_UNIT = {
    b"ns": 1,
    b"us": 1_000,
    "\u00b5s".encode(): 1_000,  # micro sign
    "\u03bcs".encode(): 1_000,  # Greek small letter mu
    b"ms": 1_000_000,
    b"s": 1_000_000_000,
    b"m": 60_000_000_000,
    b"h": 3_600_000_000_000,
}
_LIMIT = 1 << 63
_LONGEST_SLEEP = 86_400 * 1_000_000_000  # time.sleep refuses the largest durations


class DurationError(Exception):
    """ParseDuration's error; its text is what Go prints."""

    def __init__(self, text: bytes) -> None:
        super().__init__(text)
        self.text = text


def _quote(text: bytes) -> bytes:
    """The time package's own quote: non-ASCII and control bytes become \\x escapes."""
    quoted = bytearray(b'"')
    for offset, rune, width in runes(text):
        if rune >= RUNE_SELF or rune < 0x20:
            quoted += b"".join(b"\\x%02x" % byte for byte in text[offset : offset + width])
        else:
            if rune in (0x22, 0x5C):
                quoted += b"\\"
            quoted.append(rune)
    quoted += b'"'
    return bytes(quoted)


def _is_digit(byte: int) -> bool:
    return 0x30 <= byte <= 0x39


def _leading_int(text: bytes, original: bytes) -> tuple[int, bytes]:
    value = 0
    index = 0
    while index < len(text) and _is_digit(text[index]):
        if value > _LIMIT // 10:
            raise _invalid(original)
        value = value * 10 + text[index] - 0x30
        if value > _LIMIT:
            raise _invalid(original)
        index += 1
    return value, text[index:]


def _leading_fraction(text: bytes) -> tuple[int, float, bytes]:
    """Digits after the point; past 63 bits they are skipped rather than refused."""
    value = 0
    scale = 1.0
    overflow = False
    index = 0
    while index < len(text) and _is_digit(text[index]):
        if not overflow:
            grown = value * 10 + text[index] - 0x30
            if value > (_LIMIT - 1) // 10 or grown > _LIMIT:
                overflow = True
            else:
                value = grown
                scale *= 10
        index += 1
    return value, scale, text[index:]


def _invalid(original: bytes) -> DurationError:
    return DurationError(b"time: invalid duration " + _quote(original))


def parse_duration(text: bytes) -> int:
    """time.ParseDuration: a signed sequence of decimal numbers with units, in nanoseconds."""
    original = text
    negative = text[:1] == b"-"
    if text[:1] in (b"-", b"+"):
        text = text[1:]
    if text == b"0":
        return 0
    if not text:
        raise _invalid(original)
    total = 0
    while text:
        if not (text[0] == 0x2E or _is_digit(text[0])):
            raise _invalid(original)
        length = len(text)
        value, text = _leading_int(text, original)
        digits_before_point = length != len(text)
        fraction, scale, digits_after_point = 0, 1.0, False
        if text[:1] == b".":
            text = text[1:]
            length = len(text)
            fraction, scale, text = _leading_fraction(text)
            digits_after_point = length != len(text)
        if not (digits_before_point or digits_after_point):
            raise _invalid(original)
        unit_length = 0
        while unit_length < len(text) and not (
            text[unit_length] == 0x2E or _is_digit(text[unit_length])
        ):
            unit_length += 1
        if unit_length == 0:
            raise DurationError(b"time: missing unit in duration " + _quote(original))
        unit_text, text = text[:unit_length], text[unit_length:]
        unit = _NANOSECONDS_PER_UNIT.get(unit_text)
        if unit is None:
            raise DurationError(
                b"time: unknown unit " + _quote(unit_text) + b" in duration " + _quote(original)
            )
        if value > _LIMIT // unit:
            raise _invalid(original)
        value *= unit
        if fraction > 0:
            # Go needs float64 here to be nanosecond-exact for fractions of hours.
            value += int(float(fraction) * (float(unit) / scale))
            if value > _LIMIT:
                raise _invalid(original)
        total += value
        if total > _LIMIT:
            raise _invalid(original)
    if negative:
        return -total
    if total > _LIMIT - 1:
        raise _invalid(original)
    return total


def sleep(nanoseconds: int) -> None:
    """time.Sleep: returns at once for a zero or negative duration."""
    deadline = time.monotonic_ns() + nanoseconds
    while (remaining := deadline - time.monotonic_ns()) > 0:
        time.sleep(min(remaining, _LONGEST_SLEEP) / 1e9)
