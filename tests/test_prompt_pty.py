"""Smoke test of the installed `minishell` on a real pseudo-terminal.

What only a terminal shows: raw mode at the prompt (Ctrl-C is a key), cooked
mode while a command runs (Ctrl-C is SIGINT), and the modes prompt_toolkit
must switch off again when the shell ends.
"""

from __future__ import annotations

import io
import os
import shutil
import sysconfig
import time
from glob import glob
from pathlib import Path

import pexpect
import pytest

# prompt_toolkit moves the cursor instead of printing the trailing space.
PROMPT = r"minimega\$"
PASTE_ON = "\x1b[?2004h"
PASTE_OFF = "\x1b[?2004l"
ENTER = "\r"
CTRL_C = "\x03"
CTRL_D = "\x04"

# The script installed for the running interpreter first: a pyenv shim on
# PATH would start slower, and maybe another interpreter.
MINISHELL = shutil.which(
    "minishell",
    path=os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", os.defpath)]),
)

pytestmark = pytest.mark.skipif(MINISHELL is None, reason="minishell is not installed")


def children_named(pid: int, name: str) -> list[int]:
    found: list[int] = []
    for listing in glob(f"/proc/{pid}/task/*/children"):
        with open(listing) as children:
            for child in children.read().split():
                try:
                    with open(f"/proc/{child}/comm") as comm:
                        if comm.read().strip() == name:
                            found.append(int(child))
                except FileNotFoundError:  # it ended meanwhile
                    pass
    return found


def test_prompt_on_a_pty(tmp_path: Path) -> None:
    assert MINISHELL is not None
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "TERM": "xterm",
        # pexpect is no terminal emulator: it would never answer prompt_toolkit's
        # cursor position requests, and each prompt would wait for them.
        "PROMPT_TOOLKIT_NO_CPR": "1",
    }
    env.pop("MINISHELL_HISTFILE", None)
    terminal = io.StringIO()
    shell = pexpect.spawn(
        MINISHELL, ["-base", str(tmp_path / "base")], env=env, encoding="utf-8",
        timeout=5, dimensions=(24, 80),
    )
    shell.logfile_read = terminal
    assert shell.pid is not None
    try:
        shell.expect(PROMPT)
        shell.send(f'pipe foo "hello"{ENTER}')
        shell.expect(PROMPT)
        shell.send(f"pipe{ENTER}")
        shell.expect(r"minimega//foo\s+\|\s+all\s+\|\s+0\s+\|\s+0\s+\|\s+1\s+\|\s+\|\s+hello")
        shell.expect(PROMPT)

        shell.send(CTRL_C)  # at an empty prompt: a new prompt, the shell lives on
        shell.expect(PROMPT)
        assert shell.isalive()

        shell.send(f"shell sleep 30{ENTER}")
        deadline = time.monotonic() + 5
        while not children_named(shell.pid, "sleep"):
            assert time.monotonic() < deadline, "`shell sleep 30` did not start"
            time.sleep(0.02)
        interrupted_at = time.monotonic()
        shell.send(CTRL_C)  # cooked mode now: SIGINT
        shell.expect("interrupted")
        shell.expect(PROMPT)
        assert time.monotonic() - interrupted_at < 2
        assert children_named(shell.pid, "sleep") == []

        shell.send(CTRL_D)
        shell.expect(pexpect.EOF)
        shell.close()
        assert shell.exitstatus == 0
    finally:
        if shell.isalive():
            shell.terminate(force=True)
    drawn = terminal.getvalue()
    assert PASTE_ON in drawn
    assert drawn.rindex(PASTE_OFF) > drawn.rindex(PASTE_ON)
    assert (tmp_path / "state" / "minishell" / "history").exists()
