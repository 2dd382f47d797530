"""Go's strconv texts, as minimega's errors show them."""

from __future__ import annotations

import pytest

from minishell.gostr import parse_uint


@pytest.mark.parametrize(("text", "value"), [
    ("0", 0), ("7", 7), ("010", 8), ("0x1F", 31), ("0X1f", 31), ("0o17", 15), ("0b101", 5),
    ("1023", 1023),
])
def test_parse_uint_reads_go_prefixes(text: str, value: int) -> None:
    assert parse_uint(text, 10) == value


@pytest.mark.parametrize(("text", "reason"), [
    ("", "invalid syntax"), ("-1", "invalid syntax"), ("+1", "invalid syntax"),
    ("08", "invalid syntax"), ("0x", "invalid syntax"), ("0b2", "invalid syntax"),
    (" 1", "invalid syntax"), ("1024", "value out of range"), ("0x400", "value out of range"),
])
def test_parse_uint_fails_with_gos_text(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=r"^strconv\.ParseUint: ") as error:
        parse_uint(text, 10)
    assert str(error.value) == f'strconv.ParseUint: parsing "{text}": {reason}'
