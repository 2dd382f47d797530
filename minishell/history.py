"""The command history, bounded.

minimega keeps every command for ever; a long-running instance fed large
commands (`pipe foo <100 KB>`) would grow without end, so minishell keeps the
newest commands within a count and a size, dropping the oldest first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

HISTORY_ENTRIES = 10_000
HISTORY_BYTES = 16 * 1024 * 1024  # characters, counted as they are stored


class History:
    def __init__(self, max_entries: int = HISTORY_ENTRIES, max_size: int = HISTORY_BYTES) -> None:
        self._entries: deque[str] = deque()
        self._size = 0
        self._max_entries = max_entries
        self._max_size = max_size

    def append(self, command: str) -> None:
        self._entries.append(command)
        self._size += len(command)
        while self._entries and (len(self._entries) > self._max_entries
                                 or self._size > self._max_size):
            self._size -= len(self._entries.popleft())

    def clear(self) -> None:
        self._entries = deque()  # a new deque: the old one's blocks are freed at once
        self._size = 0

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        return self._size
