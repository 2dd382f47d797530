"""The composition root: the only trio.run, one nursery that owns everything.

The plumber, the session, `background` programs, the control socket and the
front end all live below the root nursery; quitting (the `quit` command,
Ctrl-D, SIGTERM, SIGHUP, and SIGINT when headless) cancels the front end, then
the control socket goes (its file first, then every connection) and the plumber
is closed so that every pipeline ends and every child is reaped before the
process exits.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from functools import partial

import trio

from minishell.cc.server import serve_agents
from minishell.commands.cc import cc_server
from minishell.commands.registry import registry
from minishell.commands.scripts import read_command
from minishell.console import Shown
from minishell.errors import innermost
from minishell.replay import in_sessions, remote, replay_all
from minishell.server import ControlServer, ServeError, socket_path
from minishell.session import Session, open_session

# Where agents dial in (`miniccc -family unix -parent <base>/cc`).
CC_SOCKET = "cc"


def run(options: argparse.Namespace) -> int:
    warm_up()
    return trio.run(partial(_main, options))


def warm_up() -> None:
    """Build the grammar before the first command, then take everything alive
    now out of the garbage collector's sight (gc.freeze): lark's tables are
    large and live forever, and rescanning them cost a command up to a third
    of its time (bench/bench_read.py)."""
    registry().parse("echo")
    gc.freeze()


def _new_session(options: argparse.Namespace) -> AbstractAsyncContextManager[Session]:
    return open_session(hostname=options.hostname or socket.gethostname(), base=options.base)


async def _main(options: argparse.Namespace) -> int:
    """Everything, under one watch for the signals that end minishell.

    SIGTERM and SIGHUP (and SIGINT when headless: with a prompt, Ctrl-C cancels
    a command, not the shell) cancel whatever runs — start-up scripts, replay,
    the front end — and the finally blocks below stop every child and remove
    the socket; without the watch Python's default handling would kill the
    process and orphan its pipelines.
    """
    quit_signals = {signal.SIGTERM, signal.SIGHUP}
    if options.nostdin:
        quit_signals.add(signal.SIGINT)
    status = 0
    with trio.open_signal_receiver(*quit_signals) as signals:
        async with trio.open_nursery() as watch:
            work = trio.CancelScope()

            async def cancel_on_signal() -> None:
                async for _ in signals:
                    work.cancel()

            watch.start_soon(cancel_on_signal)
            with work:
                status = await _run(options)
            watch.cancel_scope.cancel()
    return status


async def _run(options: argparse.Namespace) -> int:
    if options.replay:
        runner = (remote(socket_path(options.base)) if options.attach
                  else in_sessions(partial(_new_session, options)))
        return await replay_all(options.files, runner, _write_stdout)
    headless: bool = options.nostdin
    async with _new_session(options) as session, trio.open_nursery() as nursery:
        server: ControlServer | None = None
        try:
            if options.mesh or options.nats is not None or options.nats_creds:
                failure = await _join_mesh(options, session, nursery)
                if failure:
                    print(f"minishell: {failure}", file=sys.stderr)
                    return 1
            # Scripts and a piped stdin do not serve, so that they can run side by side.
            if headless or sys.stdin.isatty():
                server = ControlServer(session, socket_path(options.base))
                try:
                    await nursery.start(partial(server.run, force=options.force))
                except ServeError as error:
                    print(error, file=sys.stderr)
                    return 1
                # Agents join the default namespace as it is when they come.
                await nursery.start(serve_agents, os.path.join(options.base, CC_SOCKET),
                                    lambda: cc_server(session, session.namespaces.default))
            shown = Shown(sys.stdout, sys.stderr)
            for script in options.files:
                # In turn with the socket's commands, which may already come.
                await session.run_command(read_command(script), shown, original="")
            if session.quitting.is_set():
                return 1 if shown.failed else 0
            front_end: Callable[[], Awaitable[int]]
            if headless:
                front_end = _headless
            elif sys.stdin.isatty():
                from minishell.repl import run_repl

                front_end = partial(run_repl, session, history_file=options.history_file)
            else:
                front_end = partial(run_stream, session, sys.stdin.readline)
            status = await _until_quit(session, front_end)
            return 1 if shown.failed else status
        finally:
            if server is not None:
                server.close()
            nursery.cancel_scope.cancel()


async def _join_mesh(options: argparse.Namespace, session: Session,
                     nursery: trio.Nursery) -> str:
    """Join the mesh in `nursery`; "" once joined, else the one-line reason."""
    from minishell.mesh.join import JoinError, MeshSettings, join

    urls = tuple(url.strip() for url in (options.nats or "").split(",") if url.strip())
    if options.nats is not None and not urls:
        return "-nats: no URL given (nats://HOST[:PORT][,...])"
    if options.mesh and options.nats is not None:
        return ("-mesh starts a nats-server of this node's own, -nats joins a lab's "
                "instead: give one of them")
    settings = MeshSettings(
        name=session.hostname, context=options.context, port=options.port,
        base=options.base,
        nats=urls,
        creds=options.nats_creds, tls_dir=options.mesh_tls, listen=options.mesh_listen,
        insecure=options.mesh_insecure, secret=options.mesh_secret)
    failure = ""
    try:
        await nursery.start(join, settings, session)
    except* JoinError as group:
        failure = str(innermost(group))
    return failure


async def _headless() -> int:
    """`-nostdin`: only the control socket and signals end it."""
    await trio.sleep_forever()


def _write_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


async def _until_quit(session: Session, front_end: Callable[[], Awaitable[int]]) -> int:
    """Run the front end until it ends or `quit` runs."""
    status = 0
    async with trio.open_nursery() as nursery:

        async def front() -> None:
            nonlocal status
            status = await front_end()
            nursery.cancel_scope.cancel()

        async def quit_requested() -> None:
            await session.quitting.wait()
            nursery.cancel_scope.cancel()

        nursery.start_soon(front)
        nursery.start_soon(quit_requested)
    return status


async def run_stream(session: Session, readline: Callable[[], str]) -> int:
    """Lines from a non-terminal stdin, run as a script; 1 if any command failed."""
    shown = Shown(sys.stdout, sys.stderr)
    while not session.quitting.is_set():
        # A thread keeps the shared stdin blocking (ecosystem.md §d: FdStream
        # would make the parent's pipe non-blocking too).
        line = await trio.to_thread.run_sync(readline, abandon_on_cancel=True)
        if not line:
            break
        await session.run(line.removesuffix("\n"), shown)
    return 1 if shown.failed else 0
