"""Go's os.Create and os.MkdirAll as minimega calls them, with their error texts,
off the event loop.

minimega's errors are Go's *PathError texts (`open /x/y: no such file or
directory`), which the transcripts compare, so the errno's text is Go's:
lower case, and a NUL in a path is EINVAL. Files are opened and written in a
worker thread; a FIFO is written as Go writes it, without blocking, waiting on
the event loop for room (so that Ctrl-C cancels a write nobody reads).
"""

from __future__ import annotations

import errno
import os
import stat

import trio

from minishell.errors import CommandError

# os.Create: read-write, created, truncated; O_NONBLOCK so that a FIFO is
# written as Go's poller writes it (a regular file ignores it).
_CREATE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NONBLOCK
_CREATE_MODE = 0o666  # before the umask, as Go's


def state_folder() -> str:
    """minishell's folder in the user's XDG state folder (history, the mesh secret)."""
    state = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):  # the XDG spec says to ignore relative paths
        state = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "minishell")


def reason(error: OSError | ValueError) -> str:
    """Go's lower-case errno text; a NUL in a path is Go's EINVAL."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return "invalid argument"


def path_error(op: str, path: str, error: OSError | ValueError) -> CommandError:
    """*PathError's text: `<op> <path>: <reason>`."""
    return CommandError(f"{op} {path}: {reason(error)}")


def _open_for_create(path: str) -> tuple[int, bool]:
    """The new file's descriptor, and whether it is a FIFO (written without blocking)."""
    try:
        fd = os.open(path, _CREATE_FLAGS, _CREATE_MODE)
    except (OSError, ValueError) as error:
        raise path_error("open", path, error) from None
    fifo = stat.S_ISFIFO(os.fstat(fd).st_mode)
    if not fifo:
        os.set_blocking(fd, True)  # a terminal or other device: plain writes, in the thread
    return fd, fifo


def _write_all(fd: int, data: bytes, path: str) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError as error:
        raise path_error("write", path, error) from None


async def _write_fifo(fd: int, data: bytes, path: str) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            await trio.lowlevel.wait_writable(fd)
        except OSError as error:
            raise path_error("write", path, error) from None


async def create(path: str, data: bytes) -> None:
    """os.Create(path), then WriteString(data), then Close: CommandError with Go's text."""
    fd, fifo = await trio.to_thread.run_sync(_open_for_create, path)
    try:
        if fifo:
            await _write_fifo(fd, data, path)
        else:
            await trio.to_thread.run_sync(_write_all, fd, data, path)
    finally:
        if fifo:
            trio.lowlevel.notify_closing(fd)
        os.close(fd)


def mkdir_all(path: str, mode: int) -> None:
    """os.MkdirAll (blocking: call it in a thread), with Go's error texts.

    Go recurses up to the first existing folder and makes the rest on the way
    down; the failing component's path is in the error. Done here in a loop,
    so a path of any depth is fine.
    """
    missing: list[str] = []
    current = path
    while True:
        try:
            found = os.stat(current).st_mode
        except (OSError, ValueError):
            missing.append(current)
            parent = _parent(current)
            if parent is None:
                break
            current = parent
            continue
        if not stat.S_ISDIR(found):
            raise CommandError(f"mkdir {current}: not a directory")
        break
    for folder in reversed(missing):
        try:
            os.mkdir(folder, mode)
        except (OSError, ValueError) as error:
            if isinstance(error, OSError) and error.errno == errno.EEXIST and os.path.isdir(folder):
                continue  # made meanwhile, as Go's Lstat check allows
            raise path_error("mkdir", folder, error) from None


def _parent(path: str) -> str | None:
    """The folder MkdirAll makes first: the path up to its last separator, or None
    when there is none (Go's `j > 1`)."""
    end = len(path.rstrip("/"))
    start = path.rfind("/", 0, end)
    if start <= 0:
        return None
    return path[:start]
