"""cc's responses, where minimega keeps them: `<files>/miniccc_responses/<id>/<uuid>/`.

Each command's output from each agent is a folder of files (`stdout`,
`stderr`, `exitcode`, and files fetched with `cc recv` by their path), so
users who read them find them where minimega puts them, and they outlive the
instance as minimega's do. Everything here blocks: callers run it in a worker
thread (`Responses.run`), never on the event loop.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from typing import Final, TypeVar

import trio

from minishell.errors import CommandError
from minishell.protocol import ron

RESPONSES_FOLDER: Final = "miniccc_responses"
# How much `cc responses` shows at once: responses are files of any size.
SHOWN_MAX: Final = 16 * 1024 * 1024

Result = TypeVar("Result")


def _reason(error: OSError) -> str:
    return (error.strerror or str(error)).lower()


class Responses:
    """A namespace's responses folder."""

    def __init__(self, root: str) -> None:
        self.root = root

    async def run(self, work: Callable[[], Result]) -> Result:
        """Do blocking work on the responses in a worker thread."""
        return await trio.to_thread.run_sync(work)

    def folder(self, command_id: int | None = None) -> str:
        return self.root if command_id is None else os.path.join(self.root, str(command_id))

    # -- what agents send ------------------------------------------------------------------------

    def record(self, uuid: str, response: ron.Response) -> None:
        """One command's output from one agent (minimega's responseHandler)."""
        folder = os.path.join(self.folder(response.id), uuid)
        os.makedirs(folder, mode=0o770, exist_ok=True)
        if response.record_exit_code:
            _write(os.path.join(folder, "exitcode"), str(response.exit_code).encode())
        if response.stdout:
            _write(os.path.join(folder, "stdout"), response.stdout.encode("utf-8",
                                                                             "surrogateescape"))
        if response.stderr:
            _write(os.path.join(folder, "stderr"), response.stderr.encode("utf-8",
                                                                             "surrogateescape"))

    def receive(self, uuid: str, part: ron.File) -> None:
        """A part of a file an agent sends back (`cc recv`): written to
        `<name>.partial`, renamed once the last part is in, as minimega does.
        The name is the agent's path of the file, kept below the agent's folder."""
        relative = os.path.normpath(part.name).lstrip("/")
        if relative.startswith(".."):
            raise CommandError(f"file name leaves the responses folder: {part.name}")
        final = os.path.join(self.folder(part.id), uuid, relative)
        path = final if part.eof and part.offset == 0 else final + ".partial"
        os.makedirs(os.path.dirname(path), mode=0o770, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, part.perm & 0o777
                             or 0o660)
        try:
            os.pwrite(descriptor, part.data, part.offset)
        finally:
            os.close(descriptor)
        if part.eof and part.offset > 0:
            os.replace(path, final)

    # -- what users ask ----------------------------------------------------------------------------

    def show(self, command_id: int | None, raw: bool) -> str:
        """`cc responses`: every response file in lexical order (1, 10, 2; stderr
        before stdout), each as `<id>/<uuid>/<file>:` then its content, exit codes
        hidden; `raw` leaves the headers out. Go's filepath.Walk, which minimega uses."""
        base = self.folder(command_id)
        if not os.path.isdir(base):
            if command_id is None:
                return ""
            raise CommandError(f"no responses for {command_id}")
        parts: list[str] = []
        shown = 0
        for path in _walk(base):
            if path.endswith("exitcode"):
                continue
            with open(path, "rb") as file:
                data = file.read(SHOWN_MAX - shown + 1)
            shown += len(data)
            if shown > SHOWN_MAX:
                raise CommandError(f"responses longer than {SHOWN_MAX // 1024 // 1024} MiB: "
                                   f"read them in {base}")
            if not raw:
                parts.append(os.path.relpath(path, self.root) + ":\n")
            parts.append(data.decode("utf-8", "replace") + "\n")
        return "".join(parts)

    def exit_code(self, command_id: int, uuid: str) -> int:
        path = os.path.join(self.folder(command_id), uuid, "exitcode")
        try:
            with open(path, "rb") as file:
                text = file.read(64).decode("ascii", "replace").strip()
        except OSError as error:
            raise CommandError(f"unable to get exit code: stat {path}: {_reason(error)}") from None
        try:
            return int(text)
        except ValueError:
            raise CommandError(f"unable to get exit code: strconv.Atoi: parsing "
                               f'"{text}": invalid syntax') from None

    def delete(self, command_id: int | None = None) -> None:
        shutil.rmtree(self.folder(command_id), ignore_errors=True)


def _write(path: str, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o660)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view):]
    finally:
        os.close(descriptor)


def _walk(top: str) -> list[str]:
    """The regular files below `top`, depth first, each folder's names in byte order
    (Go's filepath.Walk), without recursion: response trees may go deep."""
    files: list[str] = []
    pending = [top]  # popped in name order: a folder's contents before its next sibling
    while pending:
        path = pending.pop()
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode):
            try:
                names = sorted(os.listdir(path), key=os.fsencode)
            except OSError:
                continue
            pending.extend(os.path.join(path, name) for name in reversed(names))
        elif stat.S_ISREG(mode):
            files.append(path)
    return files
