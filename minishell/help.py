"""`help [command]...`, answered the way minicli answers it (pkg/minicli/minicli.go Help).

The lookup walks each handler's patterns with the input words as minicli's
pattern trie does (`trie.help`); the only change is that handlers are listed
in a fixed order where 2.9 used Go's random map order (spec §16.8).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from minishell.help_texts import ENTRIES, HelpEntry
from minishell.render import help_table

# One pattern item: <...>, [...] and (...) may hold spaces (`<columns as csv>`).
_ITEM = re.compile(r"<[^>]*>(?:\.\.\.)?|\[[^\]]*\](?:\.\.\.)?|\([^)]*\)|\S+")


@dataclass(frozen=True, slots=True)
class _Item:
    text: str  # as written in the pattern
    kind: str  # literal, choice, string, list, command
    optional: bool
    options: tuple[str, ...] = ()

    def display(self) -> str:
        """PatternItems.String: a one-option choice such as `<mode,>` shows as `mode`."""
        if self.kind == "choice" and len(self.options) == 1 and not self.optional:
            return self.options[0]
        return self.text


def _parse_item(text: str) -> _Item:
    if text.startswith("("):
        return _Item(text, "command", optional=False)
    if text[0] not in "<[":
        return _Item(text, "literal", optional=False)
    optional = text.startswith("[")
    inner = text[1 : text.index("]" if optional else ">")]
    if text.endswith("..."):
        return _Item(text, "list", optional)
    if "," in inner:
        options = tuple(option for option in inner.split(",") if option)
        return _Item(text, "choice", optional, options)
    return _Item(text, "string", optional)


@cache
def _patterns(entry: HelpEntry) -> tuple[tuple[_Item, ...], ...]:
    return tuple(tuple(_parse_item(t) for t in _ITEM.findall(p)) for p in entry.patterns)


def _pattern_matches(items: tuple[_Item, ...], words: tuple[str, ...]) -> bool:
    for index, word in enumerate(words):
        if index >= len(items):
            return False
        item = items[index]
        if item.kind == "literal":
            if not item.text.startswith(word):
                return False
        elif item.kind == "choice":
            # minicli's trie.help only walks required choices; an optional
            # choice is an "unknown pattern item" there and never matches.
            if item.optional or not any(option.startswith(word) for option in item.options):
                return False
        elif item.kind in ("list", "command"):
            # The trie credits the handler sitting before the item, which
            # exists only when the item is optional.
            return item.optional
    return True


def _usage(patterns: list[tuple[_Item, ...]], text: str) -> str:
    lines = ["Usage:"]
    lines += ["\t" + " ".join(item.display() for item in items) for items in patterns]
    return "\n".join(lines) + "\n\n" + text


def help_text(words: tuple[str, ...]) -> str:
    """What `help <words>` prints; never an error (minicli answers unknown topics in text)."""
    if not words:
        rows = [(p, entry.short) for entry in ENTRIES for p in entry.patterns]
        return help_table(sorted(rows))
    matches = [
        entry
        for entry in ENTRIES
        if any(_pattern_matches(items, words) for items in _patterns(entry))
    ]
    if not matches:
        return f"no help entry for `{' '.join(words)}`"
    if len(matches) == 1:
        entry = matches[0]
        return _usage(list(_patterns(entry)), entry.long or entry.short)
    with_long = [entry for entry in matches if entry.long]
    if len(with_long) == 1:
        patterns = [items for entry in matches for items in _patterns(entry)]
        return _usage(patterns, with_long[0].long)
    rows = [(p, entry.short) for entry in matches for p in entry.patterns]
    return help_table(sorted(rows))
