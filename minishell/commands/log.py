"""`log level|stderr|file|filter|ring` and `clear log` (cmd/minimega/log_cli.go).

The loggers are minishell's Python logging, as minishell.logs maps them.
`log mesh` (no mesh here yet) and `log syslog` are left to the commands
minishell does not implement; `clear log mesh` and `clear log syslog` clear
what is there to clear, which is nothing, as minimega's do when neither is on.
"""

from __future__ import annotations

from minishell import logs
from minishell.commands.registry import Command, Context, Handler
from minishell.errors import CommandError
from minishell.gostr import atoi
from minishell.reply import Response


async def log_level(ctx: Context, command: Command) -> Response | None:
    state = logs.current()
    chosen = [name for name in logs.LEVELS if name in command.bools]
    if not chosen:
        return ctx.text(state.level)
    state.set_level(chosen[0])
    return None


async def log_stderr(ctx: Context, command: Command) -> Response | None:
    state = logs.current()
    if "false" in command.bools:
        state.disable_stderr()
    elif "true" in command.bools:
        state.enable_stderr()
    else:
        return ctx.text("true" if state.stderr is not None else "false")
    return None


async def log_file(ctx: Context, command: Command) -> Response | None:
    state = logs.current()
    name = command.optional("file")
    if name is None:
        return ctx.text(state.file.given_name if state.file is not None else "")
    await state.open_file(name)
    return None


async def log_filter(ctx: Context, command: Command) -> Response | None:
    state = logs.current()
    text = command.optional("filter")
    if text is None:
        filters = state.filters
        # Go's %v of a []string: the words in brackets, space-separated.
        return ctx.text(f"[{' '.join(filters)}]" if filters else "")
    state.add_filter(text)
    return None


async def log_ring(ctx: Context, command: Command) -> Response | None:
    state = logs.current()
    size = command.optional("size")
    if not size:
        if state.ring is None:
            raise CommandError("cannot dump log ring, not enabled")
        return ctx.text(state.ring.dump())
    try:
        lines = atoi(size)
    except ValueError as error:
        raise CommandError(str(error)) from None
    # 2.9 crashes on a ring of 0 or fewer lines, and would allocate any size at once.
    if not 1 <= lines <= logs.RING_LINES_MAX:
        raise CommandError(f"log ring size must be between 1 and {logs.RING_LINES_MAX}")
    state.start_ring(lines)
    return None


async def clear_log(ctx: Context, command: Command) -> Response | None:
    state = logs.current()
    cleared = command.bools
    if not cleared:
        await state.clear()
    elif "file" in cleared:
        await state.close_file()
    elif "level" in cleared:
        state.reset_level()
    elif "stderr" in cleared:
        state.disable_stderr()
    elif "ring" in cleared:
        state.stop_ring()
    elif "filter" in cleared:
        state.clear_filters()
    return None  # mesh and syslog: never on in minishell, so nothing to clear


HANDLERS = (
    Handler(
        patterns=("log level [debug,info,warn,error,fatal]",),
        short="set or print the log level",
        long=(
            "Set the log level to one of [debug,info,warn,error,fatal]. Log levels inherit\n"
            "lower levels, so setting the level to error will also log fatal, and setting\n"
            "the mode to debug will log everything. Without an argument, print the level\n"
            "(at start, the one given with -level)."
        ),
        call=log_level,
    ),
    Handler(
        patterns=("log stderr [true,false]",),
        short="enable or disable logging to stderr",
        call=log_stderr,
    ),
    Handler(
        patterns=("log file [file]",),
        short="enable logging to a file",
        long=(
            'Log to a file. To disable file logging, call "clear log file". Without an\n'
            "argument, print the file being logged to."
        ),
        call=log_file,
    ),
    Handler(
        patterns=("log ring [size]",),
        short="enable, disable, or dump log ring",
        long=(
            "The log ring contains recent log messages, if it is enabled. By default\n"
            "the ring is not enabled. When enabling it, the user can specify a size. The\n"
            "larger the size, the more memory the logs will consume. The log ring can be\n"
            "cleared by re-enabling it with the same (or different) size.\n"
            "\n"
            f"minishell keeps at most {logs.RING_LINES_MAX} lines and "
            f"{logs.RING_CHARACTERS_MAX // (1024 * 1024)} MiB of text.\n"
            "\n"
            'To disable the log ring, call "clear log ring".'
        ),
        call=log_ring,
    ),
    Handler(
        patterns=("log filter [filter]",),
        short="filter logging messages",
        long=(
            "Control what data gets logged based on matching text. For example, to filter\n"
            'out all logging messages containing the word "foo":\n'
            "\n"
            "\tlog filter foo\n"
            "\n"
            "A filter applies to the loggers enabled when it is added. Without an argument,\n"
            "print the filters."
        ),
        call=log_filter,
    ),
    Handler(
        patterns=("clear log", "clear log <file,>", "clear log <mesh,>", "clear log <level,>",
                  "clear log <stderr,>", "clear log <filter,>", "clear log <syslog,>",
                  "clear log <ring,>"),
        short="reset state for logging",
        long='Resets state for logging. See "help log ..." for more information.',
        call=clear_log,
    ),
)
