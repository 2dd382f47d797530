#!/usr/bin/env python3
"""Commands per second inside one session: `read` of a 10,000-line script.

Two scripts: the issue's `pipe foo x` repeated, and `pipe foo <n>` with a
different message on every line (so no per-line cache can hide the parser).
Prints the median of several runs for each. Run: python3 bench/bench_read.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time

import trio

from minishell import kit
from minishell.app import warm_up
from minishell.plumber import Plumber
from minishell.session import Session

LINES = 10_000
RUNS = 7


async def commands_per_second(script: trio.Path) -> float:
    rates = []
    async with trio.open_nursery() as nursery:
        helper_dir = kit.bin_dir()
        session = Session(Plumber(nursery, helper_dir=helper_dir), nursery, hostname="bench",
                          files_dir="/tmp/minishell/files")
        for _ in range(RUNS):
            started = time.perf_counter()
            responses = await session.run_line(f"read {script}")
            elapsed = time.perf_counter() - started
            assert len(responses) == LINES and not any(r.error for r in responses)
            rates.append(LINES / elapsed)
            await session.run_line("clear history")
        await session.plumber.aclose()
        nursery.cancel_scope.cancel()
    return statistics.median(rates)


async def main() -> None:
    warm_up()  # as minishell does at start
    with tempfile.TemporaryDirectory() as folder:
        same = trio.Path(folder, "same.mm")
        await same.write_text("pipe foo x\n" * LINES)
        distinct = trio.Path(folder, "distinct.mm")
        await distinct.write_text("".join(f"pipe foo {n}\n" for n in range(LINES)))
        for label, script in (("pipe foo x", same), ("pipe foo <n>", distinct)):
            rate = await commands_per_second(script)
            print(f"read of {LINES} `{label}` lines: {rate:,.0f} commands/s "
                  f"(median of {RUNS}; target 40,000; minimega 2.9: 18,000)")
    sys.stdout.flush()


if __name__ == "__main__":
    trio.run(main)
