"""minicli's aliases (pkg/minicli/minicli.go ExpandAliases, builtins.go cliAlias)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from minishell.errors import CommandError
from minishell.gostr import GO_SPACE

if TYPE_CHECKING:
    from collections.abc import Mapping

_SPACE = re.compile(f"[{re.escape(GO_SPACE)}]")


def expand_alias(line: str, aliases: Mapping[str, str]) -> str:
    """Replace the line's first word when it is exactly an alias.

    The raw, untrimmed line is used, as minicli does: the text up to the first
    whitespace must equal a key, so leading whitespace disables expansion (the
    whole line is then compared). Only one alias applies, and never again.
    """
    space = _SPACE.search(line)
    cut = space.start() if space and space.start() > 0 else len(line)
    first, rest = line[:cut], line[cut:]
    expansion = aliases.get(first)
    return line if expansion is None else expansion + rest


def parse_alias(text: str) -> tuple[str, str]:
    """`.alias`'s argument: split at the first `=`, both sides kept exactly."""
    name, equals, expansion = text.partition("=")
    if not equals:
        raise CommandError("expected alias of format `alias=expansion`")
    return name, expansion
