"""The agent's own pipes: minimega's local miniplumber on a client, always in mode all.

Local users of a pipe are programs (`stdin=`, `stdout=`, `stderr=`) and `-pipe`
connections. Upstream the agent is one reader and one writer of each pipe name,
however many local users it has: the first local reader of a name sends
PIPE_NEW_READER, the last one to go PIPE_CLOSE_READER, and writers likewise.
(miniccc 2.9 sends NEW_* for every local open; the server counts a client once
either way.)

A reader closed and opened again at once meets two habits of minimega 2.9's.
It answers every CLOSE_READER a client sends with a CLOSE_READER of its own (the
closed reader's goroutine reports it), which must not be taken for the pipe's
deletion. And it forgets the closed reader only after sending that echo, so a
NEW_READER that comes sooner is taken for a duplicate and ignored, and the
client is left with no reader on the server. Both happen when two execs in a
row read one pipe: the first one's reader closes at its exit, the second one's
opens a moment later. (miniccc 2.9 never meets them: it does not close a reader
when its program exits.) So after a CLOSE_READER the agent waits for its echo
before it sends NEW_READER for that pipe again, and takes the first
CLOSE_READER of that pipe for the echo; a server that sends no echo is waited
for ECHO_WINDOW at most. Local readers opened meanwhile get what comes once the
server has them as a reader again.

A program that exits before anything came for it on its stdin keeps its reader
until something does (or the pipe is deleted): that is how minimega 2.9 shows it
(`readers 1`, pinned by the cc_bad_input transcript), but where 2.9's reader then
swallows that message and wedges the client, here the message goes to the other
readers as usual, the orphan drops its copy, and the reader goes upstream. A
program that took input before it exited lets go of its reader at once.

DATA from the server goes to every local reader of its pipe. A reader is a
bounded queue: a reader that does not keep up (a program that does not read its
stdin) has what does not fit dropped and counted, and nobody else waits for it;
in miniccc 2.9 it wedges the client's whole plumber. DATA for a pipe with no
local reader is dropped with a log line. CLOSE_READER from the server (the pipe
was deleted) ends every local reader of that name after what it holds: programs
get EOF on stdin. Writers do not deliver locally: their lines go to the server,
which sends them back to this client's readers if it has any (mode all), as
miniccc does.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

import trio

from minishell.protocol.ron import PipeMode

logger = logging.getLogger("minishell.cc.agent")

READER_BYTES_MAX = 1024 * 1024  # what one local reader may hold that it has not taken
ECHO_WINDOW = 2.0  # seconds within which the server's echo of a CLOSE_READER is expected
_STRAYS_LOGGED_MAX = 1024  # names remembered for logging stray data once each


class LocalReader:
    """One local user's view of a pipe: its messages in order, then EOF (None)."""

    def __init__(self, pipe: str, bytes_max: int) -> None:
        self.pipe = pipe
        self.dropped_messages = 0
        self.dropped_bytes = 0
        self.taken = 0  # messages its user has received
        self.orphaned = False  # its program exited before taking anything (see above)
        self._queue: deque[tuple[bytes, int]] = deque()  # (messages' data, how many)
        self._queued_bytes = 0
        self._bytes_max = bytes_max
        self._ended = False
        self._waiting = trio.lowlevel.ParkingLot()

    def put(self, data: bytes, messages: int = 1) -> None:
        """One message, or `messages` lines in a block; what does not fit is dropped."""
        if self._ended:
            return
        room = self._bytes_max - self._queued_bytes
        # one message always fits into an empty queue, however long
        if self._queue and len(data) > room:
            kept = data[:data.rfind(b"\n", 0, room) + 1] if messages > 1 else b""
            kept_messages = kept.count(b"\n")
            self.dropped_messages += messages - kept_messages
            self.dropped_bytes += len(data) - len(kept)
            if not kept:
                return
            data, messages = kept, kept_messages
        self._queue.append((data, messages))
        self._queued_bytes += len(data)
        self._waiting.unpark_all()

    def end(self) -> None:
        """EOF once the queue is empty."""
        self._ended = True
        self._waiting.unpark_all()

    async def receive(self) -> bytes | None:
        while not self._queue and not self._ended:
            await self._waiting.park()
        if not self._queue:
            return None
        data, messages = self._queue.popleft()
        self._queued_bytes -= len(data)
        self.taken += messages
        return data

    def drop_note(self) -> str:
        """The line a response's stderr or the log gets when messages were dropped."""
        return (f"minishell-agent: {self.dropped_messages} messages ({self.dropped_bytes} "
                f"bytes) from pipe {self.pipe} dropped: they were not read in time")


UpstreamControl = Callable[[str, PipeMode], None]


class LocalPlumber:
    def __init__(self, upstream: UpstreamControl,
                 reader_bytes_max: int = READER_BYTES_MAX) -> None:
        """`upstream(pipe, mode)` tells the server of a first open or a last close."""
        self._upstream = upstream
        self._reader_bytes_max = reader_bytes_max
        self._readers: dict[str, list[LocalReader]] = {}
        self._writers: dict[str, int] = {}
        # pipes whose stray data was logged: once per name, until it has a reader again
        self._strays_logged: set[str] = set()
        # by pipe: when each CLOSE_READER whose echo has not come yet was sent
        self._echoes_due: dict[str, deque[float]] = {}
        # pipes with local readers whose NEW_READER waits for an echo
        self._reopening: set[str] = set()
        self._echo_deadline_moved = trio.lowlevel.ParkingLot()

    def open_reader(self, pipe: str) -> LocalReader:
        reader = LocalReader(pipe, self._reader_bytes_max)
        readers = self._readers.setdefault(pipe, [])
        readers.append(reader)
        self._strays_logged.discard(pipe)
        if len(readers) == 1:
            if self._echoes_due.get(pipe):
                self._reopening.add(pipe)
            else:
                self._upstream(pipe, PipeMode.NEW_READER)
        return reader

    def orphan(self, reader: LocalReader) -> None:
        """The reader's program exited before anything came: keep it until something
        does (see the module's docstring)."""
        reader.end()
        reader.orphaned = True

    def close_reader(self, reader: LocalReader) -> None:
        """Let go of a reader (at once: what it holds is dropped). Closing twice is harmless;
        an orphan is let go by what comes for it, or the pipe's deletion."""
        if reader.orphaned:
            return
        reader.end()
        pipe = reader.pipe
        readers = self._readers.get(pipe)
        if readers is None or reader not in readers:
            return  # the server deleted the pipe: it was closed then
        readers.remove(reader)
        if readers:
            return
        del self._readers[pipe]
        if pipe in self._reopening:
            self._reopening.discard(pipe)  # the server was never told of it
            return
        self._upstream(pipe, PipeMode.CLOSE_READER)
        self._echoes_due.setdefault(pipe, deque()).append(trio.current_time())
        self._echo_deadline_moved.unpark_all()

    def open_writer(self, pipe: str) -> None:
        self._writers[pipe] = self._writers.get(pipe, 0) + 1
        if self._writers[pipe] == 1:
            self._upstream(pipe, PipeMode.NEW_WRITER)

    def close_writer(self, pipe: str) -> None:
        count = self._writers.get(pipe, 0) - 1
        if count > 0:
            self._writers[pipe] = count
            return
        self._writers.pop(pipe, None)
        if count == 0:
            self._upstream(pipe, PipeMode.CLOSE_WRITER)

    def deliver(self, pipe: str, data: bytes, messages: int = 1) -> None:
        """PIPE DATA from the server (one message, or lines in a block): to every local
        reader of the pipe."""
        readers = self._readers.get(pipe)
        if not readers:
            if pipe not in self._strays_logged and len(self._strays_logged) < _STRAYS_LOGGED_MAX:
                self._strays_logged.add(pipe)
                logger.error("data for pipe %s, which has no reader here: dropped", pipe)
            return
        for reader in list(readers):
            if reader.orphaned:
                logger.info("data for pipe %s, whose reading program has exited: its reader "
                            "goes", pipe)
                reader.orphaned = False
                self.close_reader(reader)
            else:
                reader.put(data, messages)

    def delete(self, pipe: str) -> None:
        """PIPE CLOSE_READER from the server: the echo of one of ours, or the pipe was
        deleted: then every local reader ends after what it holds.

        Upstream that is the last reader going, so CLOSE_READER goes back as well,
        as miniccc answers it (the server ignores it for a reader it has closed,
        and sends no echo of it).
        """
        self._expire_echoes()
        due = self._echoes_due.get(pipe)
        if due:
            due.popleft()
            logger.debug("the server's echo of our close of pipe %s", pipe)
            self._reopen_if_echoed(pipe)
            return
        readers = self._readers.pop(pipe, None)
        if readers is None:
            logger.debug("close of pipe %s, which has no reader here: ignored", pipe)
            return
        for reader in readers:
            reader.end()
        self._upstream(pipe, PipeMode.CLOSE_READER)

    async def expire_echoes(self) -> None:
        """Run for ever: an echo that has not come in ECHO_WINDOW will not come (a server
        that sends none); the readers waiting for it are announced then."""
        while True:
            self._expire_echoes()
            waits = [due[0] + ECHO_WINDOW for due in self._echoes_due.values() if due]
            if waits:
                with trio.move_on_at(min(waits)):
                    await self._echo_deadline_moved.park()
            else:
                await self._echo_deadline_moved.park()

    def _expire_echoes(self) -> None:
        now = trio.current_time()
        for pipe in list(self._echoes_due):
            due = self._echoes_due[pipe]
            while due and now - due[0] >= ECHO_WINDOW:
                due.popleft()
                logger.debug("no echo of our close of pipe %s: none expected", pipe)
            self._reopen_if_echoed(pipe)

    def _reopen_if_echoed(self, pipe: str) -> None:
        if self._echoes_due.get(pipe):
            return
        self._echoes_due.pop(pipe, None)
        if pipe in self._reopening:
            self._reopening.discard(pipe)
            self._upstream(pipe, PipeMode.NEW_READER)

    def announcements(self) -> list[tuple[str, PipeMode]]:
        """What a new connection must be told: NEW_READER and NEW_WRITER of every pipe in use.
        (Echoes due on the connection that ended will not come.)"""
        self._echoes_due.clear()
        self._reopening.clear()
        return ([(pipe, PipeMode.NEW_READER) for pipe in self._readers]
                + [(pipe, PipeMode.NEW_WRITER) for pipe in self._writers])

    def reader_count(self, pipe: str) -> int:
        return len(self._readers.get(pipe, ()))

    def writer_count(self, pipe: str) -> int:
        return self._writers.get(pipe, 0)
