"""`echo`, `help`, `version`, `quit` and `clear all` (cmd/minimega/misc_cli.go)."""

from __future__ import annotations

import trio

from minishell import __version__
from minishell.commands.registry import Command, Context, Handler, registry
from minishell.errors import CommandError
from minishell.gostr import atoi
from minishell.help import help_text
from minishell.plumber import PlumberError
from minishell.reply import Response


async def echo(ctx: Context, command: Command) -> Response | None:
    return ctx.text(" ".join(command.words("args")))


async def help_(ctx: Context, command: Command) -> Response | None:
    listed = [handler for handler in registry().handlers if handler.listed and handler.in_help]
    return ctx.text(help_text(command.words("command"), listed))


async def version(ctx: Context, command: Command) -> Response | None:
    return ctx.text(f"minishell {__version__}")


async def quit_(ctx: Context, command: Command) -> Response | None:
    """`quit`, or `quit <delay>`: quit that many seconds from now."""
    session = ctx.session
    delay = command.optional("delay")
    if delay is None:
        session.quitting.set()
        return None
    try:
        seconds = atoi(delay)
    except ValueError as error:
        raise CommandError(str(error)) from None

    async def quit_later() -> None:
        await trio.sleep(max(seconds, 0))
        session.quitting.set()

    session.nursery.start_soon(quit_later)
    return ctx.text(f"quitting after {seconds} seconds")


async def clear_all(ctx: Context, command: Command) -> Response | None:
    """Every clear handler runs; the first error is reported.

    Pipelines are torn down before pipes are deleted, and both happen
    synchronously, so unlike 2.9 this does not fail right after live
    pipelines (spec §12.6).
    """
    session = ctx.session
    await session.namespaces.destroy("all")
    errors: list[PlumberError] = []
    try:
        await session.plumber.clear_plumb(())
    except PlumberError as error:
        errors.append(error)
    try:
        await session.plumber.delete_all_pipes()
    except PlumberError as error:
        errors.append(error)
    session.history.clear()
    if errors:
        raise errors[0]
    return None


HANDLERS = (
    Handler(
        patterns=("echo [args]...",),
        short="display input text after comment removal",
        call=echo,
    ),
    Handler(
        patterns=("help [command]...",),
        short="show command help",
        long=(
            "Show help on a command. If called with no arguments, show a summary of all\n"
            "commands."
        ),
        call=help_,
    ),
    Handler(
        patterns=("version",),
        short="display the minishell version",
        call=version,
    ),
    Handler(
        patterns=("quit [delay]",),
        short="quit minishell",
        long=(
            "Quit minishell: every pipeline is torn down, every program it started is\n"
            "stopped, and the prompt ends. An optional integer argument X defers the quit\n"
            "for X seconds. minishell also accepts the word exit."
        ),
        call=quit_,
    ),
    # minishell's own word for quit, only spelled out, so that `e` stays `echo`.
    Handler(patterns=("exit",), call=quit_, minimega=False, exact_only=True, in_help=False),
    Handler(
        patterns=("clear all",),
        short="reset all resettable",
        long=(
            'Runs all the "clear ..." handlers on the local instance -- as close to nuke as\n'
            "you can get without restarting minimega. Restarting minimega is preferable."
        ),
        call=clear_all,
    ),
)
