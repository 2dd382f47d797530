"""What a line compiles into: minicli's Command, plain data with no behaviour.

The matched pattern's handler (opaque to the language: whatever the caller
registered with the pattern) and the words bound to its items, by key:
`strings` for `<name>` items, `lists` for `<name>...`, `bools` for the chosen
option of each choice (`pipe x mode all` has bools `mode` and `all`), and the
nested command of a `(command)` item. Strings are kept as lexed (quotes
removed, escapes decoded) and not yet `$VAR`-expanded: minicli preprocesses
arguments when the command runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

Target = TypeVar("Target")


@dataclass(frozen=True, slots=True)
class Command(Generic[Target]):
    handler: Target
    strings: Mapping[str, str] = field(default_factory=dict)
    lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    bools: frozenset[str] = frozenset()
    subcommand: Command[Target] | None = None
    # The line's words from this command's first to the end (a `(command)` item's
    # text for whoever runs it elsewhere: `mesh send`); not part of equality.
    source: tuple[str, ...] = field(default=(), compare=False)

    def string(self, key: str) -> str:
        return self.strings[key]

    def optional(self, key: str) -> str | None:
        return self.strings.get(key)

    def words(self, key: str) -> tuple[str, ...]:
        """A list item's words; none when an optional list was left out."""
        return self.lists.get(key, ())

    def with_arguments(self, strings: Mapping[str, str],
                       lists: Mapping[str, tuple[str, ...]]) -> Command[Target]:
        return replace(self, strings=strings, lists=lists)
