"""What a Go main package gets from its runtime, for the kit's Python programs.

Go writes stdout and stderr unbuffered, one write per print call. A write to a closed stdout or
stderr kills the program with SIGPIPE, and SIGINT and SIGTERM kill it outright. A Go program
reads stdin through bufio.Scanner, which splits lines, drops a carriage return before the
newline and gives up on a line of 64 KiB or more. These helpers give a Python script the same
observable behaviour. They import nothing that the interpreter has not loaded already, plus os.
"""

from __future__ import annotations

# Already loaded by the interpreter, where the public signal module would add enum and
# functools, about 8 ms of start-up. It has no type stubs.
import _signal  # type: ignore[import-not-found]
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import NoReturn

STDIN = 0
STDOUT = 1
STDERR = 2
MAX_TOKEN_SIZE = 64 * 1024  # bufio.MaxScanTokenSize


def error_text(error: OSError) -> str:
    """syscall.Errno's text: Go's table is the C library's messages, first letter lowercased."""
    message = os.strerror(error.errno) if error.errno else str(error)
    return message[:1].lower() + message[1:]


def write(fd: int, data: bytes) -> None:
    """os.File.Write: unbuffered, continued if the kernel takes only part, waited out on a
    non-blocking descriptor. Other errors are dropped: Go's print functions return them and
    minimega's programs ignore them. A closed pipe kills the program with SIGPIPE, or where
    SIGPIPE is blocked raises BrokenPipeError, of which run() dies the same way."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            import select  # only ever needed here

            select.select((), (fd,), ())
        except BrokenPipeError:
            raise
        except OSError:
            return


def print_line(fd: int, data: bytes) -> None:
    """fmt.Fprintln(fd, string(data))."""
    write(fd, data + b"\n")


class LineScanner:
    """bufio.NewScanner(os.Stdin) with ScanLines. After the lines run out, `error` holds
    what scanner.Err() would print, or None at a clean end of input."""

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: str | None = None

    def lines(self) -> Iterator[bytes]:
        try:
            with open(STDIN, "rb", closefd=False) as stdin:
                while chunk := stdin.readline(MAX_TOKEN_SIZE):
                    if chunk.endswith(b"\n"):
                        chunk = chunk[:-1]
                    elif len(chunk) == MAX_TOKEN_SIZE:
                        # The scanner's 64 KiB buffer filled up without a newline in it.
                        self.error = "bufio.Scanner: token too long"
                        return
                    yield chunk[:-1] if chunk.endswith(b"\r") else chunk
        except OSError as error:
            self.error = "read /dev/stdin: " + error_text(error)


def _die_of_sigpipe() -> NoReturn:
    """runtime.sigpipe: even with SIGPIPE blocked or ignored, Go dies of it on fd 1 or 2."""
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, {_signal.SIGPIPE})
    _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
    _signal.raise_signal(_signal.SIGPIPE)
    os._exit(2)  # what Go's dieFromSignal falls back to if the signal did not kill us


def run(main: Callable[[list[bytes]], int]) -> NoReturn:
    """Run main(os.Args) and exit with its status, with Go's signal behaviour."""
    _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
    # Python turns SIGINT into KeyboardInterrupt and a traceback; Go just dies of it.
    # A SIGINT ignored by the parent stays ignored, as in Go.
    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
    try:
        status = main([os.fsencode(argument) for argument in sys.argv])
    except BrokenPipeError:
        _die_of_sigpipe()
    raise SystemExit(status)
