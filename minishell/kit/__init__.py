"""minimega's plumbing helper programs, shipped with minishell: normal, count, delay, execf.

They are stand-alone Python scripts in bin/, each one a copy of the Go program of the same name
in minimega's cmd/plumbing, run as processes by pipelines and vias through $PATH. They import
only the standard library and the bin/_go*.py modules beside them, never minishell. This module
only prepares and locates them, so it stays as light to import as the programs are to start.
"""

from __future__ import annotations

import contextlib
import os

PROGRAMS = ("count", "delay", "execf", "normal")


def bin_dir() -> str:
    """The absolute folder holding the programs, ready to run.

    An installer may drop the execute bits; they are put back. A via starts a program for every
    message, and each start imports the bin/_go*.py helpers: where bytecode is never written
    (PYTHONDONTWRITEBYTECODE, as in CI) compiling them would cost every start about 30 ms, so
    missing or stale bytecode is written here once. A read-only install that is executable and
    compiled already is left alone; one that is not keeps running, only slower.
    """
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin")
    for program in PROGRAMS:
        path = os.path.join(folder, program)
        if not os.access(path, os.X_OK):
            mode = os.stat(path).st_mode
            # Execute wherever reading is allowed, as `chmod +x` and pip's script installer do.
            os.chmod(path, mode | (mode & 0o444) >> 2)
    _compile_helpers(folder)
    return folder


def _compile_helpers(folder: str) -> None:
    import importlib.util

    stale = []
    for name in os.listdir(folder):
        if name.startswith("_go") and name.endswith(".py"):
            source = os.path.join(folder, name)
            try:
                fresh = os.stat(importlib.util.cache_from_source(source)).st_mtime_ns
            except OSError:
                fresh = -1
            if fresh < os.stat(source).st_mtime_ns:
                stale.append(source)
    if stale:
        import py_compile

        for source in stale:
            # read-only: the programs compile the helpers in memory at each start
            with contextlib.suppress(OSError):
                py_compile.compile(source, doraise=True)
