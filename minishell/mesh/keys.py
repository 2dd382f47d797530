"""`minishell -mesh-keygen DIR`: a mesh CA, and a certificate per node signed by it.

Mutual TLS is the mesh's credential: a node's nats-server takes clients and
routes only with a certificate of the mesh's CA, and shows its own. The
first run makes the CA in DIR (ca.pem, ca-key.pem: keep ca-key.pem where only
you can read it); each run makes DIR/<hostname>/ with ca.pem, node.pem and
node-key.pem for `-mesh-tls DIR/<hostname>`. A certificate names the host,
localhost and the machine's addresses, both for serving and as a client
(routes are both). Made with the openssl command, P-256 keys.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import tempfile


def _addresses(hostname: str) -> list[str]:
    found = {"127.0.0.1", "::1"}
    for name in {hostname, socket.gethostname()}:
        with contextlib.suppress(OSError):
            for info in socket.getaddrinfo(name, None):
                found.add(str(info[4][0]).split("%")[0])
    return sorted(found)


def _openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                           else f"openssl {args[0]} failed")


def keygen(folder: str, hostname: str | None) -> int:
    name = hostname or socket.gethostname()
    if shutil.which("openssl") is None:
        print("minishell: -mesh-keygen needs the openssl command", file=sys.stderr)
        return 1
    try:
        make_keys(folder, name)
    except (OSError, RuntimeError) as error:
        print(f"minishell: -mesh-keygen {folder}: {error}", file=sys.stderr)
        return 1
    print(f"{os.path.join(folder, name)}: use -mesh-tls {os.path.join(folder, name)}")
    return 0


def make_keys(folder: str, name: str) -> str:
    """Make the CA if DIR has none, then the node's folder; its path."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    ca, ca_key = os.path.join(folder, "ca.pem"), os.path.join(folder, "ca-key.pem")
    if not (os.path.exists(ca) and os.path.exists(ca_key)):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", ca_key, "-out", ca, "-days", "3650",
                 "-subj", "/CN=minishell mesh CA")
        os.chmod(ca_key, 0o600)
    node = os.path.join(folder, name)
    os.makedirs(node, mode=0o700, exist_ok=True)
    key, cert = os.path.join(node, "node-key.pem"), os.path.join(node, "node.pem")
    names = [f"DNS:{name}", "DNS:localhost"]
    for address in _addresses(name):
        with contextlib.suppress(ValueError):
            names.append(f"IP:{ipaddress.ip_address(address)}")
    with tempfile.TemporaryDirectory() as scratch:
        request = os.path.join(scratch, "node.csr")
        extensions = os.path.join(scratch, "ext.cnf")
        with open(extensions, "w", encoding="ascii") as file:
            file.write(f"subjectAltName={','.join(names)}\n"
                       "extendedKeyUsage=serverAuth,clientAuth\n"
                       "keyUsage=digitalSignature,keyEncipherment\n")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", key, "-out", request, "-subj", f"/CN={name}")
        _openssl("x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key,
                 "-CAcreateserial", "-out", cert, "-days", "825", "-extfile", extensions)
    os.chmod(key, 0o600)
    shutil.copyfile(ca, os.path.join(node, "ca.pem"))
    return node
