"""Helpers shared by the plumber tests."""

from __future__ import annotations

import os
from pathlib import Path

from minishell.plumber import PipeInfo, Plumber


def info(plumber: Plumber, name: str) -> PipeInfo:
    return next(pipe for pipe in plumber.pipes() if pipe.name == name)


def children() -> set[int]:
    """Our child processes, zombies included (a child not reaped is still listed)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                found.add(int(entry.name))
    return found
