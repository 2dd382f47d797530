"""What a command answers, before rendering: minicli's Responses.

A command's answer is one `Reply`: a `Response` per host it ran on (one for a
local command, many for `mesh send all` or a namespace spanning hosts) and the
output flags it is rendered with. A line may give several replies (`read`
gives one per line of its script); every front end (prompt, socket, `-e`,
replay) renders each reply through `minishell.render`, the one funnel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MODE_DEFAULT = "default"
MODE_JSON = "json"
MODE_CSV = "csv"


@dataclass(frozen=True, slots=True)
class Flags:
    """minicli's output flags (pkg/minicli/minicli.go:45-56 defaults).

    A reply carries a copy of the flags in force when it was made, so a
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


@dataclass(slots=True)
class Reply:
    """One command's answer from every host it ran on (minicli.Responses)."""

    responses: list[Response]
    flags: Flags = field(default_factory=Flags)

    @property
    def failed(self) -> bool:
        return any(response.error for response in self.responses)
