"""`history`, `clear history` and `write` (cmd/minimega/history.go)."""

from __future__ import annotations

from minishell import osfiles
from minishell.commands.registry import Command, Context, Handler, never_recorded
from minishell.reply import Response


async def history(ctx: Context, command: Command) -> Response | None:
    return ctx.text("\n".join(ctx.session.history))


async def clear_history(ctx: Context, command: Command) -> Response | None:
    ctx.session.history.clear()
    return None


async def write(ctx: Context, command: Command) -> Response | None:
    """What `history` prints, into a file: no newline after the last command, and
    not `write` itself, which is recorded once it has run. A relative path is
    from minishell's working folder, as minimega's is from its own."""
    text = "\n".join(ctx.session.history)
    await osfiles.create(command.string("file"), _file_bytes(text))
    return None


def _file_bytes(text: str) -> bytes:
    """The bytes Go writes for the string: input bytes that were not UTF-8 are
    carried as surrogate escapes and go back out as they came in."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate of another kind: Go's U+FFFD
        return text.encode("utf-8", "replace")


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
    Handler(
        patterns=("write <file>",),
        short="write the command history to a file",
        long=(
            "Write the command history to file. This is useful for handcrafting configs on\n"
            "the minimega command line and then saving them for later use."
        ),
        call=write,
    ),
)
