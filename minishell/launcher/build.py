"""The setuptools commands that make the `minishell` command (pyproject.toml names
them in [tool.setuptools.cmdclass]).

Two scripts are installed: `minishell-py`, the Python front end, and
`minishell`, minishell.c compiled, which serves -pipe and -e itself and runs
minishell-py for everything else. Where no C compiler works, `minishell` is a
copy of minishell-py instead: everything works the same, only -pipe and -e
start as slowly as a Python interpreter does (README, Speed).
"""

from __future__ import annotations

import runpy
import shutil
from collections.abc import Callable
from pathlib import Path

import setuptools  # noqa: F401 (first: it makes the distutils below its own)
from setuptools.command.bdist_wheel import bdist_wheel

# isort: split
from distutils.command.build_scripts import build_scripts

HERE = Path(__file__).resolve().parent
FRONT_END = "minishell-py"
COMMAND = "minishell"


def _compile_launcher() -> Callable[[Path, Path], str | None]:
    # setuptools loads this file by its path, not from a package; its helper is loaded alike.
    compile_launcher: Callable[[Path, Path], str | None] = runpy.run_path(
        str(HERE / "compile_launcher.py"))["compile_launcher"]
    return compile_launcher


class BuildScripts(build_scripts):
    """Copy minishell-py as the scripts are copied, then build `minishell` beside it."""

    def run(self) -> None:
        super().run()
        command = Path(self.build_dir, COMMAND)
        # The header made for it goes with the build's temporary files, not the scripts.
        build_temp = Path(self.get_finalized_command("build").build_temp, "launcher")
        failure = _compile_launcher()(command, build_temp)
        if failure is not None:
            self.warn(f"cannot compile {COMMAND} (the Python front end serves -pipe and -e "
                      f"instead, more slowly): {failure}")
            shutil.copy2(Path(self.build_dir, FRONT_END), command)

    def get_source_files(self) -> list[str]:
        # what an sdist must carry to build the command again
        here = HERE.relative_to(Path.cwd()) if HERE.is_relative_to(Path.cwd()) else HERE
        return [*super().get_source_files(),
                *(str(here / name) for name in ("minishell.c", "compile_launcher.py", "build.py"))]


class BdistWheel(bdist_wheel):
    """A wheel holding a compiled `minishell` is for this platform only."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False
