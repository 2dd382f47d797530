"""The mesh's speed, beside plain nats-py in the same run; every byte is checked.

    python3 bench/bench_mesh.py [--lines N] [--only SCENARIO]... [--minishell PATH]

Starts real `minishell -mesh -nostdin` nodes on loopback (each with its own
nats-server), real `-pipe` clients (the `minishell` command users run, the one
installed beside this Python unless --minishell says which; its Python front
end if none is), and measures:
- plain nats-py through one local nats-server: 16-byte lines, one per NATS
  message and packed into 64 KiB messages (the ceiling the mesh is held to);
- stream across two nodes: a `-pipe` writer on one, a `-pipe` reader on the other;
- fan-out: a writer on node 1, 4 readers on each of 3 nodes;
- round-robin over readers on 3 nodes (the split);
- latency across nodes at 100 messages/s (p50, p99), beside its two floors
  measured the same way in the same run: one node alone (`-pipe` to `-pipe`,
  the clients' and the benchmark's share) and nats-py alone, one way through
  two routed nats-servers (NATS's share), in one process and in two, as nodes are;
- `mesh send all version` on 4 nodes.
Prints one Markdown table, and the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from meshnodes import DAEMON, Node, eventually, free_port, mesh

from minishell.mesh.natsd import find_server


CLIENT = DAEMON  # the -pipe client program: main() sets it


def lines_of(count: int, tag: bytes = b"") -> bytes:
    """`count` 16-byte lines (15 characters and a newline), each distinct."""
    return b"".join(b"%s%0*d\n" % (tag, 15 - len(tag), number) for number in range(count))


class Reader:
    """A `-pipe` reader whose output is counted (and hashed) in a thread."""

    def __init__(self, node: Node, pipe: str, expected: int) -> None:
        self.process = subprocess.Popen([*CLIENT, "-base", str(node.base), "-pipe", pipe],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.expected = expected
        self.data = bytearray()
        self.done = threading.Event()
        self.finished_at = 0.0
        # When the last chunk arrived (perf_counter_ns), taken by the thread that read it:
        # a latency is measured to there, not to when another thread noticed.
        self.arrived_at = 0
        self.arrival = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        while chunk := self.process.stdout.read1(1 << 20):
            self.arrived_at = time.perf_counter_ns()
            self.data += chunk
            self.arrival.set()
            if len(self.data) >= self.expected and not self.done.is_set():
                self.finished_at = time.monotonic()
                self.done.set()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.terminate()
        self.process.wait()


def nats_server(folder: str, *flags: str) -> tuple[subprocess.Popen[bytes], str]:
    """A nats-server on loopback, and its client URL."""
    binary = find_server()
    assert binary is not None
    server = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", "-1", "--ports_file_dir",
                               folder, *flags],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ports = Path(folder) / f"nats-server_{server.pid}.ports"
    eventually(ports.exists, "nats-server")
    return server, str(json.loads(ports.read_text())["nats"][0])


def plain_nats(count: int) -> tuple[float, float]:
    """nats-py alone: (lines/s one per message, lines/s in 64 KiB messages)."""
    import nats

    server, url = nats_server(tempfile.mkdtemp())
    try:

        async def run(packed: bool, lines: int) -> float:
            data = lines_of(lines)
            sub_client = await nats.connect(url)
            pub_client = await nats.connect(url, pending_size=64 * 1024 * 1024)
            received = bytearray()
            finished = asyncio.Event()

            async def on_message(message: object) -> None:
                received.extend(message.data)  # type: ignore[attr-defined]
                if len(received) >= len(data):
                    finished.set()

            await sub_client.subscribe("bench", cb=on_message,
                                       pending_bytes_limit=1 << 30, pending_msgs_limit=-1)
            await sub_client.flush()
            started = time.monotonic()
            if packed:
                for start in range(0, len(data), 65536):
                    await pub_client.publish("bench", data[start:start + 65536])
            else:
                for start in range(0, len(data), 16):
                    await pub_client.publish("bench", data[start:start + 16])
            await pub_client.flush()
            await asyncio.wait_for(finished.wait(), 60)
            elapsed = time.monotonic() - started
            assert bytes(received) == data  # every byte, in order
            await sub_client.close()
            await pub_client.close()
            return lines / elapsed

        single = asyncio.run(run(False, min(count, 200_000)))
        packed = asyncio.run(run(True, count))
        return single, packed
    finally:
        server.terminate()
        server.wait()


def stream(folder: Path, count: int) -> float:
    with mesh(folder, ["n1", "n2"]) as (n1, n2):
        data = lines_of(count)
        reader = Reader(n2, "s", len(data))
        eventually(lambda: n2.table(".columns readers pipe") == [["n2", "1"]], "reader")
        n2.settle(n1)
        started = time.monotonic()
        writer = subprocess.run([*CLIENT, "-base", str(n1.base), "-pipe", "s"], input=data,
                                stdout=subprocess.DEVNULL, check=True)
        del writer
        assert reader.done.wait(120), f"{len(reader.data)} of {len(data)} bytes"
        rate = count / (reader.finished_at - started)
        assert bytes(reader.data[:len(data)]) == data
        reader.close()
        return rate


def fan_out(folder: Path, count: int) -> float:
    with mesh(folder, ["n1", "n2", "n3"]) as nodes:
        data = lines_of(count)
        readers = [Reader(node, "f", len(data)) for node in nodes for _ in range(4)]
        for node in nodes:
            eventually(lambda node=node: node.table(".columns readers pipe")  # type: ignore[misc]
                       == [[node.name, "4"]], "readers")
        for node in nodes:
            node.settle(*[other for other in nodes if other is not node])
        started = time.monotonic()
        subprocess.run([*CLIENT, "-base", str(nodes[0].base), "-pipe", "f"], input=data,
                       stdout=subprocess.DEVNULL, check=True)
        for reader in readers:
            assert reader.done.wait(120)
        finished = max(reader.finished_at for reader in readers)
        digest = hashlib.sha256(data).digest()
        for reader in readers:
            assert hashlib.sha256(bytes(reader.data[:len(data)])).digest() == digest
            reader.close()
        return count / (finished - started)


def round_robin(folder: Path, count: int) -> tuple[float, float]:
    with mesh(folder, ["n1", "n2", "n3"]) as nodes:
        nodes[0].e("pipe rr mode round-robin")
        data = lines_of(count)
        readers = [Reader(node, "rr", 0) for node in nodes[1:] for _ in range(2)]
        for node in nodes[1:]:
            eventually(lambda node=node: node.table(".columns readers pipe")  # type: ignore[misc]
                       == [[node.name, "2"]], "readers")
            node.settle(*[other for other in nodes if other is not node])
        # A -pipe client reads what it writes: it writes to src, which a pipeline carries
        # into rr (a writer only), so that the six readers are all of rr's.
        nodes[0].e("plumb src rr")
        started = time.monotonic()
        subprocess.run([*CLIENT, "-base", str(nodes[0].base), "-pipe", "src"], input=data,
                       stdout=subprocess.DEVNULL, check=True)
        eventually(lambda: sum(len(r.data) for r in readers) >= len(data),
                   "the readers' shares", 120)
        elapsed = time.monotonic() - started
        got = [bytes(r.data).splitlines() for r in readers]
        every = [line for lines in got for line in lines]
        assert len(every) == len(set(every))  # nothing twice
        counts = [len(lines) for lines in got]
        share = statistics.mean(counts)
        spread = max(abs(c - share) for c in counts) / share
        for reader in readers:
            reader.close()
        return sum(counts) / elapsed, spread


def latency(folder: Path, count: int) -> tuple[float, float]:
    with mesh(folder, ["n1", "n2"]) as (n1, n2):
        reader = Reader(n2, "lat", 16 * count)
        eventually(lambda: n2.table(".columns readers pipe") == [["n2", "1"]], "reader")
        n2.settle(n1)
        return timed_lines(n1, reader, count)


def latency_one_node(folder: Path, count: int) -> tuple[float, float]:
    """The floor the clients and this benchmark set: the same, on one node (no mesh)."""
    node = Node(folder, "solo", mesh=False)
    try:
        node.wait_ready()
        reader = Reader(node, "lat", 16 * count)
        eventually(lambda: node.table(".columns readers pipe") == [["solo", "1"]], "reader")
        return timed_lines(node, reader, count)
    finally:
        node.stop()


def timed_lines(node: Node, reader: Reader, count: int) -> tuple[float, float]:
    """A `-pipe` writer on `node` writes `count` lines 10 ms apart: the p50 and p99 in
    us of the time each takes to reach `reader` (which it then closes)."""
    writer = subprocess.Popen([*CLIENT, "-base", str(node.base), "-pipe", "lat"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert writer.stdin is not None
    samples = []
    for number in range(count):
        line = b"%015d\n" % number
        before = len(reader.data)
        reader.arrival.clear()
        sent = time.perf_counter_ns()
        os.write(writer.stdin.fileno(), line)
        while len(reader.data) < before + 16:
            assert reader.arrival.wait(10), f"line {number} did not arrive"
            reader.arrival.clear()
        samples.append((reader.arrived_at - sent) / 1e9)
        time.sleep(max(0.0, 0.01 - (time.perf_counter_ns() - sent) / 1e9))
    writer.stdin.close()
    writer.wait()
    assert bytes(reader.data) == b"".join(b"%015d\n" % number for number in range(count))
    reader.close()
    return percentiles(samples)


def percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return samples[len(samples) // 2] * 1e6, samples[int(len(samples) * 0.99)] * 1e6


SUBSCRIBER = """
import asyncio, sys, time, nats
async def main():
    nc = await nats.connect(sys.argv[1])
    async def on_message(message):
        arrived = time.perf_counter_ns()  # first: the write below is not NATS's share
        sys.stdout.buffer.write(b"%d %s\\n" % (arrived, message.data.hex().encode()))
        sys.stdout.flush()
    await nc.subscribe("lat", cb=on_message)
    await nc.flush()
    await asyncio.Event().wait()
asyncio.run(main())
"""


def latency_nats(count: int, *, apart: bool) -> tuple[float, float]:
    """nats-py alone, one way through two routed nats-servers (as between two nodes),
    a publisher on one and a subscriber on the other, at 100 messages/s: the floor
    NATS sets. In one asyncio process, or (`apart`) in two, as two nodes are."""
    import nats

    folder = tempfile.mkdtemp()
    first, second = free_port(), free_port()
    servers = [nats_server(folder, "--cluster_name", "bench", "--cluster",
                           f"nats://127.0.0.1:{port}", "--routes", f"nats://127.0.0.1:{other}")
               for port, other in ((first, second), (second, first))]
    try:
        async def run() -> list[float]:
            publisher = await nats.connect(servers[0][1])
            arrived: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
            if apart:
                child = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", SUBSCRIBER, servers[1][1],
                    stdout=asyncio.subprocess.PIPE)
                assert child.stdout is not None
                stdout = child.stdout

                async def relay() -> None:
                    while line := await stdout.readline():
                        when, _, data = line.rstrip(b"\n").partition(b" ")
                        arrived.put_nowait((int(when), bytes.fromhex(data.decode())))

                relaying = asyncio.ensure_future(relay())
            else:
                subscriber = await nats.connect(servers[1][1])

                async def on_message(message: object) -> None:
                    arrived.put_nowait((time.perf_counter_ns(),
                                        message.data))  # type: ignore[attr-defined]

                await subscriber.subscribe("lat", cb=on_message)
                await subscriber.flush()
            while arrived.empty():  # until the route carries the interest
                await publisher.publish("lat", b"")
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            while not arrived.empty():
                arrived.get_nowait()
            samples = []
            for number in range(count):
                line = b"%015d\n" % number
                sent = time.perf_counter_ns()
                await publisher.publish("lat", line)
                when, data = await asyncio.wait_for(arrived.get(), 10)
                assert data == line
                samples.append((when - sent) / 1e9)
                await asyncio.sleep(max(0.0, 0.01 - (time.perf_counter_ns() - sent) / 1e9))
            await publisher.close()
            if apart:
                child.kill()
                await child.wait()
                relaying.cancel()
            else:
                await subscriber.close()
            return samples

        return percentiles(asyncio.run(run()))
    finally:
        for server, _ in servers:
            server.terminate()
            server.wait()


def mesh_send(folder: Path) -> float:
    with mesh(folder, ["head", "n1", "n2", "n3"]) as (head, *_):
        times = []
        for _ in range(50):
            started = time.monotonic()
            assert head.e("mesh send all version").startswith("n[1-3]: ")
            times.append(time.monotonic() - started)
        return statistics.median(times) * 1e3


SCENARIOS = ("stream", "fan", "rr", "latency", "send")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--only", choices=SCENARIOS, action="append",
                        help="run only this scenario (repeatable; the nats-py rows that "
                        "it is compared with run too)")
    parser.add_argument("--minishell", type=Path, help="the `minishell` command whose -pipe "
                        "clients to run (default: the one installed beside this Python)")
    options = parser.parse_args()
    global CLIENT
    installed = Path(sys.executable).with_name("minishell")
    program = options.minishell or (installed if installed.exists() else None)
    CLIENT = [str(program)] if program is not None else DAEMON
    only = set(options.only or SCENARIOS)
    load_before = os.getloadavg()
    folder = Path(tempfile.mkdtemp(prefix="bench-mesh-"))
    rows = []
    if "stream" in only:
        single, packed = plain_nats(options.lines)
        rows += [("nats-py, 16 B lines, one per message", f"{single / 1e3:.0f}k lines/s", ""),
                 ("nats-py, 16 B lines in 64 KiB messages", f"{packed / 1e6:.1f}M lines/s", "")]
        rate = stream(folder / "stream", options.lines)
        rows.append(("stream across two nodes, `-pipe` to `-pipe`",
                     f"{rate / 1e6:.2f}M lines/s",
                     f"5M and 0.25x nats-py packed ({rate / packed:.2f}x): "
                     f"{'met' if rate >= 5e6 and rate >= 0.25 * packed else 'NOT met'}"))
    if "fan" in only:
        fan = fan_out(folder / "fan", options.lines // 4)
        rows.append(("fan-out, writer on node 1, 4 readers on each of 3 nodes",
                     f"{fan / 1e6:.2f}M messages/s", f"1M: {'met' if fan >= 1e6 else 'NOT met'}"))
    if "rr" in only:
        rr, spread = round_robin(folder / "rr", options.lines // 4)
        rows.append(("round-robin over readers on 3 nodes", f"{rr / 1e3:.0f}k messages/s, "
                     f"split within {spread * 100:.2f}%",
                     f"200k within 1%: {'met' if rr >= 2e5 and spread <= 0.01 else 'NOT met'}"))
    if "latency" in only:
        p50, p99 = latency(folder / "lat", 1000)
        rows.append(("latency across nodes at 100 messages/s, p50 / p99",
                     f"{p50:.0f} / {p99:.0f} us",
                     f"500 / 1500 us: {'met' if p50 <= 500 and p99 <= 1500 else 'NOT met'}"))
        solo50, solo99 = latency_one_node(folder / "solo", 1000)
        rows.append(("floor: the same on one node, no mesh", f"{solo50:.0f} / {solo99:.0f} us",
                     ""))
        for apart, where in ((False, "one process"), (True, "two processes")):
            nats50, nats99 = latency_nats(1000, apart=apart)
            rows.append((f"floor: nats-py alone, one way through two routed servers, {where}",
                         f"{nats50:.0f} / {nats99:.0f} us", ""))
    if "send" in only:
        send = mesh_send(folder / "send")
        rows.append(("`mesh send all version` on 4 nodes, median of 50", f"{send:.1f} ms",
                     f"20 ms: {'met' if send <= 20 else 'NOT met'}"))
    print("| scenario | measured | target |\n|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")
    print(f"\n-pipe clients: {' '.join(CLIENT)}")
    print(f"load average before: {load_before[0]:.2f}, after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
