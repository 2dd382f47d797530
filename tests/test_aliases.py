"""Aliases: expansion of the raw line's first word, and `.alias` text."""

from __future__ import annotations

import pytest

from minishell.errors import CommandError
from minishell.language import expand_alias, parse_alias

ALIASES = {"pl": "pipe", "say": "echo said", "empty": "", "spaced ": " echo x", " lead": "echo"}


@pytest.mark.parametrize(
    ("line", "expanded"),
    [
        ("pl w1 hello", "pipe w1 hello"),
        ("say more words", "echo said more words"),
        ("say\tmore", "echo said\tmore"),  # the rest keeps its own spacing
        ("say\xa0x", "echo said\xa0x"),  # any Unicode space ends the first word
        ("pl", "pipe"),
        ("empty", ""),
        ("spaced", "spaced"),  # the key has a trailing space: never matches
        ("plx y", "plx y"),  # the whole first word must match
        ("p", "p"),  # no prefix matching
        ("  pl x", "  pl x"),  # leading whitespace disables expansion
        ("bogus", "bogus"),
        ("", ""),
        # minicli compares the whole line when it starts with whitespace
        (" lead", "echo"),
    ],
)
def test_expand_alias(line: str, expanded: str) -> None:
    assert expand_alias(line, ALIASES) == expanded


def test_only_one_alias_applies() -> None:
    assert expand_alias("a x", {"a": "b", "b": "echo"}) == "b x"


@pytest.mark.parametrize(
    ("text", "alias"),
    [
        ("pl=pipe", ("pl", "pipe")),
        ("say=echo said", ("say", "echo said")),
        ("empty=", ("empty", "")),
        ("spaced = echo x", ("spaced ", " echo x")),
        ("k=a=b", ("k", "a=b")),
        ("=x", ("", "x")),
    ],
)
def test_parse_alias(text: str, alias: tuple[str, str]) -> None:
    assert parse_alias(text) == alias


def test_parse_alias_needs_an_equals_sign() -> None:
    with pytest.raises(CommandError) as raised:
        parse_alias("broken")
    assert str(raised.value) == "expected alias of format `alias=expansion`"
