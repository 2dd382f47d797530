"""Who schedules a pipe: one node that every node agrees on, without an election.

Rendezvous (highest random weight) hashing over the live nodes: each node
scores (pipe, node) with the same hash and the highest score owns the pipe.
Every node that sees the same live nodes picks the same owner; when the owner
dies, the pipe moves to the next highest score, and only the pipes it owned
move (a node joining takes over only the pipes it now scores highest on).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def score(pipe: str, node: str) -> bytes:
    return hashlib.blake2b(f"{pipe}\0{node}".encode("utf-8", "surrogateescape"),
                           digest_size=8).digest()


def owner_of(pipe: str, live: Iterable[str]) -> str:
    """The live node that schedules `pipe` (`live` must not be empty)."""
    return max(live, key=lambda node: (score(pipe, node), node))
