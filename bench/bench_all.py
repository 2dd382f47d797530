#!/usr/bin/env python3
"""Every speed figure of minishell in one run, beside real minimega 2.9 measured in
the same run, and plain Unix where there is a plain-Unix equivalent.

    python3 bench/bench_all.py [--quick] [--minishell PATH] [--minimega PATH]

Prints one table: scenario, minishell, minimega 2.9, the ratio (how many times
better minishell is: its rate over minimega's, or minimega's time or memory
over minishell's), plain Unix, and each target with met / NOT MET. Scenarios
from bench_socket.py (the socket's data and request paths, start-up, memory),
bench_via.py (via `cat` through each daemon and in process, the cost of a
spawn), bench_read.py, bench_parse.py and bench_cc.py (cc through real
minishell-agents; minishell alone), each run once. Every reader's bytes
are checked (nothing lost, duplicated or reordered, counts per reader) and every
command is counted, for minimega as for minishell.

Without --minishell the project is installed into a fresh virtual environment;
the run then continues under that environment's Python (bench_read and the
in-process via import minishell). --minimega takes a minimega 2.9 binary built
by hand from its release source: the repository ships none. minimega's `-pipe`
client wakes once per message, so its data-path runs use fewer messages (the
cell says how many); a whole run takes a few minutes, --quick well under two.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import bench_cc
from bench_cc import Agents
from bench_socket import (
    Daemon,
    attached_commands,
    baseline_startup,
    commands_per_call,
    executable,
    find_socat,
    idle_attachments,
    install_in_venv,
    interpreter_of,
    latency,
    numbered_lines,
    raise_fd_limit,
    read_commands,
    run_main,
    say,
    shared,
    socat_latency,
    socat_stream,
    startup,
    stream,
    work_folder,
)

NONE = "—"
# minimega 2.9's figures from perf-reference.md, for the targets that are set
# relative to it when no --minimega is given.
REFERENCE = {"attach": 8000.0, "e": 1000 / 17.4, "via1": 476.0, "via4": 189.0,
             "via_cpu": 0.53}


@dataclass(frozen=True)
class Sizes:
    """Messages, samples and processes per scenario: minishell's and minimega's."""

    stream: tuple[int, int]
    fan_out: tuple[int, int]
    shared: tuple[int, int]
    samples: int
    runs: int
    commands: int
    calls: tuple[int, int]
    read: int
    via: int
    spawns: int
    idle: tuple[int, int]
    cc: tuple[int, int, int]  # lines through cc's pipes, exec samples, agents at once

    @classmethod
    def of(cls, quick: bool) -> Sizes:
        if quick:
            return cls(stream=(1_000_000, 20_000), fan_out=(50_000, 200),
                       shared=(200_000, 10_000), samples=200, runs=10, commands=2_000,
                       calls=(20, 20), read=10_000, via=300, spawns=200, idle=(100, 20),
                       cc=(100_000, 5, 10))
        # minimega: 61k msg/s streamed, 659 msg/s to 64 readers, 30k shared, 17 ms
        # a client, ~13 MB of a client's own memory: a few seconds and a few GB.
        return cls(stream=(10_000_000, 200_000), fan_out=(500_000, 2_000),
                   shared=(2_000_000, 100_000), samples=2000, runs=40, commands=20_000,
                   calls=(200, 200), read=10_000, via=3000, spawns=2000, idle=(1000, 200),
                   cc=(1_000_000, 20, 100))


@dataclass
class Row:
    scenario: str
    ours: str
    theirs: str = NONE
    ratio: str = NONE
    unix: str = NONE
    target: str = NONE
    met: bool | None = None


def times(better: float, worse: float) -> str:
    return f"{better / worse:.2f}x" if worse else NONE


def si(value: float) -> str:
    """3 significant figures with k / M."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def of_count(count: int, usual: int) -> str:
    return f" ({si(count)} msgs)" if count != usual else ""


class Bench:
    """The scenarios, each run on minishell, then minimega (if given), then plain Unix."""

    def __init__(self, ours: Daemon, theirs: Daemon | None, work: Path, sizes: Sizes,
                 socat: str | None, python: str) -> None:
        self.ours, self.theirs, self.work, self.sizes = ours, theirs, work, sizes
        self.socat, self.python = socat, python

    def data(self, lines: int) -> Path:
        path = self.work / "data"
        path.write_bytes(numbered_lines(lines))
        return path

    def pairs(self, counts: tuple[int, int]) -> list[tuple[Daemon, int]]:
        """minishell and its count, then minimega and its count when it is measured."""
        return [(self.ours, counts[0])] + ([(self.theirs, counts[1])] if self.theirs else [])

    def both(self, measure: Callable[[Daemon, int], float], counts: tuple[int, int],
             ) -> tuple[float, float | None]:
        ours, *theirs = [measure(daemon, count) for daemon, count in self.pairs(counts)]
        return ours, theirs[0] if theirs else None

    def streams(self) -> list[Row]:
        counts = self.sizes.stream
        ours, theirs = self.both(lambda d, n: stream(d, self.work, self.data(n), n, 1), counts)
        unix = None
        if self.socat:
            unix = socat_stream(self.socat, self.work, self.data(counts[0]), counts[0])
        met = ours >= 6e6 and (unix is None or ours / unix >= 0.3)
        rows = [Row("stream 1 -> 1, 16 B lines", f"{si(ours)} msg/s",
                    f"{si(theirs)} msg/s{of_count(counts[1], counts[0])}" if theirs else NONE,
                    times(ours, theirs) if theirs else NONE,
                    f"socat {si(unix)} lines/s (minishell {ours / unix:.2f}x)" if unix else NONE,
                    "≥ 6M msg/s and ≥ 0.3x socat", met)]
        counts = self.sizes.fan_out
        ours, theirs = self.both(lambda d, n: 64 * stream(d, self.work, self.data(n), n, 64),
                                 counts)
        rows.append(Row("fan-out to 64 readers", f"{si(ours)} deliveries/s",
                        f"{si(theirs)}/s{of_count(counts[1], counts[0])}" if theirs else NONE,
                        times(ours, theirs) if theirs else NONE, NONE,
                        "≥ 5M deliveries/s", ours >= 5e6))
        return rows

    def shares(self) -> list[Row]:
        rows = []
        counts = self.sizes.shared
        for mode in ("round-robin", "random"):
            # (msg/s, the farthest any reader's count is from an even split)
            results = []
            for daemon, lines in self.pairs(counts):
                rate, per_reader = shared(daemon, self.work, self.data(lines), lines, mode, 4)
                results.append((rate, max(abs(c - lines / 4) for c in per_reader) / (lines / 4)))
            (ours, spread), *theirs = results
            rows.append(Row(f"{mode}, 4 readers", f"{si(ours)} msg/s, split ±{spread:.2%}",
                            f"{si(theirs[0][0])} msg/s, split ±{theirs[0][1]:.2%}"
                            f"{of_count(counts[1], counts[0])}" if theirs else NONE,
                            times(ours, theirs[0][0]) if theirs else NONE, NONE,
                            "≥ 1M msg/s, split within 1%", ours >= 1e6 and spread <= 0.01))
        return rows

    def latencies(self) -> list[Row]:
        samples = self.sizes.samples
        ours = latency(self.ours, samples)
        theirs = latency(self.theirs, samples) if self.theirs else None
        unix = socat_latency(self.socat, self.work, samples) if self.socat else None
        return [Row(f"latency p50 / p99 ({samples} msgs, 1 ms apart)",
                    f"{ours[0]:.0f} / {ours[1]:.0f} µs",
                    f"{theirs[0]:.0f} / {theirs[1]:.0f} µs" if theirs else NONE,
                    f"{times(theirs[0], ours[0])} / {times(theirs[1], ours[1])}"
                    if theirs else NONE,
                    f"socat {unix[0]:.0f} / {unix[1]:.0f} µs" if unix else NONE,
                    "≤ 250 / 500 µs", ours[0] <= 250 and ours[1] <= 500)]

    def startups(self) -> list[Row]:
        runs = self.sizes.runs
        ours = startup(self.ours, runs)
        front_end = startup(self.ours, runs, str(Path(self.ours.minishell)
                                                 .with_name("minishell-py")))
        theirs = startup(self.theirs, runs) if self.theirs else None
        true_ms, python_ms = baseline_startup(runs, self.python)
        rows = []
        for index, scenario in enumerate(("`echo hi | minishell -pipe foo`",
                                          "`minishell -e pipe`")):
            rows.append(Row(f"{scenario} (median of {runs})",
                            f"{ours[index]:.1f} ms (minishell-py {front_end[index]:.1f})",
                            f"{theirs[index]:.1f} ms" if theirs else NONE,
                            times(theirs[index], ours[index]) if theirs else NONE,
                            f"`/bin/true` {true_ms:.1f} ms, `python -c pass` {python_ms:.1f}",
                            "≤ 12 ms", ours[index] <= 12))
        return rows

    def requests(self) -> list[Row]:
        rows = []
        commands = self.sizes.commands
        ours, theirs = self.both(lambda d, n: attached_commands(d, self.work, n),
                                 (commands, commands))
        rows.append(self._twice(f"`-attach < script`, {si(commands)} x `pipe foo x`",
                                ours, theirs, "attach", "commands/s"))
        calls = self.sizes.calls
        ours, theirs = self.both(commands_per_call, calls)
        rows.append(self._twice(f"one `-e pipe foo x` per command, {calls[0]} in a row",
                                ours, theirs, "e", "commands/s"))
        lines = self.sizes.read
        ours, theirs = self.both(lambda d, n: read_commands(d, self.work, n), (lines, lines))
        rows.append(Row(f"`-e read script`, {si(lines)} x `pipe foo x` (in the daemon)",
                        f"{si(ours)} commands/s", f"{si(theirs)} commands/s" if theirs else NONE,
                        times(ours, theirs) if theirs else NONE))
        return rows

    def _twice(self, scenario: str, ours: float, theirs: float | None, key: str,
               unit: str) -> Row:
        """A row whose target is 2x minimega: the figure of this run, else the reference's."""
        floor = 2 * (theirs if theirs is not None else REFERENCE[key])
        source = "" if theirs is not None else f" (reference {si(REFERENCE[key])})"
        return Row(scenario, f"{si(ours)} {unit}", f"{si(theirs)} {unit}" if theirs else NONE,
                   times(ours, theirs) if theirs else NONE, NONE,
                   f"≥ 2x minimega{source}: {si(floor)}", ours >= floor)

    def in_session(self) -> list[Row]:
        # Imported here, not at the top: they import minishell, which only the
        # Python it is installed in has (main() makes sure this is that Python).
        import bench_parse
        import bench_read

        rates = bench_read.read_rates()
        parse = bench_parse.parse_speed()
        worst = min(rates.values())
        shown = " / ".join(f"{si(rate)}" for rate in rates.values())
        return [Row(f"`read` in one session (in process), {si(bench_read.LINES)} x "
                    f"{' / '.join(f'`{label}`' for label in rates)}",
                    f"{shown} commands/s", target="≥ 40k commands/s", met=worst >= 40_000),
                Row(f"parse, {si(bench_read.LINES)} distinct `pipe foo <n>` (in process)",
                    f"{parse:.2f} µs/line")]

    def vias(self) -> list[Row]:
        import bench_via  # it imports minishell: see in_session

        messages = self.sizes.via
        rows = []
        for readers in (1, 4):
            ours = bench_via.daemon_via(self.ours, self.work, messages, readers)
            theirs = (bench_via.daemon_via(self.theirs, self.work, messages, readers)
                      if self.theirs else None)
            key = f"via{readers}"
            floor = 1.5 * (theirs[0] if theirs else REFERENCE[key])
            source = "" if theirs else f" (reference {REFERENCE[key]:.0f})"
            rows.append(Row(f"via `cat`, {readers} reader{'s' * (readers > 1)}, through the "
                            f"daemon ({si(messages)} msgs)", f"{ours[0]:.0f} msg/s",
                            f"{theirs[0]:.0f} msg/s" if theirs else NONE,
                            times(ours[0], theirs[0]) if theirs else NONE, NONE,
                            f"≥ 1.5x minimega{source}: {floor:.0f}", ours[0] >= floor))
            # The reference has minimega's CPU with 1 reader only.
            ceiling = theirs[1] if theirs else REFERENCE["via_cpu"] if readers == 1 else None
            source = "" if theirs else " (reference)"
            rows.append(Row(f"daemon CPU per via message, {readers} reader"
                            f"{'s' * (readers > 1)} (/proc stat; `cat`s apart)",
                            f"{ours[1]:.2f} ms (cats {ours[2]:.2f})",
                            f"{theirs[1]:.2f} ms (cats {theirs[2]:.2f})" if theirs else NONE,
                            times(theirs[1], ours[1]) if theirs else NONE, NONE,
                            f"≤ minimega{source}: {ceiling:.2f} ms" if ceiling is not None
                            else "≤ minimega (not measured)",
                            None if ceiling is None else ours[1] <= ceiling))
        for readers in (1, 4):
            rate, own, children = bench_via.in_process(messages, readers)
            rows.append(Row(f"via `cat`, {readers} reader{'s' * (readers > 1)}, in-process "
                            "Plumber (no socket, no clients)",
                            f"{rate:.0f} msg/s, {own:.2f} ms CPU/msg (cats {children:.2f})"))
        costs = bench_via.spawn_costs(self.sizes.spawns)
        rows.append(Row(f"one `cat` run from Python, {si(self.sizes.spawns)} in a row: "
                        "wall / own CPU", NONE,
                        unix="; ".join(f"{name} {wall:.0f} / {cpu:.0f} µs"
                                       for name, (wall, cpu) in costs.items())))
        return rows

    def cc(self) -> list[Row]:
        """bench_cc's figures, minishell alone: minimega answers a command with its
        client's next heartbeat (spec/cc.md), and its cc runs only beside VMs."""
        lines, samples, many = self.sizes.cc
        program = Path(self.ours.minishell)
        agent = executable(program.with_name("minishell-agent"), "minishell-agent")
        with Agents(self.ours, agent, self.work / "ccc") as agents:
            agents.start(3)
            median, worst = bench_cc.exec_latency(self.ours, 3, samples)
            out_rate = bench_cc.stdout_rate(self.ours, self.work, lines)
            in_rate = bench_cc.stdin_rate(self.ours, self.work, 3, lines)
        growth, answered = bench_cc.many_agents(program, agent, self.work, many)
        heartbeat = "up to 5 s (its next heartbeat)"
        return [
            Row(f"`cc exec hostname` on 3 agents, all answered ({samples} runs)",
                f"{median:.1f} ms median, {worst:.1f} ms worst", heartbeat, NONE, NONE,
                "≤ 50 ms", worst <= 50),
            Row(f"`cc exec stdout=bar seq 1 {si(lines)}` to a `-pipe` reader",
                f"{si(out_rate)} lines/s", target="≥ 500k lines/s", met=out_rate >= 500_000),
            Row(f"`cc background stdin=in` cat on 3 agents, {si(lines)} lines",
                f"{si(in_rate)} lines/s to each", target="≥ 300k lines/s to each",
                met=in_rate >= 300_000),
            Row(f"{many} idle agents: daemon growth each", f"+{growth:.1f} KiB",
                target="≤ 64 KiB", met=growth <= 64),
            Row(f"{many} agents: `cc exec true` answered by all", f"{answered:.0f} ms",
                heartbeat, target="≤ 1 s", met=answered <= 1000),
        ]

    def memory(self) -> list[Row]:
        counts = self.sizes.idle
        ours = idle_attachments(self.ours, counts[0])
        theirs = idle_attachments(self.theirs, counts[1]) if self.theirs else None
        return [Row(f"{counts[0]} idle `-pipe` attachments: daemon growth each; one client's "
                    "RSS (PSS)",
                    f"+{ours[0]:.1f} KiB; {ours[1] / 1024:.1f} MB ({ours[2] / 1024:.1f} MB)",
                    f"+{theirs[0]:.1f} KiB; {theirs[1] / 1024:.1f} MB "
                    f"({theirs[2] / 1024:.1f} MB) ({counts[1]} attachments)" if theirs else NONE,
                    f"{times(theirs[0], ours[0])}; {times(theirs[1], ours[1])}"
                    if theirs else NONE, NONE,
                    "≤ 10 KiB; ≤ 4 MB", ours[0] <= 10 and ours[1] <= 4 * 1024)]


def machine() -> str:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = Path("/proc/meminfo").read_text().split()[1]
    return (f"{os.cpu_count()} cores ({model}), {int(memory) / 2**20:.0f} GiB, "
            f"Linux {platform.release()}, Python {platform.python_version()}")


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (the first line of /proc/stat:
    user, nice, system, irq, softirq, steal)."""
    fields = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_busy() -> float:
    """CPU seconds of this process and of every descendant it has reaped (the daemons
    count their clients' and vias' in, once reaped themselves)."""
    return sum(usage.ru_utime + usage.ru_stime for usage in (
        resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))


def table(rows: list[Row]) -> list[str]:
    lines = ["| scenario | minishell | minimega 2.9 | ratio | plain Unix | target | |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        verdict = NONE if row.met is None else ("met" if row.met else "**NOT MET**")
        cells = (row.scenario, row.ours, row.theirs, row.ratio, row.unix, row.target, verdict)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return lines


def run(options: argparse.Namespace, minishell: Path) -> None:
    raise_fd_limit()
    sizes = Sizes.of(options.quick)
    started = datetime.datetime.now()
    # How quiet the machine was: what it spent beyond this run's own processes.
    busy_before, own_before = machine_busy(), own_busy()
    say(f"bench_all {'--quick ' if options.quick else ''}on {machine()}")
    say(f"load average before: {load()}")
    if os.getloadavg()[0] > 1.5:
        say("the machine is busy (load average above 1.5): the figures will be low")
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-all-")))
        work = stack.enter_context(work_folder(tmp))
        ours = stack.enter_context(Daemon(minishell, tmp / "minishell"))
        theirs = None
        if options.minimega:
            theirs = stack.enter_context(Daemon(options.minimega, tmp / "minimega",
                                                minimega=True))
        bench = Bench(ours, theirs, work, sizes, find_socat(), interpreter_of(minishell))
        rows: list[Row] = []
        for scenario in (bench.streams, bench.shares, bench.latencies, bench.startups,
                         bench.requests, bench.in_session, bench.vias, bench.cc, bench.memory):
            say(f"  {scenario.__name__} ...")
            rows += scenario()
    elapsed = (datetime.datetime.now() - started).total_seconds()
    others = (machine_busy() - busy_before) - (own_busy() - own_before)
    say("")
    for line in table(rows):
        say(line)
    say("")
    say(f"{started:%Y-%m-%d %H:%M}, {elapsed:.0f} s; other processes used "
        f"{max(others, 0) / (elapsed * (os.cpu_count() or 1)):.1%} of the CPU meanwhile; "
        f"load average after: {load()} (this run's own processes included)")
    say("ratio: how many times better minishell is (its rate over minimega's; minimega's "
        "time, CPU or memory over minishell's). Every reader's bytes checked, every command "
        "counted, for both.")
    say(f"minishell: {minishell}; minimega: {options.minimega or 'not measured'}. Through a "
        "daemon: -nostdin daemons, their own -pipe / -e / -attach clients; via CPU is the "
        "daemon's utime+stime from /proc/<pid>/stat over the run, children's (the cats) "
        "apart.")
    missed = [row.scenario for row in rows if row.met is False]
    say(f"NOT MET: {'; '.join(missed)}" if missed else "every target met")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small runs (a smoke test)")
    parser.add_argument("--minishell", type=Path,
                        help="an installed minishell (default: install into a fresh venv)")
    parser.add_argument("--minimega", type=Path,
                        help="a minimega 2.9 binary, built by hand from its release source")
    options = parser.parse_args()
    if options.minimega:
        options.minimega = executable(options.minimega, "--minimega").absolute()
    with tempfile.TemporaryDirectory(prefix="bench-all-venv-") as tmp:
        if options.minishell:
            minishell = executable(options.minishell, "--minishell").absolute()
        else:
            minishell = install_in_venv(Path(tmp) / "venv")
        python = interpreter_of(minishell)
        if Path(sys.executable).parent != Path(python).parent:
            # bench_read, bench_parse and the in-process via import minishell: go on
            # under the Python it is installed in.
            argv = [python, __file__, "--minishell", str(minishell)]
            argv += ["--quick"] * options.quick
            argv += ["--minimega", str(options.minimega)] if options.minimega else []
            child = subprocess.Popen(argv)
            try:
                status = child.wait()
            except KeyboardInterrupt:
                child.wait()  # it had the Ctrl-C too, and cleans up after itself
                raise
            if status:
                sys.exit(status)
            return
        run(options, minishell)


if __name__ == "__main__":
    run_main(main)
