"""A cc command's program, run as miniccc's runCommand runs it, with 2.9's defects mended.

Lookup: $PATH, then `<path>/files/<name>` (miniccc's lookPath, with Go's error
texts, which end up in responses). Then, in miniccc's order, stdin's pipe is
opened (a local reader), then stdout's and stderr's (local writers), and the
program starts in a session and process group of its own.

- stdin: each message from the pipe, with a newline added if it has none. When
  the program exits, or closes its stdin, the reader is let go at once (2.9
  keeps it: it takes the next message, loses it, and wedges the client); only
  a program that exits before anything came leaves its reader until something
  does, as 2.9 shows it (plumber.py says why). A program that does not read has
  its reader's queue fill, and what does not fit is dropped and counted (2.9
  wedges the whole client).
- stdout, stderr: to a pipe, one message per line, as bufio.Scanner splits them
  (a CR before the newline goes, a last line without one gets one); a line of
  LINE_MAX bytes or more is dropped and counted and the stream goes on (2.9
  ends the stream and the program hangs). Without a pipe, the bytes are kept
  for the response, up to KEPT_BYTES_MAX. Either way they are read to EOF
  before the end is reported (2.9 loses the tails): at the exit the pipe holds
  the program's last output, and that is read in full. EOF follows at once,
  unless something the program started keeps the stream open (a daemon in the
  background): then the end is reported without waiting for EOF, as soon as
  that process writes more or once the stream has been silent for TAIL_GRACE.
  The stream is still read, to its pipe or to nowhere, until it ends.
- The exit code is Go's: the status, or -1 when a signal ended the program.

Whatever went wrong on the way (drops, long lines, output past the limit) is
listed in `Outcome.notes`, which the response's stderr gets.

The process group is what `cc process kill` signals (2.9 signals the program
alone, and its children live on). The program's exit is seen through a pidfd
without reaping it, so until it is reaped its pid still names the group and a
signal cannot reach another one. At shutdown the group gets SIGTERM, then
SIGKILL after STOP_GRACE, and the program is reaped.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import logging
import os
import signal
import stat
import subprocess
import termios
from dataclasses import dataclass, field
from typing import Protocol

import trio

from minishell.cc.agent.plumber import LocalPlumber, LocalReader
from minishell.gostr import quote

logger = logging.getLogger("minishell.cc.agent")

READ_SIZE = 64 * 1024
LINE_MAX = 1024 * 1024  # a line this long or longer (newline excluded) is dropped
KEPT_BYTES_MAX = 1024 * 1024  # of a stdout or stderr kept for a response
TAIL_GRACE = 1.0  # silence after the exit before its output stops being waited for
STOP_GRACE = 1.0  # SIGTERM to SIGKILL, at shutdown


class StartError(Exception):
    """The program cannot run; the text is what the response's stderr gets."""


class PipeSender(Protocol):
    async def send_pipe_lines(self, pipe: str, block: bytes) -> None:
        """Complete lines to the server, each a message (dropped if no server is connected)."""


def go_error_text(error: OSError) -> str:
    """An errno as Go's syscall.Errno prints it: the C text, lower case first."""
    if not error.errno:
        return str(error)
    text = os.strerror(error.errno)
    return text[:1].lower() + text[1:]


def _check_executable(path: str) -> None:
    """Go's findExecutable: OSError (stat's, or EACCES) unless path is an executable file."""
    if "\0" in path:  # Go strings may hold one; no file name can
        raise FileNotFoundError(2, "No such file or directory")
    try:
        mode = os.stat(path).st_mode
    except ValueError:  # a name the file system cannot take
        raise FileNotFoundError(2, "No such file or directory") from None
    if stat.S_ISDIR(mode) or not mode & 0o111:
        raise PermissionError(13, "Permission denied")


def look_path(name: str, files_dir: str) -> str:
    """miniccc's lookPath: exec.LookPath on $PATH, then `files_dir/name` for a bare name."""
    if "/" in name:
        try:
            _check_executable(name)
        except OSError:
            raise StartError(
                f"exec: {quote(name)}: executable file not found in $PATH") from None
        return name
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(folder or ".", name)
        with contextlib.suppress(OSError):
            _check_executable(candidate)
            return candidate
    candidate = os.path.normpath(os.path.join(files_dir, name))
    try:
        _check_executable(candidate)
    except PermissionError:
        raise StartError(f"exec: {quote(candidate)}: permission denied") from None
    except OSError as error:
        raise StartError(f"exec: {quote(candidate)}: stat {candidate}: "
                         f"{go_error_text(error)}") from None
    return candidate


def _unread_bytes(stream: trio.abc.ReceiveStream) -> int:
    """What a pipe holds now (FIONREAD); 0 if that cannot be known."""
    if isinstance(stream, trio.lowlevel.FdStream):
        with contextlib.suppress(OSError):
            held = array.array("i", [0])
            fcntl.ioctl(stream.fileno(), termios.FIONREAD, held)
            return held[0]
    return 0


def go_exit_code(returncode: int) -> int:
    """exec.ExitError.ExitCode(): -1 when a signal ended the program."""
    return returncode if returncode >= 0 else -1


class LineSplitter:
    """bufio.Scanner with ScanLines, but a long line is dropped and counted, not fatal."""

    def __init__(self, line_max: int = LINE_MAX) -> None:
        self.too_long = 0
        self._line_max = line_max
        self._partial = b""
        self._skipping = False  # inside a line already counted as too long

    def feed(self, data: bytes | bytearray) -> bytes:
        """The lines data completes, each ending in its newline, as one block."""
        pieces = bytes(data).split(b"\n")
        if self._skipping:
            if len(pieces) == 1:
                return b""  # still inside the long line
            self._skipping = False
            del pieces[0]  # its end
        elif self._partial:
            pieces[0] = self._partial + pieces[0]
        self._partial = pieces.pop()
        if len(self._partial) >= self._line_max:
            self.too_long += 1
            self._skipping = True
            self._partial = b""
        return self._block(pieces)

    def finish(self) -> bytes:
        """The last line, if the stream ended without its newline."""
        last, self._partial = self._partial, b""
        return self._block([last] if last else [])

    def _block(self, lines: list[bytes]) -> bytes:
        if not lines:
            return b""
        if max(map(len, lines)) >= self._line_max:
            kept = [line for line in lines if len(line) < self._line_max]
            self.too_long += len(lines) - len(kept)
            if not kept:
                return b""
            lines = kept
        block = b"\n".join(lines) + b"\n"
        # ScanLines drops one carriage return before each newline
        return block.replace(b"\r\n", b"\n") if b"\r" in block else block


class _Sink(Protocol):
    async def write(self, data: bytes | bytearray) -> None: ...

    async def finish(self) -> None: ...

    def detach(self) -> None: ...

    def release(self) -> None: ...

    def notes(self) -> list[str]: ...


class _PipeSink:
    """A stream's lines to a pipe, through the agent's writer of it."""

    def __init__(self, name: str, pipe: str, plumber: LocalPlumber, sender: PipeSender) -> None:
        self._name, self._pipe = name, pipe
        self._plumber, self._sender = plumber, sender
        self._lines = LineSplitter()
        self._released = False
        plumber.open_writer(pipe)

    async def write(self, data: bytes | bytearray) -> None:
        if block := self._lines.feed(data):
            await self._sender.send_pipe_lines(self._pipe, block)

    async def finish(self) -> None:
        if block := self._lines.finish():
            await self._sender.send_pipe_lines(self._pipe, block)
        self.release()

    def detach(self) -> None:
        pass  # its lines still go to the pipe, whoever writes them now

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._plumber.close_writer(self._pipe)

    def notes(self) -> list[str]:
        if not self._lines.too_long:
            return []
        return [f"minishell-agent: {self._lines.too_long} lines of {self._name} of "
                f"{LINE_MAX} bytes or more dropped"]


class _KeptSink:
    """A stream's bytes kept for the response."""

    def __init__(self, name: str, kept_max: int = KEPT_BYTES_MAX) -> None:
        self._name = name
        self._kept = bytearray()
        self._kept_max = kept_max
        self._over = 0
        self._detached = False

    async def write(self, data: bytes | bytearray) -> None:
        if self._detached:
            return  # the response has gone
        room = self._kept_max - len(self._kept)
        self._kept += data[:room]
        self._over += max(0, len(data) - room)

    async def finish(self) -> None:
        pass

    def detach(self) -> None:
        self._detached = True

    def release(self) -> None:
        pass

    def notes(self) -> list[str]:
        found = []
        if self._over:
            found.append(f"minishell-agent: {self._name} kept to its first {self._kept_max} "
                         f"bytes, {self._over} more dropped")
        if self._detached:
            found.append(f"minishell-agent: {self._name} was still open after the program "
                         "exited (a process it started holds it): the rest is not in this "
                         "response")
        return found

    def value(self) -> bytes:
        return bytes(self._kept)


@dataclass(slots=True)
class Outcome:
    exit_code: int
    stdout: bytes = b""  # kept output: empty when the stream went to a pipe
    stderr: bytes = b""
    notes: list[str] = field(default_factory=list)


class _Pump:
    """One output stream of a program, read to its sink until EOF.

    `settled` is set at EOF, or when the program has exited and the stream is still
    open past the program's own output (see the module's docstring): its end can be
    reported then; the pump goes on until EOF.
    """

    def __init__(self, stream: trio.abc.ReceiveStream, sink: _Sink) -> None:
        self.stream, self.sink = stream, sink
        self.settled = trio.Event()
        self.at_eof = False
        self._exited = False
        # What the pipe held when the pump first looked after the exit: the program's own
        # last output. Measured by the pump itself, between reads, so that no read is
        # counted on the wrong side of it.
        self._tail_left: int | None = None
        self._detached = False
        self._receiving: trio.CancelScope | None = None

    def program_exited(self) -> None:
        self._exited = True
        if self._receiving is not None:
            self._receiving.cancel()  # a read in progress ends unharmed; the pump measures

    async def run(self, argv: list[str]) -> None:
        try:
            while True:
                if self._exited and self._tail_left is None:
                    self._tail_left = _unread_bytes(self.stream)
                past_tail = (self._tail_left is not None and self._tail_left <= 0
                             and not self._detached)
                with trio.CancelScope() as receiving:
                    if past_tail:
                        receiving.deadline = trio.current_time() + TAIL_GRACE
                    self._receiving = receiving
                    try:
                        data = await self.stream.receive_some(READ_SIZE)
                    finally:
                        self._receiving = None
                if receiving.cancelled_caught:
                    if past_tail:
                        self._detach(argv, "silent")
                    continue
                if not data:
                    self.at_eof = True
                    break
                if self._tail_left is not None:
                    self._tail_left -= len(data)
                await self.sink.write(data)
                if past_tail:
                    self._detach(argv, "still written to")
            await self.sink.finish()
        finally:
            self.sink.release()
            self.settled.set()
            await trio.aclose_forcefully(self.stream)

    def _detach(self, argv: list[str], why: str) -> None:
        self._detached = True
        self.sink.detach()
        self.settled.set()
        logger.info("%s: its output is still open after its exit (%s): not waited for",
                    argv, why)


class Program:
    """One cc command's program. run() starts it (nursery.start) and lasts until its
    stdout and stderr end; `finished` is set once its end can be reported, with
    `outcome` then filled."""

    def __init__(self, path: str, argv: list[str], *, stdin_pipe: str = "",
                 stdout_pipe: str = "", stderr_pipe: str = "",
                 plumber: LocalPlumber, sender: PipeSender) -> None:
        self.path, self.argv = path, argv
        self.pid = 0
        self.finished = trio.Event()
        self.outcome: Outcome | None = None
        self._stdin_pipe = stdin_pipe
        self._stdout_pipe, self._stderr_pipe = stdout_pipe, stderr_pipe
        self._plumber, self._sender = plumber, sender
        self._process: trio.Process | None = None
        self._reaped = False
        self._pumps: list[_Pump] = []

    def kill(self) -> None:
        """`cc process kill`: SIGKILL to the program's group (nothing once it is reaped)."""
        if self._process is not None and not self._reaped:
            self._signal(signal.SIGKILL)

    def _signal(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """StartError (from nursery.start) if it cannot start; then runs to its end."""
        reader: LocalReader | None = None
        sinks: list[_Sink] = []
        pidfd = -1
        try:
            if self._stdin_pipe:
                reader = self._plumber.open_reader(self._stdin_pipe)
            stdout = self._sink("stdout", self._stdout_pipe)
            sinks.append(stdout)
            stderr = self._sink("stderr", self._stderr_pipe)
            sinks.append(stderr)
            try:
                process = await trio.lowlevel.open_process(
                    self.argv, executable=self.path,
                    stdin=subprocess.PIPE if reader is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
            except OSError as error:
                raise StartError(f"fork/exec {self.path}: {go_error_text(error)}") from None
            except ValueError:  # a NUL in an argument: Go's exec refuses it too
                raise StartError(f"fork/exec {self.path}: invalid argument") from None
            self._process, self.pid = process, process.pid
            with contextlib.suppress(OSError):  # no pidfd (old kernel): reap to see the exit
                pidfd = os.pidfd_open(process.pid)
            logger.info("executing: %s (pid %d)", self.argv, self.pid)
            task_status.started()
            await self._supervise(process, pidfd, reader, stdout, stderr)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._stop(pidfd)
            raise
        finally:
            if reader is not None:
                self._plumber.close_reader(reader)
            for sink in sinks:
                sink.release()
            if pidfd >= 0:
                os.close(pidfd)
            self.finished.set()

    def _sink(self, name: str, pipe: str) -> _Sink:
        if pipe:
            return _PipeSink(name, pipe, self._plumber, self._sender)
        return _KeptSink(name)

    async def _supervise(self, process: trio.Process, pidfd: int, reader: LocalReader | None,
                         stdout: _Sink, stderr: _Sink) -> None:
        assert process.stdout is not None and process.stderr is not None
        self._pumps = [_Pump(process.stdout, stdout), _Pump(process.stderr, stderr)]
        async with trio.open_nursery() as nursery:
            feeding = trio.CancelScope()
            if reader is not None:
                assert process.stdin is not None
                nursery.start_soon(self._feed, feeding, process.stdin, reader)
            for pump in self._pumps:
                nursery.start_soon(pump.run, self.argv)
            if pidfd >= 0:
                await trio.lowlevel.wait_readable(pidfd)  # exited, not yet reaped
            returncode = await process.wait()
            self._reaped = True
            feeding.cancel()  # and with it the reader goes, at once
            for pump in self._pumps:
                pump.program_exited()
            for pump in self._pumps:
                await pump.settled.wait()
            notes = [] if reader is None or not reader.dropped_messages else [reader.drop_note()]
            notes += stdout.notes() + stderr.notes()
            kept = [sink.value() if isinstance(sink, _KeptSink) else b""
                    for sink in (stdout, stderr)]
            self.outcome = Outcome(go_exit_code(returncode), kept[0], kept[1], notes)
            logger.info("command exited: %s (pid %d, status %d)", self.argv, self.pid,
                        returncode)
            self.finished.set()

    async def _feed(self, scope: trio.CancelScope, stdin: trio.abc.SendStream,
                    reader: LocalReader) -> None:
        with scope:
            try:
                while (data := await reader.receive()) is not None:
                    await stdin.send_all(data if data.endswith(b"\n") else data + b"\n")
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the program closed its stdin: it wants nothing more
            finally:
                if self._reaped and not reader.taken:
                    self._plumber.orphan(reader)
                else:
                    self._plumber.close_reader(reader)
                await trio.aclose_forcefully(stdin)

    async def _stop(self, pidfd: int) -> None:
        """Shutdown (or a failure): the group stopped and the program reaped."""
        process = self._process
        if process is None:
            return
        if self._reaped:
            if not all(pump.at_eof for pump in self._pumps):
                # what it started still holds its output (so its group still exists and
                # its id cannot have been reused): it goes too
                self._signal(signal.SIGKILL)
            return
        self._signal(signal.SIGTERM)
        if pidfd >= 0:
            with trio.move_on_after(STOP_GRACE):
                await trio.lowlevel.wait_readable(pidfd)
            self._signal(signal.SIGKILL)  # exited or not, it is not reaped: the group is ours
        else:
            with trio.move_on_after(STOP_GRACE):
                await process.wait()
            if process.returncode is None:
                self._signal(signal.SIGKILL)
        await process.wait()
        self._reaped = True
