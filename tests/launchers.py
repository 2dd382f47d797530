"""The two front ends of the `minishell` command, as the tests start them."""

from __future__ import annotations

import runpy
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

LAUNCHER = Path(__file__).resolve().parents[1] / "minishell" / "launcher"
PYTHON_FRONT_END = [sys.executable, "-c",
                    "import sys; from minishell.cli import main; sys.exit(main())"]


def _compile_launcher() -> Callable[[Path, Path], str | None]:
    # The helper the install uses; it lives beside minishell.c, outside the package.
    compile_launcher: Callable[[Path, Path], str | None] = runpy.run_path(
        str(LAUNCHER / "compile_launcher.py"))["compile_launcher"]
    return compile_launcher


def install_launcher(folder: Path, front_end: str | None = None) -> Path:
    """minishell.c compiled into folder/minishell, as the install builds it (its
    generated header in folder/include), beside a minishell-py (the real Python
    front end unless `front_end` gives one's text)."""
    failure = _compile_launcher()(folder / "minishell", folder / "include")
    if failure is not None:
        pytest.skip(f"no working C compiler, so no compiled client to test: {failure}")
    if front_end is None:
        _, _, body = (LAUNCHER / "minishell-py").read_text().partition("\n")
        front_end = f"#!{sys.executable}\n{body}"
    (folder / "minishell-py").write_text(front_end)
    (folder / "minishell-py").chmod(0o755)
    return folder / "minishell"
