"""Showing replies on a terminal or a pipe: output to stdout, errors to stderr.

Errors use minimega's own `Responses.Error()` wording, `Error (<host>): <text>`,
on stderr (minimega#126).
"""

from __future__ import annotations

from typing import TextIO

from minishell.render import error_text, render
from minishell.reply import Reply


def show(reply: Reply, out: TextIO, err: TextIO) -> bool:
    """Print a reply; return True if it carried an error."""
    rendered = render(reply)
    if rendered:
        out.write(rendered + "\n")
    errors = error_text(reply)
    if errors:
        out.flush()
        err.write(errors + "\n")
        err.flush()
    out.flush()
    return bool(errors)


class Shown:
    """A sink that shows each reply as it comes and remembers whether any failed."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err
        self.failed = False

    async def __call__(self, reply: Reply) -> None:
        self.failed |= show(reply, self._out, self._err)
