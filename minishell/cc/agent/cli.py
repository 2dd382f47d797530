"""`minishell-agent`: argv to exit status.

`-version` prints the version; `-pipe NAME` and `-tag K V` are clients of a
running agent's local socket (no trio); anything else runs the agent until
SIGTERM, SIGINT or SIGHUP, which stop it and every program it started. Errors
are one line, `minishell-agent: <text>`: exit status 2 for a command line that
cannot be used, 1 for anything else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from minishell import __version__
from minishell.cc.agent import flags, local_socket
from minishell.cc.agent.identity import MINIMEGA_REVISION

PID_FILE = "miniccc.pid"  # under -path, as miniccc writes it
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "error": logging.ERROR, "fatal": logging.CRITICAL}

logger = logging.getLogger("minishell.cc.agent")


class _Failure(Exception):
    def __init__(self, text: str, status: int = 1) -> None:
        super().__init__(text)
        self.status = status


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        return _main(arguments)
    except _Failure as failure:
        with contextlib.suppress(OSError):
            sys.stdout.flush()
            sys.stderr.write(f"{flags.PROGRAM}: {failure}\n")
            sys.stderr.flush()
        return failure.status
    except KeyboardInterrupt:
        return 130


def version_text() -> str:
    return (f"{flags.PROGRAM} {__version__} (minishell's miniccc; speaks ron v1 as miniccc "
            f"2.9 {MINIMEGA_REVISION})")


def _main(arguments: list[str]) -> int:
    try:
        options = flags.parse(arguments)
    except flags.HelpRequested:
        sys.stdout.write(flags.usage())
        return 0
    except flags.FlagError as error:
        raise _Failure(str(error), 2) from None
    if options.version:
        print(version_text())
        return 0
    try:
        if options.pipe:
            _no_arguments(options.arguments)
            return local_socket.pipe(options.path, options.pipe)
        if options.tag:
            if len(options.arguments) != 2:
                raise _Failure(f"-tag takes a key and a value: {options.arguments}", 2)
            local_socket.tag(options.path, *options.arguments)
            return 0
    except local_socket.ClientError as error:
        raise _Failure(str(error)) from None
    _no_arguments(options.arguments)
    _check_transport(options)
    return _run_agent(options)


def _no_arguments(arguments: list[str]) -> None:
    if arguments:
        raise _Failure(f"unexpected argument: {arguments[0]}", 2)


def _check_transport(options: flags.Options) -> None:
    if options.serial:
        return
    if options.family not in ("tcp", "unix"):
        raise _Failure(f"invalid ron dial network family: {options.family}", 2)
    if options.family == "unix" and not options.parent:
        raise _Failure("-family unix needs -parent PATH, the server's socket", 2)
    if options.family == "tcp" and not 0 < options.port < 65536:
        raise _Failure(f"invalid port: {options.port}", 2)


def _configure_logging(options: flags.Options) -> logging.Logger:
    from minishell.logs import FileLog, MinilogFormatter

    log = logging.getLogger("minishell")
    log.setLevel(_LEVELS[options.level])
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = []
    if options.verbose:
        handlers.append(logging.StreamHandler(sys.stderr))
    if options.logfile:
        try:
            handlers.append(FileLog(options.logfile))
        except OSError as error:
            raise _Failure(f"cannot open log file {options.logfile}: "
                           f"{(error.strerror or str(error)).lower()}") from None
    for handler in handlers:
        handler.setFormatter(MinilogFormatter())
        log.addHandler(handler)
    if not handlers:
        log.addHandler(logging.NullHandler())
    return log


def _run_agent(options: flags.Options) -> int:
    import trio

    from minishell.cc.agent.agent import Agent, dialer
    from minishell.cc.agent.identity import Identity, find_uuid, go_arch, go_os

    log = _configure_logging(options)
    path = os.path.abspath(options.path)
    try:
        os.makedirs(path, 0o777, exist_ok=True)
        uuid = options.uuid.strip().lower() or find_uuid(path)
    except OSError as error:
        raise _Failure(f"cannot use -path {path}: {error}") from None
    identity = Identity(uuid=uuid, hostname=options.hostname, arch=go_arch(), os=go_os())
    try:
        listener = local_socket.bind_local_socket(path)
    except local_socket.AgentRunning as running:
        raise _Failure(str(running)) from None
    except OSError as error:
        raise _Failure(f"cannot listen on {local_socket.socket_path(path)}: {error}") from None
    agent = Agent(identity, path, dialer(family=options.family, parent=options.parent,
                                         port=options.port, serial=options.serial), log=log)
    pid_file = os.path.join(path, PID_FILE)
    with contextlib.suppress(OSError), open(pid_file, "w") as file:
        file.write(str(os.getpid()))
    logger.info("starting ron client with UUID: %s", uuid)

    async def serve() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(agent.run, listener)
                async for signum in signals:
                    logger.info("%s: stopping", signal.Signals(signum).name)
                    break
                nursery.cancel_scope.cancel()

    try:
        trio.run(serve)
    except Exception as error:  # a bug: one line here, the whole story in the log
        logger.debug("the agent failed", exc_info=True)
        raise _Failure(f"internal error: {error!r} (run with -level debug for more)") from None
    finally:
        with contextlib.suppress(OSError), open(pid_file) as file:
            if file.read().strip() == str(os.getpid()):
                os.unlink(pid_file)
    return 0
