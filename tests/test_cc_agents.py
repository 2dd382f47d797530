"""cc end to end: a real `minishell -nostdin` and real `minishell-agent` processes.

The agents run as plain processes here (their uuid and hostname given on the
command line); .ci/cc_transcripts.py runs them in namespaces of their own to
replay minimega's recorded transcripts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_cli import MINISHELL, reap

AGENT = [sys.executable, "-m", "minishell.cc.agent"]
DEADLINE = 10.0
HOST = "head"  # the instance's -hostname, which its errors name
NAMES = {"vmA": "11111111-1111-1111-1111-111111111111",
         "vmB": "22222222-2222-2222-2222-222222222222",
         "vmC": "33333333-3333-3333-3333-333333333333"}


def eventually(condition: Callable[[], object], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, f"{what} did not happen within {deadline:g} s"
        time.sleep(0.02)


class Instance:
    """A running minishell and its agents."""

    def __init__(self, folder: Path) -> None:
        self.base = folder / "base"
        self.agents: dict[str, subprocess.Popen[bytes]] = {}
        self.daemon = subprocess.Popen(
            [*MINISHELL, "-nostdin", "-base", str(self.base), "-hostname", HOST],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        eventually(lambda: (self.base / "cc").exists(), "the instance's cc socket")
        self.e(".annotate false")

    def e(self, command: str) -> str:
        """Run a command on the instance; its output (an error fails the test)."""
        done = subprocess.run([*MINISHELL, "-base", str(self.base), "-e", command],
                              capture_output=True, text=True, timeout=30, check=False)
        assert done.stderr == "", done.stderr
        return done.stdout.strip()

    def error(self, command: str) -> str:
        done = subprocess.run([*MINISHELL, "-base", str(self.base), "-e", command],
                              capture_output=True, text=True, timeout=30, check=False)
        return done.stderr.strip()

    def start_agent(self, name: str, *flags: str, uuid: str = "") -> subprocess.Popen[bytes]:
        dial = flags or ("-family", "unix", "-parent", str(self.base / "cc"))
        agent = subprocess.Popen(
            [*AGENT, *dial, "-path", f"{self.base}-ccc/{name}", "-uuid", uuid or NAMES[name],
             "-hostname", name], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        self.agents[name] = agent
        return agent

    def clients(self) -> int:
        return int(self.e("cc").split()[-1])

    def table(self, command: str) -> list[list[str]]:
        return [[cell.strip() for cell in line.split("|")]
                for line in self.e(command).splitlines()[1:]]

    def stop(self) -> None:
        for process in [*self.agents.values(), self.daemon]:
            process.terminate()
        for process in [*self.agents.values(), self.daemon]:
            try:
                process.wait(timeout=10)
            finally:
                reap(process)


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Instance]:
    running = Instance(tmp_path)
    try:
        for name in NAMES:
            running.start_agent(name)
        eventually(lambda: running.clients() == len(NAMES), "three agents connecting")
        yield running
    finally:
        running.stop()


def responses(instance: Instance, command_id: int) -> str:
    """The command's responses so far: none yet is not an error here."""
    done = subprocess.run([*MINISHELL, "-base", str(instance.base), "-e",
                           f"cc responses {command_id} raw"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.stderr in ("", f"Error ({HOST}): no responses for {command_id}\n"), done.stderr
    return done.stdout.strip()


def test_responses_come_as_soon_as_commands_end(instance: Instance) -> None:
    instance.e("cc exec echo hi")
    started = time.monotonic()
    eventually(lambda: instance.e("cc responses 1 raw").split() == ["hi", "hi", "hi"],
               "three responses")
    assert time.monotonic() - started < 4  # not the 5 s heartbeat miniccc waits for
    assert instance.e("cc exitcode 1 vmB") == "0"
    assert instance.table(".columns id,responses cc commands") == [["1", "3"]]


def test_stdin_fans_out_and_stdout_fans_in(instance: Instance) -> None:
    instance.e("cc background stdin=src stdout=fan sed -u s/^/x:/")
    eventually(lambda: instance.table(".columns readers,writers .filter name=minimega//src pipe")
               == [["3", "0"]], "three readers of src")
    instance.e("pipe src one")
    eventually(lambda: instance.table(".columns name,count .filter name=minimega//fan pipe")
               == [["minimega//fan", "3"]], "three lines in fan")


def test_round_robin_spreads_over_agents(instance: Instance) -> None:
    instance.e("pipe work mode round-robin")
    for name in NAMES:
        instance.e(f"cc filter hostname={name}")
        instance.e(f"cc background stdin=work stdout=done{name} cat")
    instance.e("clear cc filter")
    eventually(lambda: instance.table(".columns readers .filter name=minimega//work pipe")
               == [["3"]], "three readers of work")
    for number in range(9):
        instance.e(f"pipe work {number}")
    eventually(lambda: [row[1] for row in instance.table(
        ".columns name,count .filter name~done pipe")] == ["3", "3", "3"], "3 each")


def test_an_exec_waits_for_the_one_before_a_background_does_not(instance: Instance) -> None:
    instance.e("cc filter hostname=vmA")
    instance.e("cc exec stdin=gate cat")
    instance.e("cc exec echo after-gate")
    instance.e("cc background echo beside")  # it checks in as it starts, output to the log
    eventually(lambda: instance.table(".columns id,responses cc commands") == [
        ["1", "0"], ["2", "0"], ["3", "1"]], "the background command checking in")
    instance.e("pipe gate through")
    instance.e("clear pipe gate")  # EOF on cat's stdin: it ends, and the next exec runs
    eventually(lambda: responses(instance, 2) == "after-gate", "the exec behind it")
    assert responses(instance, 1) == "through"


def test_a_killed_agent_lets_go_of_its_pipes_at_once(instance: Instance) -> None:
    instance.e("cc filter hostname=vmA")
    instance.e("cc background stdin=in stdout=out cat")
    eventually(lambda: instance.table(".columns name,readers,writers pipe") == [
        ["minimega//in", "1", "0"], ["minimega//out", "0", "1"]], "vmA's pipes")
    instance.agents["vmA"].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    eventually(lambda: instance.table(".columns name,readers,writers pipe") == [
        ["minimega//in", "0", "0"], ["minimega//out", "0", "0"]], "the pipes released")
    assert time.monotonic() - killed < 1.5
    assert instance.e("clear pipe out") == ""
    assert instance.clients() == 2


def test_a_restarted_agent_runs_again_what_is_not_once(instance: Instance) -> None:
    instance.e("cc filter hostname=vmA")
    instance.e("cc exec echo again")
    instance.e("cc exec-once echo once")
    eventually(lambda: responses(instance, 2) == "once", "the first runs")
    instance.agents["vmA"].terminate()
    reap(instance.agents["vmA"])
    eventually(lambda: instance.clients() == 2, "vmA gone")
    instance.start_agent("vmA")
    eventually(lambda: instance.table(".columns id,responses cc commands") == [
        ["1", "2"], ["2", "1"]], "the non-once command run again")


def test_a_long_stdout_arrives_whole_and_in_order(instance: Instance) -> None:
    instance.e("cc filter hostname=vmA")
    instance.e("cc exec stdout=big seq 1 100000")
    eventually(lambda: instance.table(".columns count,previous .filter name=minimega//big pipe")
               == [["100000", "100000"]], "100,000 lines", deadline=30)
    assert instance.e("cc exitcode 1 vmA") == "0"


def test_a_program_that_reads_nothing_holds_up_no_other_command(instance: Instance) -> None:
    instance.e("cc filter hostname=vmA")
    instance.e("cc background stdin=slow sleep 1000")
    eventually(lambda: instance.table(".columns readers .filter name=minimega//slow pipe")
               == [["1"]], "the reader of slow")
    line = "x" * 500
    for _ in range(200):
        instance.e(f"pipe slow {line}")
    instance.e("cc exec echo alive")
    eventually(lambda: responses(instance, 2) == "alive", "the exec beside it")


def test_agents_may_dial_over_tcp_after_cc_listen(instance: Instance) -> None:
    with socket.socket() as probe:  # a port nobody uses now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    instance.e(f"cc listen {port}")
    assert instance.error(f"cc listen {port}") == f"Error ({HOST}): already listening on :{port}"
    instance.agents["vmA"].terminate()
    reap(instance.agents["vmA"])
    eventually(lambda: instance.clients() == 2, "vmA gone")
    instance.start_agent("vmA", "-parent", "127.0.0.1", "-port", str(port))
    eventually(lambda: instance.clients() == 3, "vmA back over TCP")


def test_files_go_both_ways(instance: Instance) -> None:
    files = instance.base / "files"
    files.mkdir(exist_ok=True)
    (files / "sent.txt").write_bytes(b"to the agent\n" * 20_000)  # three parts
    instance.e("cc filter hostname=vmA")
    instance.e("cc send sent.txt")
    arrived = Path(f"{instance.base}-ccc/vmA/files/sent.txt")
    eventually(lambda: arrived.exists() and arrived.stat().st_size == 260_000, "the file sent")
    assert arrived.read_bytes() == (files / "sent.txt").read_bytes()
    source = instance.base / "back.txt"
    source.write_text("from the agent\n")
    instance.e(f"cc recv {source}")
    back = files / "miniccc_responses" / "2" / NAMES["vmA"] / str(source).lstrip("/")
    eventually(back.exists, "the file received")
    assert back.read_text() == "from the agent\n"
    assert os.path.getsize(back) == 15
