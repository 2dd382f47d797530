"""minicli's command patterns (pkg/minicli/pattern.go): the text every handler declares.

    pipe <pipe> <mode,> <all,round-robin,random>
    clear plumb [pipeline]...
    .columns <columns as csv> (command)

A pattern is a sequence of items: literal words; `<key comment>` a string
(`[...]` optional); `<a,b>` a choice among keywords (`<mode,>` a one-word
choice); `<key>...` a list of one or more words (`[key]...` zero or more);
`(key)` the rest of the line compiled as a command. Only the last item may be
optional, a list or a command. The grammar, help and completion are all
derived from these patterns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from minishell.gostr import GO_SPACE

Kind: TypeAlias = Literal["literal", "choice", "string", "list", "command"]


class PatternError(ValueError):
    """A pattern that minicli would refuse to register."""


@dataclass(frozen=True, slots=True)
class Item:
    kind: Kind
    key: str  # the literal; the first word of a string, list or command; "" for a choice
    text: str  # as written between the brackets (a literal: the word)
    optional: bool = False
    options: tuple[str, ...] = ()  # a choice's keywords

    @property
    def keywords(self) -> tuple[str, ...]:
        """The words this item matches by prefix: a literal's word or a choice's options."""
        if self.kind == "literal":
            return (self.key,)
        return self.options

    def display(self) -> str:
        """PatternItems.String: a required one-word choice shows as the bare word."""
        if self.kind == "literal":
            return self.text
        if self.kind == "command":
            return f"({self.text})"
        if self.kind == "list":
            return f"[{self.text}]..." if self.optional else f"<{self.text}>..."
        if self.optional:
            return f"[{self.text}]"
        if self.kind == "choice" and len(self.options) == 1:
            return self.options[0]
        return f"<{self.text}>"


Pattern: TypeAlias = tuple[Item, ...]

_CLOSING = {"<": ">", "[": "]", "(": ")"}


def parse_pattern(text: str) -> Pattern:
    """The items of a pattern, as minicli's pattern lexer reads them."""
    items: list[Item] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char in GO_SPACE:
            position += 1
        elif char in _CLOSING:
            close = text.find(_CLOSING[char], position + 1)
            if close < 0:
                raise PatternError(f"missing terminal {_CLOSING[char]} in {text!r}")
            inner = text[position + 1 : close]
            position = close + 1
            listed = char != "(" and text.startswith("...", position)
            if listed:
                position += 3
            items.append(_bracketed(char, inner, listed))
        elif char in "\"')]>":
            raise PatternError(f"unexpected {char} in {text!r}")
        else:
            end = position
            while end < len(text) and text[end] not in GO_SPACE and text[end] not in "<[(":
                end += 1
            word = text[position:end]
            items.append(Item("literal", word, word))
            position = end
    for item in items[:-1]:
        if item.optional or item.kind in ("list", "command"):
            raise PatternError(f"only the last item may be optional, a list or a command: {text!r}")
    return tuple(items)


def _bracketed(opening: str, inner: str, listed: bool) -> Item:
    optional = opening == "["
    if any(char in inner for char in "<[(\"'"):
        raise PatternError(f"cannot nest items: {inner!r}")
    # The key is the first word; the rest is a comment (`<columns as csv>`), where a
    # comma means nothing. A comma within the first word makes a choice.
    space = next((index for index, char in enumerate(inner) if char in GO_SPACE), len(inner))
    key = inner[:space]
    if opening == "(":
        return Item("command", key, inner)
    if "," in key:
        if listed or space < len(inner):
            raise PatternError(f"spaces not allowed in multiple choice: {inner!r}")
        options = tuple(option for option in key.split(",") if option)
        return Item("choice", "", inner, optional, options)
    return Item("list" if listed else "string", key, inner, optional)


def variants(pattern: Pattern) -> tuple[Pattern, ...]:
    """The item sequences a pattern matches: an optional last item may be left out
    (a zero-or-more list too: `[name]...` matches nothing or one or more words)."""
    if pattern and pattern[-1].optional:
        return pattern[:-1], pattern
    return (pattern,)


def display(pattern: Pattern) -> str:
    return " ".join(item.display() for item in pattern)
