#!/usr/bin/env python3
"""Messages through a pipe with `via cat`, to 1 and to 4 readers.

An in-process Plumber (no socket, no client processes: what is measured is
the plumber and its via runs), one writer endpoint writing numbered lines in
blocks of 100, as a `-pipe` client's reads arrive, and 1 or 4 reader
endpoints. Every reader must get every message exactly once and in the order
written, else the run fails. Printed per run: messages per second (written
until the last reader has the last one), and the process's own CPU time per
message (user + system, children excluded: the `cat`s are theirs), the
figure comparable to a daemon's; the children's CPU per message beside it.

    python3 bench/bench_via.py [--quick] [--messages N] [--rounds R]

(with the project installed, e.g. in its virtual environment)

minimega 2.9 on the reference machine (perf-reference.md): 501 / 201 msg/s
with 1 / 4 readers, 0.53 ms daemon CPU per via message.
"""

from __future__ import annotations

import argparse
import resource
import time

import trio

from minishell.plumber import Plumber, Reader

BLOCK = 100  # lines per write, as a client's socket reads would bring them
PIPE = "minimega//bench"


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def expected(count: int) -> list[bytes]:
    return [b"%015d\n" % index for index in range(count)]


async def read_all(reader: Reader, count: int, into: list[bytes]) -> None:
    while len(into) < count:
        chunk = await reader.receive()
        into += chunk.data.splitlines(keepends=True)


async def one_run(messages: int, readers: int) -> tuple[float, float, float]:
    """msg/s, own CPU ms and children's CPU ms per message."""
    lines = expected(messages)
    got: list[list[bytes]] = [[] for _ in range(readers)]
    async with trio.open_nursery() as nursery:
        plumber = Plumber(nursery)
        plumber.set_via(PIPE, ("cat",))
        async with trio.open_nursery() as readings:
            opened = []
            for into in got:
                reader = await readings.start(_reader_task, plumber, messages, into)
                opened.append(reader)
            own, children = cpu_seconds(resource.RUSAGE_SELF), cpu_seconds(
                resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            async with plumber.open_writer(PIPE) as writer:
                for first in range(0, messages, BLOCK):
                    await writer.write_lines(b"".join(lines[first:first + BLOCK]))
        elapsed = time.perf_counter() - started
        own = cpu_seconds(resource.RUSAGE_SELF) - own
        children = cpu_seconds(resource.RUSAGE_CHILDREN) - children
        await plumber.aclose()
    for into in got:
        if into != lines:
            missing = len(set(lines) - set(into))
            raise SystemExit(f"a reader got {len(into)} messages, {missing} missing, "
                             "or out of order")
    return messages / elapsed, own * 1000 / messages, children * 1000 / messages


async def _reader_task(plumber: Plumber, count: int, into: list[bytes], *,
                       task_status: trio.TaskStatus[Reader] = trio.TASK_STATUS_IGNORED,
                       ) -> None:
    async with plumber.open_reader(PIPE) as reader:
        task_status.started(reader)
        await read_all(reader, count, into)


async def main(messages: int, rounds: int) -> None:
    print(f"via cat, {messages} messages of 16 bytes, in-process Plumber, "
          f"{rounds} round(s) each")
    for readers in (1, 4):
        for _ in range(rounds):
            rate, own, children = await one_run(messages, readers)
            print(f"  {readers} reader(s): {rate:7.0f} msg/s   own CPU {own:.3f} ms/msg   "
                  f"children {children:.3f} ms/msg", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--messages", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    arguments = parser.parse_args()
    count = arguments.messages or (200 if arguments.quick else 3000)
    trio.run(main, count, arguments.rounds or (1 if arguments.quick else 3))
