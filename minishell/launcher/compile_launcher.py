"""Compile minishell.c, the `minishell` command (stdlib only: the tests use it too)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sysconfig
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "minishell.c"


def compile_launcher(output: Path) -> str | None:
    """Compile minishell.c into `output`: None, or why it could not be.

    The compiler is $CC, else the one Python was built with, else cc, with
    $CFLAGS and $LDFLAGS, as for an extension module.
    """
    compiler = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    command = [*compiler, "-O2", *shlex.split(os.environ.get("CFLAGS", "")), "-pthread",
               "-o", str(output), str(SOURCE), *shlex.split(os.environ.get("LDFLAGS", ""))]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        return f"{command[0]}: {error.strerror}"
    if done.returncode != 0:
        return done.stderr.strip() or f"{shlex.join(command)} exited {done.returncode}"
    return None
