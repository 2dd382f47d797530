"""A loopback mesh against the machine's other users: a node's nats-server takes only
its own client (a password of the run) and routes that show the user's mesh secret.

The attacks are a reviewer's, replayed: a raw socket speaking NATS to a node's client
port, as any local user could, asking it to run a command; and one to its cluster
port, pretending to be a route.
"""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

from meshnodes import Node, eventually, mesh
from test_mesh_nats import refused

from minishell.ranges import unsplit_list

ROUTE_CONNECT = {"verbose": False, "pedantic": False, "tls_required": False, "name": "evil",
                 "cluster": "minimega", "headers": True}


def _client_port(node: Node) -> int:
    ports = next((node.base / "mesh").glob("*.ports"))
    return int(json.loads(ports.read_text())["nats"][0].rsplit(":", 1)[1])


def _speak(port: int, lines: list[bytes], until: bytes = b"") -> tuple[dict[str, object], bytes]:
    """Connect, read the server's INFO, send `lines`, and read until it closes the
    connection or says `until`: its INFO, and what it answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        received = b""
        while b"\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
        first, _, rest = received.partition(b"\r\n")
        assert first.startswith(b"INFO "), first
        sock.sendall(b"".join(line + b"\r\n" for line in lines))
        answer = rest
        while not (until and until in answer) and (chunk := sock.recv(65536)):
            answer += chunk
    return json.loads(first[5:]), answer


def _run_as(node: Node, line: str) -> list[bytes]:
    """The reviewer's message to `node`: run `line`, answer to mm.minimega.to.evil."""
    header = {"k": "cmd", "n": "evil", "i": "x", "id": "1", "line": line}
    body = json.dumps(header).encode() + b"\n"
    return [b"CONNECT {}", b"SUB mm.minimega.to.evil 1",
            f"PUB mm.minimega.to.{node.name} {len(body)}".encode(), body, b"PING"]


def test_a_local_client_without_the_password_runs_nothing(tmp_path: Path) -> None:
    with mesh(tmp_path, ["a", "b"]) as (a, b):
        evil = tmp_path / "evil-ran"
        info, answer = _speak(_client_port(b), _run_as(b, f"shell touch {evil}"))
        assert info.get("auth_required") is True
        assert answer == b"-ERR 'Authorization Violation'\r\n"
        # Pretending to be a route, with no secret or a wrong one: refused the same way.
        for login in ({}, {"user": "mesh", "pass": "not-the-secret-at-all"}):
            connect = json.dumps({**ROUTE_CONNECT, **login}).encode()
            info, answer = _speak(b.port, [b"CONNECT " + connect, b"PING"])
            assert info.get("auth_required") is True
            assert answer == b"-ERR 'Authorization Violation'\r\n", login
        # The node's own client and routes still work; and nothing of the above ran.
        done = tmp_path / "a-ran"
        a.e(f"mesh send b shell touch {done}")
        assert done.exists() and not evil.exists()
        assert b.e(".annotate false mesh list all") == "a,b"

    # The same message, to a node that asks for nothing (-mesh-insecure), runs: the
    # attack above is a real one.
    open_node = Node(tmp_path, "open", "-mesh-insecure")
    try:
        open_node.wait_ready()
        _speak(_client_port(open_node), _run_as(open_node, f"shell touch {evil}"), b"PONG")
        eventually(evil.exists, "the command run on the insecure node")
    finally:
        open_node.stop()


def test_routes_need_the_same_secret(tmp_path: Path) -> None:
    """Another user's node (here: another secret file) and one that shows no secret at
    all are refused in one line; nodes that share a -mesh-secret mesh, gossip included."""
    theirs = tmp_path / "theirs" / "secret"
    with mesh(tmp_path / "mine", ["a"]) as (a,):
        other = Node(tmp_path, "other", "-mesh-secret", str(theirs))
        other2 = Node(tmp_path, "other2", "-mesh-secret", str(theirs))
        other3 = Node(tmp_path, "other3", "-mesh-secret", str(theirs))
        bare = Node(tmp_path, "bare", "-mesh-insecure")
        try:
            for node in (other, other2, other3, bare):
                node.wait_ready()
            assert other.error(f"mesh dial 127.0.0.1:{a.port}") == (
                f"Error (other): dial 127.0.0.1:{a.port}: that node refuses this node's mesh "
                "secret (it is another user's node, or has another -mesh-secret)")
            assert bare.error(f"mesh dial 127.0.0.1:{a.port}") == (
                f"Error (bare): dial 127.0.0.1:{a.port}: that node takes routes only with "
                "its user's mesh secret, and this node has none (-mesh-insecure)")
            assert a.e(".annotate false mesh list all") == "a"
            # other2 and other3 each dial other only; NATS gossips them to each other.
            other2.dial(other)
            other3.dial(other)
            for node in (other, other2, other3):
                eventually(lambda node=node: node.e(".annotate false mesh list all")  # type: ignore[misc]
                           == unsplit_list(["other", "other2", "other3"]),
                           f"{node.name} seeing the others")
            marker = tmp_path / "gossiped"
            other2.e(f"mesh send other3 shell touch {marker}")
            assert marker.exists()
        finally:
            for node in (other, other2, other3, bare):
                node.stop()


def test_the_secrets_stay_in_the_users_files(tmp_path: Path) -> None:
    """The secret file is made private; the passwords are in the server's config file
    alone, never in a log (nats-server's too: -level debug shows its lines), `mesh
    status`, or a command line."""
    secret_file = tmp_path / "state" / "secret"
    with mesh(tmp_path / "nodes", ["a"], "-mesh-secret", str(secret_file), "-level",
              "debug") as (a,):
        secret = secret_file.read_text().strip()
        assert len(secret) >= 32
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(secret_file.parent.stat().st_mode) == 0o700
        folder = a.base / "mesh"
        config = folder / "nats.conf"
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        settings = json.loads(config.read_text())
        assert settings["cluster"]["authorization"]["password"] == secret
        client_password = settings["authorization"]["password"]
        # Routes refused both ways: each server logs its side.
        stranger = Node(tmp_path / "nodes", "stranger", "-level", "debug")
        try:
            stranger.wait_ready()
            shown = stranger.error(f"mesh dial 127.0.0.1:{a.port}")
            assert "refuses this node's mesh secret" in shown
            shown += a.error(f"mesh dial 127.0.0.1:{stranger.port}")
            assert "refuses this node's mesh secret" in shown
            eventually(lambda: "Authorization Violation" in a.log_text(), "a logging it")
            shown += a.e("mesh status") + a.log_text() + stranger.log_text()
        finally:
            stranger.stop()
        for hidden in (secret, client_password):
            assert hidden not in shown
            assert all(hidden.encode() not in _command_line(path)
                       for path in Path("/proc").glob("[0-9]*/cmdline"))


def _command_line(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # the process has ended
        return b""


def test_a_secret_file_others_may_read_is_refused(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("A" * 43 + "\n")
    secret_file.chmod(0o644)
    assert refused(tmp_path, "loose", "-mesh", "-mesh-secret", str(secret_file)) == (
        f"minishell: mesh secret {secret_file}: others may read it (chmod 600 {secret_file})")
    secret_file.chmod(0o600)
    secret_file.write_text("short\n")
    assert refused(tmp_path, "short", "-mesh", "-mesh-secret", str(secret_file)) == (
        f"minishell: mesh secret {secret_file}: not a mesh secret (one line of 16 or more "
        "letters, digits, - or _)")
    assert refused(tmp_path, "insecure", "-mesh", "-mesh-secret", str(secret_file),
                   "-mesh-insecure") == (
        "minishell: -mesh-secret is for a node's own nats-server without -mesh-tls or "
        "-mesh-insecure (only there do routes show it)")
