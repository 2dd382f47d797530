"""minicli's input lexer (pkg/minicli/input.go), in linear time.

A line becomes words: Unicode whitespace separates them, `"..."` and `'...'`
group (both honour backslash escapes), quoted and unquoted parts that touch join
into one word, and `#` outside quotes ends the line even inside a word.
minimega 2.9 scans rune by rune and grows each word by string concatenation,
which is quadratic; here one compiled regex consumes whole runs.
"""

from __future__ import annotations

import re
from typing import Literal, TypeAlias

from minishell.errors import CommandError
from minishell.gostr import GO_SPACE

Ending: TypeAlias = Literal["word", "space", "comment"]
"""How a line ends: inside a word, after whitespace (or empty), in a comment."""

# Words end at Go's unicode.IsSpace; str.split() would also split at U+001C..U+001F.
_SPACE_CLASS = "".join(f"\\u{ord(c):04x}" for c in GO_SPACE)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "#": "#"}

# Possessive quantifiers: an unclosed quote fails at once instead of backtracking.
_DOUBLE = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_SINGLE = r"'[^'\\]*+(?:\\.[^'\\]*+)*+'"
_PLAIN = rf"""[^{_SPACE_CLASS}"'\\\#]+|\\[ntr\\"'\#]"""

# Every position of a line matches one alternative, so successive matches never
# skip text. A whole word (unquoted runs, valid escapes and closed quotes that
# touch) is one match; whatever stops a word is one of the other alternatives.
_PIECE = re.compile(
    rf"""
    (?P<space>[{_SPACE_CLASS}]+)
    | (?P<word>(?:{_PLAIN}|{_DOUBLE}|{_SINGLE})+)
    | (?P<comment>\#)
    | \\(?P<bad_escape>.)
    | (?P<open_quote>["'])
    | (?P<trailing_backslash>\\)
    """,
    re.VERBOSE | re.DOTALL,
)
# The parts of a word that need decoding: quoted text, or an escape outside quotes.
_PART = re.compile(rf"({_DOUBLE}|{_SINGLE})|\\(.)", re.DOTALL)
_ESCAPE = re.compile(r"\\(.?)", re.DOTALL)
# Lines without these characters split exactly like str.split().
_NEEDS_SCANNING = re.compile(r"""["'\\#\x1c-\x1f]""")


def lex(line: str) -> list[str]:
    """Split a line into words as minicli does; raises CommandError as minicli does."""
    if _NEEDS_SCANNING.search(line) is None:
        return line.split()
    return scan(line)[0]


def scan(line: str) -> tuple[list[str], Ending]:
    """The words, and how the line ends: completion needs to know whether the
    cursor sits in the last word, after it, or in a comment."""
    words: list[str] = []
    ending: Ending = "space"
    for match in _PIECE.finditer(line):
        kind = match.lastgroup
        if kind == "word":
            words.append(_decode(match[0]))
            ending = "word"
        elif kind == "space":
            ending = "space"
        elif kind == "comment":
            return words, "comment"
        elif kind == "bad_escape":
            raise CommandError(f"unexpected escaped character: {match['bad_escape']}")
        elif kind == "trailing_backslash":
            raise CommandError("expected escape character")
        else:
            raise _unterminated(match["open_quote"], line[match.end() :])
    return words, ending


def _decode(word: str) -> str:
    if "\\" in word or '"' in word or "'" in word:
        return _PART.sub(_decode_part, word)
    return word


def _decode_part(match: re.Match[str]) -> str:
    quoted, escaped = match.groups()
    if escaped is not None:
        return _ESCAPES[escaped]  # the word pattern admits only valid escapes outside quotes
    return _ESCAPE.sub(_decode_escape, quoted[1:-1])


def _decode_escape(match: re.Match[str]) -> str:
    char = match[1]
    if not char:
        raise CommandError("expected escape character")
    try:
        return _ESCAPES[char]
    except KeyError:
        raise CommandError(f"unexpected escaped character: {char}") from None


def _unterminated(quote: str, rest: str) -> CommandError:
    """The error for a quote that never closes: minicli reports the first bad
    escape inside it before noticing that the line ended."""
    for match in _ESCAPE.finditer(rest):
        try:
            _decode_escape(match)
        except CommandError as error:
            return error
    return CommandError(f"missing terminal {quote}")
