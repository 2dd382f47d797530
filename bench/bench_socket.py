#!/usr/bin/env python3
"""The socket data path, measured end to end with real `minishell -pipe` clients,
side by side with plain Unix (socat over a Unix socket) in the same run.

Every figure of issue 3: stream 1 -> 1, fan-out to 64, round-robin and random
over 4 readers, latency at low rate, start-up of `-pipe` and `-e`, and memory
with 1000 idle attachments; and the request path: commands per second through
`-attach` with a script on stdin, and through one `-e` per command. Every byte
every reader receives is checked: no message may be lost, duplicated or
reordered; every command is counted by the pipe it writes to.

    python3 bench/bench_socket.py [--quick] [--minishell PATH]

Without --minishell it installs the project into a fresh virtual environment
(the installed `minishell` command is what users run, and what start-up is
measured on; its Python front end, minishell-py, is timed beside it).
socat is installed with apt-get if missing (root only; else the baseline is
skipped). --quick uses smaller runs for a smoke test.

The scenarios are functions of a `Daemon`, which is either `minishell -nostdin`
or real minimega 2.9 with its own clients: bench_all.py runs both.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
LINE = 16  # bytes per message, newline included


def numbered_lines(count: int, start: int = 0) -> bytes:
    """`count` distinct 16-byte lines: a zero-padded number and a newline."""
    return b"".join(b"%015d\n" % n for n in range(start, start + count))


def say(text: str) -> None:
    print(text, flush=True)


# -- the programs under test ----------------------------------------------------
def install_in_venv(folder: Path) -> Path:
    say(f"installing minishell into a fresh virtual environment in {folder} ...")
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    subprocess.run([str(folder / "bin" / "pip"), "install", "-q", str(ROOT)], check=True)
    return folder / "bin" / "minishell"


def find_socat() -> str | None:
    socat = shutil.which("socat")
    if socat is None and os.geteuid() == 0:
        say("installing socat for the plain-Unix baseline ...")
        subprocess.run(["apt-get", "install", "-y", "-q", "socat"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        socat = shutil.which("socat")
    if socat is None:
        say("socat is not available: the plain-Unix baselines are skipped")
    return socat


def interpreter_of(minishell: Path) -> str:
    """The Python that minishell runs on: the first line of minishell-py, installed
    beside it (pip writes the environment's interpreter there)."""
    front_end = minishell.with_name("minishell-py")
    with contextlib.suppress(OSError):
        first = front_end.read_bytes().split(b"\n", 1)[0]
        if first.startswith(b"#!"):
            return os.fsdecode(first[2:].strip())
    return sys.executable


def executable(path: Path, what: str) -> Path:
    """`path`, or SystemExit with one line saying what is wrong with it."""
    if not path.is_file():
        raise SystemExit(f"{what}: no such file: {path}")
    if not os.access(path, os.X_OK):
        raise SystemExit(f"{what}: not executable: {path}")
    return path


class Daemon:
    """A daemon in its own base folder, and every client process started against it.

    `minimega` False: `minishell -nostdin`. True: real minimega 2.9, the same
    scenarios through its own clients; its meshage listens on a port of the
    kernel's choosing (-port 0) in a context of its own, so that it never
    meets another minimega on this machine, and its files stay in the base.
    Every client is kept here so that stop() reaps whatever a failed or
    interrupted scenario left running.
    """

    def __init__(self, program: Path, base: Path, *, minimega: bool = False) -> None:
        self.minishell = str(program)  # the client program (the name predates minimega)
        self.name = "minimega" if minimega else "minishell"
        self.base = str(base)
        # minimega 2.9's -pipe client ends with a FATAL and exit status 1 when its
        # stdin ends (perf-reference.md); its bytes are checked all the same.
        self.eof_status = {0, 1} if minimega else {0}
        self._client_stderr = subprocess.DEVNULL if minimega else None
        self.clients: list[subprocess.Popen[bytes]] = []
        base.mkdir(parents=True, exist_ok=True)
        argv = [self.minishell, "-nostdin", "-base", self.base]
        if minimega:
            argv += ["-filepath", str(base / "files"), "-port", "0",
                     "-context", f"bench-{os.getpid()}", "-degree", "0"]
        self._log_path = base.parent / f"{base.name}.log"
        self._log = open(self._log_path, "wb")  # noqa: SIM115 - closed by stop()
        # A process group of its own: a Ctrl-C reaches the bench (and the clients),
        # which then stops the daemon itself, after its clients, in stop().
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                        stderr=subprocess.STDOUT, process_group=0)
        try:
            self.wait_for(self._started, f"{self.name}'s socket", timeout=30)
        except BaseException:
            self.stop()
            raise

    def _started(self) -> bool:
        if self.process.poll() is not None:
            log = self._log_path.read_text(errors="replace").strip().splitlines()
            raise RuntimeError(f"the {self.name} daemon exited {self.process.returncode}: "
                               f"{log[-1] if log else 'no output'}")
        return os.path.exists(os.path.join(self.base, "minimega"))

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def command(self, *words: str) -> str:
        done = subprocess.run([self.minishell, "-base", self.base, "-e", *words],
                              capture_output=True, text=True, check=True, timeout=60)
        return done.stdout

    def readers(self, pipe: str) -> int:
        listing = self.command(".annotate", "false", ".headers", "false", ".columns",
                               "name,readers", ".filter", f"name=minimega//{pipe}", "pipe")
        return int(listing.split("|")[1]) if listing.strip() else 0

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: timed out waiting for {what}")
            time.sleep(0.005)

    def client(self, *args: str, stdin: int | IO[Any] | None,
               stdout: int | IO[Any] | None) -> subprocess.Popen[bytes]:
        # minimega's clients print their FATAL at EOF on stderr: expected, and
        # their exit status and every byte they carry are checked regardless.
        process = subprocess.Popen([self.minishell, "-base", self.base, *args],
                                   stdin=stdin, stdout=stdout, stderr=self._client_stderr)
        self.clients.append(process)
        return process

    def attach(self, pipe: str, stdout: int | Path) -> subprocess.Popen[bytes]:
        """A `-pipe` client whose stdin we keep open (like `tail -f /dev/null | ...`)."""
        with open(stdout, "wb") if isinstance(stdout, Path) else nullcontext(stdout) as out:
            return self.client("-pipe", pipe, stdin=subprocess.PIPE, stdout=out)

    def rss_kib(self) -> int:
        return rss_kib(self.process.pid)

    def cpu_seconds(self) -> tuple[float, float]:
        """The daemon's own CPU time, all its threads, and its reaped children's (the vias')."""
        return cpu_seconds(self.process.pid)

    def finish(self, clients: list[subprocess.Popen[bytes]]) -> None:
        """EOF on their stdin: each client leaves and must exit as its kind does at EOF."""
        for client in clients:
            if client.stdin is not None:
                client.stdin.close()
        for client in clients:
            status = client.wait(timeout=60)
            if client.stdout is not None:
                client.stdout.close()
            if status not in self.eof_status:
                raise RuntimeError(f"a {self.name} -pipe client exited {status}")
        self.clients = [client for client in self.clients if client.returncode is None]

    def stop(self) -> None:
        """Every client and the daemon stopped and reaped, on every way out."""
        for client in self.clients:
            if client.poll() is None:
                client.kill()
            client.wait()
            for stream in (client.stdin, client.stdout):
                if stream is not None:
                    stream.close()
        self.clients.clear()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise RuntimeError(f"no Pss for {pid}")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """Seconds of CPU: utime + stime of /proc/<pid>/stat (the process, all its threads)
    and cutime + cstime (its children it has waited for). Fields 14-17, counted after
    the parenthesised command name, which may hold spaces."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def wait_for_sizes(files: list[Path], sizes: list[int], timeout: float = 120) -> float:
    """Seconds until every file has its size (what its reader must receive)."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    pending = list(zip(files, sizes, strict=True))
    while pending:
        pending = [(f, s) for f, s in pending if f.stat().st_size < s]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} readers still short after {timeout} s")
        time.sleep(0.001)
    return time.perf_counter() - started


# -- the scenarios -----------------------------------------------------------------
def attach_readers(daemon: Daemon, pipe: str, outputs: list[Path]) -> list[subprocess.Popen[bytes]]:
    """One `-pipe` reader per output file, returned once the daemon counts them all."""
    clients = [daemon.attach(pipe, out) for out in outputs]
    daemon.wait_for(lambda: daemon.readers(pipe) == len(outputs), "the readers")
    return clients


def start_writer(daemon: Daemon, pipe: str, data_file: Path) -> subprocess.Popen[bytes]:
    """A `-pipe` writer fed the whole data file (its own echo goes nowhere)."""
    with open(data_file, "rb") as data:
        return daemon.client("-pipe", pipe, stdin=data, stdout=subprocess.DEVNULL)


def check_copies(outputs: list[Path], expected: bytes, what: str) -> None:
    """Every reader got exactly the bytes written: nothing lost, duplicated or reordered."""
    for out in outputs:
        if out.read_bytes() != expected:
            raise RuntimeError(f"{what}: {out.name}: bytes lost, duplicated or reordered")
        out.unlink()


def stream(daemon: Daemon, folder: Path, data_file: Path, lines: int,
           readers: int) -> float:
    """Messages/s from one `-pipe` writer to `readers` `-pipe` readers; all bytes checked."""
    outputs = [folder / f"out{n}" for n in range(readers)]
    clients = attach_readers(daemon, "stream", outputs)
    started = time.perf_counter()
    writer = start_writer(daemon, "stream", data_file)
    wait_for_sizes(outputs, [lines * LINE] * readers)
    elapsed = time.perf_counter() - started
    daemon.finish([writer, *clients])
    check_copies(outputs, data_file.read_bytes(), f"{daemon.name} stream")
    daemon.command("clear", "pipe", "stream")
    return lines / elapsed


def shared(daemon: Daemon, folder: Path, data_file: Path, lines: int, mode: str,
           readers: int) -> tuple[float, list[int]]:
    """`mode` over `readers`: the writer feeds pipe src, a pipeline carries it to
    pipe share (so the writer's own echo is not one of share's readers)."""
    daemon.command("pipe", "share", "mode", mode)
    daemon.command("plumb", "src", "share")
    outputs = [folder / f"share{n}" for n in range(readers)]
    clients = attach_readers(daemon, "share", outputs)
    started = time.perf_counter()
    writer = start_writer(daemon, "src", data_file)
    deadline = time.monotonic() + 120
    while sum(out.stat().st_size for out in outputs) < lines * LINE:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{daemon.name} {mode}: messages missing after 120 s")
        time.sleep(0.001)
    elapsed = time.perf_counter() - started
    daemon.finish([writer, *clients])
    seen = bytearray(lines)
    counts = []
    for out in outputs:
        received = [int(line) for line in out.read_bytes().split(b"\n")[:-1]]
        if received != sorted(received):
            raise RuntimeError(f"{daemon.name} {mode}: {out.name} got messages out of order")
        for number in received:
            seen[number] += 1
        counts.append(len(received))
        out.unlink()
    if seen.count(1) != lines:
        raise RuntimeError(f"{daemon.name} {mode}: messages lost or duplicated")
    daemon.command("clear", "plumb")
    daemon.command("clear", "pipe")
    return lines / elapsed, counts


def latency(daemon: Daemon, samples: int) -> tuple[float, float]:
    """p50 and p99 in µs, one message at a time (1 ms apart), writer -> reader."""
    reader = daemon.client("-pipe", "lat", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    daemon.wait_for(lambda: daemon.readers("lat") == 1, "the reader")
    writer = daemon.client("-pipe", "lat", stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    daemon.wait_for(lambda: daemon.readers("lat") == 2, "the writer")
    result = measure_latency(writer, reader, samples, lambda: daemon.finish([reader, writer]))
    daemon.command("clear", "pipe", "lat")
    return result


def measure_latency(writer: subprocess.Popen[bytes], reader: subprocess.Popen[bytes],
                    samples: int, finish: Callable[[], None]) -> tuple[float, float]:
    assert writer.stdin is not None and reader.stdout is not None
    sent: dict[int, int] = {}
    delays: list[float] = []
    stdout = reader.stdout

    def receive() -> None:
        for _ in range(samples):
            line = stdout.readline()
            if not line:
                return
            now = time.perf_counter_ns()
            delays.append((now - sent[int(line)]) / 1000)

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    for number in range(samples):
        sent[number] = time.perf_counter_ns()
        os.write(writer.stdin.fileno(), b"%015d\n" % number)
        time.sleep(0.001)
    receiver.join(timeout=30)
    finish()
    if len(delays) != samples:
        raise RuntimeError("latency: messages lost")
    cuts = statistics.quantiles(delays, n=100)
    return cuts[49], cuts[98]


def median_ms(argv: list[str], stdin: bytes | None, runs: int,
              ok: frozenset[int] | set[int] = frozenset({0})) -> float:
    """Median wall-clock ms of `runs` runs of argv, each of which must exit with a
    status in `ok`."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, check=False, timeout=60)
        times.append((time.perf_counter() - started) * 1000)
        if done.returncode not in ok:
            raise RuntimeError(f"{' '.join(argv)}: exit status {done.returncode}: "
                               f"{done.stderr.decode(errors='replace').strip()[-200:]}")
    return statistics.median(times)


def startup(daemon: Daemon, runs: int, program: str | None = None) -> tuple[float, float]:
    """Median ms of `echo hi | <program> -pipe start` and `<program> -e pipe` (program:
    the daemon's client unless given, e.g. minishell's Python front end)."""
    command = program or daemon.minishell
    pipe_ms = median_ms([command, "-base", daemon.base, "-pipe", "start"], b"hi\n", runs,
                        daemon.eof_status)
    e_ms = median_ms([command, "-base", daemon.base, "-e", "pipe"], None, runs)
    daemon.command("clear", "pipe", "start")
    return pipe_ms, e_ms


def baseline_startup(runs: int, python: str) -> tuple[float, float]:
    """Median ms of `/bin/true` and of `python -c pass` (what no Python client beats)."""
    return median_ms(["/bin/true"], None, runs), median_ms([python, "-c", "pass"], None, runs)


def pipe_count(daemon: Daemon, pipe: str) -> int:
    listing = daemon.command(".annotate", "false", ".headers", "false", ".columns", "count",
                             ".filter", f"name=minimega//{pipe}", "pipe")
    return int(listing) if listing.strip() else 0


def attached_commands(daemon: Daemon, folder: Path, count: int) -> float:
    """Commands/s of `<client> -attach < script` (no terminal: minishell sends the
    commands ahead of their replies), start-up included: `count` writes, all counted
    by the pipe. minimega's -attach prints a prompt per command; minishell's
    prints nothing unless a command fails."""
    script = folder / "script"
    script.write_bytes(b"pipe attached x\n" * count)
    with open(script, "rb") as stdin:
        started = time.perf_counter()
        done = subprocess.run([daemon.minishell, "-base", daemon.base, "-attach"], stdin=stdin,
                              capture_output=True, check=True, timeout=300)
        elapsed = time.perf_counter() - started
    script.unlink()
    silent = daemon.name == "minimega" or not (done.stdout or done.stderr)
    if not silent or pipe_count(daemon, "attached") != count:
        raise RuntimeError(f"{daemon.name} -attach: not every command ran: "
                           f"{done.stderr[-200:]!r}")
    daemon.command("clear", "pipe", "attached")
    return count / elapsed


def commands_per_call(daemon: Daemon, count: int) -> float:
    """Commands/s with one `<client> -e pipe ...` process each, run one after another."""
    started = time.perf_counter()
    for _ in range(count):
        subprocess.run([daemon.minishell, "-base", daemon.base, "-e", "pipe", "called", "x"],
                       stdout=subprocess.DEVNULL, check=True, timeout=30)
    elapsed = time.perf_counter() - started
    if pipe_count(daemon, "called") != count:
        raise RuntimeError(f"{daemon.name} -e: not every command ran")
    daemon.command("clear", "pipe", "called")
    return count / elapsed


def read_commands(daemon: Daemon, folder: Path, count: int) -> float:
    """Commands/s of `<client> -e read script` with `count` writes in the script: the
    daemon's session speed, one client start-up included; every write counted."""
    script = folder / "read.mm"
    script.write_bytes(b"pipe readrate x\n" * count)
    started = time.perf_counter()
    subprocess.run([daemon.minishell, "-base", daemon.base, "-e", "read", str(script)],
                   stdout=subprocess.DEVNULL, check=True, timeout=300)
    elapsed = time.perf_counter() - started
    script.unlink()
    if pipe_count(daemon, "readrate") != count:
        raise RuntimeError(f"{daemon.name} read: not every command ran")
    daemon.command("clear", "pipe", "readrate")
    return count / elapsed


def idle_attachments(daemon: Daemon, count: int) -> tuple[float, int, int]:
    """Daemon KiB per attachment, and one client's RSS and PSS in KiB."""
    before = daemon.rss_kib()
    clients = [daemon.attach("idle", subprocess.DEVNULL) for _ in range(count)]
    daemon.wait_for(lambda: daemon.readers("idle") == count, "the attachments", timeout=300)
    growth = (daemon.rss_kib() - before) / count
    rss = statistics.median(rss_kib(c.pid) for c in clients[:50])
    pss = statistics.median(pss_kib(c.pid) for c in clients[:50])
    daemon.finish(clients)
    daemon.command("clear", "pipe", "idle")
    return growth, int(rss), int(pss)


# -- the plain-Unix baseline ----------------------------------------------------
@contextmanager
def socat_listener(socat: str, path: Path, out: Path | int) -> Iterator[subprocess.Popen[bytes]]:
    with open(out, "wb") if isinstance(out, Path) else nullcontext(out) as sink:
        listener = subprocess.Popen([socat, "-u", f"UNIX-LISTEN:{path}", "STDOUT"],
                                    stdout=sink)
    try:
        deadline = time.monotonic() + 10
        while not path.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("socat did not listen")
            time.sleep(0.001)
        yield listener
        listener.wait(timeout=60)
    finally:
        if listener.poll() is None:
            listener.kill()
        listener.wait()
        if listener.stdout is not None:
            listener.stdout.close()


def socat_stream(socat: str, folder: Path, data_file: Path, lines: int) -> float:
    out = folder / "socat.out"
    path = folder / "socat.sock"
    with socat_listener(socat, path, out):
        started = time.perf_counter()
        subprocess.run([socat, "-u", f"FILE:{data_file}", f"UNIX-CONNECT:{path}"], check=True)
        wait_for_sizes([out], [lines * LINE])
        elapsed = time.perf_counter() - started
    check_copies([out], data_file.read_bytes(), "socat")
    return lines / elapsed


def socat_latency(socat: str, folder: Path, samples: int) -> tuple[float, float]:
    path = folder / "socat-lat.sock"
    with socat_listener(socat, path, subprocess.PIPE) as reader:
        writer = subprocess.Popen([socat, "-u", "STDIN", f"UNIX-CONNECT:{path}"],
                                  stdin=subprocess.PIPE)
        try:
            def finish() -> None:
                assert writer.stdin is not None
                writer.stdin.close()
                writer.wait(timeout=10)

            result = measure_latency(writer, reader, samples, finish)
        finally:
            if writer.poll() is None:
                writer.kill()
            writer.wait()
    return result


# -- the work folder ---------------------------------------------------------------
@contextmanager
def work_folder(fallback: Path) -> Iterator[Path]:
    """A folder in memory (/dev/shm) when there is one, for the readers' output files,
    so that a disk does not set the pace; removed on the way out."""
    if not Path("/dev/shm").is_dir():
        yield fallback
        return
    work = Path(tempfile.mkdtemp(prefix="bench-", dir="/dev/shm"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def raise_fd_limit() -> None:
    """1000 clients' pipes need more descriptors than the usual soft limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- the report --------------------------------------------------------------------
def bench_options(doc: str) -> argparse.Namespace:
    """--quick and --minishell, the options of every bench run on its own."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small runs (a smoke test)")
    parser.add_argument("--minishell", type=Path, help="use this console script")
    return parser.parse_args()


def main() -> None:
    options = bench_options(__doc__)
    raise_fd_limit()
    scale = 10 if options.quick else 1
    stream_lines = 10_000_000 // scale
    fan_lines = 500_000 // scale
    shared_lines = 2_000_000 // scale
    attachments = 1000 // scale
    commands = 20_000 // scale

    with tempfile.TemporaryDirectory(prefix="minishell-bench-") as tmp:
        folder = Path(tmp)
        if options.minishell:
            minishell = executable(options.minishell, "--minishell")
        else:
            minishell = install_in_venv(folder / "venv")
        socat = find_socat()
        results: list[tuple[str, str, str, str]] = []
        with work_folder(folder) as work, Daemon(minishell, folder / "base") as daemon:
            data = work / "data"
            data.write_bytes(numbered_lines(stream_lines))
            rate = stream(daemon, work, data, stream_lines, readers=1)
            base = socat_stream(socat, work, data, stream_lines) if socat else None
            results.append(("stream 1 -> 1, 16 B lines", f"{rate / 1e6:.2f}M msg/s",
                            f"socat {base / 1e6:.1f}M lines/s ({rate / base:.2f}x)"
                            if base else "-", "6M msg/s and 0.3x socat; minimega 61k"))
            data.write_bytes(numbered_lines(fan_lines))
            rate = stream(daemon, work, data, fan_lines, readers=64)
            results.append(("fan-out to 64 readers", f"{rate * 64 / 1e6:.2f}M deliveries/s",
                            "-", "5M deliveries/s; minimega 42k"))
            data.write_bytes(numbered_lines(shared_lines))
            for mode in ("round-robin", "random"):
                rate, counts = shared(daemon, work, data, shared_lines, mode, readers=4)
                spread = max(abs(c - shared_lines / 4) for c in counts) / (shared_lines / 4)
                results.append((f"{mode}, 4 readers", f"{rate / 1e6:.2f}M msg/s",
                                f"split {counts} (max {spread:.2%} off even)",
                                "1M msg/s, within 1%; minimega 30-33k"))
            p50, p99 = latency(daemon, 2000 // scale)
            base_lat = socat_latency(socat, work, 2000 // scale) if socat else None
            results.append(("latency p50 / p99", f"{p50:.0f} / {p99:.0f} us",
                            f"socat {base_lat[0]:.0f} / {base_lat[1]:.0f} us"
                            if base_lat else "-", "250 / 500 us; minimega 188 / 369"))
            runs = 40 // min(scale, 4)
            compiled = startup(daemon, runs)
            front_end = startup(daemon, runs, str(minishell.with_name("minishell-py")))
            true_ms, python_ms = baseline_startup(runs, interpreter_of(minishell))
            baseline = f"/bin/true {true_ms:.1f} ms, python -c pass {python_ms:.1f} ms"
            for index, scenario in enumerate(("echo hi | minishell -pipe foo",
                                              "minishell -e pipe")):
                results.append((scenario, f"{compiled[index]:.1f} ms median"
                                f" (minishell-py {front_end[index]:.1f})",
                                baseline, "12 ms; minimega 17.4"))
            rate = attached_commands(daemon, work, commands)
            results.append((f"-attach < {commands} writes", f"{rate / 1000:.1f}k commands/s",
                            "-", "16k (2x minimega); minimega 8.0k"))
            rate = commands_per_call(daemon, commands // 100)
            results.append((f"{commands // 100} x minishell -e", f"{rate:.0f} commands/s",
                            "-", "minimega 57 (17.4 ms each)"))
            growth, rss, pss = idle_attachments(daemon, attachments)
            results.append((f"{attachments} idle -pipe attachments",
                            f"daemon +{growth:.1f} KiB each; client RSS {rss / 1024:.1f} MB,"
                            f" PSS {pss / 1024:.1f} MB", "-",
                            "10 KiB, 4 MB; minimega +9 KiB, 13.4 MB"))
    say("")
    say(f"{'scenario':32} | {'minishell':40} | {'plain Unix, same run':38} | target")
    for row in results:
        say(f"{row[0]:32} | {row[1]:40} | {row[2]:38} | {row[3]}")
    say("every message checked: none lost, duplicated or reordered; every command counted")


def run_main(main: Callable[[], None]) -> None:
    """main(), with the benches' own failures and Ctrl-C as one line each (every
    process and folder is cleaned up by then, on the way out of main)."""
    try:
        main()
    except BaseException as error:
        # trio hands a Ctrl-C that lands in a nursery over inside an exception group
        if isinstance(error, KeyboardInterrupt) or (
                isinstance(error, BaseExceptionGroup) and error.subgroup(KeyboardInterrupt)):
            sys.exit("interrupted")
        if isinstance(error, (RuntimeError, subprocess.CalledProcessError,
                              subprocess.TimeoutExpired)):
            sys.exit(f"{Path(sys.argv[0]).name}: {error}")
        raise


if __name__ == "__main__":
    run_main(main)
