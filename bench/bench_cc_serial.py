#!/usr/bin/env python3
"""cc's transports side by side: `cc exec stdout=bar seq 1 N` to a `-pipe bar` reader,
from an agent on the unix socket and from one over a serial line, in the same run.

One `minishell -nostdin`; one `minishell-agent -family unix -parent <base>/cc`; one
VM stand-in (tests/vm_relay.py: a unix socket as qemu's `server=on`, relayed to a
pty) dialed with `cc serial`, and an agent on its pty (`-serial`). For each
transport and round, a fresh `minishell -pipe barN` reader is attached, the exec
is posted to that agent alone (`cc filter hostname=...`), and the time runs from
the post until the reader has every line. The reader's bytes must be exactly
`seq 1 N`'s, else the run fails. Printed: lines per second for each transport,
and the serial line's share of the unix socket's rate (the target is 0.5x or more).

    python3 bench/bench_cc_serial.py [--lines N] [--rounds R] [--quick]

with `minishell` and `minishell-agent` on PATH (e.g. the project's virtual
environment's bin folder first).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELAY = ROOT / "tests" / "vm_relay.py"
AGENTS = {"unix": "55555555-5555-5555-5555-555555555555",
          "serial": "66666666-6666-6666-6666-666666666666"}
DEADLINE = 30.0  # seconds for anything to come up


def say(text: str) -> None:
    print(text, flush=True)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > end:
            raise SystemExit(f"bench_cc_serial: {what} did not happen within {DEADLINE:g} s")
        time.sleep(0.05)


class Bench:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.base = folder / "base"
        # each process is terminated, then waited for, in the reverse order of starting
        self.processes = contextlib.ExitStack()
        self.start(["minishell", "-nostdin", "-base", str(self.base)])
        wait_for((self.base / "cc").exists, "the instance's cc socket")
        self.e(".annotate false")

    def start(self, argv: list[str], *, stdin: int = subprocess.DEVNULL,
              stdout: int | None = None) -> subprocess.Popen[bytes]:
        process = self.processes.enter_context(
            subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL))
        self.processes.callback(process.terminate)  # a process that has ended ignores it
        return process

    def e(self, command: str) -> str:
        done = subprocess.run(["minishell", "-base", str(self.base), "-e", command],
                              capture_output=True, text=True, check=False)
        if done.stderr:
            raise SystemExit(f"bench_cc_serial: {command}: {done.stderr.strip()}")
        return done.stdout

    def agent(self, name: str, *dial: str) -> None:
        self.start(["minishell-agent", *dial, "-path", str(self.folder / f"ccc-{name}"),
                    "-uuid", AGENTS[name], "-hostname", name, "-v=false"],
                   stdout=subprocess.DEVNULL)

    def up(self) -> None:
        socket_path = self.folder / "vm.sock"
        relay = self.start([sys.executable, str(RELAY), str(socket_path)], stdout=subprocess.PIPE)
        assert relay.stdout is not None
        pty = relay.stdout.readline().decode().strip()
        self.e(f"cc serial {socket_path}")
        wait_for(lambda: " dialed " in self.e("cc serial"), "the serial line dialed")
        self.agent("serial", "-serial", pty)
        self.agent("unix", "-family", "unix", "-parent", str(self.base / "cc"))
        wait_for(lambda: self.e("cc").split()[-1:] == ["2"], "both agents")

    def run(self, transport: str, lines: int, pipe: str) -> float:
        """Lines per second from the exec's post to the reader's last line."""
        want = b"".join(b"%d\n" % n for n in range(1, lines + 1))
        reader = self.start(["minishell", "-base", str(self.base), "-pipe", pipe],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        wait_for(lambda: self.e(f".columns readers .filter name=minimega//{pipe} pipe")
                 .split()[-1:] == ["1"], "the reader")
        self.e(f"cc filter hostname={transport}")
        assert reader.stdout is not None
        got = bytearray()
        started = time.monotonic()
        self.e(f"cc exec stdout={pipe} seq 1 {lines}")
        while len(got) < len(want):
            chunk = os.read(reader.stdout.fileno(), 1 << 20)
            if not chunk:
                break
            got += chunk
        elapsed = time.monotonic() - started
        assert reader.stdin is not None
        reader.stdin.close()
        reader.wait()
        if bytes(got) != want:
            raise SystemExit(f"bench_cc_serial: {transport}: the reader got {len(got)} bytes, "
                             f"not seq 1 {lines}'s {len(want)}, or not in order")
        return lines / elapsed

    def stop(self) -> None:
        self.processes.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="100,000 lines, one round")
    options = parser.parse_args()
    if options.quick:
        options.lines, options.rounds = 100_000, 1
    for program in ("minishell", "minishell-agent"):
        if shutil.which(program) is None:
            raise SystemExit(f"bench_cc_serial: {program} is not on PATH")
    with tempfile.TemporaryDirectory(prefix="bench-cc-serial-") as folder:
        bench = Bench(Path(folder))
        try:
            bench.up()
            rates: dict[str, list[float]] = {"unix": [], "serial": []}
            for round_number in range(options.rounds):
                for transport, found in rates.items():
                    rate = bench.run(transport, options.lines, f"bar{round_number}{transport}")
                    found.append(rate)
                    say(f"{transport:>6}: {options.lines:,} lines whole at {rate:,.0f} lines/s")
        finally:
            bench.stop()
    unix, serial = max(rates["unix"]), max(rates["serial"])
    say(f"best of {options.rounds}: unix socket {unix:,.0f} lines/s, serial {serial:,.0f} "
        f"lines/s: {serial / unix:.2f}x (target 0.5x)")
    return 0 if serial >= 0.5 * unix else 1


if __name__ == "__main__":
    sys.exit(main())
