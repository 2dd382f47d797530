"""Tab completion from the patterns: what the word under the cursor could be.

The words before it are matched against every pattern as the parser matches
them (a word may be a prefix of its keyword); where the word under the cursor
falls on a keyword or a choice, their words are offered, and on a string or
list item whatever the pattern's owner suggests for it (pipe names where a
pipe goes: minicli's Suggest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Generic

from minishell.errors import CommandError
from minishell.language.command import Target
from minishell.language.lexer import scan
from minishell.language.parser import Form

Suggest = Callable[[Target, str], Iterable[str]]
"""The values a pattern's owner suggests for the item with this key."""


class Completer(Generic[Target]):
    def __init__(self, forms: Sequence[Form[Target]]) -> None:
        # Forms by the keywords of their first item: a line's first word picks few.
        self._by_first: dict[str, list[Form[Target]]] = {}
        for form in forms:
            if form.pattern and form.pattern[0].kind in ("literal", "choice"):
                for keyword in form.pattern[0].keywords:
                    self._by_first.setdefault(keyword, []).append(form)

    def complete(self, text_before_cursor: str, suggest: Suggest[Target]) -> list[str]:
        """Sorted candidates for the last, possibly empty, word of the text."""
        try:
            words, ending = scan(text_before_cursor)
        except CommandError:  # inside an unterminated quote, or after a bad escape
            return []
        if ending == "comment":
            return []
        typed = words.pop() if ending == "word" else ""
        found: set[str] = set()
        # Where commands start: the line's start, and each nested `(command)`. A
        # worklist rather than recursion, since nesting may go a thousand deep.
        starts, seen = [0], {0}
        while starts:
            start = starts.pop()
            for nested in self._complete_at(words, start, suggest, found):
                if nested not in seen:
                    seen.add(nested)
                    starts.append(nested)
        return sorted(candidate for candidate in found if candidate.startswith(typed))

    def _complete_at(self, words: list[str], start: int, suggest: Suggest[Target],
                     found: set[str]) -> list[int]:
        """Add the candidates of commands starting at words[start]; return the
        starts of the nested commands it finds."""
        nested: list[int] = []
        if start == len(words):
            found.update(self._by_first)
            return nested
        first = words[start]
        matching = {id(form): form for keyword, group in self._by_first.items()
                    if keyword.startswith(first) for form in group}
        for form in matching.values():
            for index, item in enumerate(form.pattern):
                position = start + index
                if position == len(words):  # the word under the cursor
                    if item.kind in ("literal", "choice"):
                        found.update(item.keywords)
                    elif item.kind == "command":
                        nested.append(position)
                    else:
                        found.update(suggest(form.target, item.key))
                    break
                word = words[position]
                if item.kind in ("literal", "choice"):
                    if not any(keyword.startswith(word) for keyword in item.keywords):
                        break
                elif item.kind == "list":  # the word under the cursor is in the list
                    found.update(suggest(form.target, item.key))
                    break
                elif item.kind == "command":
                    nested.append(position)
                    break
        return nested
