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

from minishell.app import warm_up
from minishell.session import open_session

LINES = 10_000
RUNS = 7


async def commands_per_second(script: trio.Path) -> float:
    rates = []
    async with open_session(hostname="bench", base="/tmp/minishell") as session:
        for _ in range(RUNS):
            started = time.perf_counter()
            replies = await session.run_line(f"read {script}")
            elapsed = time.perf_counter() - started
            assert len(replies) == LINES and not any(reply.failed for reply in replies)
            rates.append(LINES / elapsed)
            await session.run_line("clear history")
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
