"""`cc serial`: cc over the virtio-serial ports of VMs that minishell did not start.

qemu exposes the host end of a VM's virtio-serial port as a unix socket it
listens on (`server=on`); minimega dials it for the VMs it starts, and
`miniccc -serial /dev/virtio-ports/cc` opens the guest's end. Here the user
names the sockets (`cc serial PATH...`, a PATH may be a glob), and one `CcServer`
dials them: its `SerialLinks` owns a task per path, which dials, serves the
agent connections that come over the line, and dials again when the line ends.

How a line behaves (minimega 2.9's serial clients, and better where it is careless):

- A path that is absent, refuses, or is not a socket is dialed again with
  backoff (FIRST_RETRY doubling to MOST_RETRY) and shows `waiting` with the
  error; a glob is evaluated every GLOB_EVERY seconds and dials the sockets it
  matches, so the sockets of VMs started later are picked up.
- Once dialed, the line waits for an agent's RON for as long as it takes (a
  guest may take minutes to boot); the bytes before it (a previous boot's) are
  skipped, up to ron's bound, and past it the line is closed and dialed again.
- An agent that restarts writes a new RON on the same line: the old connection
  ends there (its pipes are released as it ends) and the new one, of the same
  uuid, begins (ron.SerialSplitter). A connection the server drops (silence,
  bytes that are not ron) leaves the line open for the next RON.
- The VM going away (qemu exits) closes the line: the path is `waiting` again.

Every task is in SerialLinks' nursery, itself a task of its CcServer, so
`clear cc serial`, `clear namespace` and `clear all` stop them by
cancellation, and the sockets close as the tasks end.
"""

from __future__ import annotations

import errno
import glob as globbing
import itertools
import logging
import os
import re
import stat
from typing import TYPE_CHECKING, Final

import trio

from minishell.errors import CommandError
from minishell.protocol import ron

if TYPE_CHECKING:
    from collections.abc import Sequence

    from minishell.cc.server import Agent, CcServer

log = logging.getLogger("minishell.cc")

GLOB_EVERY: Final = 1.0  # seconds between two evaluations of a glob
FIRST_RETRY: Final = 0.1  # seconds before dialing a path again, doubling ...
MOST_RETRY: Final = 2.0  # ... up to this
# A RON ending an unfinished message, then this long without a byte: the agent
# restarted while the old one was writing (the new one waits for the host's RON).
SILENT_CUT: Final = 1.0
MAX_PATHS: Final = 1000  # paths and globs dialed by one namespace
GLOB_ENTRIES_MAX: Final = 100_000  # names a glob may look at in one evaluation
READ_SIZE: Final = 256 * 1024
HEADER: Final = ["path", "glob", "state", "uuid", "hostname", "reconnects", "error"]
_MAGIC_CHARACTERS = re.compile(r"[*?[]")


def is_glob(path: str) -> bool:
    return _MAGIC_CHARACTERS.search(path) is not None


def normalized(path: str) -> str:
    """A path as the listing shows it and commands name it."""
    return os.path.normpath(path)


class SerialLinks:
    """The serial ports one namespace's cc dials, as `cc serial` lists them."""

    def __init__(self, server: CcServer) -> None:
        self.server = server
        self._links: dict[str, _Link] = {}  # by path
        self._globs: dict[str, _Glob] = {}  # by pattern
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Own every link's task until cancelled (with the CcServer)."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self._links.clear()
            self._globs.clear()

    def dials(self, path: str) -> bool:
        """Whether this path (or glob) is dialed here."""
        return path in self._links or path in self._globs

    def dial(self, paths: Sequence[str]) -> None:
        """`cc serial PATH...`: dial each path, or each socket a glob matches."""
        if self._nursery is None:
            raise CommandError("cc is closing")
        chosen = list(dict.fromkeys(normalized(path) for path in paths))
        for path in chosen:
            if "\0" in path:
                raise CommandError("not a path: it holds a NUL byte")
            if not os.path.isabs(path):
                raise CommandError(f"not an absolute path: {path}")
            if self.dials(path):
                raise CommandError(f"already dialing {path}")
        if len(self._links) + len(self._globs) + len(chosen) > MAX_PATHS:
            raise CommandError(f"cannot dial more than {MAX_PATHS} serial paths")
        for path in chosen:
            if is_glob(path):
                watch = self._globs[path] = _Glob(path)
                self._nursery.start_soon(self._follow, watch)
            else:
                self._start_link(path, "")

    async def clear(self, path: str | None = None) -> None:
        """`clear cc serial [PATH]`: stop dialing (every path, one, or a glob and the
        paths it found) and drop the agents on them, their pipes released."""
        if path is None:
            globs, links = list(self._globs.values()), list(self._links.values())
        else:
            path = normalized(path)
            globs = [self._globs[path]] if path in self._globs else []
            link = self._links.get(path)
            if link is not None and link.glob:
                raise CommandError(f"{path} is dialed for the glob {link.glob}: clear the glob")
            if not globs and link is None:
                raise CommandError(f"not dialing {path}")
            links = [link] if link is not None else [
                each for each in self._links.values() if each.glob == path]
        for watch in globs:
            del self._globs[watch.pattern]
            watch.scope.cancel()
        for link in links:
            self._stop_link(link)
        for done in [watch.done for watch in globs] + [link.done for link in links]:
            await done.wait()

    def rows(self) -> list[list[str]]:
        """The listing: a row per path, and one per glob that matches nothing now or
        has more than it may dial."""
        rows = [link.row() for link in self._links.values()]
        found = {link.glob for link in self._links.values()}
        rows += [[watch.pattern, watch.pattern, "waiting", "", "", "0", watch.error]
                 for watch in self._globs.values() if watch.error or watch.pattern not in found]
        return rows

    # -- paths ---------------------------------------------------------------------------------

    def _start_link(self, path: str, pattern: str) -> None:
        assert self._nursery is not None
        link = self._links[path] = _Link(path, pattern)
        self._nursery.start_soon(self._keep_dialed, link)

    def _stop_link(self, link: _Link) -> None:
        if self._links.get(link.path) is link:
            del self._links[link.path]
        link.scope.cancel()

    async def _keep_dialed(self, link: _Link) -> None:
        """Dial the path, serve what comes over it, and dial again, until cancelled."""
        retry = FIRST_RETRY
        try:
            with link.scope:
                while True:
                    try:
                        stream = await _dial(link.path)
                    except (OSError, ValueError) as error:  # ValueError: a name sockets refuse
                        link.failed(_dial_error(link.path, error))
                    else:
                        served = link.connections
                        link.state = "dialed"
                        log.info("cc serial: dialed %s", link.path)
                        async with stream:
                            await self._serve_line(link, stream)
                        if link.connections > served:
                            retry = FIRST_RETRY
                    link.state, link.agent = "waiting", None
                    await trio.sleep(retry)
                    retry = min(retry * 2, MOST_RETRY)
        finally:
            link.done.set()

    async def _serve_line(self, link: _Link, stream: trio.SocketStream) -> None:
        """Each agent connection on a dialed line, one after the other, until it ends."""
        line = _Line(stream, link.path)
        while True:
            try:
                connection = await line.next_connection()
            except _LineEnded as ended:
                link.failed(str(ended))
                return
            why = await self.server.serve(connection, link.connected)
            link.state, link.agent = "dialed", None
            if why:
                link.failed(why)

    # -- globs ---------------------------------------------------------------------------------

    async def _follow(self, watch: _Glob) -> None:
        """Evaluate a glob every GLOB_EVERY seconds: dial the sockets it matches, and
        forget those it no longer matches that are not connected."""
        try:
            with watch.scope:
                while True:
                    # a hung file system must not hold up `clear`: the thread is let go
                    found = await trio.to_thread.run_sync(_sockets_matching, watch.pattern,
                                                          abandon_on_cancel=True)
                    self._update(watch, found)
                    await trio.sleep(GLOB_EVERY)
        finally:
            for link in [each for each in self._links.values() if each.glob == watch.pattern]:
                self._stop_link(link)
            watch.done.set()

    def _update(self, watch: _Glob, found: list[str]) -> None:
        for link in list(self._links.values()):
            if link.glob == watch.pattern and link.path not in found and link.state == "waiting":
                self._stop_link(link)
        skipped = 0
        for path in found:
            if path in self._links or path in self._globs:
                continue
            if len(self._links) + len(self._globs) >= MAX_PATHS:
                skipped += 1
                continue
            self._start_link(path, watch.pattern)
        error = f"{skipped} sockets not dialed: at most {MAX_PATHS} paths" if skipped else ""
        if error and error != watch.error:
            log.warning("cc serial: %s: %s", watch.pattern, error)
        watch.error = error


class _Link:
    """One path dialed, and what the listing shows of it."""

    def __init__(self, path: str, pattern: str) -> None:
        self.path = path
        self.glob = pattern  # the glob that found it, "" if it was named
        self.state = "waiting"  # waiting (not dialed), dialed (no agent yet), connected
        self.agent: Agent | None = None
        self.connections = 0
        self.error = ""
        self.scope = trio.CancelScope()
        self.done = trio.Event()

    def connected(self, agent: Agent) -> None:
        self.state, self.agent = "connected", agent
        self.connections += 1
        self.error = ""

    def failed(self, error: str) -> None:
        if error != self.error:
            log.info("cc serial: %s: %s", self.path, error)
        self.error = error

    def row(self) -> list[str]:
        agent = self.agent
        return [self.path, self.glob, self.state, agent.uuid if agent else "",
                agent.client.hostname if agent else "", str(max(self.connections - 1, 0)),
                self.error]


class _Glob:
    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.error = ""
        self.scope = trio.CancelScope()
        self.done = trio.Event()


async def _dial(path: str) -> trio.SocketStream:
    return await trio.open_unix_socket(path)


def _dial_error(path: str, error: OSError | ValueError) -> str:
    """Go's words for a failed dial; a path that is there but is no socket says so."""
    if not isinstance(error, OSError):
        return f"dial unix {path}: {error}"
    if error.errno == errno.ECONNREFUSED:
        try:
            if not stat.S_ISSOCK(os.stat(path).st_mode):
                return f"{path}: not a socket"
        except OSError:
            pass
    reason = error.strerror.lower() if error.strerror else str(error)
    return f"dial unix {path}: connect: {reason}"


def _sockets_matching(pattern: str) -> list[str]:
    """The sockets a glob matches now (run in a thread), sorted, at most MAX_PATHS + 1."""
    found: list[str] = []
    for path in itertools.islice(globbing.iglob(pattern), GLOB_ENTRIES_MAX):
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                found.append(os.path.normpath(path))
        except OSError:
            continue
        if len(found) > MAX_PATHS:
            break
    return sorted(found)


class _LineEnded(Exception):
    """The line cannot carry another connection; the text says why."""


class _Line:
    """A dialed socket, and the splitter that finds the agent connections on it."""

    def __init__(self, stream: trio.SocketStream, path: str) -> None:
        self.stream = stream
        self.path = path
        self.splitter = ron.SerialSplitter()
        self.ended = ""  # why no more bytes will come

    async def next_connection(self) -> _Connection:
        """The next agent's connection, once its RON has come; _LineEnded if the line
        ends first or holds too much that is not RON."""
        splitter = self.splitter
        splitter.next_connection()
        while True:
            try:
                first = splitter.take()
            except ron.HandshakeError as error:
                raise _LineEnded(f"{error}: the line was closed") from None
            if first:
                return _Connection(self, first)
            if not await self.read():
                raise _LineEnded(self.ended)

    async def read(self) -> bool:
        """Feed the splitter what the line gives next; False at its end."""
        try:
            data = await self.stream.receive_some(READ_SIZE)
        except (trio.BrokenResourceError, OSError) as error:
            self.ended = f"the line broke: {error}"
            return False
        if not data:
            self.ended = "the VM closed the line"
            return False
        self.splitter.feed(data)
        return True


class _Connection(trio.abc.Stream):
    """One agent connection on a line: its bytes from its RON to where the next
    RON stands, or the line ends. Closing it leaves the line open."""

    def __init__(self, line: _Line, first: bytes) -> None:
        self._line = line
        self._received = bytearray(first)
        self._closed = False

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._closed:
            raise trio.ClosedResourceError("the connection was closed")
        await trio.lowlevel.checkpoint()
        line, splitter = self._line, self._line.splitter
        while not self._received and not splitter.ended and not line.ended:
            self._received += splitter.take()
            if self._received or splitter.ended:
                break
            if not splitter.may_cut:
                await line.read()
                continue
            with trio.move_on_after(SILENT_CUT) as silence:
                await line.read()
            if silence.cancelled_caught:
                log.info("cc serial: %s: a new RON in an unfinished message, then "
                         "silence: the agent started again", line.path)
                splitter.cut()
        size = len(self._received) if max_bytes is None else min(max_bytes, len(self._received))
        data = bytes(self._received[:size])
        del self._received[:size]
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the connection was closed")
        await self._line.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._line.stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        self._closed = True
        await trio.lowlevel.checkpoint()
