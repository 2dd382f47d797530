"""strings.Fields as Go splits: around runs of Unicode white space, invalid bytes kept."""

from __future__ import annotations

from _goutf8 import runes

# unicode.IsSpace: the Latin-1 spaces plus the White_Space property beyond Latin-1.
_SPACES = frozenset(
    (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
     *range(0x2000, 0x200B))
)


def fields(text: bytes) -> list[bytes]:
    words = []
    start = -1
    for offset, rune, _ in runes(text):
        if rune in _SPACES:
            if start >= 0:
                words.append(text[start:offset])
                start = -1
        elif start < 0:
            start = offset
    if start >= 0:
        words.append(text[start:])
    return words
