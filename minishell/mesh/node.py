"""A mesh node: who is alive, `mesh send`, `mesh dial` and `mesh hangup`.

Every subject is under `mm.<context>.`, so two meshes on one NATS never hear
each other. A node hears every broadcast on `mm.<context>.all` and what is
meant for it alone on `mm.<context>.to.<name>`. Messages are a JSON header
line, then a body of bytes (pipe data, untouched).

Membership is by heartbeats: every node says so every 0.25 s; one silent for
2 s is dead (a SIGSTOPped node, a partition, a crash), and comes back alive
with its next heartbeat. A node has an incarnation, drawn at start: a node
restarted under the same name is a new one, and what was meant for the old
one is ignored. A heartbeat from another incarnation under this node's own
name means a duplicate name: refused at start (with -nats: a node listens for
one before its first heartbeat), and a `mesh dial` that would bring one in
hangs up again. Whichever way two nodes of one name meet (a dial, or a route
NATS's gossip made), the one that joined later (see `_joined`) stays out: it
says nothing, hears nothing and counts no peers until the other has been silent
for DEAD_AFTER; the other nodes keep hearing the first, never a name flipping
between two nodes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from minishell.mesh.bridge import Bridge
from minishell.mesh.natsd import NatsServer, TlsFiles
from minishell.ranges import RangeError, split_list
from minishell.reply import Response

logger = logging.getLogger("minishell.mesh")

HEARTBEAT = 0.25
DEAD_AFTER = 2.0
DUPLICATE_WAIT = 3 * HEARTBEAT
NEWCOMER = -10.0  # a dialing node's age: see Node._age
DIAL_TIMEOUT = 10.0
WILDCARD = "all"

Header = dict[str, Any]
MessageHandler = Callable[[Header, bytes], None]

# Set while a command sent by another node runs here: `mesh send` refuses to nest.


class MeshError(Exception):
    """A mesh command that cannot be done; the text is the error line."""


def token(text: str) -> str:
    """A name or context as one NATS subject token: [A-Za-z0-9_-] as they are,
    anything else as =XX per UTF-8 byte."""
    return "".join(char if char.isascii() and (char.isalnum() or char in "_-")
                   else "".join(f"={byte:02X}" for byte in char.encode())
                   for char in text)


def encode(header: Header, body: bytes = b"") -> bytes:
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + body


def decode(data: bytes) -> tuple[Header, bytes]:
    cut = data.find(b"\n")
    if cut < 0:
        raise ValueError("no header line")
    header = json.loads(data[:cut])
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    return header, data[cut + 1:]


@dataclass(slots=True)
class Peer:
    name: str
    incarnation: str
    last_seen: float
    alive: bool = True
    info: Header = field(default_factory=dict)


@dataclass(slots=True)
class _Pending:
    """A `mesh send` waiting for its answers."""

    waiting: set[str]
    responses: dict[str, list[Response]] = field(default_factory=dict)
    changed: trio.Event = field(default_factory=trio.Event)

    def settle(self, host: str, responses: list[Response]) -> None:
        if host in self.waiting:
            self.waiting.discard(host)
            self.responses[host] = responses
            self.changed.set()


def recipients(hosts: str, me: str, live: list[str]) -> tuple[list[str], list[str]]:
    """(live recipients, the others) for `mesh send`'s host list, sent by `me` with the
    nodes `live` (`me` among them); MeshError with 2.9's text if the list is bad."""
    try:
        names = split_list(hosts)
    except RangeError as error:
        raise MeshError(str(error)) from None
    if WILDCARD in names:
        if len(names) > 1:
            raise MeshError("wildcard included amongst list of recipients")
        return [name for name in live if name != me], []
    if names == [me]:
        raise MeshError("cannot mesh send yourself")
    wanted = [name for name in dict.fromkeys(names) if name != me]
    reachable = [name for name in wanted if name in live]
    return reachable, [name for name in wanted if name not in reachable]


RunLine = Callable[[str], Awaitable[list[Response]]]
Lend = Callable[[Callable[[], Awaitable[None]]], Awaitable[None]]


async def _just_wait(wait: Callable[[], Awaitable[None]]) -> None:
    await wait()


class Node:
    """This node's place in the mesh."""

    def __init__(self, *, name: str, context: str, bridge: Bridge, run_line: RunLine,
                 lend: Lend = _just_wait, server: NatsServer | None = None, port: int = 9000,
                 check_duplicates: bool = False) -> None:
        self.name = name
        self.context = context
        self.bridge = bridge
        self.server = server
        self.port = port
        self.incarnation = secrets.token_hex(8)
        self.peers: dict[str, Peer] = {}
        self.timeout = 0.0  # `mesh timeout`: 0 is unlimited
        self.dropped = 0  # messages lost to dead peers or dropped for slow ones
        self._run_line = run_line
        # How `mesh send` waits for answers: giving up its turn meanwhile
        # (Session.lend_while), so that a slow node holds up no other command and
        # nodes sending to each other never wait on each other's command lock.
        self._lend = lend
        self._check_duplicates = check_duplicates
        prefix = f"mm.{token(context)}"
        self.prefix = prefix
        self.broadcast_subject = f"{prefix}.all"
        self.inbox = f"{prefix}.to.{token(name)}"
        self._kinds: dict[str, MessageHandler] = {}
        self._listeners: list[Callable[[], None]] = []
        self.settle_hooks: list[Callable[[], Awaitable[None]]] = []
        self.heartbeat_extras: list[Callable[[Header], None]] = []
        self.heartbeat_hooks: list[Callable[[Header], None]] = []
        self._pending: dict[str, _Pending] = {}
        self._nursery: trio.Nursery | None = None
        self._duplicate: str | None = None
        self._duplicate_seen = trio.Event()
        self._dialed: dict[str, str] = {}  # route URL -> the server name its INFO gave
        # When this node last joined a mesh (started, dialed, or first heard a peer while
        # alone): of two nodes of one name, the one that joined later stays out.
        self._joined = 0.0
        self._dialing = False
        self._shadowed_by: str | None = None  # the other node of this name, while it is heard
        self._shadow_heard = 0.0
        self._namesakes: deque[str] = deque(maxlen=16)  # second nodes of a name, logged

    # -- the task ---------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED,
                  ) -> None:
        self.bridge.subscribe(self.broadcast_subject, self._on_message)
        self.bridge.subscribe(self.inbox, self._on_message)
        self.on("hb", self._on_heartbeat)
        self.on("bye", self._on_bye)
        self.on("cmd", self._on_command)
        self.on("res", self._on_result)
        self._joined = trio.current_time()
        if self._check_duplicates:
            # Listen before saying anything: a node of this name heartbeats within
            # DUPLICATE_WAIT, and then this one leaves unheard (the other nodes never
            # take it for that node restarted).
            with trio.move_on_after(DUPLICATE_WAIT):
                await self._duplicate_seen.wait()
            if self._duplicate is not None:
                raise MeshError(f"a node named {self.name} is already in mesh "
                                f"{self.context}")
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._heartbeats)
            nursery.start_soon(self._liveness)
            task_status.started(self)
            try:
                await trio.sleep_forever()
            finally:
                self.broadcast({"k": "bye"})

    def on(self, kind: str, handler: MessageHandler) -> None:
        """Messages of this kind (the header's "k") go to `handler`, in trio."""
        self._kinds[kind] = handler

    def on_membership(self, listener: Callable[[], None]) -> None:
        """Called (synchronously) whenever a node joins, dies or comes back."""
        self._listeners.append(listener)

    def start_soon(self, function: Callable[..., Awaitable[object]], *args: object) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(function, *args)

    # -- sending ------------------------------------------------------------------------------

    def header(self, kind: str) -> Header:
        return {"k": kind, "n": self.name, "i": self.incarnation}

    def broadcast(self, header: Header, body: bytes = b"") -> None:
        if self._shadowed_by is not None:
            return
        header.setdefault("n", self.name)
        header.setdefault("i", self.incarnation)
        self.bridge.publish(self.broadcast_subject, encode(header, body))

    def subject_of(self, name: str) -> str:
        return f"{self.prefix}.to.{token(name)}"

    def send(self, name: str, header: Header, body: bytes = b"") -> None:
        """To one node (its current incarnation, if known)."""
        if self._shadowed_by is not None:
            return
        header.setdefault("n", self.name)
        header.setdefault("i", self.incarnation)
        peer = self.peers.get(name)
        if peer is not None:
            header.setdefault("ti", peer.incarnation)
        self.bridge.publish(self.subject_of(name), encode(header, body))

    async def send_data(self, name: str, header: Header, body: bytes) -> None:
        header.setdefault("n", self.name)
        header.setdefault("i", self.incarnation)
        await self.bridge.publish_data(self.subject_of(name), encode(header, body))

    def send_data_now(self, name: str, header: Header, body: bytes) -> bool:
        """`send_data` if it need not wait for room (True), else nothing (False)."""
        if not self.bridge.has_room():
            return False
        header.setdefault("n", self.name)
        header.setdefault("i", self.incarnation)
        self.bridge.publish(self.subject_of(name), encode(header, body))
        return True

    # -- membership ---------------------------------------------------------------------------

    def live(self) -> list[str]:
        """The nodes alive now, this one included, sorted."""
        return sorted([self.name, *(peer.name for peer in self.peers.values() if peer.alive)])

    def alive(self, name: str, incarnation: str | None = None) -> bool:
        if name == self.name:
            return incarnation is None or incarnation == self.incarnation
        peer = self.peers.get(name)
        return (peer is not None and peer.alive
                and (incarnation is None or peer.incarnation == incarnation))

    def quiet_for(self, name: str) -> float:
        """Seconds since a live peer was last heard from (0 for this node, or one not live)."""
        peer = self.peers.get(name)
        if name == self.name or peer is None or not peer.alive:
            return 0.0
        return trio.current_time() - peer.last_seen

    def incarnation_of(self, name: str) -> str | None:
        if name == self.name:
            return self.incarnation
        peer = self.peers.get(name)
        return peer.incarnation if peer is not None and peer.alive else None

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()
        for host, pending in list(self._pending.items()):
            for name in list(pending.waiting):
                if not self.alive(name):
                    pending.settle(name, [Response(name, error="no route to host")])
            del host

    async def _heartbeats(self) -> None:
        while True:
            header = self.header("hb")
            header["port"] = self.port
            header["age"] = round(self._age(), 3)
            if self.server is not None:
                header["srv"] = self.server.config.server_name
            for extra in self.heartbeat_extras:
                extra(header)
            self.broadcast(header)
            await trio.sleep(HEARTBEAT)

    async def _liveness(self) -> None:
        while True:
            await trio.sleep(HEARTBEAT / 2)
            now = trio.current_time()
            if self._shadowed_by is not None and now - self._shadow_heard > DEAD_AFTER:
                logger.warning("mesh: the other node named %s is gone: this one is in the "
                               "mesh again", self.name)
                self._shadowed_by = None
            died = [peer for peer in self.peers.values()
                    if peer.alive and now - peer.last_seen > DEAD_AFTER]
            for peer in died:
                peer.alive = False
                logger.warning("mesh: %s is not answering: taken out of the mesh", peer.name)
            if died:
                self._changed()
            for event in self.bridge.events():
                if event == "disconnected":
                    logger.warning("mesh: lost the connection to NATS; reconnecting")
                elif event == "reconnected":
                    logger.warning("mesh: connected to NATS again")
                else:
                    logger.warning("mesh: NATS %s", event)

    def _on_heartbeat(self, header: Header, body: bytes) -> None:
        name, incarnation = header["n"], header["i"]
        if name == self.name:
            if incarnation != self.incarnation:
                self._duplicate = incarnation
                self._duplicate_seen.set()
                if self._nursery is not None:  # in the mesh: not still listening at start
                    self._meet_namesake(incarnation, float(header.get("age", 0)))
            return
        now = trio.current_time()
        peer = self.peers.get(name)
        if peer is None or peer.incarnation != incarnation:
            if self._speaks_as(peer, incarnation, now):
                if incarnation not in self._namesakes:
                    self._namesakes.append(incarnation)
                    logger.error("mesh: two nodes are named %s: the one heard first is kept",
                                 name)
                return
            if peer is not None and peer.alive:
                logger.warning("mesh: %s restarted", name)
            if not any(known.alive for known in self.peers.values()):
                self._joined = now  # alone until now: this node joins a mesh here
            self.peers[name] = Peer(name, incarnation, now, True, header)
            self._changed()
            return
        peer.last_seen = now
        peer.info = header
        for hook in self.heartbeat_hooks:
            hook(header)
        if not peer.alive:
            peer.alive = True
            logger.warning("mesh: %s is back", name)
            self._changed()

    def _age(self) -> float:
        """Seconds since this node joined a mesh; while it dials, younger than any
        (NEWCOMER): of two nodes of one name that meet through a dial, the dialer stays
        out, however close their ages."""
        return NEWCOMER if self._dialing else trio.current_time() - self._joined

    @staticmethod
    def _speaks_as(peer: Peer | None, incarnation: str, now: float) -> bool:
        """True if `peer`, in another incarnation than this one, was heard so recently
        that this is a second node of its name, not that node restarted (a restart
        takes a node longer than two heartbeats)."""
        return (peer is not None and peer.alive and peer.incarnation != incarnation
                and now - peer.last_seen < 2 * HEARTBEAT)

    def _meet_namesake(self, incarnation: str, age: float) -> None:
        """Another node of this name: the one that joined later stays out (ages within a
        second of each other: the lower incarnation, so that both decide alike)."""
        now = trio.current_time()
        mine = self._age()
        later = mine < age if abs(mine - age) >= 1 else self.incarnation < incarnation
        if not later:
            return
        self._shadow_heard = now
        if self._shadowed_by != incarnation:
            self._shadowed_by = incarnation
            logger.error("mesh: another node named %s is in mesh %s, there before this one: "
                         "this one stays out while it is there (give it another -hostname)",
                         self.name, self.context)
            if self.peers:
                self.peers.clear()
                self._changed()

    def _on_bye(self, header: Header, body: bytes) -> None:
        peer = self.peers.get(header["n"])
        if peer is not None and peer.incarnation == header["i"]:
            del self.peers[peer.name]
            self._changed()

    def _on_message(self, subject: str, data: bytes) -> None:
        try:
            header, body = decode(data)
            kind = header["k"]
        except (ValueError, KeyError, TypeError):
            logger.warning("mesh: a message that does not decode on %s", subject)
            return
        if self._shadowed_by is not None and not (kind == "hb" and header.get("n") == self.name):
            return  # out of the mesh while a node of this name is in it
        sender = self.peers.get(header.get("n", ""))
        if (sender is not None and sender.incarnation != header.get("i")
                and kind not in ("hb", "bye")
                and self._speaks_as(sender, header.get("i", ""), trio.current_time())):
            return  # from the second node of a name (see _on_heartbeat)
        target = header.get("ti")
        if target is not None and target != self.incarnation:
            return  # meant for an earlier incarnation of this node
        if header.get("n") == self.name and header.get("i") == self.incarnation:
            return  # our own broadcast
        handler = self._kinds.get(kind)
        if handler is not None:
            handler(header, body)

    def duplicate(self) -> str | None:
        """The incarnation of another node heard under this node's name, if any."""
        return self._duplicate

    # -- mesh send ----------------------------------------------------------------------------

    def recipients(self, hosts: str) -> tuple[list[str], list[str]]:
        """(live recipients, the others) for `mesh send`'s host list; MeshError if bad."""
        return recipients(hosts, self.name, self.live())

    async def mesh_send(self, hosts: str, line: str) -> list[Response]:
        """Run `line` on the hosts; one response per host and per reply, hosts in name
        order; an unknown or dead host answers `no route to host` at once."""
        live, unreachable = self.recipients(hosts)
        request = secrets.token_hex(8)
        pending = _Pending(set(live))
        self._pending[request] = pending
        try:
            for name in live:
                header = self.header("cmd")
                header["id"] = request
                header["line"] = line
                self.send(name, header)
            deadline = trio.current_time() + self.timeout if self.timeout else float("inf")

            async def answered() -> None:
                with trio.move_on_at(deadline):
                    while pending.waiting:
                        await pending.changed.wait()
                        pending.changed = trio.Event()

            await self._lend(answered)
        finally:
            del self._pending[request]
        results = dict(pending.responses)
        for name in pending.waiting:
            results[name] = [Response(name, error="timed out")]
        for name in unreachable:
            results[name] = [Response(name, error="no route to host")]
        return [response for name in sorted(results) for response in results[name]]

    def _on_command(self, header: Header, body: bytes) -> None:
        self.start_soon(self._run_command, header["n"], header["id"], header["line"])

    async def _run_command(self, sender: str, request: str, line: str) -> None:
        responses = await self._run_line(line)  # marked FROM_MESH by the session
        for hook in self.settle_hooks:
            await hook()
        answer = self.header("res")
        answer["id"] = request
        answer["r"] = [_response_fields(response) for response in responses]
        self.send(sender, answer)

    def _on_result(self, header: Header, body: bytes) -> None:
        pending = self._pending.get(header["id"])
        if pending is not None:
            responses = [Response(**fields) for fields in header["r"]]
            pending.settle(header["n"], responses)

    # -- dial and hangup ------------------------------------------------------------------

    def _own_server(self, what: str) -> NatsServer:
        if self.server is None:
            raise MeshError(f"mesh {what}: this node uses a NATS cluster of its own (-nats); "
                            "its routes are that cluster's")
        return self.server

    def address(self, target: str) -> tuple[str, int]:
        host, colon, port = target.rpartition(":")
        if not colon or "]" in port:
            return target.strip("[]"), self.port
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise MeshError(f"invalid port: {port}")
        return host.strip("[]"), int(port)

    async def dial(self, target: str) -> None:
        server = self._own_server("dial")
        host, port = self.address(target)
        try:
            infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            raise MeshError(f"dial {host}:{port}: {error.strerror or error}") from None
        address = str(infos[0][4][0])
        own = {server.config.cluster_host, "0.0.0.0", "::"}
        if port == server.config.cluster_port and (address in own or host == self.name):
            raise MeshError("cannot mesh dial yourself")
        info = await _route_info(address, port, server.config.tls)
        if isinstance(info, str):
            raise MeshError(f"dial {host}:{port}: {info}")
        if info.get("server_name") == server.config.server_name:  # by another of its addresses
            raise MeshError("cannot mesh dial yourself")
        theirs = info.get("cluster")
        if isinstance(theirs, str) and theirs != self.context:
            raise MeshError(f'dial {host}:{port}: that node is in mesh "{theirs}", '
                            f'not "{self.context}" (-context)')
        if (info.get("auth_required") and server.config.route_login is None
                and server.config.tls is None):
            raise MeshError(f"dial {host}:{port}: that node takes routes only with its "
                            "user's mesh secret, and this node has none (-mesh-insecure)")
        url = f"nats-route://{_url_host(address)}:{port}"
        routes = await _routes(server.monitor_url)
        if url in server.config.routes or any(route.get("remote_id") == info.get("server_id")
                                              for route in routes):
            raise MeshError(f"already connected to {host}:{port}")
        logged = server.lines_logged
        # From now on this node is the newcomer: a node of its name there stays in.
        self._joined = trio.current_time()
        self._duplicate = None
        self._duplicate_seen = trio.Event()
        server.config.routes.append(url)
        server.reload()
        self._dialing = True
        try:
            try:
                await self._wait_route(server, address, port, logged)
            except MeshError:
                server.config.routes.remove(url)
                server.reload()
                raise
            self._dialed[url] = str(info.get("server_name", ""))
            # Give heartbeats from there a moment, so that `mesh list` right after shows
            # them; a node of our own name there means a duplicate: hang up again.
            with trio.move_on_after(DUPLICATE_WAIT):
                await self._duplicate_seen.wait()
        finally:
            self._dialing = False
        if self._duplicate is not None:
            self._duplicate = None
            self._duplicate_seen = trio.Event()
            # NATS's gossip has routed the other servers here too: hang up on all of them.
            self._dialed.clear()
            server.leave_routes()
            raise MeshError(f"dial {host}:{port}: a node named {self.name} is already in "
                            "the mesh there; hung up")

    async def _wait_route(self, server: NatsServer, address: str, port: int,
                          logged: int) -> None:
        with trio.move_on_after(DIAL_TIMEOUT):
            while True:
                routes = await _routes(server.monitor_url)
                # A route is listed from its first byte, before the other side has
                # checked its login; the subscriptions it sends come after (nats-server's
                # own, of its system account, come even from a node with none yet).
                if any(route.get("port") == port and route.get("ip") == address
                       and route.get("did_solicit") and route.get("subscriptions")
                       for route in routes):
                    return
                # Since the dial only: a full log once gave the hangup's closes as the
                # dial's, and so a TLS mismatch between two plain nodes.
                lines = server.log_since(logged)
                for line in lines:
                    if "does not match" in line and "cluster name" in line:
                        names = line.split('"')[1::2]
                        theirs = next((name for name in names if name != self.context), "?")
                        raise MeshError(f"dial {address}:{port}: that node is in mesh "
                                        f'"{theirs}", not "{self.context}" (-context)')
                    if "Authorization Violation" in line and f"{_url_host(address)}:{port}" in line:
                        raise MeshError(f"dial {address}:{port}: that node refuses this node's "
                                        "mesh secret (it is another user's node, or has "
                                        "another -mesh-secret)")
                    if "TLS" in line and "handshake error" in line:
                        raise MeshError(f"dial {address}:{port}: TLS handshake failed "
                                        "(both sides need -mesh-tls certificates of one CA)")
                ours = [line for line in lines if f"{_url_host(address)}:{port}" in line]
                if any("Duplicate Route" in line for line in ours):
                    # Gossip connected the two servers between the check and the dial.
                    raise MeshError(f"already connected to {address}:{port}")
                closed = sum(1 for line in ours if "connection closed" in line)
                if closed >= 2:
                    raise MeshError(f"dial {address}:{port}: that node closes the route: "
                                    "TLS or certificates differ (both sides need -mesh-tls "
                                    "certificates of one CA)")
                with trio.move_on_after(0.05):
                    await server.log_changed()
        raise MeshError(f"dial {address}:{port}: no route came up within {DIAL_TIMEOUT:g}s")

    async def hangup(self, target: str) -> None:
        server = self._own_server("hangup")
        peer = self.peers.get(target)
        if peer is not None:
            # The routes this node dialed to that node's server: by its name, not by
            # port (every node of a mesh across machines has the same port).
            name = peer.info.get("srv")
            candidates = [url for url in server.config.routes
                          if name and self._dialed.get(url) == name]
        else:
            host, port = self.address(target)
            try:
                infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                address = str(infos[0][4][0])
            except OSError:
                address = host
            candidates = [url for url in server.config.routes
                          if url == f"nats-route://{_url_host(address)}:{port}"]
        if not candidates:
            raise MeshError(f"not connected to {target}")
        for url in candidates:
            server.config.routes.remove(url)
            self._dialed.pop(url, None)
        server.reload()


ROUTE_INFO_WAIT = 2.0
_NO_TLS_HERE = ("that node closes the route: TLS or certificates differ (both sides need "
                "-mesh-tls certificates of one CA)")


async def _route_info(address: str, port: int, tls: TlsFiles | None) -> dict[str, Any] | str:
    """What the cluster port at address:port says of itself (its route INFO), or why not.

    Asking first makes a refusal certain: the server's own log says why it dropped a
    route only sometimes before the route is retried and closed again (a race that
    once told a wrong -context for a TLS mismatch). A route port with TLS says nothing
    until a handshake, so a node without certificates hears silence there.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        with trio.fail_after(ROUTE_INFO_WAIT):
            await sock.connect((address, port))
    except (OSError, trio.TooSlowError) as error:
        sock.close()
        errno = getattr(error, "errno", None)
        return (os.strerror(errno) if errno else "timed out").lower()
    stream: trio.abc.Stream = trio.SocketStream(sock)
    try:
        if tls is not None:
            context = ssl.create_default_context(cafile=tls.ca)
            context.load_cert_chain(tls.cert, tls.key)
            context.check_hostname = False  # the CA is the mesh's own: it is the identity
            stream = trio.SSLStream(stream, context)
        line = b""
        with trio.move_on_after(ROUTE_INFO_WAIT) as waited:
            while b"\n" not in line and len(line) < 65536:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                line += chunk
    except (OSError, trio.BrokenResourceError, ssl.SSLError):
        return ("TLS handshake failed (both sides need -mesh-tls certificates of one CA)"
                if tls is not None else _NO_TLS_HERE)
    finally:
        # A half-done handshake may fail to close cleanly: the socket closes all the same.
        with (trio.CancelScope(shield=True), trio.move_on_after(1),
              contextlib.suppress(OSError, trio.BrokenResourceError, ssl.SSLError)):
            await stream.aclose()
    if not line and waited.cancelled_caught:
        return ("that port says nothing: it wants TLS (both sides need -mesh-tls "
                "certificates of one CA), or it is no mesh node's cluster port")
    if not line.startswith(b"INFO "):
        return _NO_TLS_HERE if tls is None else "that node's cluster port does not speak NATS"
    try:
        info = json.loads(line[5:].split(b"\n", 1)[0])
    except ValueError:
        return "that node's cluster port does not speak NATS"
    return info if isinstance(info, dict) else "that node's cluster port does not speak NATS"


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _response_fields(response: Response) -> dict[str, Any]:
    return {"host": response.host, "response": response.response, "header": response.header,
            "tabular": response.tabular, "error": response.error}


async def _routes(monitor_url: str) -> list[dict[str, Any]]:
    """The server's routes, from its monitoring port's /routez."""
    if not monitor_url:
        return []
    hostport = monitor_url.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    try:
        stream = await trio.open_tcp_stream(host, int(port))
    except OSError:
        return []
    async with stream:
        await stream.send_all(b"GET /routez HTTP/1.0\r\nHost: localhost\r\n\r\n")
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    body = data.split(b"\r\n\r\n", 1)[-1]
    try:
        routes = json.loads(body).get("routes") or []
    except ValueError:
        return []
    return [route for route in routes if isinstance(route, dict)]


def default_context() -> str:
    return os.environ.get("MINISHELL_CONTEXT", "minimega")
