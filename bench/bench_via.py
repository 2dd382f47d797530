#!/usr/bin/env python3
"""Messages through a pipe with `via cat`, to 1 and to 4 readers.

Three measurements, each with every reader checked to get every message
exactly once and in the order written:

- in-process (`one_run`): a Plumber in this process, no socket, no client
  processes: what is measured is the plumber and its via runs. One writer
  endpoint writes numbered lines in blocks of 100, as a `-pipe` client's reads
  arrive; 1 or 4 reader endpoints. CPU per message is this process's own
  (user + system; the `cat`s are children, shown beside it).
- through a daemon (`daemon_via`, with --minishell and/or --minimega): a real
  `minishell -nostdin` or minimega 2.9 daemon, a `-pipe` writer, `-pipe`
  readers; CPU per message is the daemon's own from /proc/<pid>/stat (utime +
  stime, all its threads, before and after), the same way for both daemons.
- the cost of one `cat` run from Python (`spawn_costs`): subprocess (vfork,
  and fork), and os.posix_spawn, one after another: wall time and this
  process's CPU per run, the floor of a via's cost in a Python daemon.

    python3 bench/bench_via.py [--quick] [--messages N] [--rounds R]
                               [--minishell PATH] [--minimega PATH]

(with the project installed, e.g. in its virtual environment)

minimega 2.9 on the reference machine (perf-reference.md): 501 / 201 msg/s
with 1 / 4 readers, 0.53 ms daemon CPU per via message.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trio
from bench_socket import (
    LINE,
    Daemon,
    attach_readers,
    check_copies,
    executable,
    numbered_lines,
    run_main,
    start_writer,
    wait_for_sizes,
)

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
    """In-process: msg/s, own CPU ms and children's CPU ms per message."""
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
            raise RuntimeError(f"a reader got {len(into)} messages, {missing} missing, "
                               "or out of order")
    return messages / elapsed, own * 1000 / messages, children * 1000 / messages


async def _reader_task(plumber: Plumber, count: int, into: list[bytes], *,
                       task_status: trio.TaskStatus[Reader] = trio.TASK_STATUS_IGNORED,
                       ) -> None:
    async with plumber.open_reader(PIPE) as reader:
        task_status.started(reader)
        await read_all(reader, count, into)


def in_process(messages: int, readers: int) -> tuple[float, float, float]:
    """one_run in a trio run of its own, for callers outside trio."""
    return trio.run(one_run, messages, readers)


def daemon_via(daemon: Daemon, folder: Path, messages: int,
               readers: int) -> tuple[float, float, float]:
    """Through a daemon: msg/s, and the daemon's own and its children's CPU ms per message.

    A `-pipe` writer feeds pipe vsrc, a pipeline carries it to pipe vshare with
    `via cat`, read by `readers` `-pipe` clients: so every message goes through
    the via once per reader (a `-pipe` client also reads the pipe it writes: on
    vsrc, its echo has no via). Timed from the writer's start to the last
    reader's last byte; the CPU over the same span.
    """
    daemon.command("pipe", "vshare", "via", "cat")
    daemon.command("plumb", "vsrc", "vshare")
    data_file = folder / "via-data"
    data_file.write_bytes(numbered_lines(messages))
    outputs = [folder / f"via{n}" for n in range(readers)]
    clients = attach_readers(daemon, "vshare", outputs)
    own, children = daemon.cpu_seconds()
    started = time.perf_counter()
    writer = start_writer(daemon, "vsrc", data_file)
    wait_for_sizes(outputs, [messages * LINE] * readers, timeout=600)
    elapsed = time.perf_counter() - started
    own_after, children_after = daemon.cpu_seconds()
    daemon.finish([writer, *clients])
    check_copies(outputs, data_file.read_bytes(), f"{daemon.name} via")
    data_file.unlink()
    daemon.command("clear", "plumb")
    daemon.command("clear", "pipe")
    return (messages / elapsed, (own_after - own) * 1000 / messages,
            (children_after - children) * 1000 / messages)


# -- what one `cat` run costs from Python -----------------------------------------
def _subprocess_cat(cat: str, message: bytes) -> bytes:
    done = subprocess.run([cat], input=message, capture_output=True, start_new_session=True,
                          check=True)
    return done.stdout


def _posix_spawn_cat(cat: str, message: bytes, env: dict[bytes, bytes]) -> bytes:
    """What the plumber does for a via, without trio: pipes, posix_spawn (glibc: clone
    with CLONE_VM | CLONE_VFORK), its own session, write, read to EOF, waitpid."""
    in_read, in_write = os.pipe2(os.O_CLOEXEC)
    out_read, out_write = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.posix_spawn(cat, [cat], env, setsid=True, file_actions=[
            (os.POSIX_SPAWN_DUP2, in_read, 0), (os.POSIX_SPAWN_DUP2, out_write, 1)])
    finally:
        os.close(in_read)
        os.close(out_write)
    os.write(in_write, message)
    os.close(in_write)
    parts = []
    while chunk := os.read(out_read, 65536):
        parts.append(chunk)
    os.close(out_read)
    os.waitpid(pid, 0)
    return b"".join(parts)


def spawn_costs(runs: int) -> dict[str, tuple[float, float]]:
    """µs of wall time and of this process's CPU per `cat` run, one run after another:
    subprocess.run as it is (vfork on Linux since 3.10), subprocess forced to fork,
    and os.posix_spawn."""
    cat = shutil.which("cat")
    if cat is None:
        raise RuntimeError("no cat on PATH")
    env = dict(os.environb)  # the plain dict posix_spawn reads in C
    message = b"%015d\n" % 0
    costs = {}
    ways: list[tuple[str, Callable[[], bytes]]] = [
        ("subprocess (vfork)", lambda: _subprocess_cat(cat, message)),
        ("subprocess (fork)", lambda: _subprocess_cat(cat, message)),
        ("posix_spawn", lambda: _posix_spawn_cat(cat, message, env))]
    for name, run in ways:
        # _USE_VFORK is CPython's own switch (3.11+); forcing fork shows what vfork saves.
        saved = getattr(subprocess, "_USE_VFORK", None)
        if name.endswith("(fork)"):
            if saved is None:
                continue
            vars(subprocess)["_USE_VFORK"] = False
        try:
            cpu = cpu_seconds(resource.RUSAGE_SELF)
            started = time.perf_counter()
            for _ in range(runs):
                if run() != message:
                    raise RuntimeError(f"{name}: cat's output differs")
            wall = time.perf_counter() - started
            cpu = cpu_seconds(resource.RUSAGE_SELF) - cpu
        finally:
            if saved is not None:
                vars(subprocess)["_USE_VFORK"] = saved
        costs[name] = (wall * 1e6 / runs, cpu * 1e6 / runs)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--messages", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--minishell", type=Path,
                        help="also through a `minishell -nostdin` daemon of this console script")
    parser.add_argument("--minimega", type=Path,
                        help="also through a minimega 2.9 daemon (built by hand from its source)")
    options = parser.parse_args()
    messages = options.messages or (200 if options.quick else 3000)
    rounds = options.rounds or (1 if options.quick else 3)
    print(f"via cat, {messages} messages of 16 bytes, {rounds} round(s) each")
    for readers in (1, 4):
        for _ in range(rounds):
            rate, own, children = in_process(messages, readers)
            print(f"  in-process Plumber, {readers} reader(s): {rate:7.0f} msg/s   "
                  f"own CPU {own:.3f} ms/msg   children {children:.3f} ms/msg", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-via-") as tmp:
        for program, minimega in ((options.minishell, False), (options.minimega, True)):
            if program is None:
                continue
            executable(program, "--minimega" if minimega else "--minishell")
            with Daemon(program, Path(tmp, "mm" if minimega else "ms"),
                        minimega=minimega) as daemon:
                for readers in (1, 4):
                    for _ in range(rounds):
                        rate, own, children = daemon_via(daemon, Path(tmp), messages, readers)
                        print(f"  {daemon.name} daemon, {readers} reader(s): {rate:7.0f} msg/s"
                              f"   daemon CPU {own:.3f} ms/msg   children {children:.3f} ms/msg",
                              flush=True)
    runs = 200 if options.quick else 2000
    for name, (wall, cpu) in spawn_costs(runs).items():
        print(f"  one cat run, {name:18}: {wall:6.0f} us wall, {cpu:5.0f} us own CPU")


if __name__ == "__main__":
    run_main(main)
