"""External programs: finding them on PATH + the helper folder, running and stopping them.

Every child runs in its own session (setsid), so a Ctrl-C typed at the
terminal never reaches it, and leads its own process group, so stopping the
group also stops whatever it started. A program that calls setsid itself (a
daemon detaching) leaves that group, and nothing here can find it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import select
import shutil
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import trio

GRACE_SECONDS = 1.0
HELPER_PROGRAMS = frozenset({"normal", "count", "delay", "execf"})
READ_SIZE = 64 * 1024
# Python ignores these, and an ignored signal stays ignored across exec:
# `yes | head` in a child would never end (subprocess's restore_signals).
_RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)
_FOUND_MAX = 256  # cached lookups; a daemon's vias use a handful of programs


class ProgramFinder:
    """minimega's exec.LookPath over the user's PATH with the helper folder appended.

    The helper folder is appended for lookups and for the children's PATH only;
    os.environ is never touched.
    """

    def __init__(self, helper_dir: str | None) -> None:
        self._helper_dir = helper_dir
        self._found: dict[tuple[str, str], str] = {}  # (search path, name) -> path

    def search_path(self) -> str:
        path = os.environ.get("PATH", os.defpath)
        if self._helper_dir is None:
            return path
        return f"{path}{os.pathsep}{self._helper_dir}" if path else self._helper_dir

    def lookup(self, name: str) -> str | None:
        """The program's path, or None: then a plumb stage is a pipe and a via fails."""
        if not name:
            return None
        return shutil.which(name, path=self.search_path())

    def lookup_cached(self, name: str) -> str | None:
        """lookup, remembered per PATH: for vias, which look a program up per message.

        A changed PATH is a new key. A program found once and removed since is
        not noticed here: starting it fails, and the caller then calls
        `forget` and looks again (see Vias.run).
        """
        key = (self.search_path(), name)
        path = self._found.get(key)
        if path is None:
            path = self.lookup(name)
            if path is not None:
                if len(self._found) >= _FOUND_MAX:
                    self._found.clear()
                self._found[key] = path
        return path

    def forget(self, name: str) -> None:
        self._found.pop((self.search_path(), name), None)

    def is_helper(self, name: str) -> bool:
        """True for minimega's own helper programs when the helper folder holds them."""
        if self._helper_dir is None or name not in HELPER_PROGRAMS:
            return False
        return os.access(os.path.join(self._helper_dir, name), os.X_OK)

    def child_env(self) -> dict[str, str] | None:
        if self._helper_dir is None:
            return None
        return {**os.environ, "PATH": self.search_path()}

    def spawn_env(self) -> Mapping[bytes, bytes]:
        """child_env for run_program, in the form posix_spawn reads fastest (see environ_bytes)."""
        environ = environ_bytes()
        if self._helper_dir is None:
            return environ
        return {**environ, b"PATH": os.fsencode(self.search_path())}


def environ_bytes() -> Mapping[bytes, bytes]:
    """The daemon's environment, as it is now, as a plain dict of bytes.

    posix_spawn reads a plain dict in C, but os.environ through its Python
    mapping methods, decoding every entry: measured, that made a spawn take
    550 us instead of 95, most of a via run's cost in the daemon. os.environ
    keeps its entries in `_data` (bytes to bytes on POSIX, what putenv was
    given); it is only read here.
    """
    data = getattr(os.environ, "_data", None)
    if isinstance(data, dict):
        return data
    return {os.fsencode(key): os.fsencode(value) for key, value in os.environ.items()}


@dataclass(frozen=True, slots=True)
class ProgramResult:
    """How a program run by run_program ended.

    returncode as subprocess gives it: -N when signal N ended it (-9 when its
    group was killed for a limit or the deadline). stdout and stderr hold at
    most their limits.
    """

    returncode: int
    stdout: bytes
    stderr: bytes
    over_limit: bool = False  # stdout or stderr passed its limit: the group was killed
    timed_out: bool = False  # the deadline passed: the group was killed


class KillSwitch:
    """Kills, at once and with SIGKILL, the process groups of the runs it is given to
    (run_program's `kill_switch`), running or still to start.

    Cheaper than a cancel scope per run, and without the SIGTERM grace: for
    runs their owner has given up on (a cleared via, a deleted pipe). The runs
    end as killed by signal 9 (returncode -9).
    """

    __slots__ = ("_children", "killed")

    def __init__(self) -> None:
        self._children: set[_Child] = set()
        self.killed = False

    def kill(self) -> None:
        self.killed = True
        for child in self._children:
            child.kill()


async def run_program(path: str, argv: Sequence[str], *, stdin: bytes | None = None,
                      env: Mapping[str, str] | Mapping[bytes, bytes] | None = None,
                      stdout_limit: int, stderr_limit: int, deadline: float = math.inf,
                      grace: float = GRACE_SECONDS,
                      kill_switch: KillSwitch | None = None) -> ProgramResult:
    """Run the program at `path` (argv[0] is only its name) to its end and return its output.

    It leads its own process group, and the whole group is killed (SIGKILL)
    once the direct child has exited, so nothing it left running in the
    background outlives it (nor holds its stdout open, which would make a
    reader wait for EOF forever); also as soon as stdout or stderr passes its
    limit (`over_limit`), or at `deadline` (trio time; `timed_out`). When
    cancelled, the group gets SIGTERM, then SIGKILL after `grace` seconds;
    when `kill_switch` is thrown, SIGKILL at once. On every path the child
    is reaped and every descriptor closed.

    stdin is /dev/null, or a pipe carrying `stdin` and then EOF. `env` None
    is os.environ. Raises OSError when the program cannot be started
    (FileNotFoundError, PermissionError, ...) and ValueError for a NUL in an
    argument, as subprocess does.
    """
    child = _Child(path, argv, environ_bytes() if env is None else env, stdin,
                   _Capture(stdout_limit), _Capture(stderr_limit))
    if kill_switch is not None:
        kill_switch._children.add(child)
        if kill_switch.killed:
            child.kill()
    try:
        await child.run(deadline, grace)
    finally:
        child.close()
        if kill_switch is not None:
            kill_switch._children.discard(child)
    return ProgramResult(child.returncode, child.stdout.data(), child.stderr.data(),
                         over_limit=child.stdout.over or child.stderr.over,
                         timed_out=child.timed_out)


class _Capture:
    """Output kept up to a limit; past it, `over` and nothing more is kept."""

    __slots__ = ("_limit", "_parts", "_size", "over")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._parts: list[bytes] = []
        self._size = 0
        self.over = False

    def add(self, data: bytes) -> None:
        room = self._limit - self._size
        if len(data) > room:
            data = data[:room]
            self.over = True
        self._parts.append(data)
        self._size += len(data)

    def data(self) -> bytes:
        return b"".join(self._parts)


def _above_stdio(fd: int) -> int:
    """`fd`, moved above 2 if it is 0-2 (a daemon started with a standard stream closed):
    the child's dup2 onto 0, 1 and 2 must not clobber one another."""
    if fd > 2:
        return fd
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return moved


def _pipe() -> tuple[int, int]:
    """A pipe whose ends do not leak into children (CLOEXEC) until dup2 puts them there."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    return _above_stdio(read_end), _above_stdio(write_end)


class _Child:
    """One running program and our ends of its pipes, watched through one epoll:
    a single task waits for output, room for input and the exit at once."""

    def __init__(self, path: str, argv: Sequence[str],
                 env: Mapping[str, str] | Mapping[bytes, bytes], stdin: bytes | None,
                 stdout: _Capture, stderr: _Capture) -> None:
        self.stdout, self.stderr = stdout, stderr
        self.returncode = 0
        self.timed_out = False
        self._exited = False
        self._reaped = False
        self._fds: list[int] = []  # ours, closed by close()
        self._child_fds: list[int] = []  # the child's ends, closed once it has them
        self._epoll = select.epoll()
        try:
            self._input = self._open_input(stdin)
            self._output: dict[int, _Capture] = {}
            for capture in (stdout, stderr):
                read_end, write_end = _pipe()
                self._fds.append(read_end)
                self._child_fds.append(write_end)
                os.set_blocking(read_end, False)
                self._output[read_end] = capture
            self.pid = self._spawn(path, argv, env, has_input=stdin is not None)
        except BaseException:
            self._close_fds()
            raise
        finally:
            for fd in self._child_fds:
                os.close(fd)
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except OSError:
            self._signal(signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self._close_fds()
            raise
        self._fds.append(self._pidfd)
        for fd in self._output:
            self._epoll.register(fd, select.EPOLLIN)
        if self._input is not None:
            self._epoll.register(self._input[0], select.EPOLLOUT)
        self._epoll.register(self._pidfd, select.EPOLLIN)

    def _open_input(self, stdin: bytes | None) -> tuple[int, memoryview] | None:
        """The child's stdin, filled at once as far as the pipe holds it (most messages
        fit): what is left is written as the child reads."""
        if stdin is None:
            return None
        read_end, write_end = _pipe()
        self._child_fds.append(read_end)
        os.set_blocking(write_end, False)
        try:
            written = os.write(write_end, stdin) if stdin else 0
        except BlockingIOError:
            written = 0
        if written == len(stdin):
            os.close(write_end)
            return None
        self._fds.append(write_end)
        return write_end, memoryview(stdin)[written:]

    def _spawn(self, path: str, argv: Sequence[str],
               env: Mapping[str, str] | Mapping[bytes, bytes], *, has_input: bool) -> int:
        *stdin_fd, stdout_fd, stderr_fd = self._child_fds
        stdin_action: tuple[int | str, ...] = (
            (os.POSIX_SPAWN_DUP2, stdin_fd[0], 0) if has_input
            else (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
        return os.posix_spawn(
            path, list(argv), env, setsid=True, setsigdef=_RESET_SIGNALS,
            file_actions=[stdin_action, (os.POSIX_SPAWN_DUP2, stdout_fd, 1),
                          (os.POSIX_SPAWN_DUP2, stderr_fd, 2)])

    async def run(self, deadline: float, grace: float) -> None:
        try:
            with trio.move_on_at(deadline) as timer:
                while not self._exited:
                    await self._serve()
            if timer.cancelled_caught:
                self.timed_out = True
                self._signal(signal.SIGKILL)
                while not self._exited:
                    await self._serve()
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                self._signal(signal.SIGTERM)
                with trio.move_on_after(grace):
                    while not self._exited:
                        await self._serve()
                self._signal(signal.SIGKILL)
                while not self._exited:
                    await self._serve()
            raise
        # The direct child is gone but not reaped, so its pid still names the
        # group: whatever it left behind goes with it.
        self._signal(signal.SIGKILL)
        self._serve_ready()  # its output that is still in the pipes
        self._reap()

    async def _serve(self) -> None:
        await trio.lowlevel.wait_readable(self._epoll)
        self._serve_ready()

    def _serve_ready(self) -> None:
        for fd, _ in self._epoll.poll(0):
            if fd == self._pidfd:
                self._exited = True
            elif fd in self._output:
                self._read(fd)
            else:
                self._write_input()

    def _read(self, fd: int) -> None:
        capture = self._output[fd]
        while True:
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                return
            if not data:
                self._epoll.unregister(fd)
                return
            capture.add(data)
            if capture.over:
                self._epoll.unregister(fd)  # the rest is not wanted
                self._signal(signal.SIGKILL)
                return
            if len(data) < READ_SIZE:
                return

    def _write_input(self) -> None:
        assert self._input is not None
        fd, rest = self._input
        try:
            written = os.write(fd, rest)
        except BlockingIOError:
            return
        except OSError:  # EPIPE: the child closed its stdin, it wants no more
            written = len(rest)
        if written < len(rest):
            self._input = fd, rest[written:]
            return
        self._epoll.unregister(fd)
        self._fds.remove(fd)
        os.close(fd)
        self._input = None

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, signum: signal.Signals) -> None:
        if not self._reaped:  # after reaping, the pid may name someone else's group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signum)

    def _reap(self) -> None:
        _, status = os.waitpid(self.pid, 0)
        self._reaped = True
        self.returncode = os.waitstatus_to_exitcode(status)

    def close(self) -> None:
        """Last resort on an unexpected error: the group killed, the child reaped."""
        if not self._reaped:
            self._signal(signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                self._reap()
        self._close_fds()

    def _close_fds(self) -> None:
        self._epoll.close()
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()


def signal_group(process: trio.Process, signum: signal.Signals) -> None:
    """Signal the child's whole process group (its pid, as it leads its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


async def stop_processes(processes: Sequence[trio.Process]) -> None:
    """Stop, reap and close every process; all get their grace at once, not one after another."""
    with trio.CancelScope(shield=True):
        for process in processes:
            signal_group(process, signal.SIGTERM)
        with trio.move_on_after(GRACE_SECONDS):
            for process in processes:
                await process.wait()
        for process in processes:
            # Also when the leader is gone: a grandchild may still hold the group.
            signal_group(process, signal.SIGKILL)
        for process in processes:
            await process.wait()
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    await stream.aclose()
