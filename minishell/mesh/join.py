"""Joining the mesh: the node's nats-server (or a lab's cluster), the bridge, the node.

Everything started here lives in one nursery and goes with it: the node says
goodbye, the connection closes, the nats-server is stopped and reaped. If
anything fails on the way in, nothing stays half-joined: the error is one
line (JoinError) and what had started is stopped.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass

import trio

from minishell.mesh.bridge import Bridge, BridgeError, Credentials
from minishell.mesh.natsd import NatsServer, ServerConfig, ServerError, TlsFiles
from minishell.mesh.node import MeshError, Node

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


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


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
    if settings.nats:
        return
    if not is_loopback(settings.listen) and not settings.insecure and (
            settings.tls_dir is None):
        raise JoinError(f"-mesh-listen {settings.listen} lets other machines in: give it "
                        "certificates (-mesh-tls DIR, made by minishell -mesh-keygen DIR), "
                        "or say -mesh-insecure")


def _tls_files(settings: MeshSettings) -> TlsFiles | None:
    if settings.tls_dir is None:
        return None
    folder = os.path.abspath(settings.tls_dir)
    return TlsFiles(os.path.join(folder, CERT_FILE), os.path.join(folder, KEY_FILE),
                    os.path.join(folder, CA_FILE))


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
    async with trio.open_nursery() as nursery:
        server: NatsServer | None = None
        if settings.nats:
            urls = [url if "://" in url else f"nats://{url}" for url in settings.nats]
        else:
            config = ServerConfig(context=settings.context,
                                  folder=os.path.join(settings.base, "mesh"),
                                  cluster_host=settings.listen, cluster_port=settings.port,
                                  tls=files)
            server = NatsServer(config)
            try:
                await nursery.start(server.run)
            except ServerError as error:
                raise JoinError(f"cannot start the mesh: {error}") from None
            urls = [server.client_url.replace("nats://", "tls://") if files
                    else server.client_url]
        try:
            credentials = Credentials(_client_tls(files), settings.creds)
        except (OSError, ssl.SSLError) as error:
            raise JoinError(f"-mesh-tls {settings.tls_dir}: {error}") from None
        bridge = Bridge(urls, name=f"minishell {settings.name}", credentials=credentials)
        try:
            await nursery.start(bridge.run)
        except BridgeError as error:
            raise JoinError(f"cannot join the mesh at {','.join(urls)}: {error}") from None
        node = Node(name=settings.name, context=settings.context, bridge=bridge,
                    run_line=session.run_responses, server=server, port=settings.port,
                    check_duplicates=bool(settings.nats))
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
