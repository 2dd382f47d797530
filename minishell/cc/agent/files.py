"""Files both ways, as miniccc moves them: `cc send` fetches, `cc recv` sends.

Fetch (Command.FilesSend): for each name, a MESSAGE_FILE request `{Name}`; the
server answers with parts of at most 100 KiB (`Offset`, `EOF` on the last) or an
`Error`. Parts are written into `<path>/files/<name>.partial`, renamed to the
name at EOF; a name already there is not fetched again (miniccc skips it too).
Unlike miniccc, a name that would land outside `<path>/files` (`../x`, `/x`) is
refused, a part that does not come within FILE_PART_TIMEOUT fails the fetch,
and a stale `.partial` is truncated rather than written over.

Send (Command.FilesRecv): each pattern is globbed (hidden files included, as
Go's filepath.Glob does; a relative pattern from the agent's working folder),
and each file goes as parts named by its path under `/` (`etc/hostname`), with
the command's id and its permission bits: every non-empty read one part, then
an empty last part with EOF, as Go's read loop ends. A file that cannot be read
goes as `{ID, Name}` with its Error.

Whatever fails is also returned as notes for the response's stderr (miniccc
only logs it).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import stat
from typing import Protocol

import trio

from minishell.cc.agent.outbox import OutboxClosed
from minishell.cc.agent.processes import go_error_text
from minishell.protocol.ron import File, Message, MessageType

logger = logging.getLogger("minishell.cc.agent")

PART_SIZE = 100 * 1024  # ron.PART_SIZE
FILE_PART_TIMEOUT = 60.0
GLOB_MATCHES_MAX = 10_000


class FileLink(Protocol):
    """What moving files needs from the connection."""

    uuid: str

    def expect_file(self, name: str) -> contextlib.AbstractAsyncContextManager[
            trio.MemoryReceiveChannel[Message]]: ...

    def send_control(self, message: Message) -> None: ...

    async def send_data(self, message: Message, size: int) -> None: ...


class _FileFailed(Exception):
    pass


def inside(folder: str, name: str) -> str | None:
    """folder/name, absolute and cleaned, or None if it would leave folder (or hold a NUL)."""
    if "\0" in name:
        return None
    folder = os.path.abspath(folder)
    target = os.path.normpath(os.path.join(folder, name))
    if os.path.isabs(name) or os.path.commonpath([folder, target]) != folder or target == folder:
        return None
    return target


async def fetch_files(link: FileLink, names: list[str], files_dir: str) -> list[str]:
    """Fetch every name into files_dir; the notes of those that failed."""
    notes = []
    for name in names:
        target = inside(files_dir, name)
        if target is None:
            notes.append(f"minishell-agent: file {name} refused: it would be outside {files_dir}")
            continue
        if await trio.to_thread.run_sync(os.path.exists, target):
            logger.info("skipping %s -- already exists", target)
            continue
        logger.info("requesting file %s", name)
        try:
            await _fetch(link, name, target)
        except _FileFailed as failure:
            logger.error("file %s: %s", name, failure)
            notes.append(f"minishell-agent: file {name}: {failure}")
    return notes


async def _fetch(link: FileLink, name: str, target: str) -> None:
    partial = f"{target}.partial"
    async with link.expect_file(name) as parts:
        link.send_control(Message(type=MessageType.FILE, uuid=link.uuid, file=File(name=name)))
        while True:
            message = await _next_part(parts)
            if message.error:
                raise _FileFailed(message.error)
            assert message.file is not None  # the link routes only FILE messages with one
            try:
                await trio.to_thread.run_sync(_write_part, partial, message.file)
                if message.file.eof:
                    await trio.to_thread.run_sync(os.replace, partial, target)
                    return
            except OSError as error:
                raise _FileFailed(f"{partial}: {go_error_text(error)}") from None


async def _next_part(parts: trio.MemoryReceiveChannel[Message]) -> Message:
    with trio.move_on_after(FILE_PART_TIMEOUT):
        try:
            return await parts.receive()
        except trio.EndOfChannel:
            raise _FileFailed("the connection to the server was lost") from None
    raise _FileFailed(f"nothing from the server for {FILE_PART_TIMEOUT:g} s")


def _write_part(path: str, part: File) -> None:
    os.makedirs(os.path.dirname(path), 0o770, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_TRUNC if part.offset == 0 else 0)
    fd = os.open(path, flags, part.perm & 0o7777 or 0o644)
    try:
        view = memoryview(part.data)
        offset = part.offset
        while view:
            written = os.pwrite(fd, view, offset)
            view, offset = view[written:], offset + written
    finally:
        os.close(fd)


async def send_files(link: FileLink, command_id: int, patterns: list[str]) -> list[str]:
    """Send every file the patterns match; the notes of what failed."""
    notes = []
    for pattern in patterns:
        logger.info("sending file %s", pattern)
        try:
            matches = await trio.to_thread.run_sync(_glob, pattern)
        except OSError as error:  # the working folder is gone
            notes.append(f"minishell-agent: {pattern}: {go_error_text(error)}")
            continue
        if not matches:
            notes.append(f"minishell-agent: no file matches {pattern}")
        for path in matches:
            failure = await _send(link, command_id, path)
            if failure:
                notes.append(f"minishell-agent: file {path}: {failure}")
    return notes


def _glob(pattern: str) -> list[str]:
    found: list[str] = []
    if "\0" in pattern:
        return found
    for path in glob.iglob(os.path.abspath(pattern), include_hidden=True):
        found.append(path)
        if len(found) >= GLOB_MATCHES_MAX:
            logger.error("%s matches more than %d files: the rest are not sent", pattern,
                         GLOB_MATCHES_MAX)
            break
    return sorted(found)


async def _send(link: FileLink, command_id: int, path: str) -> str:
    """One file in parts; the error text if it could not be read (also sent as Error)."""
    name = _wire_name(path)  # path is absolute: no working folder needed

    async def fail(text: str) -> str:
        logger.error("cannot send %s: %s", path, text)
        with contextlib.suppress(OutboxClosed):
            await link.send_data(Message(type=MessageType.FILE, error=text,
                                         file=File(id=command_id, name=name)), 0)
        return text

    try:
        opened = await trio.to_thread.run_sync(_open_for_sending, path)
    except OSError as error:
        return await fail(f"open {path}: {go_error_text(error)}")
    if opened is None:
        return await fail("cannot send directory")
    fd, perm = opened
    offset = 0
    try:
        while True:
            try:
                data = await trio.to_thread.run_sync(os.pread, fd, PART_SIZE, offset)
            except OSError as error:
                return await fail(f"read {path}: {go_error_text(error)}")
            part = File(id=command_id, name=name, perm=perm, data=data, offset=offset,
                        eof=not data)
            await link.send_data(Message(type=MessageType.FILE, file=part), len(data))
            if not data:
                return ""
            offset += len(data)
    except OutboxClosed:
        return "the connection to the server was lost"
    finally:
        os.close(fd)


def _wire_name(path: str) -> str:
    """Go's filepath.Rel("/", path) for an absolute path: the name a file travels under."""
    return os.path.normpath(path).lstrip("/") or "."


def _open_for_sending(path: str) -> tuple[int, int] | None:
    """(fd, permission bits), or None for a folder."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    mode = os.fstat(fd).st_mode
    if stat.S_ISDIR(mode):
        os.close(fd)
        return None
    return fd, mode & 0o777
