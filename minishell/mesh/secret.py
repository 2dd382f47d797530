"""The user's mesh secret: what a route between two of the user's nodes shows.

A node on loopback is reachable by every user of the machine, so its
nats-server asks routes for a password: the one line of the user's mesh
secret file, the same for every node the user runs (and so every node they
dial, and every node NATS gossips them to). The file is made on first use,
0600 in a 0700 folder, beside the prompt's history unless -mesh-secret says
where; another user cannot read it, so cannot join.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import tempfile

from minishell.osfiles import state_folder

ROUTE_USER = "mesh"
FILE_NAME = "mesh-secret"
_VALID = re.compile(r"[A-Za-z0-9_-]{16,}")  # URL-safe: it goes into route URLs as it is


class SecretError(Exception):
    """The secret file cannot be made or read; the text says why, in one line."""


def secret_path(explicit: str | None) -> str:
    """-mesh-secret FILE, else $XDG_STATE_HOME/minishell/mesh-secret."""
    return explicit or os.path.join(state_folder(), FILE_NAME)


def load_secret(path: str) -> str:
    """The secret in `path`, made there first if there is none. Two nodes starting at
    once make one: the file appears whole (a link of a finished file) or not at all."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        raise SecretError(f"mesh secret {path}: {error.strerror or error}") from None
    try:
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, mode=0o700, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".mesh-secret.")
        try:
            with os.fdopen(descriptor, "w", encoding="ascii") as file:
                file.write(secrets.token_urlsafe(32) + "\n")
            with contextlib.suppress(FileExistsError):  # another node made it first
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
        return _read(path)
    except OSError as error:
        raise SecretError(f"cannot make the mesh secret {path}: "
                          f"{error.strerror or error}") from None


def _read(path: str) -> str:
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SecretError(f"mesh secret {path}: not a file")
        if info.st_uid != os.getuid():
            raise SecretError(f"mesh secret {path}: it belongs to another user")
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise SecretError(f"mesh secret {path}: others may read it (chmod 600 {path})")
        text = file.read(4096).decode("ascii", "replace").strip()
    if not _VALID.fullmatch(text):
        raise SecretError(f"mesh secret {path}: not a mesh secret (one line of 16 or more "
                          "letters, digits, - or _)")
    return text
