"""minishell's clients against a real `minishell -nostdin` daemon, as a shell user runs them.

Every daemon and client is a real process on a real socket; each test stops
and reaps every one of them, whatever happens.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pytest
from test_cli import processes_with

TIMEOUT = 30


class Output:
    """A process's stdout, read to the end on a thread so that it never blocks the process."""

    def __init__(self, stream: object) -> None:
        self.data = bytearray()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,))
        self._thread.start()

    def _read(self, stream: object) -> None:
        fd = stream.fileno()  # type: ignore[attr-defined]
        while chunk := os.read(fd, 1 << 20):
            with self._changed:
                self.data += chunk
                self._changed.notify_all()

    def wait_for(self, ready: Callable[[bytes], bool]) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: ready(bytes(self.data)), TIMEOUT), (
                f"waited in vain; got {len(self.data)} bytes: {bytes(self.data[-200:])!r}")

    def finish(self) -> bytes:
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive()
        return bytes(self.data)


class Processes:
    """Every process a test starts; all are stopped and reaped at its end."""

    def __init__(self, base: Path, minishell: list[str]) -> None:
        self.base = base
        self.minishell = minishell
        self.path = str(base / "minimega")
        self._started: list[subprocess.Popen[bytes]] = []
        self._outputs: list[Output] = []

    def start(self, *args: str, stdin: int | None = subprocess.PIPE,
              stdout: int | None = subprocess.PIPE) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([*self.minishell, "-base", str(self.base), *args], stdin=stdin,
                                   stdout=stdout, stderr=subprocess.PIPE)
        self._started.append(process)
        return process

    def output(self, process: subprocess.Popen[bytes]) -> Output:
        self._outputs.append(Output(process.stdout))
        return self._outputs[-1]

    def daemon(self) -> subprocess.Popen[bytes]:
        daemon = self.start("-nostdin", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + TIMEOUT
        while not self._answers():
            assert daemon.poll() is None, daemon.communicate()[1]
            assert time.monotonic() < deadline, "the daemon never listened"
            time.sleep(0.01)
        return daemon

    def _answers(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(self.path)
            except OSError:
                return False
            return True

    def run(self, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*self.minishell, "-base", str(self.base), *args], input=stdin,
                              capture_output=True, timeout=TIMEOUT, check=False)

    def pipes(self, *flags: str) -> dict[str, dict[str, str]]:
        """The daemon's `pipe` listing, by pipe name."""
        done = self.run(*flags, "-e", "pipe")
        assert done.returncode == 0, done.stderr
        if not done.stdout:  # no pipe yet
            return {}
        header, *rows = done.stdout.decode().splitlines()
        columns = [cell.strip() for cell in header.split("|")]
        table = [dict(zip(columns, (cell.strip() for cell in row.split("|")), strict=True))
                 for row in rows]
        return {row["name"]: row for row in table}

    def wait_for_attachments(self, name: str, count: int) -> None:
        deadline = time.monotonic() + TIMEOUT
        while self.pipes().get(name, {}).get("readers") != str(count):
            assert time.monotonic() < deadline, f"{name} never had {count} readers"
            time.sleep(0.02)

    def close(self) -> None:
        for process in self._started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._started:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        for output in self._outputs:
            output.finish()


@pytest.fixture
def processes(minishell: list[str]) -> Iterator[Processes]:
    """Processes started with either front end of the `minishell` command."""
    base = Path(tempfile.mkdtemp(prefix="mse2e", dir="/tmp"))  # a short socket path
    started = Processes(base, minishell)
    try:
        yield started
    finally:
        started.close()
        shutil.rmtree(base)


def end(process: subprocess.Popen[bytes]) -> tuple[int, bytes]:
    """Close stdin (the client's EOF); the exit status and stderr."""
    assert process.stdin is not None and process.stderr is not None
    process.stdin.close()
    status = process.wait(TIMEOUT)
    return status, process.stderr.read()


def test_every_reader_gets_every_line_in_order(processes: Processes) -> None:
    processes.daemon()
    readers = [processes.start("-pipe", "foo") for _ in range(2)]  # tail -f /dev/null | ...
    outputs = [processes.output(reader) for reader in readers]
    processes.wait_for_attachments("minimega//foo", 2)

    lines = b"".join(b"line %d\n" % number for number in range(1000)) + b"\n" + b"last"
    writer = processes.run("-pipe", "foo", stdin=lines)
    assert (writer.returncode, writer.stderr) == (0, b"")
    assert writer.stdout == lines + b"\n"  # its own echo, all of it, before it exits

    for reader, output in zip(readers, outputs, strict=True):
        output.wait_for(lambda data: data.endswith(b"last\n"))
        assert end(reader) == (0, b"")
        assert output.finish() == lines + b"\n"


def test_a_bulk_writer_exits_0_and_the_listing_counts_it(processes: Processes) -> None:
    processes.daemon()
    reader = processes.start("-pipe", "foo")
    output = processes.output(reader)
    processes.wait_for_attachments("minimega//foo", 1)

    numbers = b"".join(b"%d\n" % number for number in range(1, 100_001))  # seq 100000
    writer = processes.start("-pipe", "foo", stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert writer.stdin is not None
    writer.stdin.write(numbers)
    assert end(writer) == (0, b"")

    output.wait_for(lambda data: data.endswith(b"\n100000\n"))
    listing = processes.pipes()["minimega//foo"]
    assert (listing["readers"], listing["writers"], listing["count"], listing["previous"]) == (
        "1", "1", "100000", "100000")
    assert end(reader) == (0, b"")
    assert output.finish() == numbers


def test_a_reader_killed_mid_stream_leaves_the_others_whole(processes: Processes) -> None:
    processes.daemon()
    doomed, survivor = (processes.start("-pipe", "foo") for _ in range(2))
    assert doomed.stdout is not None
    survivor_output = processes.output(survivor)
    processes.wait_for_attachments("minimega//foo", 2)

    lines = b"".join(b"message %d\n" % number for number in range(200_000))
    writer = processes.start("-pipe", "foo", stdout=subprocess.DEVNULL)
    assert writer.stdin is not None
    feeding = threading.Thread(target=writer.stdin.write, args=(lines,))
    feeding.start()
    try:
        assert doomed.stdout.read(1) == b"m"  # the stream reached it
        doomed.kill()
        doomed.wait(TIMEOUT)
    finally:
        feeding.join(TIMEOUT)
    assert end(writer) == (0, b"")

    survivor_output.wait_for(lambda data: data.endswith(b"message 199999\n"))
    assert end(survivor) == (0, b"")
    assert survivor_output.finish() == lines
    assert processes.pipes()["minimega//foo"]["readers"] == "0"


@pytest.mark.parametrize("ending", [signal.SIGKILL, signal.SIGTERM])
def test_clients_exit_1_with_one_line_when_the_daemon_ends(
        processes: Processes, ending: signal.Signals) -> None:
    daemon = processes.daemon()
    clients = [processes.start("-pipe", "foo") for _ in range(2)]
    outputs = [processes.output(client) for client in clients]
    processes.wait_for_attachments("minimega//foo", 2)
    assert clients[0].stdin is not None
    clients[0].stdin.write(b"before\n")
    clients[0].stdin.flush()
    for output in outputs:
        output.wait_for(lambda data: data == b"before\n")

    daemon.send_signal(ending)
    daemon.wait(TIMEOUT)
    lost = f"minishell: connection to {processes.path} lost\n".encode()
    for client in clients:
        assert client.wait(TIMEOUT) == 1  # stdin still open: only the daemon ended it
        assert client.stderr is not None
        assert client.stderr.read() == lost


def test_e_runs_a_command_and_reports_failures(processes: Processes) -> None:
    processes.daemon()
    done = processes.run("-e", "pipe", "foo", "two words")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    assert processes.pipes()["minimega//foo"]["previous"] == "two words"

    done = processes.run("-namespace", "lab", "-e", "pipe", "bar", "x")
    assert done.returncode == 0
    assert list(processes.pipes("-namespace", "lab")) == ["lab//bar"]

    done = processes.run("-e", "pipe", "foo", "mode", "sideways")
    assert done.returncode == 1
    assert done.stdout == b""
    assert done.stderr.startswith(b"Error (") and done.stderr.count(b"\n") == 1


ENV = {**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}


def test_attach_prompt_runs_commands_and_completes_pipe_names(processes: Processes) -> None:
    processes.daemon()
    assert processes.run("-e", "pipe", "tabby", "hello").returncode == 0
    command, *first_args = processes.minishell
    shell = pexpect.spawn(command, [*first_args, "-base", str(processes.base), "-attach"],
                          env=ENV, encoding="utf-8", timeout=10, dimensions=(24, 120))
    try:
        prompt = rf"minimega:{processes.path}\$"
        shell.expect(prompt)
        shell.send("pipe\r")
        shell.expect(r"minimega//tabby\s+\|\s+all\s+\|\s+0\s+\|\s+0\s+\|\s+1\s+\|\s+\|\s+hello")
        shell.expect(prompt)
        shell.send("pipe minimega//ta\t")
        shell.expect("bby")  # what Tab added
        shell.send(" again\r")
        shell.expect(prompt)
        shell.send("\x04")  # Ctrl-D leaves; the instance goes on
        shell.expect(pexpect.EOF)
    finally:
        shell.close(force=True)
    assert shell.exitstatus == 0
    assert processes.pipes()["minimega//tabby"]["previous"] == "again"


def test_a_client_stopped_mid_command_cancels_it(processes: Processes) -> None:
    """`timeout -s INT 1 minishell -e shell sleep 1007`: the sleep ends with its
    client, and the next command does not wait for it. (The sleep is told apart
    from its client by its path: the client's arguments hold `sleep` too.)"""
    processes.daemon()
    seconds = f"1007.{os.getpid()}{time.monotonic_ns() % 10**6:06d}"
    client = processes.start("-e", "shell", "sleep", seconds, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + TIMEOUT
    while not processes_with(f"/sleep\0{seconds}"):
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.01)
    client.send_signal(signal.SIGINT)
    assert client.wait(TIMEOUT) == 130
    done = subprocess.run([*processes.minishell, "-base", str(processes.base), "-e", "echo",
                           "next"], capture_output=True, timeout=5, check=False)
    assert (done.returncode, done.stdout.endswith(b"next\n")) == (0, True)
    while processes_with(f"/sleep\0{seconds}"):
        assert time.monotonic() < deadline, "the abandoned command's program lives on"
        time.sleep(0.01)


def test_e_sends_any_word_so_that_the_instance_reads_it_back(processes: Processes) -> None:
    """minimega's strconv.Quote wrote `\\x01` and `\\u2028`, which its lexer refuses."""
    processes.daemon()
    done = processes.run("-e", ".annotate", "false", "echo", "a\x01 b", "c\u2028 \"d\\",
                         "e\tf")
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout == "a\x01 b c\u2028 \"d\\ e\tf\n".encode()
