"""`help [command]...`, answered the way minicli answers it (pkg/minicli/minicli.go Help),
from the handlers' own declarations.

The lookup walks each handler's patterns with the input words as minicli's
pattern trie does (`trie.help`); the only change is that handlers are listed
in a fixed order where 2.9 used Go's random map order (spec §16.8).
"""

from __future__ import annotations

from collections.abc import Sequence

from minishell.commands.registry import Handler
from minishell.language.patterns import Pattern, display
from minishell.render import help_table


def _pattern_matches(pattern: Pattern, words: tuple[str, ...]) -> bool:
    for index, word in enumerate(words):
        if index >= len(pattern):
            return False
        item = pattern[index]
        if item.kind == "literal":
            if not item.key.startswith(word):
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


def _usage(patterns: list[Pattern], text: str) -> str:
    lines = ["Usage:", *("\t" + display(pattern) for pattern in patterns)]
    return "\n".join(lines) + "\n\n" + text


def help_text(words: tuple[str, ...], handlers: Sequence[Handler]) -> str:
    """What `help <words>` prints; never an error (minicli answers unknown topics in text)."""
    if not words:
        return help_table(sorted((p, handler.short) for handler in handlers
                                 for p in handler.patterns))
    matches = [handler for handler in handlers
               if any(_pattern_matches(pattern, words) for pattern in handler.parsed)]
    if not matches:
        return f"no help entry for `{' '.join(words)}`"
    if len(matches) == 1:
        handler = matches[0]
        return _usage(list(handler.parsed), handler.help_text)
    with_long = [handler for handler in matches if handler.long]
    if len(with_long) > 1:  # minishell's own words (`cc serial`) leave minimega's help as it was
        with_long = [handler for handler in with_long if handler.minimega]
    if len(with_long) == 1:
        patterns = [pattern for handler in matches for pattern in handler.parsed]
        return _usage(patterns, with_long[0].long)
    return help_table(sorted((p, handler.short) for handler in matches
                             for p in handler.patterns))
