#!/usr/bin/env python3
"""cc's speed: real `minishell -nostdin`, real `minishell-agent` processes on its
unix socket `<base>/cc`, real `-pipe` clients; every line checked.

    python3 bench/bench_cc.py [--quick] [--minishell PATH]

The four figures of the cc issue:
- `cc exec hostname` on 3 agents: from the command to every response readable
  (its file under miniccc_responses), median and worst of several;
- `cc exec stdout=bar seq 1 1000000` on one agent, to a `-pipe bar` reader;
- `cc background stdin=in` with a `cat` on each of 3 agents (each into a file
  of its own), fed by `minishell -pipe in < 1,000,000 lines`: lines per second
  delivered to each agent's process;
- 100 agents: the daemon's growth per idle agent, and `cc exec true` answered
  by all of them.
minimega 2.9 answers a command with its client's next heartbeat, up to 5 s
later (spec/cc.md); its pipe rates through cc are not in perf-reference.md.

Without --minishell the project is installed into a fresh virtual environment;
minishell-agent is taken from beside the minishell given or installed.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench_socket import (
    Daemon,
    bench_options,
    executable,
    install_in_venv,
    raise_fd_limit,
    run_main,
    say,
    wait_for_sizes,
    work_folder,
)


def uuid_of(number: int) -> str:
    return f"{number:08x}-0000-4000-8000-{number:012x}"


class Agents:
    """minishell-agent processes dialing a daemon's `<base>/cc`, named vm1, vm2, ..."""

    def __init__(self, daemon: Daemon, program: Path, folder: Path) -> None:
        self.daemon, self.program, self.folder = daemon, str(program), folder
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Agents:
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def start(self, count: int) -> None:
        for number in range(len(self.processes) + 1, len(self.processes) + count + 1):
            self.processes.append(subprocess.Popen(
                [self.program, "-family", "unix", "-parent", f"{self.daemon.base}/cc",
                 "-path", str(self.folder / f"vm{number}"), "-uuid", uuid_of(number),
                 "-hostname", f"vm{number}"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.daemon.wait_for(lambda: self.connected() == len(self.processes),
                             f"{len(self.processes)} agents connecting", timeout=120)

    def connected(self) -> int:
        return int(self.daemon.command("cc").split()[-1])


def command_ids(daemon: Daemon) -> list[int]:
    listing = daemon.command(".annotate", "false", ".headers", "false", ".columns", "id",
                             "cc", "commands")
    return [int(line) for line in listing.split()]


def responses_of(daemon: Daemon, command_id: int) -> int:
    listing = daemon.command(".annotate", "false", ".headers", "false", ".columns",
                             "id,responses", "cc", "commands")
    for line in listing.splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if cells[0] == str(command_id):
            return int(cells[1])
    return 0


def exec_latency(daemon: Daemon, agents: int, samples: int) -> tuple[float, float]:
    """ms from `cc exec hostname` to every agent's stdout file written: median, worst."""
    responses = Path(daemon.base) / "files" / "miniccc_responses"
    took = []
    for _ in range(samples):
        started = time.perf_counter()
        daemon.command("cc", "exec", "hostname")
        command_id = max(command_ids(daemon))
        folder = responses / str(command_id)

        def answered(folder: Path = folder) -> bool:
            files = list(folder.glob("*/stdout")) if folder.is_dir() else []
            return len(files) == agents and all(file.stat().st_size for file in files)

        daemon.wait_for(answered, "every hostname", timeout=30)
        took.append((time.perf_counter() - started) * 1000)
        # -hostname names an agent, not its machine: the answers are told apart by uuid
        uuids = sorted(file.parent.name for file in folder.glob("*/stdout"))
        if uuids != [uuid_of(number) for number in range(1, agents + 1)]:
            raise RuntimeError(f"cc exec hostname was answered by {uuids}")
    return statistics.median(took), max(took)


def seq_output(lines: int) -> bytes:
    return b"".join(b"%d\n" % number for number in range(1, lines + 1))


def stdout_rate(daemon: Daemon, work: Path, lines: int) -> float:
    """Lines per second from `seq` on vm1 to a -pipe reader of its stdout pipe."""
    expected = seq_output(lines)
    out = work / "bar.out"
    reader = daemon.attach("bar", out)
    daemon.wait_for(lambda: daemon.readers("bar") == 1, "the reader of bar")
    daemon.command("cc", "filter", "hostname=vm1")
    started = time.perf_counter()
    daemon.command("cc", "exec", "stdout=bar", "seq", "1", str(lines))
    wait_for_sizes([out], [len(expected)])
    elapsed = time.perf_counter() - started
    daemon.finish([reader])
    daemon.command("clear", "cc", "filter")
    if out.read_bytes() != expected:
        raise RuntimeError("the -pipe reader of bar did not get seq's lines whole and in order")
    return lines / elapsed


def stdin_rate(daemon: Daemon, work: Path, agents: int, lines: int) -> float:
    """Lines per second delivered through `in` to a cat on each agent (the slowest's)."""
    data = work / "in.data"
    data.write_bytes(seq_output(lines))
    outputs = [work / f"in.vm{number}" for number in range(1, agents + 1)]
    for number, output in enumerate(outputs, 1):
        daemon.command(f"cc filter hostname=vm{number}")
        daemon.command(f'cc background stdin=in sh -c "cat > {output}"')
    daemon.command("clear", "cc", "filter")
    daemon.wait_for(lambda: daemon.readers("in") == agents, f"{agents} readers of in")
    started = time.perf_counter()
    with open(data, "rb") as source:
        writer = daemon.client("-pipe", "in", stdin=source, stdout=subprocess.DEVNULL)
        wait_for_sizes(outputs, [data.stat().st_size] * agents)
    elapsed = time.perf_counter() - started
    daemon.finish([writer])
    expected = data.read_bytes()
    for output in outputs:
        if output.read_bytes() != expected:
            raise RuntimeError(f"{output.name}: the cat did not get every line in order")
    daemon.command("clear", "pipe", "in")  # EOF: the cats end
    return lines / elapsed


def many_agents(minishell: Path, agent: Path, folder: Path, count: int) -> tuple[float, float]:
    """A fresh daemon: KiB it grows per idle agent, and ms until `cc exec true` is
    answered by all."""
    with Daemon(minishell, folder / "many") as daemon, \
            Agents(daemon, agent, folder / "many-ccc") as agents:
        daemon.command("cc")  # whatever the first command loads is not the agents'
        time.sleep(1)
        before = daemon.rss_kib()
        agents.start(count)
        time.sleep(6)  # one heartbeat of each, settled
        growth = (daemon.rss_kib() - before) / count
        started = time.perf_counter()
        daemon.command("cc", "exec", "true")
        daemon.wait_for(lambda: responses_of(daemon, 1) == count, f"{count} responses",
                        timeout=60)
        return growth, (time.perf_counter() - started) * 1000


def main() -> None:
    options = bench_options(__doc__)
    raise_fd_limit()
    scale = 10 if options.quick else 1
    lines = 1_000_000 // scale
    count = 100 // scale
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="minishell-bench-cc-") as tmp:
        folder = Path(tmp)
        minishell = (executable(options.minishell, "--minishell") if options.minishell
                     else install_in_venv(folder / "venv"))
        agent = executable(minishell.with_name("minishell-agent"), "minishell-agent")
        with work_folder(folder) as work, Daemon(minishell, folder / "base") as daemon, \
                Agents(daemon, agent, folder / "ccc") as agents:
            agents.start(3)
            median, worst = exec_latency(daemon, 3, 20 // min(scale, 4))
            rows.append(("cc exec hostname, 3 agents: all answered",
                         f"{median:.1f} ms median, {worst:.1f} ms worst",
                         "50 ms; minimega ~5 s (its heartbeat)"))
            rate = stdout_rate(daemon, work, lines)
            rows.append((f"cc exec stdout=bar seq 1 {lines}", f"{rate / 1000:.0f}k lines/s",
                         "500k lines/s"))
            rate = stdin_rate(daemon, work, 3, lines)
            rows.append((f"stdin=in cat on 3 agents, {lines} lines",
                         f"{rate / 1000:.0f}k lines/s to each", "300k lines/s to each"))
        growth, answered = many_agents(minishell, agent, folder, count)
        rows.append((f"{count} agents: daemon growth per idle agent", f"{growth:.1f} KiB",
                     "64 KiB"))
        rows.append((f"{count} agents: cc exec true answered by all", f"{answered:.0f} ms",
                     "1000 ms"))
    say("")
    say(f"{'scenario':44} | {'minishell':34} | target")
    for scenario, figure, target in rows:
        say(f"{scenario:44} | {figure:34} | {target}")
    say("every line checked: none lost, duplicated or reordered")


if __name__ == "__main__":
    run_main(main)
