"""A running instance as its users meet it: start-up scripts beside socket clients."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from test_cli import MINISHELL, reap


def wait_for(path: Path, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.01)


def test_a_client_command_waits_for_the_start_up_scripts(tmp_path: Path) -> None:
    """Commands from everywhere run one at a time: a client's command that arrives
    while a start-up script sleeps runs after the script, not in its middle."""
    base = tmp_path / "base"
    script = tmp_path / "setup.mm"
    script.write_text("echo script-start\nshell sleep 1\necho script-end\n")
    daemon = subprocess.Popen([*MINISHELL, "-nostdin", "-base", str(base), str(script)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(base / "minimega")
        client = [*MINISHELL, "-base", str(base), "-e"]
        subprocess.run([*client, "echo client"], check=True, timeout=30, capture_output=True)
        history = subprocess.run([*client, "history"], check=True, timeout=30,
                                 capture_output=True, text=True).stdout
        lines = [line.split(": ", 1)[-1] for line in history.splitlines()]
        script_end = 'namespace "minimega" echo script-end'
        assert script_end in lines, "the client's command ran in the middle of the script"
        assert lines.index("echo client") > lines.index(script_end)
    finally:
        daemon.terminate()
        reap(daemon)
