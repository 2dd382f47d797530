"""Compile minishell.c, the `minishell` command (stdlib only: the tests use it too)."""

from __future__ import annotations

import os
import runpy
import shlex
import subprocess
import sysconfig
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "minishell.c"
PROTOCOL = Path(__file__).resolve().parent.parent / "protocol" / "control.py"
HEADER = "minishell_protocol.h"
# What minishell.c takes from the protocol module, as PROTOCOL_<name>.
SHARED = ("SOCKET_NAME", "DEFAULT_BASE", "DEFAULT_NAMESPACE", "LINE_MAX", "LINE_TOO_LONG",
          "RAW_ACK", "ACK_TIMEOUT", "NOT_RAW", "DATA_DEPTH_MAX", "EXCERPT_CHARS",
          "STDIN_ERROR_ENV")


def protocol_header() -> str:
    """The C header of the constants that minishell.c shares with the protocol module."""
    values = runpy.run_path(str(PROTOCOL))  # it imports nothing of the package
    lines = [f"/* Made from {PROTOCOL.name} by {Path(__file__).name} at build time. */"]
    for name in SHARED:
        value = values[name]
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, str):
            text = '"' + "".join(
                char if " " <= char <= "~" and char not in '"\\' else f"\\{ord(char):03o}"
                for char in value) + '"'
        elif isinstance(value, int | float):
            text = repr(value)
        else:
            raise TypeError(f"{name}: no C for a {type(value).__name__}")
        lines.append(f"#define PROTOCOL_{name} {text}")
    return "\n".join(lines) + "\n"


def compile_launcher(output: Path, build_temp: Path) -> str | None:
    """Compile minishell.c into `output`: None, or why it could not be.

    The header it includes is written into the folder `build_temp`. The
    compiler is $CC, else the one Python was built with, else cc, with $CFLAGS
    and $LDFLAGS, as for an extension module.
    """
    build_temp.mkdir(parents=True, exist_ok=True)
    (build_temp / HEADER).write_text(protocol_header())
    compiler = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    command = [*compiler, "-O2", *shlex.split(os.environ.get("CFLAGS", "")), "-pthread",
               "-I", str(build_temp), "-o", str(output), str(SOURCE),
               *shlex.split(os.environ.get("LDFLAGS", ""))]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        return f"{command[0]}: {error.strerror}"
    if done.returncode != 0:
        return done.stderr.strip() or f"{shlex.join(command)} exited {done.returncode}"
    return None
