"""Splitting a stage into words as miniplumber does: Go's strings.Fields and fieldsQuoteEscape.

Python's str.split() would also split on U+001C..U+001F, which Go's
unicode.IsSpace does not count as space.
"""

from __future__ import annotations

import re

from minishell.gostr import GO_SPACE

_SPACE_RUN = re.compile(f"[{re.escape(GO_SPACE)}]+")
_QUOTE = '"'


def has_space(text: str) -> bool:
    return _SPACE_RUN.search(text) is not None


def fields(text: str) -> list[str]:
    """Go's strings.Fields."""
    return [field for field in _SPACE_RUN.split(text) if field]


def fields_quote_escape(text: str) -> list[str]:
    """miniplumber's fieldsQuoteEscape(`"`, text), quirks included.

    Words are Go fields; a word holding a `"` opens a group unless it also ends
    with one; the group closes at the next word holding a `"`, joined by single
    spaces, every `"` removed. An unterminated group is silently dropped.
    """
    result: list[str] = []
    in_group = False
    group = ""
    for word in fields(text):
        if in_group:
            if _QUOTE in word:
                in_group = False
                result.append(f"{group} {word.replace(_QUOTE, '')}")
            else:
                group = f"{group} {word}"
        elif _QUOTE in word:
            group = word.replace(_QUOTE, "")
            if word.endswith(_QUOTE):
                result.append(group)
            else:
                in_group = True
        else:
            result.append(word)
    return result
