#!/usr/bin/env python3
"""Commands per second inside one session: `read` of a 10,000-line script.

Two scripts: the issue's `pipe foo x` repeated, and `pipe foo <n>` with a
different message on every line (so no per-line cache can hide the parser).
Prints the median of several runs for each. Run: python3 bench/bench_read.py
(`read_rates` is what bench_all.py calls).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import trio

from minishell.app import warm_up
from minishell.session import open_session

LINES = 10_000
RUNS = 7
# label -> line n of the script
SCRIPTS: dict[str, Callable[[int], str]] = {"pipe foo x": lambda n: "pipe foo x\n",
                                            "pipe foo <n>": lambda n: f"pipe foo {n}\n"}


async def commands_per_second(script: trio.Path, base: str, runs: int) -> float:
    rates = []
    async with open_session(hostname="bench", base=base) as session:
        for _ in range(runs):
            started = time.perf_counter()
            replies = await session.run_line(f"read {script}")
            elapsed = time.perf_counter() - started
            if len(replies) != LINES or any(reply.failed for reply in replies):
                raise RuntimeError(f"read of {script}: not every command ran")
            rates.append(LINES / elapsed)
            await session.run_line("clear history")
    return statistics.median(rates)


async def _rates(runs: int) -> dict[str, float]:
    rates = {}
    with tempfile.TemporaryDirectory(prefix="bench-read-") as folder:
        for label, line in SCRIPTS.items():
            script = trio.Path(folder, "script.mm")
            await script.write_text("".join(line(n) for n in range(LINES)))
            rates[label] = await commands_per_second(script, folder, runs)
    return rates


def read_rates(runs: int = RUNS) -> dict[str, float]:
    """Median commands/s of each script's `read`, by script."""
    warm_up()  # as minishell does at start
    return trio.run(_rates, runs)


def main() -> None:
    for label, rate in read_rates().items():
        print(f"read of {LINES} `{label}` lines: {rate:,.0f} commands/s "
              f"(median of {RUNS}; target 40,000; minimega 2.9: 18,000)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
