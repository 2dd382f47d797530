"""`shell` and `background` (cmd/minimega/shell.go): programs run by the user."""

from __future__ import annotations

import logging
import os
import stat
from typing import Final

from minishell.commands.registry import Command, Context, Handler
from minishell.errors import CommandError
from minishell.gostr import exit_text, quote, trim_space
from minishell.plumber import Plumber
from minishell.plumber.programs import ProgramResult, run_program
from minishell.reply import Response

log = logging.getLogger("minishell.shell")

# What a program's output may hold before it is stopped: a `shell` answer is
# kept whole and sent to the user; `background` output only goes to the log.
SHELL_STDOUT_MAX: Final = 16 * 1024 * 1024
SHELL_STDERR_MAX: Final = 1024 * 1024
BACKGROUND_OUTPUT_MAX: Final = 1024 * 1024


def _reason(error: OSError | ValueError) -> str:
    """Go's lower-case errno text; a NUL in a path or argument is Go's EINVAL."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return "invalid argument"


def lookup(plumber: Plumber, program: str) -> str:
    """exec.LookPath, with minimega's plumbing helpers after the user's PATH
    (the plumber's own lookup, so `shell` finds what `plumb` finds)."""
    if "/" not in program:
        found = plumber.programs.lookup(program)
        if found is None:
            raise CommandError(f"exec: {quote(program)}: executable file not found in $PATH")
        return found
    try:
        mode = os.stat(program).st_mode
    except (OSError, ValueError) as error:
        raise CommandError(f"exec: {quote(program)}: stat {program}: {_reason(error)}") from None
    if stat.S_ISDIR(mode) or not mode & 0o111:
        raise CommandError(f"exec: {quote(program)}: permission denied")
    return program


async def _run_program(plumber: Plumber, argv: tuple[str, ...], *, stdout_limit: int,
                       stderr_limit: int) -> ProgramResult:
    """Run a `shell` or `background` program to its end, output captured.

    It leads its own process group (Ctrl-C at the terminal is not for it), and
    the group is killed when the program ends, passes a limit or is cancelled,
    so nothing it started outlives it (a program that calls setsid itself
    escapes, as from any group).
    """
    program = lookup(plumber, argv[0])
    try:
        return await run_program(program, [program, *argv[1:]],
                                 env=plumber.programs.spawn_env(),
                                 stdout_limit=stdout_limit, stderr_limit=stderr_limit)
    except (OSError, ValueError) as error:  # ValueError: a NUL in an argument
        raise CommandError(f"fork/exec {program}: {_reason(error)}") from None


def _over_limit(stdout_limit: int, stderr_limit: int) -> str:
    return (f"output over {stdout_limit // 1024 // 1024} MiB or errors over "
            f"{stderr_limit // 1024 // 1024} MiB: the program was killed")


async def shell(ctx: Context, command: Command) -> Response | None:
    """stdout is the response, stderr the error (spec §12.2).

    A program that fails shows minimega's `exit status N`, followed by what it
    wrote on stderr (2.9 drops that, leaving the user to guess why).
    """
    done = await _run_program(ctx.plumber, command.words("command"),
                              stdout_limit=SHELL_STDOUT_MAX, stderr_limit=SHELL_STDERR_MAX)
    if done.over_limit:
        raise CommandError(_over_limit(SHELL_STDOUT_MAX, SHELL_STDERR_MAX))
    stderr = done.stderr.decode(errors="replace")
    if done.returncode != 0:
        reason = trim_space(stderr)
        raise CommandError(f"{exit_text(done.returncode)}: {reason}" if reason
                           else exit_text(done.returncode))
    return Response(ctx.hostname, response=done.stdout.decode(errors="replace"), error=stderr)


async def background(ctx: Context, command: Command) -> Response | None:
    argv = command.words("command")
    lookup(ctx.plumber, argv[0])
    ctx.session.nursery.start_soon(_background, ctx.plumber, argv)
    return None


async def _background(plumber: Plumber, argv: tuple[str, ...]) -> None:
    """Output is logged at info, as minimega does."""
    try:
        done = await _run_program(plumber, argv, stdout_limit=BACKGROUND_OUTPUT_MAX,
                                  stderr_limit=BACKGROUND_OUTPUT_MAX)
    except CommandError as error:
        log.error("background %s: %s", " ".join(argv), error)
        return
    if done.over_limit:
        log.error("background %s: %s", " ".join(argv),
                  _over_limit(BACKGROUND_OUTPUT_MAX, BACKGROUND_OUTPUT_MAX))
        return
    log.info("background %s exited %d: %s%s", " ".join(argv), done.returncode,
             done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))


HANDLERS = (
    Handler(
        patterns=("shell <command>...",),
        short="execute a command",
        long=(
            "Execute a command under the credentials of the running user.\n"
            "\n"
            "Commands run until they complete or error, so take care not to execute a command\n"
            "that does not return."
        ),
        call=shell,
    ),
    Handler(
        patterns=("background <command>...",),
        short="execute a command in the background",
        long=(
            "Execute a command under the credentials of the running user.\n"
            "\n"
            "Commands run in the background and control returns immediately. Any output is\n"
            'logged at the "info" level.'
        ),
        call=background,
    ),
)
