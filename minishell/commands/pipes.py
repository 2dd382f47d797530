"""`pipe`, `plumb` and their `clear` forms (cmd/minimega/plumber.go)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING

from minishell.commands.mesh import across_namespace
from minishell.commands.registry import Command, Context, Handler
from minishell.errors import CommandError
from minishell.plumber import PlumberError
from minishell.reply import Reply, Response

if TYPE_CHECKING:
    from minishell.session import Session

PIPE_HEADER = ("name", "mode", "readers", "writers", "count", "via", "previous")
_MODES = ("all", "round-robin", "random")


def pipe_names(session: Session) -> Iterable[str]:
    """Pipe names as a user may type them: every pipe by its full name, and the
    active namespace's also without it."""
    local = f"{session.namespaces.active.name}//"
    full = session.plumber.names()
    return [*full, *(name.removeprefix(local) for name in full if name.startswith(local))]


_PIPE_SUGGESTIONS = {"pipe": pipe_names}


async def pipe_settings(ctx: Context, command: Command) -> Response | None:
    """`pipe`, and setting a pipe's mode or log flag."""
    plumber = ctx.plumber
    namespace = ctx.namespace
    pipe = command.optional("pipe")
    if pipe is None:
        rows = [
            [p.name, p.mode, str(p.readers), str(p.writers), str(p.count), " ".join(p.via),
             p.previous]
            for p in plumber.pipes() if namespace.shows(p.name)
        ]
        listing = ctx.table(list(PIPE_HEADER), rows)

        async def here() -> Response:
            return listing

        return await _with_namespace_hosts(ctx, ["pipe"], here)
    if "mode" in command.bools:
        plumber.set_mode(namespace.full_name(pipe),
                         next(mode for mode in _MODES if mode in command.bools))
    else:
        plumber.set_log(namespace.full_name(pipe), "true" in command.bools)
    return Response(ctx.hostname)  # streams=True (the listing's fan-out): an empty reply


async def pipe_write(ctx: Context, command: Command) -> Response | None:
    """Writing a message, or setting a via."""
    name = ctx.namespace.full_name(command.string("pipe"))
    if "via" in command.bools:
        ctx.plumber.set_via(name, command.words("command"))
    else:
        await ctx.plumber.write(name, command.string("data"))
    return None


async def _with_namespace_hosts(ctx: Context, words: list[str],
                                run_here: Callable[[], Awaitable[Response | None]]
                                ) -> Response | None:
    """The command run here, and on the active namespace's other hosts as minimega's
    broadcast commands are (`pipe`, `clear pipe`), their responses merged: one row or
    error per host. Here only when the namespace spans this host, as in 2.9, where a
    head node's namespace spans the other nodes and not the head itself."""
    remote = await across_namespace(ctx, words)
    if remote is None:
        return await run_here() or Response(ctx.hostname)
    here: list[Response] = []
    if ctx.hostname in ctx.namespace.hosts:
        try:
            here = [await run_here() or Response(ctx.hostname)]
        except (CommandError, PlumberError) as error:
            here = [Response(ctx.hostname, error=str(error))]
    await ctx.emit(Reply([*here, *remote], ctx.session.flags))
    return None


async def clear_pipe(ctx: Context, command: Command) -> Response | None:
    pipe = command.optional("pipe")
    words = ["clear", "pipe", *([pipe] if pipe is not None else []),
             *(word for word in ("mode", "log", "via") if word in command.bools)]
    return await _with_namespace_hosts(ctx, words, partial(_clear_local_pipe, ctx, command))


async def _clear_local_pipe(ctx: Context, command: Command) -> Response | None:
    plumber = ctx.plumber
    pipe = command.optional("pipe")
    if pipe is None:
        await plumber.delete_all_pipes()
        return None
    name = ctx.namespace.full_name(pipe)
    if "mode" in command.bools:
        plumber.set_mode(name, "all")
    elif "log" in command.bools:
        plumber.set_log(name, False)
    elif "via" in command.bools:
        plumber.set_via(name, ())
    else:
        await plumber.delete_pipe(name)
    return None


async def plumb(ctx: Context, command: Command) -> Response | None:
    """`plumb`, and starting a pipeline."""
    if "src" not in command.strings:
        namespace = ctx.namespace
        rows = [[name] for name in ctx.plumber.pipelines() if namespace.shows(name)]
        return ctx.table(["pipeline"], rows)
    stages = (command.string("src"), *command.words("dst"))
    await ctx.plumber.plumb(stages, ctx.namespace.name)
    return None


async def clear_plumb(ctx: Context, command: Command) -> Response | None:
    await ctx.plumber.clear_plumb(command.words("pipeline"))
    return None


PIPE_HELP = (
    'Interact with named pipes. To write to a pipe, simply invoke the pipe API with\n'
    'the pipe name and value:\n'
    '\n'
    '\tpipe foo Hello pipes!\n'
    '\n'
    'Pipes have several message delivery modes. Based on the mode, messages written\n'
    'to a pipe will be delivered to one or more readers. Mode "all" copies messages\n'
    'to all readers, "round-robin" chooses a single reader, in-order, and "random"\n'
    'selects a random reader.\n'
    '\n'
    'Pipes can also have "vias", programs through which all written data is passed\n'
    'before being sent to readers. Unlike pipelines, vias are run for every reader.\n'
    'This allows for mutating data on a per-reader basis with a single write. For\n'
    'example, to send a unique floating-point value on a normal distribution with a\n'
    'written mean to all readers:\n'
    '\n'
    '\tpipe foo via normal -stddev 5.0\n'
    '\tpipe foo 1.5\n'
    '\n'
    'Pipes in other namespaces can be referenced with the syntax <namespace>//<pipe>.'
)

PLUMB_HELP = (
    'Create pipelines composed of named pipes and external programs. Pipelines pass\n'
    'data on standard I/O, with messages split on newlines. Pipelines are\n'
    'constructed similar to that of UNIX pipelines. For example, to pipeline named\n'
    'pipe "foo" through "sed" and into another pipe "bar":\n'
    '\n'
    '\tplumb foo "sed -u s/foo/moo/" bar\n'
    '\n'
    'When specifying pipelines, strings that are not found in $PATH are considered\n'
    'named pipes.\n'
    '\n'
    'Pipelines can be composed into larger, nonlinear pipelines. For example, to\n'
    'create a simple tree rooted at A with leaves B and C, simply specify multiple\n'
    'pipelines:\n'
    '\n'
    '\tplumb a b\n'
    '\tplumb a c'
)

# minimega registers `pipe` and `plumb` as two handlers each; that split is what
# makes `help pipe` show all five patterns under one text, so it is kept.
HANDLERS = (
    Handler(
        patterns=("pipe", "pipe <pipe> <mode,> <all,round-robin,random>",
                  "pipe <pipe> <log,> <true,false>"),
        short="write to and modify named pipes",
        long=PIPE_HELP,
        call=pipe_settings, streams=True,
        suggest=_PIPE_SUGGESTIONS,
    ),
    Handler(
        patterns=("pipe <pipe> <data>", "pipe <pipe> <via,> <command>..."),
        call=pipe_write,
        suggest=_PIPE_SUGGESTIONS,
    ),
    Handler(patterns=("plumb",), call=plumb),
    Handler(
        patterns=("plumb <src> <dst>...",),
        short="plumb I/O between minimega, VMs, and external programs",
        long=PLUMB_HELP,
        call=plumb,
        suggest={"src": pipe_names, "dst": pipe_names},
    ),
    Handler(
        patterns=("clear pipe [pipe]", "clear pipe <pipe> <mode,>", "clear pipe <pipe> <log,>",
                  "clear pipe <pipe> <via,>"),
        short="reset pipe state",
        call=clear_pipe, streams=True,
        suggest=_PIPE_SUGGESTIONS,
    ),
    Handler(
        patterns=("clear plumb [pipeline]...",),
        short="reset plumber state",
        call=clear_plumb,
        suggest={"pipeline": pipe_names},
    ),
)
