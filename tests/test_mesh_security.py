"""Mutual TLS: certificates from `minishell -mesh-keygen`, and who is refused."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from meshnodes import DAEMON, Node, PipeClient, eventually, mesh

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _keygen(folder: Path, name: str) -> Path:
    done = subprocess.run([*DAEMON, "-mesh-keygen", str(folder), "-hostname", name],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return folder / name


def _client_url(node: Node) -> str:
    ports = next((node.base / "mesh").glob("*.ports"))
    return str(json.loads(ports.read_text())["nats"][0])


def _connects(url: str) -> str:
    """What a plain nats-py client gets at `url`: "connected" or the error."""
    import nats

    async def attempt() -> str:
        async def quiet(error: Exception) -> None:
            pass

        try:
            client = await nats.connect(url, connect_timeout=2, allow_reconnect=False,
                                        max_reconnect_attempts=0, error_cb=quiet)
        except Exception as error:
            return type(error).__name__
        await client.close()
        return "connected"

    return asyncio.run(attempt())


def test_mutual_tls_mesh_and_refusals(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    s1, s2 = _keygen(keys, "s1"), _keygen(keys, "s2")
    assert sorted(p.name for p in s1.iterdir()) == ["ca.pem", "node-key.pem", "node.pem"]
    nodes = tmp_path / "nodes"
    with mesh(nodes, ["s1"], "-mesh-tls", str(s1)) as (first,):
        second = Node(nodes, "s2", "-mesh-tls", str(s2), "-mesh-listen", "127.0.0.1")
        plain = Node(nodes, "plain")
        try:
            second.wait_ready()
            plain.wait_ready()
            second.dial(first)
            eventually(lambda: first.e(".annotate false mesh list all") == "s[1-2]", "s2")
            reader = PipeClient(second, "secret")
            eventually(lambda: second.table(".columns readers pipe") == [["s2", "1"]], "reader")
            first.settle(second)
            first.e("pipe secret hello")
            eventually(lambda: reader.lines() == [b"hello"], "the message over TLS")
            # A node without the certificates cannot join, nor can a bare client.
            assert plain.error(f"mesh dial 127.0.0.1:{first.port}") == (
                f"Error (plain): dial 127.0.0.1:{first.port}: that port says nothing: it "
                "wants TLS (both sides need -mesh-tls certificates of one CA), or it is no "
                "mesh node's cluster port")
            assert first.e(".annotate false mesh list all") == "s[1-2]"
            assert _connects(_client_url(first)) != "connected"
            # Joining that server with -nats and no certificate: refused, nothing started.
            joiner = Node(nodes, "joiner", "-nats", _client_url(first), mesh=False)
            assert joiner.process is not None
            assert joiner.process.wait(timeout=30) == 1
            assert joiner.log_text().startswith(
                f"minishell: cannot join the mesh at {_client_url(first)}: "), joiner.log_text()
            reader.close()
        finally:
            second.stop()
            plain.stop()


def test_tls_dials_say_why_they_are_refused(tmp_path: Path) -> None:
    """A wrong -context is told as such over TLS too, and a foreign CA is a failed handshake.

    Both are read from the route's own INFO before the route is added, so the answer
    does not depend on which of the servers' log lines comes first (it once did).
    """
    keys = tmp_path / "keys"
    s1, s2 = _keygen(keys, "s1"), _keygen(keys, "s2")
    foreign = _keygen(tmp_path / "foreign", "s3")
    nodes = tmp_path / "nodes"
    with mesh(nodes, ["s1"], "-mesh-tls", str(s1)) as (first,):
        beta = Node(nodes, "s2", "-mesh-tls", str(s2), "-context", "beta")
        stranger = Node(nodes, "s3", "-mesh-tls", str(foreign))
        try:
            beta.wait_ready()
            stranger.wait_ready()
            assert beta.error(f"mesh dial 127.0.0.1:{first.port}") == (
                f'Error (s2): dial 127.0.0.1:{first.port}: that node is in mesh "minimega", '
                'not "beta" (-context)')
            assert stranger.error(f"mesh dial 127.0.0.1:{first.port}") == (
                f"Error (s3): dial 127.0.0.1:{first.port}: TLS handshake failed (both sides "
                "need -mesh-tls certificates of one CA)")
            assert first.e(".annotate false mesh list all") == "s1"
            assert stranger.e(".annotate false mesh list all") == "s3"
        finally:
            beta.stop()
            stranger.stop()
