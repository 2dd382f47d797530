"""`read <file> [check]` (cmd/minimega/misc_cli.go cliRead): running a script.

The script is read as a stream, a chunk at a time, and each command's replies
go out as it runs, so a script of any length runs in bounded memory. Reading
never blocks the event loop: a regular file is read in a worker thread, a
FIFO or a device without blocking (a FIFO waits for its writer).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import AsyncGenerator
from typing import Final

import trio

from minishell.commands.namespaces import in_namespace, is_switch
from minishell.commands.registry import Command, Context, Handler, command_of, never_recorded
from minishell.errors import CommandError
from minishell.gostr import quote, trim_space
from minishell.reply import Response

# bufio.Scanner's default limit, which `read` inherits (spec §15).
LINE_MAX: Final = 64 * 1024
_CHUNK: Final = 64 * 1024
# Commands rarely yield; a long script must still let pipelines run and Ctrl-C cancel it.
_YIELD_EVERY: Final = 64


def _reason(error: OSError | ValueError) -> str:
    """Go's lower-case errno text; a NUL in a path is Go's EINVAL."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return "invalid argument"


async def _open(path: str) -> tuple[int, int]:
    """The script's file descriptor and file type. Anything but a regular file
    (a FIFO, a device, a socket) is opened without blocking."""
    try:
        mode = (await trio.to_thread.run_sync(os.stat, path)).st_mode
        if stat.S_ISDIR(mode):
            raise CommandError(f"read {path}: is a directory")
        flags = os.O_RDONLY | os.O_CLOEXEC | (0 if stat.S_ISREG(mode) else os.O_NONBLOCK)
        return await trio.to_thread.run_sync(os.open, path, flags), stat.S_IFMT(mode)
    except FileNotFoundError:
        raise CommandError(f"open {path}: no such file or directory") from None
    except (OSError, ValueError) as error:  # ValueError: a NUL in the path
        raise CommandError(f"open {path}: {_reason(error)}") from None


async def _chunks(fd: int, kind: int) -> AsyncGenerator[bytes, None]:
    if kind == stat.S_IFREG:
        while data := await trio.to_thread.run_sync(os.read, fd, _CHUNK):
            yield data
        return
    # A FIFO reads as ended until its first writer opens it: wait for data first.
    ready = kind != stat.S_IFIFO
    while True:
        if not ready:
            await _readable(fd)
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            ready = False
            continue
        if not data:
            return
        ready = True
        yield data


async def _readable(fd: int) -> None:
    try:
        await trio.lowlevel.wait_readable(fd)
    except OSError:  # a device epoll cannot watch (EPERM): look again in a while
        await trio.sleep(0.05)


async def script_lines(path: str) -> AsyncGenerator[str, None]:
    """The lines of a script, as bufio.Scanner splits them (a line of LINE_MAX
    bytes or more is Go's error), with Go's error texts for what can go wrong."""
    fd, kind = await _open(path)
    try:
        partial = b""
        chunks = _chunks(fd, kind)
        try:
            async for data in chunks:
                *lines, partial = (partial + data).split(b"\n")
                for raw in lines:
                    if len(raw) >= LINE_MAX:
                        raise CommandError("bufio.Scanner: token too long")
                    yield raw.removesuffix(b"\r").decode(errors="replace")
                if len(partial) >= LINE_MAX:
                    raise CommandError("bufio.Scanner: token too long")
        except OSError as error:
            if error.errno == errno.EISDIR:
                raise CommandError(f"read {path}: is a directory") from None
            raise CommandError(f"read {path}: {_reason(error)}") from None
        finally:
            await chunks.aclose()
        if partial:
            yield partial.removesuffix(b"\r").decode(errors="replace")
    finally:
        os.close(fd)


def _contains_read(command: Command) -> bool:
    while command.subcommand is not None:
        command = command.subcommand
    return command.handler is READ


async def read(ctx: Context, command: Command) -> Response | None:
    """Each line runs as `namespace "<ns>" <line>` in the namespace active when the
    script started (or that a `namespace X` line of it switched to): this is
    what history shows. The first line that does not compile stops the read."""
    session = ctx.session
    path = command.string("file")
    check = "check" in command.bools
    base = os.path.basename(path)
    namespace = session.namespaces.active.name
    lines = script_lines(path)
    try:
        number = 0
        async for line in lines:
            number += 1
            if number % _YIELD_EVERY == 0:
                await trio.lowlevel.checkpoint()
            try:
                inner = session.compile(line)
            except CommandError as error:
                raise CommandError(f"{base}:{number} {error}") from None
            if inner is None:
                continue
            if _contains_read(inner):
                raise CommandError(f"{base}:{number} cannot run nested `read` commands")
            if check:
                continue
            original = f"namespace {quote(namespace)} {trim_space(line)}"
            if is_switch(inner):
                await session.execute(inner, ctx.emit, original=original)
                namespace = session.namespaces.active.name
            elif namespace == session.namespaces.active.name:
                # what `namespace X (command)` would do anyway
                await session.execute(inner, ctx.emit, original=original)
            else:
                await session.execute(in_namespace(namespace, inner), ctx.emit,
                                      original=original)
    finally:
        await lines.aclose()
    return None


def read_command(path: str) -> Command:
    """`read <path>`, as scripts named on the command line run."""
    return command_of(READ, {"file": path})


READ = Handler(
    patterns=("read <file> [check,]",),
    short="read and execute a command file",
    long=(
        "Read a command file and execute it. This has the same behavior as if you typed\n"
        "the file in manually. read stops if it reads an invalid command. read does not\n"
        "stop if a command returns an error. Nested reads are not permitted.\n"
        "\n"
        "To prevent issues with another script changing the namespace and commands being\n"
        "run in a different namespace than originally intended, read records the active\n"
        "namespace when it starts and prepends that namespace to all commands that it\n"
        "reads from the file. If it reads a command that would change the active\n"
        "namespace, read updates its state so that the new namespace is prepended\n"
        "instead.\n"
        "\n"
        "If the optional argument check is specified then read doesn't execute any of\n"
        "the commands in the file. Instead, it checks that all the commands are\n"
        "syntactically valid. This can identify mistyped commands in scripts before you\n"
        "read them. It cannot check for semantic errors (e.g. killing a non-existent\n"
        "VM). The check stops at the first invalid command."
    ),
    call=read,
    record=never_recorded,
    streams=True,
)

HANDLERS = (READ,)
