#!/usr/bin/env python3
"""The conformance transcripts, replayed again and again while every core is busy.

Listings right after writes must be settled even when the machine is loaded
(minishell waits for a write's delivery, where minimega's transcripts sleep).
This keeps one CPU hog per core running and replays the corpus ROUNDS times
(default 10), each round two ways:

- `../shared/conformance/run`: `minishell -replay`, the way CI runs it;
- with `--minitest PATH` (minimega's own minitest, built by hand from its 2.9
  source; never part of this repository): minitest over the control socket of
  a `minishell -nostdin` daemon, as minimega's test suite drives minimega.

Prints each round's result; exits 0 only if every round passed.
Run: python3 bench/conformance_under_load.py [--rounds N] [--minitest PATH]
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"


def start_hogs() -> list[subprocess.Popen[bytes]]:
    """One busy loop per core, at the same priority as everything else."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(os.cpu_count() or 2)]


def replay() -> tuple[bool, str]:
    done = subprocess.run([str(CONFORMANCE / "run")], capture_output=True, text=True,
                          check=False, timeout=900)
    lines = done.stdout.strip().splitlines()
    return done.returncode == 0, "\n".join(line for line in lines
                                           if line.startswith(("got != want", "conformance:"))
                                           ) or lines[-1]


def minitest(binary: str) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory() as folder:
        base, tests = Path(folder, "base"), Path(folder, "tests")
        shutil.copytree(CONFORMANCE, tests, ignore=shutil.ignore_patterns("run", "*.md"))
        daemon = subprocess.Popen(["minishell", "-nostdin", "-hostname", "vm", "-base", str(base)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not (base / "minimega").exists():
                if time.monotonic() > deadline:
                    return False, "the daemon did not start"
                time.sleep(0.05)
            subprocess.run([binary, "-base", str(base), "-dir", str(tests)],
                           capture_output=True, check=False, timeout=900)
        finally:
            daemon.terminate()
            daemon.wait()
        failed = [want.stem for want in sorted(tests.glob("*.want"))
                  if not want.with_suffix(".got").exists()
                  or not filecmp.cmp(want, want.with_suffix(".got"), shallow=False)]
        return not failed, f"failed: {' '.join(failed)}" if failed else "all passed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--minitest", metavar="PATH", help="minimega's minitest binary")
    options = parser.parse_args()
    if not (CONFORMANCE / "run").exists():
        print(f"no conformance corpus at {CONFORMANCE}", file=sys.stderr)
        return 2
    hogs = start_hogs()
    ok = True
    try:
        for round_number in range(1, options.rounds + 1):
            passed, summary = replay()
            print(f"round {round_number} replay:   {summary}", flush=True)
            ok &= passed
            if options.minitest:
                passed, summary = minitest(options.minitest)
                print(f"round {round_number} minitest: {summary}", flush=True)
                ok &= passed
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    print("every round passed" if ok else "SOME ROUNDS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
