"""unicode/utf8 as Go decodes strings: each byte of an invalid sequence is one RuneError."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

RUNE_ERROR = 0xFFFD
RUNE_SELF = 0x80


def decode_rune(text: bytes, offset: int) -> tuple[int, int]:
    """utf8.DecodeRune(text[offset:]): the rune and its width in bytes."""
    lead = text[offset]
    if lead < RUNE_SELF:
        return lead, 1
    if 0xC2 <= lead <= 0xDF:
        width = 2
    elif 0xE0 <= lead <= 0xEF:
        width = 3
    elif 0xF0 <= lead <= 0xF4:
        width = 4
    else:
        return RUNE_ERROR, 1
    try:
        # Python's strict decoder refuses what Go refuses: overlong forms, surrogates,
        # code points above U+10FFFF and truncated sequences.
        return ord(text[offset : offset + width].decode()), width
    except UnicodeDecodeError:
        return RUNE_ERROR, 1


def runes(text: bytes) -> Iterator[tuple[int, int, int]]:
    """`for offset, r := range text`, with each rune's width."""
    offset = 0
    while offset < len(text):
        rune, width = decode_rune(text, offset)
        yield offset, rune, width
        offset += width


def rune_count(text: bytes) -> int:
    try:
        return len(text.decode())
    except UnicodeDecodeError:
        return sum(1 for _ in runes(text))


def encode_rune(rune: int) -> bytes:
    """utf8.AppendRune, which writes RuneError for what is not a valid code point."""
    if not 0 <= rune <= 0x10FFFF or 0xD800 <= rune <= 0xDFFF:
        rune = RUNE_ERROR
    return chr(rune).encode()
