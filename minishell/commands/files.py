"""`file list|delete|get|status` on `<base>/files` (cmd/minimega/iomeshage.go,
internal/iomeshage/local.go).

Paths are inside the files folder, as in minimega: `/` is the folder itself,
`/sub` and `sub` its `sub`, and names may be globs (`*.qcow2`). Where 2.9
quietly clamps a path that climbs out (`../x` is its `/x`), minishell refuses
it, and a path that leaves the folder through a symbolic link too. Every walk
of the disk runs in a worker thread, and a listing stops at LIST_MAX entries
(a glob at MATCHES_MAX paths) with an error rather than fill the screen and
memory.

There is one node here, so `file get` has nothing to fetch and `file status`
no transfer to show; `file stream` is left to the commands minishell does not
implement.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import stat
import time
from collections.abc import Iterator
from typing import Final

import trio

from minishell.commands.registry import Command, Context, Handler
from minishell.errors import CommandError
from minishell.gostr import quote
from minishell.osfiles import path_error
from minishell.reply import Response

LIST_MAX: Final = 10_000
MATCHES_MAX: Final = 100_000  # paths one glob may name
LIST_HEADER: Final = ("dir", "name", "size", "modified")
STATUS_HEADER: Final = ("filename", "tempdir", "completed", "queued")


class FilesFolder:
    """The files folder, and paths given by the user inside it."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def relative(self, path: str) -> str:
        """The path from the folder's top (minimega's Clean("/" + path) without its
        leading `/`), or CommandError if it climbs out of the folder."""
        if "\0" in path:
            raise CommandError(f"file: {quote(path)}: invalid path")
        parts: list[str] = []
        for part in path.split("/"):
            if part == "..":
                if not parts:
                    raise CommandError(f"file: {path}: outside the files folder")
                parts.pop()
            elif part not in ("", "."):
                parts.append(part)
        return "/".join(parts)

    def matches(self, path: str) -> Iterator[str]:
        """The absolute paths a (glob) path names, as Go's filepath.Glob finds them:
        in name order, dot files included, nothing for a name that does not exist."""
        relative = self.relative(path)
        if not relative:
            if os.path.isdir(self.root):
                yield self.root
            return
        found = list(itertools.islice(
            glob.iglob(relative, root_dir=self.root, include_hidden=True), MATCHES_MAX + 1))
        if len(found) > MATCHES_MAX:
            raise CommandError(f"file: {path}: more than {MATCHES_MAX} matches")
        for match in sorted(found, key=lambda name: name.split("/")):
            yield os.path.join(self.root, match)

    def check_inside(self, path: str, *, follow: bool) -> None:
        """Refuse a path that a symbolic link takes out of the folder: the path
        itself when `follow`, else only the folders that lead to it."""
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(path if follow else os.path.dirname(path))
        if real != real_root and not real.startswith(real_root + os.sep):
            raise CommandError(f"file: {self.name(path)}: outside the files folder")

    def name(self, path: str) -> str:
        """How a listing names a path: from the folder's top (filepath.Rel)."""
        return os.path.relpath(path, self.root)


def _row(folder: FilesFolder, path: str, info: os.stat_result) -> list[str]:
    return ["<dir>" if stat.S_ISDIR(info.st_mode) else "", folder.name(path),
            str(info.st_size), _rfc3339_utc(info.st_mtime)]


def _rfc3339_utc(seconds: float) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
    except (OverflowError, OSError, ValueError):  # a time no calendar reaches
        return ""


def _too_many() -> CommandError:
    return CommandError(f"file list: more than {LIST_MAX} entries; list a folder below it")


def _entries(folder: str) -> list[os.DirEntry[str]]:
    """A folder's entries in name order; a folder of more than LIST_MAX is not read whole."""
    with os.scandir(folder) as scan:
        entries = list(itertools.islice(scan, LIST_MAX + 1))
    if len(entries) > LIST_MAX:
        raise _too_many()
    return sorted(entries, key=lambda entry: entry.name)


def _walk(folder: str) -> Iterator[tuple[str, os.stat_result]]:
    """filepath.Walk below `folder`, its files only, in name order; links are not
    followed. A stack, not recursion: a tree may be deeper than Python recurses."""
    pending = [iter(_entries(folder))]
    while pending:
        entry = next(pending[-1], None)
        if entry is None:
            pending.pop()
        elif entry.is_dir(follow_symlinks=False):
            pending.append(iter(_entries(entry.path)))
        else:
            yield entry.path, entry.stat(follow_symlinks=False)


def _contents(folder: str) -> Iterator[tuple[str, os.stat_result]]:
    """ioutil.ReadDir: the folder's entries in name order, links not followed."""
    for entry in _entries(folder):
        yield entry.path, entry.stat(follow_symlinks=False)


def list_rows(folder: FilesFolder, path: str, recursive: bool) -> list[list[str]]:
    """The rows of `file list` (blocking: call it in a thread). A file is listed
    itself; a folder by its contents, or every file below it when `recursive`."""
    rows: list[list[str]] = []
    for match in folder.matches(path):
        folder.check_inside(match, follow=True)
        try:
            info = os.stat(match)
        except OSError as error:
            raise path_error("stat", match, error) from None
        if not stat.S_ISDIR(info.st_mode):
            entries: Iterator[tuple[str, os.stat_result]] = iter([(match, info)])
        else:
            entries = _walk(match) if recursive else _contents(match)
        try:
            for entry_path, entry_info in entries:
                if len(rows) == LIST_MAX:
                    raise _too_many()
                rows.append(_row(folder, entry_path, entry_info))
        except OSError as error:  # a folder that cannot be read, as ReadDir says it
            raise path_error("open", error.filename or match, error) from None
    return rows


def exists(folder: FilesFolder, path: str) -> bool:
    """Whether `file get` finds what it names (blocking: call it in a thread)."""
    for match in folder.matches(path):
        folder.check_inside(match, follow=True)
        return True
    return False


def delete(folder: FilesFolder, path: str) -> None:
    """`file delete` (blocking: call it in a thread): each match removed with all
    below it. The folder itself keeps existing: `file delete /` empties it (2.9
    also removes the folder, though its own comment says it means not to). An
    empty path, which 2.9 takes for `/`, is refused: an unset `$VAR` must not
    empty the folder."""
    if not path:
        raise CommandError("file delete: empty path (/ is the whole folder)")
    for match in list(folder.matches(path)):
        if match == folder.root:
            folder.check_inside(match, follow=True)
            for entry in os.listdir(match):
                _remove_all(os.path.join(match, entry))
        else:
            folder.check_inside(match, follow=False)
            _remove_all(match)


def _remove_all(path: str) -> None:
    """os.RemoveAll: a link or file unlinked, a folder removed with its contents.

    Folders still to empty are kept in a list rather than a recursion or open
    descriptors, so a tree of any depth goes. What vanishes meanwhile is gone,
    as RemoveAll wants it.
    """
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            os.unlink(path)
            return
        pending = [(path, False)]
        while pending:
            folder, emptied = pending.pop()
            with contextlib.suppress(FileNotFoundError):
                if emptied:
                    os.rmdir(folder)
                    continue
                pending.append((folder, True))  # removed once the folders below are
                with os.scandir(folder) as scan:
                    for entry in scan:
                        if entry.is_dir(follow_symlinks=False):
                            pending.append((entry.path, False))
                        else:
                            with contextlib.suppress(FileNotFoundError):
                                os.unlink(entry.path)
    except FileNotFoundError:
        pass
    except OSError as error:
        raise path_error("unlinkat", error.filename or path, error) from None


async def file_command(ctx: Context, command: Command) -> Response | None:
    folder = FilesFolder(ctx.session.files_dir)
    if "list" in command.bools:
        path = command.optional("path") or "/"
        rows = await trio.to_thread.run_sync(list_rows, folder, path, "recursive" in command.bools)
        return ctx.table(list(LIST_HEADER), rows)
    if "delete" in command.bools:
        await trio.to_thread.run_sync(delete, folder, command.string("file"))
        return None
    if "get" in command.bools:
        name = command.string("file")
        if not await trio.to_thread.run_sync(exists, folder, name):
            raise CommandError(f"get {name}: file not found")
        return None
    return ctx.table(list(STATUS_HEADER), [])


HANDLERS = (
    Handler(
        patterns=("file <list,>", "file <list,> <path> [recursive,]", "file <get,> <file>",
                  "file <delete,> <file>", "file <status,>"),
        short="work with files served by minimega",
        long=(
            "file allows you to manage the files in the folder <base>/files (-base).\n"
            "\n"
            "To list files, issue the list command with a directory relative to that\n"
            "folder:\n"
            "\n"
            "\tfile list /foo\n"
            "\n"
            'Issuing "file list /" (or "file list") lists the contents of the folder;\n'
            '"file list / recursive" lists every file below it. A listing shows at most\n'
            f"{LIST_MAX} entries: past that it is an error, and a folder below should be\n"
            "listed instead.\n"
            "\n"
            "Files can be deleted with the delete command:\n"
            "\n"
            "\tfile delete /foo\n"
            "\n"
            'If a directory is given, the directory will be recursively deleted; "file\n'
            'delete /" empties the folder.\n'
            "\n"
            "minimega transfers files between the nodes of a mesh with get, and status\n"
            "shows the transfers under way. minishell is one node: get succeeds for a file\n"
            "that is there and fails for one that is not, and status shows nothing.\n"
            "\n"
            "You can also supply globs (wildcards) with the * operator. For example:\n"
            "\n"
            "\tfile get *.qcow2\n"
            "\tfile delete *.qcow2\n"
            "\n"
            "Paths that lead out of the folder (.., or a symbolic link to elsewhere) are\n"
            "refused."
        ),
        call=file_command,
    ),
)
