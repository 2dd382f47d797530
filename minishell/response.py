"""What a command answers, before rendering: minicli's Response, one per host.

Every front end (prompt, replay, socket) receives these from
`Session.run_line` and turns them into text with `minishell.render`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MODE_DEFAULT = "default"
MODE_JSON = "json"
MODE_CSV = "csv"


@dataclass(frozen=True, slots=True)
class Flags:
    """minicli's output flags (pkg/minicli/minicli.go:45-56 defaults).

    A response carries a copy of the flags in force when it was made, so a
    one-shot `.json true pipe` renders differently from the global setting.
    """

    annotate: bool = True
    compress: bool = True
    headers: bool = True
    sort: bool = True
    preprocess: bool = True
    record: bool = True
    mode: str = MODE_DEFAULT  # "default", "json" or "csv": one field, as in minicli


@dataclass(slots=True)
class Response:
    """One host's answer: simple text, a table, or an error (minicli.Response)."""

    host: str
    response: str = ""
    header: list[str] | None = None
    tabular: list[list[str]] | None = None
    error: str = ""
    flags: Flags = field(default_factory=Flags)
