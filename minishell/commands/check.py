"""`check` (cmd/minimega/external.go): are the programs minishell runs there?

minimega looks for its external programs (kvm, ovs-vsctl, ...) in $PATH and
answers one error line per missing one. minishell's are minimega's plumbing
helpers, found as `plumb` and `via` find them (PATH, then minishell's helper
folder), and the programs its transcripts and conformance runs use. They are
looked for in a fixed order (2.9's follows Go's map order), and there are no
versions to check.
"""

from __future__ import annotations

from typing import Final

import trio

from minishell.commands.registry import Command, Context, Handler
from minishell.errors import CommandError
from minishell.gostr import quote
from minishell.reply import Response

PLUMBING_HELPERS: Final = ("normal", "count", "delay", "execf")
SCRIPT_PROGRAMS: Final = ("sh", "sed", "cat", "tr", "true", "sleep", "head", "tail", "printf",
                          "echo")
DEPENDENCIES: Final = PLUMBING_HELPERS + SCRIPT_PROGRAMS


async def check(ctx: Context, command: Command) -> Response | None:
    lookup = ctx.plumber.programs.lookup

    def missing() -> list[str]:
        return [name for name in DEPENDENCIES if lookup(name) is None]

    absent = await trio.to_thread.run_sync(missing)
    if absent:
        raise CommandError("\n".join(
            f"exec: {quote(name)}: executable file not found in $PATH" for name in absent))
    return None


HANDLERS = (
    Handler(
        patterns=("check",),
        short="check that all external executables dependencies exist",
        long=(
            "minishell depends on a few external programs: minimega's plumbing helpers\n"
            "(normal, count, delay, execf), which it ships and finds after $PATH, and the\n"
            f"programs its scripts and tests use ({', '.join(SCRIPT_PROGRAMS)}).\n"
            "Calling check looks for each of them, and returns an error for each one\n"
            "missing."
        ),
        call=check,
    ),
)
