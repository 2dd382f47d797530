"""minimega's loggers (pkg/minilog, cmd/minimega/log_cli.go) over Python's logging.

minilog keeps named loggers (stderr, a file, a ring of recent lines), each
with a level and a list of filters. Here they are handlers on the root
logger, which every `minishell.*` logger reaches: the level is the root
logger's (minimega sets every logger's level at once, so one level is the
same thing), and each handler has its own filters, as each minilog logger
has. Lines look like minilog's: `2024/05/06 07:08:09 WARN minishell.server: text`,
with minimega's level names and the Python logger's name where minilog puts
the Go file and line.

Logging is process-wide, as in minimega, so this state is too: `configure`
sets it up from `-level`; `current()` is what the `log` commands change.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import sys
import time
from collections import deque
from typing import Final, TextIO, TypeVar

import trio

from minishell import osfiles

LEVELS: Final = {
    "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
    "error": logging.ERROR, "fatal": logging.CRITICAL,
}
_LEVEL_WORDS: Final = {
    logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN",
    logging.ERROR: "ERROR", logging.CRITICAL: "FATAL",
}
DATE_FORMAT: Final = "%Y/%m/%d %H:%M:%S"  # Go's log.LstdFlags
FILE_MODE: Final = 0o660  # minimega's log file
FOLDER_MODE: Final = 0o755  # and the folders it makes for it
RING_LINES_MAX: Final = 100_000
RING_CHARACTERS_MAX: Final = 16 * 1024 * 1024

AnyHandler = TypeVar("AnyHandler", bound=logging.Handler)


def level_name(level: int) -> str:
    """minimega's name for the level that lets `level` through (NOTSET lets all)."""
    for name, value in LEVELS.items():
        if level <= value:
            return name
    return "fatal"


def _prologue(record: logging.LogRecord) -> str:
    """minilog's `LEVEL name: `, which its filters see with the message."""
    word = _LEVEL_WORDS.get(record.levelno) or level_name(record.levelno).upper()
    return f"{word} {record.name}: "


class MinilogFormatter(logging.Formatter):
    """`2009/01/23 01:23:23 WARN name: message`, as minilog prints a line."""

    def __init__(self) -> None:
        super().__init__(datefmt=DATE_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = f"{self.formatTime(record, self.datefmt)} {_prologue(record)}{record.getMessage()}"
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return text


class TextFilter(logging.Filter):
    """minilog's filters: a line whose `LEVEL name: message` contains one is dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.texts:
            return True
        line = _prologue(record) + record.getMessage()
        return not any(text in line for text in self.texts)


class FileLog(logging.FileHandler):
    """The `log file` handler: appends, created 0660 as minimega creates it;
    `given_name` is the path as the user gave it (what `log file` prints)."""

    def __init__(self, name: str) -> None:
        self.given_name = name
        super().__init__(name, mode="a", encoding="utf-8", errors="backslashreplace")

    def _open(self) -> io.TextIOWrapper:
        stream = open(  # noqa: SIM115 (FileHandler owns the stream and closes it)
            self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors,
            opener=lambda path, flags: os.open(path, flags, FILE_MODE))
        assert isinstance(stream, io.TextIOWrapper)
        return stream


class RingLog(logging.Handler):
    """`log ring`: the newest lines, at most `size` of them and RING_CHARACTERS_MAX
    characters in all, the oldest dropped first."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._lines: deque[str] = deque()
        self._characters = 0

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{_ring_time(record.created)} {_prologue(record)}{record.getMessage()}\n"
        self._lines.append(line)
        self._characters += len(line)
        while self._lines and (len(self._lines) > self.size
                               or self._characters > RING_CHARACTERS_MAX):
            self._characters -= len(self._lines.popleft())

    def dump(self) -> str:
        """The lines, oldest first (records may come from worker threads: under the lock)."""
        self.acquire()
        try:
            return "".join(self._lines)
        finally:
            self.release()


def _ring_time(created: float) -> str:
    """minilog's ring writes its own date, without Go's zero padding: 2024/5/6 7:8:9."""
    moment = time.localtime(created)
    return (f"{moment.tm_year}/{moment.tm_mon}/{moment.tm_mday} "
            f"{moment.tm_hour}:{moment.tm_min}:{moment.tm_sec}")


class Logs:
    """minimega's logging state: the level, and the stderr, file and ring loggers.

    `start_level` is the `-level` minishell started with, which `clear log
    level` goes back to. The handlers are minishell's own, so that logging
    set up by others (pytest's capture, an embedding program) is left alone.
    A log file still open when minishell ends is flushed and closed by
    logging's own shutdown at exit.
    """

    def __init__(self, root: logging.Logger, start_level: int) -> None:
        self.root = root
        self.start_level = start_level
        self.stderr: logging.Handler | None = None
        self.file: FileLog | None = None
        self.ring: RingLog | None = None

    # -- the level ---------------------------------------------------------------------------------

    @property
    def level(self) -> str:
        return level_name(self.root.level)

    def set_level(self, name: str) -> None:
        self.root.setLevel(LEVELS[name])

    def reset_level(self) -> None:
        self.root.setLevel(self.start_level)

    # -- stderr ------------------------------------------------------------------------------------

    def enable_stderr(self, stream: TextIO | None = None) -> None:
        """Log to stderr, unless that is done already."""
        if self.stderr is None:
            self.stderr = self._add(logging.StreamHandler(stream or sys.stderr))

    def disable_stderr(self) -> None:
        if self.stderr is not None:
            self.root.removeHandler(self.stderr)
            self.stderr = None  # the stream is sys.stderr's: left open

    # -- the file ----------------------------------------------------------------------------------

    async def open_file(self, name: str) -> None:
        """Log to the file `name` instead of any file before: its folders are made,
        it is appended to. As in minimega the old file is closed first, so a new
        one that cannot be opened leaves none."""
        await self.close_file()

        def open_log() -> FileLog:
            osfiles.mkdir_all(os.path.dirname(name) or ".", FOLDER_MODE)
            try:
                if not name:  # FileHandler would take "" for the working folder
                    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
                return FileLog(name)
            except (OSError, ValueError) as error:
                raise osfiles.path_error("open", name, error) from None

        self.file = self._add(await trio.to_thread.run_sync(open_log))

    async def close_file(self) -> None:
        """Stop logging to the file, and close it (flushing it may wait on the disk)."""
        handler, self.file = self.file, None
        if handler is not None:
            self.root.removeHandler(handler)
            await trio.to_thread.run_sync(handler.close)

    # -- the ring ----------------------------------------------------------------------------------

    def start_ring(self, size: int) -> None:
        """A new, empty ring of `size` lines in place of any before."""
        self.stop_ring()
        self.ring = self._add(RingLog(size))

    def stop_ring(self) -> None:
        if self.ring is not None:
            self.root.removeHandler(self.ring)
            self.ring = None

    # -- filters -----------------------------------------------------------------------------------

    def _handlers(self) -> list[logging.Handler]:
        return [h for h in (self.stderr, self.file, self.ring) if h is not None]

    @property
    def filters(self) -> list[str]:
        """Every logger's filters, each once, in the order they came."""
        seen: dict[str, None] = {}
        for handler in self._handlers():
            seen.update(dict.fromkeys(_text_filter(handler).texts))
        return list(seen)

    def add_filter(self, text: str) -> None:
        """Drop the lines containing `text`, on every logger there is now (a logger
        added later starts without filters, as in minimega)."""
        for handler in self._handlers():
            texts = _text_filter(handler).texts
            if text not in texts:
                texts.append(text)

    def clear_filters(self) -> None:
        for handler in self._handlers():
            _text_filter(handler).texts.clear()

    # -- all of it ---------------------------------------------------------------------------------

    async def clear(self) -> None:
        """`clear log`: no file, no ring, no stderr, no filters, the start level."""
        await self.close_file()
        self.reset_level()
        self.disable_stderr()
        self.stop_ring()

    async def aclose(self) -> None:
        """Remove every handler of ours from the root logger, the file closed."""
        await self.close_file()
        self.disable_stderr()
        self.stop_ring()

    def _add(self, handler: AnyHandler) -> AnyHandler:
        handler.setFormatter(MinilogFormatter())
        handler.addFilter(TextFilter())
        self.root.addHandler(handler)
        return handler


def _text_filter(handler: logging.Handler) -> TextFilter:
    return next(f for f in handler.filters if isinstance(f, TextFilter))


_current: Logs | None = None


def configure(level: str, stream: TextIO | None = None) -> Logs:
    """minishell's logging at start: the root logger at `level` (one of LEVELS),
    lines to stderr (minimega's -v, on by default)."""
    global _current
    root = logging.getLogger()
    root.setLevel(LEVELS[level])
    _current = Logs(root, LEVELS[level])
    _current.enable_stderr(stream)
    return _current


def current() -> Logs:
    """The logging state the `log` commands change; without `configure` (minishell
    embedded, or under test), the root logger as it is, and no logger of ours."""
    global _current
    if _current is None:
        root = logging.getLogger()
        _current = Logs(root, root.level)
    return _current


def install(logs: Logs | None) -> None:
    """Make `logs` the current state (None: start afresh at the next `current()`)."""
    global _current
    _current = logs
