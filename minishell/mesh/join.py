"""Joining the mesh: the node's nats-server (or a lab's cluster), the bridge, the node.

Everything started here lives in one nursery and goes with it: the node says
goodbye, the connection closes, the nats-server is stopped and reaped. If
anything fails on the way in, nothing stays half-joined: the error is one
line (JoinError) and what had started is stopped.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import secrets
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import trio

from minishell.errors import innermost
from minishell.mesh.bridge import Bridge, BridgeError, Credentials
from minishell.mesh.natsd import Login, NatsServer, ServerConfig, ServerError, TlsFiles
from minishell.mesh.node import MeshError, Node, token
from minishell.mesh.secret import ROUTE_USER, SecretError, load_secret, secret_path

# The files `minishell -mesh-keygen DIR` writes, and -mesh-tls DIR reads.
CA_FILE = "ca.pem"
CERT_FILE = "node.pem"
KEY_FILE = "node-key.pem"


class JoinError(Exception):
    """Cannot join the mesh; the text says why, in one line."""


@dataclass(frozen=True, slots=True)
class MeshSettings:
    name: str
    context: str = "minimega"
    port: int = 9000  # the cluster port (minimega's -port)
    base: str = "/tmp/minishell"
    nats: tuple[str, ...] = ()  # join these servers instead of starting one
    creds: str | None = None
    tls_dir: str | None = None
    listen: str = "127.0.0.1"
    insecure: bool = False
    secret: str | None = None  # -mesh-secret FILE (default: secret.secret_path's)


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]") if text.startswith("[") else text)
    except ValueError:
        labels = text.split(".")
        return len(text) <= 253 and all(
            label and len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
            and not label.startswith("-") for label in labels)
    return True


def check(settings: MeshSettings) -> None:
    """The refusals that need nothing started (JoinError)."""
    if not settings.context or any(char in settings.context for char in " \t\n"):
        raise JoinError(f"invalid -context: {settings.context!r}")
    if not 0 < settings.port < 65536:
        raise JoinError(f"invalid -port: {settings.port}")
    if settings.tls_dir is not None:
        for name in (CA_FILE, CERT_FILE, KEY_FILE):
            if not os.path.isfile(os.path.join(settings.tls_dir, name)):
                raise JoinError(f"-mesh-tls {settings.tls_dir}: no {name} there "
                                "(make them with: minishell -mesh-keygen DIR)")
    if settings.creds is not None and not settings.nats:
        raise JoinError("-nats-creds is for -nats URL (a node's own nats-server makes "
                        "credentials of its own)")
    if settings.secret is not None and (settings.nats or settings.insecure
                                        or settings.tls_dir is not None):
        raise JoinError("-mesh-secret is for a node's own nats-server without -mesh-tls or "
                        "-mesh-insecure (only there do routes show it)")
    if settings.nats:
        for url in settings.nats:
            _check_url(url)
        if settings.creds is not None:
            check_creds(settings.creds)
        return
    if not _is_address(settings.listen):
        raise JoinError(f"-mesh-listen {settings.listen}: not an IP address or host name")
    if not is_loopback(settings.listen) and not settings.insecure and (
            settings.tls_dir is None):
        raise JoinError(f"-mesh-listen {settings.listen} lets other machines in: give it "
                        "certificates (-mesh-tls DIR, made by minishell -mesh-keygen DIR), "
                        "or say -mesh-insecure")


def nats_url(url: str) -> str:
    return url if "://" in url else f"nats://{url}"


def _check_url(url: str) -> None:
    url = nats_url(url)
    try:
        parts = urlsplit(url)
        valid = (parts.scheme in ("nats", "tls", "ws", "wss") and bool(parts.hostname)
                 and parts.port != 0)  # .port raises ValueError for one not a number
    except ValueError:
        valid = False
    if not valid:
        raise JoinError(f"-nats: not a NATS URL (nats://[USER:PASSWORD@]HOST[:PORT]): "
                        f"{redact(url)}")


def redact(url: str) -> str:
    """A URL as it may be shown: a password (user:password@) or a token (token@) hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a URL that does not parse)"
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = f"{userinfo.partition(':')[0]}:***" if ":" in userinfo else "***"
    return urlunsplit(parts._replace(netloc=f"{user}@{hostport}"))


def check_creds(path: str) -> None:
    """Refuse a credentials file that nats-py could not use, with why, in one line.

    nats-py reads the file only while it connects, and then meets a file without a
    seed as a TypeError and one without a JWT as a loop that never ends (2.16): so it
    is read here first. The JWT and seed are looked for as nats-py looks for them, the
    line after each BEGIN marker; the seed is never shown.
    """
    try:
        import nkeys
    except ImportError:
        raise JoinError("-nats-creds needs the nkeys package: pip install "
                        "'minishell[mesh]' (or nats-py[nkeys])") from None
    try:
        with open(path, "rb") as file:
            lines = file.read(1 << 20).split(b"\n")
    except OSError as error:
        raise JoinError(f"-nats-creds {path}: {error.strerror or error}") from None
    jwt = _line_after(lines, b"BEGIN NATS USER JWT")
    seed = _line_after(lines, b"BEGIN USER NKEY SEED")
    if jwt is None or seed is None:
        raise JoinError(f"-nats-creds {path}: not a NATS credentials file (no "
                        f"{'user JWT' if jwt is None else 'nkey seed'} in it)")
    try:
        payload = jwt.split(b".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
        subject = claims["sub"]
    except (IndexError, ValueError, TypeError, KeyError):
        raise JoinError(f"-nats-creds {path}: its user JWT does not decode") from None
    try:
        public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    except Exception:  # nkeys' own errors, and binascii's
        raise JoinError(f"-nats-creds {path}: its nkey seed does not decode") from None
    if subject != public:
        raise JoinError(f"-nats-creds {path}: its JWT and its seed are not of one user")
    expires = claims.get("exp")
    if isinstance(expires, int | float) and expires and expires < time.time():
        raise JoinError(f"-nats-creds {path}: its user JWT expired on "
                        f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(expires))}")


def _line_after(lines: list[bytes], marker: bytes) -> bytes | None:
    for number, line in enumerate(lines[:-1]):
        if marker in line:
            following = lines[number + 1]
            return following if following.strip() else None
    return None


def _tls_files(settings: MeshSettings) -> TlsFiles | None:
    if settings.tls_dir is None:
        return None
    folder = os.path.abspath(settings.tls_dir)
    return TlsFiles(os.path.join(folder, CERT_FILE), os.path.join(folder, KEY_FILE),
                    os.path.join(folder, CA_FILE))


def _logins(settings: MeshSettings) -> tuple[Login | None, Login | None]:
    """What the node's own server asks of its clients and of routes: a password of this
    run for the one client, the node's own; the user's mesh secret for routes, unless
    certificates (-mesh-tls) prove them. -mesh-insecure: nothing, of either."""
    if settings.insecure:
        return None, None
    client = Login("minishell", secrets.token_urlsafe(24))
    if settings.tls_dir is not None:
        return client, None
    try:
        return client, Login(ROUTE_USER, load_secret(secret_path(settings.secret)))
    except SecretError as error:
        raise JoinError(str(error)) from None


def _client_tls(files: TlsFiles | None) -> ssl.SSLContext | None:
    if files is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=files.ca)
    context.load_cert_chain(files.cert, files.key)
    context.check_hostname = False  # the CA is the mesh's own: its certificate is the check
    return context


async def join(settings: MeshSettings, session: object, *,
               task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED) -> None:
    """Join, report the node started, stay joined until cancelled."""
    from minishell.session import Session

    assert isinstance(session, Session)
    check(settings)
    files = _tls_files(settings)
    client_login: Login | None = None
    async with trio.open_nursery() as nursery:
        server: NatsServer | None = None
        if settings.nats:
            urls = [nats_url(url) for url in settings.nats]
        else:
            client_login, route_login = _logins(settings)
            config = ServerConfig(context=settings.context,
                                  folder=os.path.join(settings.base, "mesh"),
                                  cluster_host=settings.listen, cluster_port=settings.port,
                                  tls=files, client_login=client_login,
                                  route_login=route_login,
                                  server_name=f"{token(settings.name)}-{secrets.token_hex(4)}")
            server = NatsServer(config)
            try:
                await nursery.start(server.run)
            except* ServerError as group:  # raised in the server's nursery: grouped
                raise JoinError(f"cannot start the mesh: {innermost(group)}") from None
            urls = [server.client_url.replace("nats://", "tls://") if files
                    else server.client_url]
        try:
            credentials = Credentials(
                _client_tls(files), settings.creds,
                user=client_login.user if client_login else None,
                password=client_login.password if client_login else None)
        except (OSError, ssl.SSLError) as error:
            raise JoinError(f"-mesh-tls {settings.tls_dir}: {error}") from None
        bridge = Bridge(urls, name=f"minishell {settings.name}", credentials=credentials)
        try:
            await nursery.start(bridge.run)
        except BridgeError as error:
            raise JoinError(f"cannot join the mesh at {','.join(map(redact, urls))}: "
                            f"{error}") from None
        node = Node(name=settings.name, context=settings.context, bridge=bridge,
                    run_line=session.run_from_mesh, lend=session.lend_while, server=server,
                    port=settings.port, check_duplicates=bool(settings.nats))
        try:
            await nursery.start(node.run)
        except MeshError as error:
            raise JoinError(str(error)) from None
        from minishell.mesh.pipes import MeshPipes

        pipes = MeshPipes(node, session.plumber)
        await nursery.start(pipes.run)
        session.mesh = node
        session.mesh_context = settings.context
        session.mesh_port = settings.port
        session.namespaces.set_peers(lambda: set(node.live()) - {node.name})
        task_status.started(node)
        try:
            await trio.sleep_forever()
        finally:
            session.mesh = None
