"""Real ron byte streams between minimega 2.9 and three miniccc clients
(../shared/cc/captures, one JSON line per chunk read: its direction and hex bytes).

shared/ sits beside the repository (in CI too); tests that need it skip without it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "cc" / "captures"
needs_captures = pytest.mark.skipif(not CAPTURES.is_dir(),
                                    reason="../shared/cc/captures is absent")


@functools.cache
def chunks(vm: str, direction: str) -> tuple[bytes, ...]:
    """What one side ("host" or "guest") of `vm`'s capture sent, in the chunks read."""
    records = [json.loads(line) for line in (CAPTURES / f"{vm}.jsonl").read_text().splitlines()]
    return tuple(bytes.fromhex(record["hex"]) for record in records
                 if record["dir"] == direction)


def stream(vm: str, direction: str) -> bytes:
    """One side of a capture, its chunks joined: RON, then the gob stream."""
    return b"".join(chunks(vm, direction))
