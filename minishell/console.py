"""Showing responses on a terminal or a pipe: output to stdout, errors to stderr.

Errors use minimega's own `Responses.Error()` wording, `Error (<host>): <text>`,
on stderr (minimega#126).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from minishell.gostr import trim_space
from minishell.render import render
from minishell.response import Response


def show(responses: Iterable[Response], out: TextIO, err: TextIO) -> bool:
    """Print each response; return True if any of them carried an error."""
    failed = False
    for response in responses:
        rendered = render(response)
        if rendered:
            out.write(rendered + "\n")
        if response.error:
            failed = True
            out.flush()
            err.write(trim_space(f"Error ({response.host}): {response.error}") + "\n")
            err.flush()
    out.flush()
    return failed
