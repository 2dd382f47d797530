"""`history` and `clear history` (cmd/minimega/history.go)."""

from __future__ import annotations

from minishell.commands.registry import Command, Context, Handler, never_recorded
from minishell.reply import Response


async def history(ctx: Context, command: Command) -> Response | None:
    return ctx.text("\n".join(ctx.session.history))


async def clear_history(ctx: Context, command: Command) -> Response | None:
    ctx.session.history.clear()
    return None


HANDLERS = (
    Handler(
        patterns=("history",),
        short="show command history",
        long=(
            "history displays a list of all the commands that have been invoked since\n"
            "minimega started on this host, or since the last time the history was cleared.\n"
            "History includes only valid commands and comments. Invalid lines and blank\n"
            "lines are not recorded. There are some commands that interact differently with\n"
            'history, namely read. Instead of recording the "read" command in the history,\n'
            "minimega records all the valid commands executed from the read file in the\n"
            "history. This allows the full execution history to be listed using history."
        ),
        call=history,
    ),
    Handler(
        patterns=("clear history",),
        short="reset history",
        long='Reset the command history. See "help history" for more information.',
        call=clear_history,
        record=never_recorded,
    ),
)
