"""`-nats URL[,URL]`: nodes joining a NATS server a lab already runs (here a real
nats-server the test starts), with user and password or a credentials file (operator
mode, JWTs made in natsauth.py), and what is refused: one line, exit status 1, nothing
left behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from meshnodes import Node, PipeClient, eventually
from natsauth import account, creds_file, lab_server, operator, operator_config, user

DIAL_REFUSED = ("mesh {}: this node uses a NATS cluster of its own (-nats); its routes are "
                "that cluster's")


def _leftovers(base: Path) -> list[str]:
    """Processes whose command line names `base` (a node's own nats-server would)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                if os.fsencode(str(base)) in file.read():
                    found.append(pid)
        except OSError:
            continue
    return found


def refused(folder: Path, name: str, *flags: str) -> str:
    """Start a node that must be refused: its one line of output (exit status 1, within
    a few seconds, no socket, nothing running)."""
    started = time.monotonic()
    node = Node(folder, name, *flags, mesh=False)
    assert node.process is not None
    try:
        assert node.process.wait(timeout=30) == 1, node.log_text()
    finally:
        node.stop()
    assert time.monotonic() - started < 8, "a refusal should not wait out a timeout"
    assert not (node.base / "minimega").exists()
    assert _leftovers(node.base) == []
    text = node.log_text()
    assert text.count("\n") == 1 and "Traceback" not in text, text
    return text.strip()


def _joined(folder: Path, name: str, *flags: str) -> Node:
    node = Node(folder, name, *flags, mesh=False)
    node.wait_ready()
    return node


def _shares_a_pipe(writer: Node, reader_node: Node, pipe: str) -> None:
    names = ",".join(sorted([writer.name, reader_node.name]))
    for node in (writer, reader_node):
        eventually(lambda node=node: node.e(".annotate false mesh list all")  # type: ignore[misc]
                   == names, f"{node.name} seeing both")
    reader = PipeClient(reader_node, pipe)
    try:
        eventually(lambda: reader_node.table(".columns readers pipe") == [[reader_node.name,
                                                                           "1"]], "the reader")
        reader_node.settle(writer)
        writer.e(f"pipe {pipe} hello")
        eventually(lambda: reader.lines() == [b"hello"], "hello across the lab's NATS")
    finally:
        reader.close()


def _two_share_a_pipe(folder: Path, pipe: str, a_flags: list[str], b_flags: list[str]) -> None:
    """Nodes a and b join with their flags and share `pipe`; both stop after."""
    a = _joined(folder, "a", *a_flags)
    try:
        b = _joined(folder, "b", *b_flags)
        try:
            _shares_a_pipe(a, b, pipe)
        finally:
            b.stop()
    finally:
        a.stop()


def test_nodes_share_pipes_on_a_lab_nats_server(tmp_path: Path) -> None:
    with lab_server(tmp_path / "lab") as url:
        x = _joined(tmp_path, "x", "-nats", url)
        y = _joined(tmp_path, "y", "-nats", url.removeprefix("nats://"))  # nats:// implied
        try:
            _shares_a_pipe(x, y, "foo")
            assert x.e("mesh list") == "x: x\n |--y\ny\n |--x"
            assert x.table(".columns size,peers mesh status") == [["x", "2", "1"]]
            # The lab's routes are its own: dial and hangup are refused.
            for command, target in (("dial", "127.0.0.1:9000"), ("hangup", "y")):
                assert x.error(f"mesh {command} {target}") == (
                    f"Error (x): {DIAL_REFUSED.format(command)}")
            # A second node named x: refused, and x and y go on undisturbed.
            assert refused(tmp_path / "twin", "x", "-nats", url) == (
                "minishell: a node named x is already in mesh minimega")
            assert x.e(".annotate false mesh list all") == "x,y"
            # Another context on the same server is another mesh.
            other = _joined(tmp_path, "z", "-nats", url, "-context", "beta")
            try:
                assert other.e(".annotate false mesh list all") == "z"
                assert x.e(".annotate false mesh list all") == "x,y"
            finally:
                other.stop()
        finally:
            x.stop()
            y.stop()


@pytest.mark.parametrize(("value", "line"), [
    (",", "-nats: no URL given (nats://HOST[:PORT][,...])"),
    ("nats://h:port", "-nats: not a NATS URL (nats://[USER:PASSWORD@]HOST[:PORT]): "
                      "nats://h:port"),
    ("http://u:pw@h:1", "-nats: not a NATS URL (nats://[USER:PASSWORD@]HOST[:PORT]): "
                        "http://u:***@h:1"),
])
def test_bad_nats_urls_are_refused(tmp_path: Path, value: str, line: str) -> None:
    assert refused(tmp_path, "n", "-nats", value) == f"minishell: {line}"


@pytest.mark.parametrize(("flags", "line"), [
    (("-mesh", "-nats", "nats://127.0.0.1:4222"), "-mesh starts a nats-server of this "
     "node's own, -nats joins a lab's instead: give one of them"),
    (("-mesh", "-mesh-listen", "bogus::addr"),
     "-mesh-listen bogus::addr: not an IP address or host name"),
])
def test_contradictory_or_bad_mesh_flags_are_refused(tmp_path: Path, flags: tuple[str, ...],
                                                     line: str) -> None:
    assert refused(tmp_path, "n", *flags) == f"minishell: {line}"


def test_user_and_password(tmp_path: Path) -> None:
    config = 'authorization { user: alice, password: "s3cret-pw" }\n'
    with lab_server(tmp_path / "lab", config) as url:
        address = url.removeprefix("nats://")
        for name, userinfo, shown in (("wrong", "alice:wrong-pw@", "alice:***@"),
                                      ("none", "", ""), ("token", "s3cret-pw@", "***@")):
            text = refused(tmp_path, name, "-nats", f"nats://{userinfo}{address}")
            assert text == (f"minishell: cannot join the mesh at nats://{shown}{address}: "
                            "authorization violation (wrong or missing credentials)")
            assert "pw" not in text
        _two_share_a_pipe(tmp_path, "secret", ["-nats", f"nats://alice:s3cret-pw@{address}"],
                          ["-nats", f"alice:s3cret-pw@{address}"])


def test_credentials_files_in_operator_mode(tmp_path: Path) -> None:
    """nats-server in operator mode trusts one operator and knows one of its accounts
    (a memory resolver, preloaded); users of that account join with their creds file."""
    lab = operator()
    mesh_account = account(lab)
    keys = tmp_path / "keys"
    keys.mkdir()
    good = creds_file(keys / "a.creds", user(mesh_account, "a"))
    also_good = creds_file(keys / "b.creds", user(mesh_account, "b"))
    unknown_account = creds_file(keys / "other-account.creds", user(account(lab, "other")))
    other_operator = creds_file(keys / "other-operator.creds", user(account(operator("x"))))
    stranger = user(mesh_account, "c")
    mixed = keys / "mixed.creds"  # a's JWT, c's seed
    mixed.write_text(good.read_text().replace(user_seed(good), stranger.keys.seed.decode()))
    garbled_seed = keys / "garbled-seed.creds"
    garbled_seed.write_text(good.read_text().replace(user_seed(good), "SUNOTASEED"))
    expired = creds_file(keys / "expired.creds", user(mesh_account, "old", 1_700_000_000))
    no_jwt = keys / "no-jwt.creds"  # nats-py 2.16 would loop for ever on this one
    no_jwt.write_text(good.read_text().split("\n\n", 1)[1])
    with lab_server(tmp_path / "lab", operator_config(lab, mesh_account)) as url:
        violation = (f"minishell: cannot join the mesh at {url}: authorization violation "
                     "(wrong or missing credentials)")
        for name, creds, line in (
                ("n1", unknown_account, violation),
                ("n2", other_operator, violation),
                ("n3", keys / "missing.creds",
                 f"minishell: -nats-creds {keys}/missing.creds: No such file or directory"),
                ("n4", mixed, f"minishell: -nats-creds {mixed}: its JWT and its seed are "
                              "not of one user"),
                ("n5", garbled_seed, f"minishell: -nats-creds {garbled_seed}: its nkey seed "
                                     "does not decode"),
                ("n6", no_jwt, f"minishell: -nats-creds {no_jwt}: not a NATS credentials file "
                               "(no user JWT in it)"),
                ("n7", keys / "..", f"minishell: -nats-creds {keys}/..: Is a directory"),
                ("n10", expired, f"minishell: -nats-creds {expired}: its user JWT expired on "
                                 "2023-11-14 22:13:20 UTC")):
            assert refused(tmp_path, name, "-nats", url, "-nats-creds", str(creds)) == line
        assert refused(tmp_path, "n8", "-nats", url) == violation  # no credentials at all
        assert refused(tmp_path, "n9", "-nats-creds", str(good)) == (
            "minishell: -nats-creds is for -nats URL (a node's own nats-server makes "
            "credentials of its own)")
        for text in (tmp_path / name for name in ("n4.log", "n5.log")):
            assert user_seed(good) not in text.read_text()
        _two_share_a_pipe(tmp_path, "jwt", ["-nats", url, "-nats-creds", str(good)],
                          ["-nats", url, "-nats-creds", str(also_good)])


def user_seed(creds: Path) -> str:
    lines = creds.read_text().splitlines()
    return lines[lines.index("-----BEGIN USER NKEY SEED-----") + 1]


def test_client_certificates_for_a_lab_server_with_tls(tmp_path: Path) -> None:
    """A lab server that asks for certificates of its CA: nodes with -mesh-tls join over
    tls://, a node without one or with another CA's is refused in one line."""
    from test_mesh_security import _keygen

    keys = tmp_path / "keys"
    lab, x_keys, y_keys = (_keygen(keys, name) for name in ("lab", "x", "y"))
    foreign = _keygen(tmp_path / "foreign", "f")
    config = (f'tls {{ cert_file: "{lab}/node.pem", key_file: "{lab}/node-key.pem", '
              f'ca_file: "{lab}/ca.pem", verify: true }}\n')
    with lab_server(tmp_path / "lab", config) as url:
        tls_url = url.replace("nats://", "tls://")
        for name, flags in (("bare", ()), ("f", ("-mesh-tls", str(foreign)))):
            text = refused(tmp_path, name, "-nats", tls_url, *flags)
            assert text.startswith(f"minishell: cannot join the mesh at {tls_url}: "), text
        _two_share_a_pipe(tmp_path, "tls", ["-nats", tls_url, "-mesh-tls", str(x_keys)],
                          ["-nats", tls_url, "-mesh-tls", str(y_keys)])
