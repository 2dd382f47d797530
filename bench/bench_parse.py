#!/usr/bin/env python3
"""Parse speed: microseconds per line for 10,000 distinct `pipe foo <n>` lines.

All the lines share one shape, so after the first this measures the per-line
path (trim, lex, shape lookup, cached builder). Run: python3 bench/bench_parse.py
(`parse_speed` is what bench_all.py calls).
"""

from __future__ import annotations

import statistics
import time

from minishell.commands.registry import registry

LINES = [f"pipe foo {n}" for n in range(10_000)]
RUNS = 7


def microseconds_per_line() -> float:
    parse = registry().parse
    started = time.perf_counter()
    for line in LINES:
        parse(line)
    return (time.perf_counter() - started) / len(LINES) * 1e6


def parse_speed() -> float:
    """Median µs per line over RUNS passes."""
    registry().parse("pipe")  # builds the grammar once, outside the timing
    return statistics.median(microseconds_per_line() for _ in range(RUNS))


def main() -> None:
    print(f"parse of {len(LINES):,} distinct `pipe foo <n>` lines: "
          f"{parse_speed():.2f} µs/line (median of {RUNS})")


if __name__ == "__main__":
    main()
