"""os/exec's exec.Command(name, args...).CombinedOutput() as Go 1.19 runs it on Linux.

The child gets /dev/null on stdin and one pipe for both stdout and stderr; the environment and
working directory are inherited. A bare name is looked up in $PATH the way LookPath does
(by mode bits, refusing a match relative to the current directory), a name with a slash is
run as given. Failures carry Go's error text.
"""

from __future__ import annotations

import os

from _goruntime import error_text
from _gostrconv import quote

# syscall.Signal.String() on linux/amd64.
# fmt: off
_SIGNAL_NAMES = (
    "", "hangup", "interrupt", "quit", "illegal instruction", "trace/breakpoint trap",
    "aborted", "bus error", "floating point exception", "killed", "user defined signal 1",
    "segmentation fault", "user defined signal 2", "broken pipe", "alarm clock", "terminated",
    "stack fault", "child exited", "continued", "stopped (signal)", "stopped",
    "stopped (tty input)", "stopped (tty output)", "urgent I/O condition",
    "CPU time limit exceeded", "file size limit exceeded", "virtual timer expired",
    "profiling timer expired", "window changed", "I/O possible", "power failure",
    "bad system call",
)
# fmt: on


class ExecError(Exception):
    """Why the program did not run or did not succeed, in Go's words, with the output it
    wrote before failing."""

    def __init__(self, text: bytes, output: bytes = b"") -> None:
        super().__init__(text, output)
        self.text = text
        self.output = output


def _base(path: bytes) -> bytes:
    """filepath.Base: the last element, trailing slashes ignored; "." for an empty path."""
    if not path:
        return b"."
    trimmed = path.rstrip(b"/")
    return trimmed.rsplit(b"/", 1)[-1] if trimmed else b"/"


def _clean_join(directory: bytes, name: bytes) -> bytes:
    """filepath.Join, which also cleans the result: "./x" becomes "x", "a//b/" becomes "a/b"."""
    joined = os.path.normpath(directory + b"/" + name)
    return joined[1:] if joined.startswith(b"//") else joined


def _find_executable(path: bytes) -> str | None:
    """LookPath's findExecutable (Go 1.19): why path is not an executable file, or None."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return f"stat {os.fsdecode(path)}: {error_text(error)}"
    except ValueError:  # a NUL byte, which Go passes on and the kernel refuses
        return f"stat {os.fsdecode(path)}: invalid argument"
    is_directory = mode & 0o170000 == 0o040000
    return None if not is_directory and mode & 0o111 else "permission denied"


def look_path(name: bytes) -> bytes:
    """exec.LookPath."""
    if b"/" in name:
        reason = _find_executable(name)
        if reason is not None:
            raise ExecError(b"exec: %s: %s" % (quote(name), os.fsencode(reason)))
        return name
    search_path = os.environb.get(b"PATH", b"")
    for directory in search_path.split(b":") if search_path else []:
        path = _clean_join(directory or b".", name)  # an empty element means "."
        if _find_executable(path) is None:
            if not path.startswith(b"/"):
                raise ExecError(
                    b"exec: %s: cannot run executable found relative to current directory"
                    % quote(name)
                )
            return path
    raise ExecError(b"exec: %s: executable file not found in $PATH" % quote(name))


def _exit_text(status: int) -> bytes | None:
    """ProcessState.String() for a failed wait status; None when the program succeeded."""
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        return None if code == 0 else b"exit status %d" % code
    number = os.WTERMSIG(status)
    name = _SIGNAL_NAMES[number] if 0 < number < len(_SIGNAL_NAMES) else f"signal {number}"
    text = f"signal: {name}".encode()
    return text + b" (core dumped)" if os.WCOREDUMP(status) else text


def combined_output(argv: list[bytes]) -> bytes:
    """The program's stdout and stderr, interleaved as written. ExecError carries what Go's
    error prints, and the output gathered before the failure."""
    name = argv[0]
    # exec.Command looks up only a bare name; anything else is run as given.
    path = look_path(name) if _base(name) == name else name
    if not path:
        raise ExecError(b"exec: no command")
    read_end, write_end = os.pipe()
    try:
        pid = os.posix_spawn(
            path,
            argv,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, write_end, 1),
                (os.POSIX_SPAWN_DUP2, write_end, 2),
            ],
        )
    except OSError as error:
        os.close(read_end)
        raise ExecError(b"fork/exec %s: %s" % (path, error_text(error).encode())) from None
    except ValueError:  # a NUL byte in an argument: Go's syscall layer says EINVAL
        os.close(read_end)
        raise ExecError(b"fork/exec %s: invalid argument" % path) from None
    finally:
        os.close(write_end)
    chunks = []
    with open(read_end, "rb", buffering=0) as output:
        while chunk := output.read(65536):
            chunks.append(chunk)
    collected = b"".join(chunks)
    failure = _exit_text(os.waitpid(pid, 0)[1])
    if failure is not None:
        raise ExecError(failure, collected)
    return collected
