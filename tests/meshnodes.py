"""Mesh nodes for tests: real `minishell -mesh -nostdin` processes, each with its own
nats-server on loopback, started side by side; commands go through their control
sockets (minimega's protocol), `-pipe` clients are real processes."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

from minishell.client import ClientError, Connection

DAEMON = [sys.executable, "-c", "import sys; from minishell.cli import main; sys.exit(main())"]
DEADLINE = 20.0


def terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL if that takes more than 10 s; reaped either way."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def eventually(condition: Callable[[], object], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, f"{what} did not happen within {deadline:g} s"
        time.sleep(0.02)


def free_port() -> int:
    """A port free now, below the kernel's ephemeral range: one the kernel picked (port
    0) may be handed out again as the source port of a connection before the node's
    nats-server binds it ("address already in use" in CI once)."""
    low = _ephemeral_low()
    while True:
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
            return int(ranges.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


class Node:
    """One mesh node process."""

    def __init__(self, folder: Path, name: str, *flags: str, port: int | None = None,
                 mesh: bool = True) -> None:
        self.name = name
        folder.mkdir(parents=True, exist_ok=True)
        self.base = folder / name
        self.port = port or free_port()
        self.log = folder / f"{name}.log"
        self.flags = flags
        self.mesh = mesh
        self.process: subprocess.Popen[bytes] | None = None
        self._connection: Connection | None = None
        self.start()

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [*DAEMON, *(["-mesh"] if self.mesh else []), "-nostdin", "-hostname", self.name,
                 "-base", str(self.base), "-port", str(self.port), *self.flags],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def wait_ready(self) -> None:
        socket_file = self.base / "minimega"

        def ready() -> bool:
            assert self.process is not None
            assert self.process.poll() is None, f"{self.name} exited: {self.log_text()}"
            if not socket_file.exists():
                return False
            try:
                Connection(str(socket_file)).close()
            except ClientError:  # a socket left by a killed run
                return False
            return True

        eventually(ready, f"{self.name} listening")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = Connection(str(self.base / "minimega"))
        return self._connection

    def replies(self, command: str) -> tuple[str, list[str]]:
        rendered, errors = [], []
        for reply in self.connection.command(command):
            if reply.rendered:
                rendered.append(reply.rendered)
            errors.extend(f"Error ({host}): {error}" for host, error in reply.errors)
        return "\n".join(rendered), errors

    def e(self, command: str) -> str:
        """A command's output; an error fails the test."""
        output, errors = self.replies(command)
        assert not errors, errors
        return output

    def error(self, command: str) -> str:
        return "\n".join(self.replies(command)[1])

    def table(self, command: str) -> list[list[str]]:
        return [[cell.strip() for cell in line.split("|")]
                for line in self.e(command).splitlines()[1:]]

    def dial(self, other: Node) -> None:
        self.e(f"mesh dial 127.0.0.1:{other.port}")

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def stop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(OSError):
                self._connection.close()
            self._connection = None
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            terminate(process)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def settle(self, *others: Node) -> None:
        """Return once what this node's readers announced is known everywhere: a
        `mesh send` answers only then."""
        for other in others:
            other.e(f"mesh send {self.name} version")


@contextlib.contextmanager
def draining(*clients: PipeClient) -> Iterator[None]:
    """Keep reading the clients' output in the background: a reader whose output is not
    read fills its pipe, and then mode `all` waits for it (lossless backpressure)."""
    done = threading.Event()

    def drain() -> None:
        while not done.wait(0.005):
            for client in clients:
                client.read()

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def start_nodes(folder: Path, names: list[str], *flags: str) -> list[Node]:
    """Nodes started side by side and dialed into one mesh (each to the first)."""
    nodes: list[Node] = []
    try:
        for name in names:
            nodes.append(Node(folder, name, *flags))
        for node in nodes:
            node.wait_ready()
        for node in nodes[1:]:
            node.dial(nodes[0])
        everyone = sorted(names)
        for node in nodes:
            eventually(lambda node=node: node.e(".annotate false mesh list all")  # type: ignore[misc]
                       == _unsplit(everyone), f"{node.name} seeing every node")
    except BaseException:
        # A mesh that did not come up leaves nothing running: the nodes are this
        # process's children, and every later test checks that it has none.
        for node in nodes:
            node.stop()
        raise
    return nodes


def _unsplit(names: list[str]) -> str:
    from minishell.ranges import unsplit_list

    return unsplit_list(names)


@contextlib.contextmanager
def mesh(folder: Path, names: list[str], *flags: str) -> Iterator[list[Node]]:
    nodes: list[Node] = []
    try:
        nodes = start_nodes(folder, names, *flags)
        yield nodes
    finally:
        for client in list(PipeClient.opened):
            client.close()
        for node in nodes:
            node.stop()


class PipeClient:
    """`minishell -pipe NAME` on a node: what it prints, read in the background."""

    opened: ClassVar[set[PipeClient]] = set()  # closed when their mesh() block ends

    def __init__(self, node: Node, pipe: str, stdin: int | None = subprocess.PIPE) -> None:
        PipeClient.opened.add(self)
        self.process = subprocess.Popen(
            [*DAEMON, "-base", str(node.base), "-pipe", pipe], stdin=stdin,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.process.stdout is not None
        os.set_blocking(self.process.stdout.fileno(), False)
        self.received = b""
        self._lock = threading.Lock()  # read() from a draining thread too

    def read(self) -> bytes:
        assert self.process.stdout is not None
        with self._lock, contextlib.suppress(BlockingIOError, TypeError, ValueError):
            while chunk := self.process.stdout.read(1 << 20):
                self.received += chunk
        return self.received

    def lines(self) -> list[bytes]:
        return self.read().splitlines()

    def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def close(self) -> None:
        PipeClient.opened.discard(self)
        if self.process.stdout is None or self.process.stdout.closed:
            return
        for stream in (self.process.stdin,):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=10)
        self.read()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
