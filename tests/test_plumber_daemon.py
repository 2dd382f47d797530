"""Vias in a real `minishell -nostdin` daemon: nothing a via started survives the via,
`clear pipe`, or the daemon's SIGTERM."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from launchers import PYTHON_FRONT_END
from plumbing import leftovers_killed, running

TIMEOUT = 30


def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, "waited in vain"
        time.sleep(0.02)


class Daemon:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.process = subprocess.Popen([*PYTHON_FRONT_END, "-nostdin", "-base", str(base)],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        eventually(self._answers)
        self.reader = subprocess.Popen([*PYTHON_FRONT_END, "-base", str(base), "-pipe", "v"],
                                       stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        eventually(lambda: " 1 " in self.command("pipe"))

    def _answers(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self.base / "minimega"))
            except OSError:
                return False
            return True

    def command(self, line: str) -> str:
        done = subprocess.run([*PYTHON_FRONT_END, "-base", str(self.base), "-e", line],
                              capture_output=True, timeout=TIMEOUT, check=True)
        return done.stdout.decode() + done.stderr.decode()

    def close(self) -> None:
        for process in (self.reader, self.process):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            process.wait(TIMEOUT)
        assert self.reader.stdin is not None
        self.reader.stdin.close()


@pytest.fixture
def daemon() -> Iterator[Daemon]:
    base = Path(tempfile.mkdtemp(prefix="msvia", dir="/tmp"))  # a short socket path
    started = Daemon(base)
    try:
        yield started
    finally:
        started.close()
        shutil.rmtree(base)


def test_what_a_via_leaves_behind_dies_at_once(daemon: Daemon) -> None:
    with leftovers_killed("sleep", "1013"):
        daemon.command('pipe v via sh -c "sleep 1013 & cat"')
        daemon.command("pipe v hello")
        eventually(lambda: running("sleep", "1013") == set())
        # the -pipe client is the one reader and writer; the write has gone through
        assert "minimega//v | all  | 1       | 1       | 1     | sh -c sleep 1013 & cat | hello" \
            in daemon.command("pipe")


def test_a_running_via_dies_with_clear_pipe_and_with_the_daemon(daemon: Daemon) -> None:
    with leftovers_killed("sleep", "1012"):
        daemon.command("pipe v via sleep 1012")
        daemon.command("pipe v first")
        assert running("sleep", "1012") != set()
        daemon.command("clear pipe v via")
        eventually(lambda: running("sleep", "1012") == set())
        daemon.command("pipe v via sleep 1012")
        daemon.command("pipe v second")
        assert running("sleep", "1012") != set()
        daemon.process.send_signal(signal.SIGTERM)
        daemon.process.wait(TIMEOUT)
        eventually(lambda: running("sleep", "1012") == set())
