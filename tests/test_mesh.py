"""The mesh's commands on real nodes: `-mesh` processes with their own nats-servers."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from meshnodes import DAEMON, Node, eventually, free_port, mesh

from minishell.session import Session

VERSION = "minishell 0.1.0"


def test_mesh_commands_on_three_nodes(tmp_path: Path) -> None:
    with mesh(tmp_path, ["mm1", "mm2", "head"]) as (mm1, mm2, head):
        assert head.e("mesh list") == (
            "head: head\n |--mm1\n |--mm2\nmm1\n |--head\n |--mm2\nmm2\n |--head\n |--mm1")
        assert head.e("mesh list peers") == "head: mm[1-2]"
        assert head.table("mesh status") == [["head", "3", "0", "2", "minimega", str(head.port),
                                              "0"]]
        assert head.e("mesh send all version") == f"mm[1-2]: {VERSION}"
        assert head.e(".compress false mesh send all version") == (
            f"mm1: {VERSION}\nmm2: {VERSION}")
        assert head.e(".annotate false mesh send all version") == VERSION
        assert head.e("mesh send mm1,mm2 echo hi") == "mm[1-2]: hi"
        assert head.error("mesh send all clear pipe nosuch") == (
            "Error (mm1): no such pipe: minimega//nosuch\n"
            "Error (mm2): no such pipe: minimega//nosuch")
        assert head.error("mesh send mm9 version") == "Error (mm9): no route to host"
        assert head.error("mesh send head version") == "Error (head): cannot mesh send yourself"
        assert head.e("mesh send head,mm1 version") == f"mm1: {VERSION}"
        assert head.error("mesh send all,mm1 version") == (
            "Error (head): wildcard included amongst list of recipients")
        assert head.error("mesh send mm1 mesh send mm2 version") == (
            "Error (mm1): cannot run `mesh send mm2 version` via meshage")
        assert head.error("mesh send all bogus command") == (
            "Error (head): invalid command: `mesh send all bogus command`")
        # The remote runs it in its own active namespace.
        head.e("namespace other")
        head.e('mesh send mm1 pipe nsx "two words"')
        assert mm1.table(".columns name,previous pipe") == [["mm1", "minimega//nsx",
                                                              "two words"]]
        assert head.e("ns hosts") == "head: mm[1-2]"
        # `pipe` and `clear pipe` run on the namespace's hosts (not the head: 2.9's
        # head is not among its namespace's hosts), one row or error per host.
        head.e("mesh send mm1 namespace other pipe P one")
        head.e("mesh send mm2 namespace other pipe P two")
        head.e("pipe P three")
        assert head.e(".columns name,previous pipe") == (
            "host | name     | previous\nmm1  | other//P | one\nmm2  | other//P | two")
        assert head.error("clear pipe nosuch") == (
            "Error (mm1): no such pipe: other//nosuch\nError (mm2): no such pipe: other//nosuch")
        head.e("clear pipe P")
        assert head.e("pipe") == ""
        assert head.e("mesh send mm1 namespace other pipe") == ""  # on mm1 alone: cleared
        # mm1's own `namespace other` spans the others, the head among them.
        assert mm1.e("namespace other .columns name pipe") == "host | name\nhead | other//P"
        assert head.e("mesh timeout") == "head: unlimited"
        head.e("mesh timeout 5")
        assert head.e("mesh timeout") == "head: 5s"
        assert head.e("mesh degree") == "head: 0"
        head.e(f"mesh dot {tmp_path / 'mesh.dot'}")
        assert (tmp_path / "mesh.dot").read_text() == (
            'graph head {\nsize="8,11";\noverlap=false;\n'
            'Legend [shape=box, shape=plaintext, label="total=3"];\n'
            "head [style=filled, color=red];\nhead -- mm1\nhead -- mm2\n\n"
            "mm1 [style=filled, color=green];\nmm1 -- mm2\n\n"
            "mm2 [style=filled, color=green];\n\n}")
        assert head.error("mesh dial 127.0.0.1:1") == (
            "Error (head): dial 127.0.0.1:1: connection refused")
        assert head.error(f"mesh dial 127.0.0.1:{head.port}") == (
            "Error (head): cannot mesh dial yourself")
        # mm2 dialed mm1 (start_nodes dials every node to the first): it hangs up.
        mm2.e("mesh hangup mm1")
        assert mm2.error("mesh hangup mm1") == "Error (mm2): not connected to mm1"


def test_refusals_leave_nothing_behind(tmp_path: Path) -> None:
    """Wrong context, port taken, -mesh-listen without TLS (a duplicate name:
    test_a_second_node_of_one_name_stays_out)."""
    with mesh(tmp_path, ["a"]) as (a,):
        other = Node(tmp_path, "b", "-context", "beta")
        same = Node(tmp_path, "a2", "-port", str(a.port))
        try:
            other.wait_ready()
            assert other.error(f"mesh dial 127.0.0.1:{a.port}") == (
                f'Error (b): dial 127.0.0.1:{a.port}: that node is in mesh "minimega", '
                'not "beta" (-context)')
            assert other.e(".annotate false mesh list all") == "b"
            assert same.process is not None
            assert same.process.wait(timeout=20) == 1
            text = same.log_text()  # one line: no traceback
            assert text.startswith("minishell: cannot start the mesh: nats-server did not "
                                   "start: "), text
            assert text.count("\n") == 1 and "address already in use" in text, text
        finally:
            other.stop()
            same.stop()
        open_node = Node(tmp_path, "c", "-mesh-listen", "0.0.0.0")
        assert open_node.process is not None
        assert open_node.process.wait(timeout=20) == 1
        assert open_node.log_text().strip() == (
            "minishell: -mesh-listen 0.0.0.0 lets other machines in: give it certificates "
            "(-mesh-tls DIR, made by minishell -mesh-keygen DIR), or say -mesh-insecure")


def test_dial_and_hangup_name_the_right_node(tmp_path: Path) -> None:
    """Across machines every node has the same port (9000): here two nodes share one
    port on two loopback addresses. A dial to a node already connected, directly or
    by NATS's gossip, says so; a hangup by name drops that node's route alone."""
    port = free_port()
    q1 = Node(tmp_path, "q1")
    q2 = Node(tmp_path, "q2", "-mesh-listen", "127.0.0.2", port=port)
    q3 = Node(tmp_path, "q3", "-mesh-listen", "127.0.0.3", port=port)
    try:
        for node in (q1, q2, q3):
            node.wait_ready()
        q1.e(f"mesh dial 127.0.0.2:{port}")
        q1.e(f"mesh dial 127.0.0.3:{port}")
        for node in (q1, q2, q3):
            eventually(lambda node=node: node.e(".annotate false mesh list all")  # type: ignore[misc]
                       == "q[1-3]", f"{node.name} seeing every node")
        assert q1.error(f"mesh dial 127.0.0.3:{port}") == (
            f"Error (q1): already connected to 127.0.0.3:{port}")
        assert q2.error(f"mesh dial 127.0.0.3:{port}") == (  # connected by gossip
            f"Error (q2): already connected to 127.0.0.3:{port}")
        assert q2.error(f"mesh dial 127.0.0.1:{q1.port}") == (  # q1 dialed it
            f"Error (q2): already connected to 127.0.0.1:{q1.port}")
        q1.e("mesh hangup q2")
        eventually(lambda: q1.e(".annotate false mesh list all") == "q[1,3]",
                   "q2 gone from q1, q3 still there")
        assert q1.e("mesh send q3 version") == f"q3: {VERSION}"
        assert q1.error("mesh hangup q2") == "Error (q1): not connected to q2"
    finally:
        for node in (q1, q2, q3):
            node.stop()


def _holds_for(seconds: float, check: Callable[[], bool]) -> bool:
    """True if `check` holds every time it is asked, for `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not check():
            return False
    return True


def test_a_second_node_of_one_name_stays_out(tmp_path: Path) -> None:
    """Two nodes named a: the one that joined later stays out, whether it dials the
    mesh or is dialed into it; the mesh goes on hearing the first a, its commands
    answered without a wait, its name never flipping between the two."""
    with mesh(tmp_path, ["a", "b"]) as (a, b):
        a.e("pipe first x")

        def real_a_answers() -> bool:
            return b.table("mesh send a .columns name pipe") == [["a", "minimega//first"]]

        twin = Node(tmp_path / "twin", "a")
        try:
            twin.wait_ready()
            assert twin.error(f"mesh dial 127.0.0.1:{a.port}") == (
                f"Error (a): dial 127.0.0.1:{a.port}: a node named a is already in the mesh "
                "there; hung up")
            # Past DEAD_AFTER (2 s), when a twin that still heard anything would be back.
            assert _holds_for(3, real_a_answers)
            assert twin.e(".annotate false mesh list all") == "a"
            assert "another node named a is in mesh minimega" in twin.log_text()
        finally:
            twin.stop()
        loner = Node(tmp_path / "loner", "a")  # up first, alone: it joins when dialed
        try:
            loner.wait_ready()
            b.e(f"mesh dial 127.0.0.1:{loner.port}")
            assert _holds_for(3, real_a_answers)
            assert a.e("mesh send b version") == f"b: {VERSION}"
            assert loner.e(".annotate false mesh list all") == "a"
        finally:
            loner.stop()
        assert "a restarted" not in b.log_text()


def _server_pid(node: Node) -> int:
    path = node.base / "mesh" / "nats-server.pid"
    eventually(path.exists, "the pid file")
    return int(path.read_text())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_the_server_never_outlives_its_node(tmp_path: Path) -> None:
    node = Node(tmp_path, "solo")
    try:
        node.wait_ready()
        pid = _server_pid(node)
        node.kill()  # SIGKILL: no finally block runs
        eventually(lambda: not _alive(pid), "nats-server ending with its node", 5)
        node.start()  # the same base: no stale state in the way
        node.wait_ready()
        second = _server_pid(node)
        assert second != pid
        # A nats-server killed under the node is started again.
        os.kill(second, signal.SIGKILL)
        eventually(lambda: _server_pid(node) != second, "a new nats-server")
        assert node.table(".columns size mesh status") == [["solo", "1"]]
    finally:
        node.stop()
    assert not _alive(pid)


@pytest.mark.parametrize(("line", "want"), [
    ("mesh list", "vm"),
    ("mesh list all", "vm"),
    ("mesh send all version", ""),
    ("mesh status", "size | degree | peers | context  | port | dropped\n"
     "1    | 0      | 0     | minimega | 9000 | 0"),
    ("mesh timeout", "unlimited"),
])
async def test_without_a_mesh(session: Session, line: str, want: str) -> None:
    from minishell.render import render

    replies = await session.run_line(line)
    assert "\n".join(render(reply) for reply in replies) == want


async def test_without_a_mesh_errors(session: Session) -> None:
    replies = await session.run_line("mesh send mm[1-2] version")
    assert [(r.host, r.error) for r in replies[0].responses] == [
        ("mm1", "no route to host"), ("mm2", "no route to host")]
    replies = await session.run_line("mesh dial x")
    assert replies[0].responses[0].error.startswith("not a mesh node")



SHARED_MESH = Path(__file__).resolve().parents[2] / "shared" / "mesh"


@pytest.mark.skipif(not (SHARED_MESH / "plumbing_basic.want").is_file(),
                    reason="../shared/mesh (minimega's distributed test) is not there")
def test_minimegas_distributed_plumbing_basic(tmp_path: Path) -> None:
    """minimega 2.9's tests/distributed/plumbing_basic, byte for byte: a head node and
    nodes mm1-mm3, replayed through the head's socket as minitest does."""
    import shutil
    import subprocess

    from meshnodes import DAEMON

    scripts = tmp_path / "distributed"
    scripts.mkdir()
    for name in ("plumbing_basic", "plumbing_basic.want", "prolog", "epilog"):
        shutil.copy(SHARED_MESH / name, scripts / name)  # the .got lands beside them
    with mesh(tmp_path, ["head", "mm1", "mm2", "mm3"]) as (head, *_):
        done = subprocess.run([*DAEMON, "-replay", "-attach", "-base", str(head.base),
                               str(scripts / "plumbing_basic")],
                              capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.splitlines()[-1] == "1 passed, 0 failed", done.stdout + done.stderr
    assert (scripts / "plumbing_basic.got").read_bytes() == (
        scripts / "plumbing_basic.want").read_bytes()


def _send(node: Node, *words: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*DAEMON, "-base", str(node.base), "-e", "mesh", "send", *words],
                            stdout=subprocess.DEVNULL)


def _running(argv_end: bytes) -> bool:
    """Whether a process whose command line ends so runs (`shell` runs a full path)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                if file.read().endswith(argv_end):
                    return True
        except OSError:
            continue
    return False


def test_nodes_sending_each_other_never_wait_for_each_other(tmp_path: Path) -> None:
    """2.9 deadlocks when two nodes `mesh send` each other at once: each holds its
    command lock while it waits for the other's answer, which needs that lock. Here a
    waiting command gives its turn up: commands from the mesh and from the node's own
    clients run meanwhile. Ctrl-C ends a wait at once."""
    with mesh(tmp_path, ["a", "b", "c"]) as (a, b, c):
        for _ in range(20):
            crossing = [_send(a, "b", "shell", "sleep", "0.1"),
                        _send(b, "a", "shell", "sleep", "0.1")]
            for client in crossing:
                assert client.wait(timeout=10) == 0
        assert a.e("mesh send b echo still") == "b: still"
        # A command run while another waits is still one from the mesh: it may not
        # reach out to the mesh in turn. And a's own clients are not held up by b.
        waiting = _send(a, "b", "shell", "sleep", "3.25")
        eventually(lambda: _running(b"/sleep\x003.25\x00"), "b running the command")
        assert c.error("mesh send a mesh send b version") == (
            "Error (a): cannot run `mesh send b version` via meshage")
        a.e("pipe local hello")
        assert a.table(".columns name,previous pipe") == [["a", "minimega//local", "hello"]]
        assert waiting.poll() is None, "answered while a waited"
        assert waiting.wait(timeout=10) == 0
        waiting = _send(a, "b", "shell", "sleep", "7.25")
        eventually(lambda: _running(b"/sleep\x007.25\x00"), "b running the command")
        waiting.send_signal(signal.SIGINT)
        assert waiting.wait(timeout=5) == 130
        started = time.monotonic()
        assert a.e("version") == f"a: {VERSION}"
        assert time.monotonic() - started < 2


async def test_log_since_a_mark_once_the_log_is_full() -> None:
    """A dial reads the lines its server logged since it began. Once the kept log was
    full (200 lines), it read all of them, and took an earlier hangup's closed routes
    for a TLS mismatch. Here the server's log is a real pipe, read as the server's is."""
    import trio

    from minishell.mesh.natsd import LOG_LINES, NatsServer, ServerConfig

    server = NatsServer(ServerConfig(context="c", folder="/nonexistent"), binary="/bin/false")
    read_end, write_end = os.pipe()

    async def logged(lines: list[bytes]) -> None:
        target = server.lines_logged + len(lines)
        os.write(write_end, b"".join(line + b"\n" for line in lines))
        with trio.fail_after(5):
            while server.lines_logged < target:
                await server.log_changed()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server._read_log, trio.lowlevel.FdStream(read_end))
        await logged([b"old %d" % number for number in range(LOG_LINES)])
        mark = server.lines_logged
        assert server.log_since(mark) == []
        await logged([b"new 1", b"new 2"])
        assert server.log_since(mark) == ["new 1", "new 2"]
        await logged([b"newer %d" % number for number in range(LOG_LINES + 5)])
        assert len(server.log_since(mark)) == LOG_LINES  # what is kept, no more
        os.close(write_end)
