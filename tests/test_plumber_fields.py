"""How a plumb stage splits into words: miniplumber's fieldsQuoteEscape, quirks included."""

from __future__ import annotations

import pytest

from minishell.plumber.fields import fields_quote_escape


@pytest.mark.parametrize(("stage", "words"), [
    ("sed -u s/cat/dog/", ["sed", "-u", "s/cat/dog/"]),
    ('a b "c d"', ["a", "b", "c d"]),
    ('sed  -u   "s/a  b/c/"', ["sed", "-u", "s/a b/c/"]),  # a group is re-joined by one space
    ('"x"', ["x"]),
    ('a"b c"d', ["ab cd"]),  # every quote goes, wherever it is in a word
    ('a "b c', ["a"]),  # an unterminated group is dropped
    ("tr 'a b'", ["tr", "'a", "b'"]),  # single quotes are not quotes here
    ("a\x1cb\u3000c", ["a\x1cb", "c"]),  # Go's whitespace, not Python's
    ("   ", []),
])
def test_fields_quote_escape(stage: str, words: list[str]) -> None:
    assert fields_quote_escape(stage) == words
