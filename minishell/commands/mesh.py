"""`mesh degree|dial|dot|hangup|list|status|timeout|send` (cmd/minimega/mesh_cli.go), on NATS.

Without a mesh (no -mesh, no -nats) this node is a mesh of one, as a lone
minimega is: `mesh list` shows it alone, `mesh send` reaches nobody.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from minishell import osfiles
from minishell.commands.registry import Command, Context, Handler
from minishell.errors import CommandError
from minishell.gostr import GO_SPACE, duration_string, parse_uint
from minishell.mesh.node import MeshError, Node, recipients
from minishell.origin import FROM_MESH
from minishell.ranges import unsplit_list
from minishell.reply import Reply, Response

_NO_MESH = "not a mesh node: start minishell with -mesh (or -nats URL)"
_LEXER_ESCAPES = {ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\t"): "\\t",
                  ord("\r"): "\\r"}
_NEEDS_QUOTES = set(GO_SPACE) | set("\"'`#\\")


def requote(words: tuple[str, ...] | list[str]) -> str:
    """Words as a line that minicli's lexer reads back as the same words."""
    return " ".join(
        f'"{word.translate(_LEXER_ESCAPES)}"' if not word or any(
            char in _NEEDS_QUOTES for char in word) else word
        for word in words)


def _node(ctx: Context) -> Node | None:
    return ctx.session.mesh


def _names(ctx: Context) -> list[str]:
    node = _node(ctx)
    return node.live() if node is not None else [ctx.hostname]


async def mesh_list(ctx: Context, command: Command) -> Response | None:
    names = _names(ctx)
    if "all" in command.bools:
        return ctx.text(unsplit_list(names))
    if "peers" in command.bools:
        return ctx.text(unsplit_list([name for name in names if name != ctx.hostname]))
    # NATS's routes gossip into a full mesh: every live node reaches every other.
    text = "".join(f"{name}\n" + "".join(f" |--{peer}\n" for peer in names if peer != name)
                   for name in names)
    return ctx.text(text)


async def mesh_status(ctx: Context, command: Command) -> Response | None:
    node = _node(ctx)
    names = _names(ctx)
    context = node.context if node is not None else ctx.session.mesh_context
    port = node.port if node is not None else ctx.session.mesh_port
    dropped = node.dropped if node is not None else 0
    return ctx.table(["size", "degree", "peers", "context", "port", "dropped"],
                     [[str(len(names)), "0", str(len(names) - 1), context, str(port),
                       str(dropped)]])


async def mesh_degree(ctx: Context, command: Command) -> Response | None:
    # minimega's degree is how many peers a node solicits by UDP broadcast. A NATS mesh
    # finds no peers that way (routes are dialed, then gossiped), so it is always 0.
    value = command.optional("degree")
    if value is None:
        return ctx.text("0")
    try:
        # minimega parses it with strconv.ParseUint(s, 0, 10)
        degree = parse_uint(value, 10)
    except ValueError as error:
        raise CommandError(str(error)) from None
    if degree != 0:
        raise CommandError("mesh degree: this mesh finds no peers by broadcast; "
                           "join nodes with mesh dial")
    return None


def dot(name: str, names: list[str]) -> str:
    """meshage's Node.Dot: the topology as a graphviz graph (NATS's is a full mesh)."""
    lines = [f"graph {name} {{", 'size="8,11";', "overlap=false;",
             f'Legend [shape=box, shape=plaintext, label="total={len(names)}"];']
    visited: set[str] = set()
    for node in names:
        lines.append(f"{node} [style=filled, color={'red' if node == name else 'green'}];")
        lines.extend(f"{node} -- {peer}" for peer in names
                     if peer != node and peer not in visited)
        lines.append("")
        visited.add(node)
    return "\n".join(lines) + "\n}"


async def mesh_dot(ctx: Context, command: Command) -> Response | None:
    await osfiles.create(command.string("filename"), dot(ctx.hostname, _names(ctx)).encode())
    return None


async def mesh_timeout(ctx: Context, command: Command) -> Response | None:
    node = _node(ctx)
    value = command.optional("timeout")
    if value is None:
        timeout = node.timeout if node is not None else ctx.session.mesh_timeout
        return ctx.text("unlimited" if not timeout else duration_string(int(timeout * 1e9)))
    try:
        seconds = int(value, 10)
    except ValueError:
        raise CommandError(f'strconv.Atoi: parsing "{value}": invalid syntax') from None
    if seconds < 0:
        raise CommandError("the mesh timeout cannot be negative")
    if node is not None:
        node.timeout = float(seconds)
    else:
        ctx.session.mesh_timeout = float(seconds)
    return None


async def mesh_dial(ctx: Context, command: Command) -> Response | None:
    node = _required(ctx)
    with _as_command_error():
        await node.dial(command.string("hostname"))
    return None


async def mesh_hangup(ctx: Context, command: Command) -> Response | None:
    node = _required(ctx)
    with _as_command_error():
        await node.hangup(command.string("hostname"))
    return None


def _required(ctx: Context) -> Node:
    node = _node(ctx)
    if node is None:
        raise CommandError(_NO_MESH)
    return node


@contextlib.contextmanager
def _as_command_error() -> Iterator[None]:
    """The mesh's refusals, as the command's error."""
    try:
        yield
    except MeshError as error:
        raise CommandError(str(error)) from None


async def mesh_send(ctx: Context, command: Command) -> Response | None:
    line = requote(command.source[3:])
    if FROM_MESH.get():
        raise CommandError(f"cannot run `{requote(command.source)}` via meshage")
    hosts = command.string("hostname")
    node = _node(ctx)
    with _as_command_error():
        responses = (_alone(ctx, hosts) if node is None
                     else await node.mesh_send(hosts, line))
    if responses:
        await ctx.emit(Reply(responses, ctx.session.flags))
    return None


async def across_namespace(ctx: Context, words: list[str]) -> list[Response] | None:
    """The responses of the command `words` from the other hosts the active namespace spans, as
    minimega's wrapBroadcastCLI runs `pipe` and `clear pipe` on them; None when it
    spans no other host (the default namespace, a lone node, a command from the mesh).
    """
    node = _node(ctx)
    others = sorted(ctx.namespace.hosts - {ctx.hostname})
    if node is None or not others or FROM_MESH.get():
        return None
    line = requote(["namespace", ctx.namespace.name, *words])
    with _as_command_error():
        return await node.mesh_send(unsplit_list(others), line)


def _alone(ctx: Context, hosts: str) -> list[Response]:
    """`mesh send` on a node without a mesh: nobody to reach."""
    _, unreachable = recipients(hosts, ctx.hostname, [ctx.hostname])
    return [Response(name, error="no route to host") for name in sorted(unreachable)]


def _peer_names(session: object) -> list[str]:
    node = getattr(session, "mesh", None)
    return [name for name in node.live() if name != node.name] if node is not None else []


HANDLERS = (
    Handler(patterns=("mesh degree [degree]",),
            short="view or set the current degree for this mesh node",
            long=("View the degree of this node: how many peers minimega solicits by UDP\n"
                  "broadcast. A NATS mesh is joined with mesh dial, so the degree is 0, and\n"
                  "only 0 can be set."),
            call=mesh_degree),
    Handler(patterns=("mesh dial <hostname>",),
            short="attempt to connect this node to another node",
            long=("Connect this node's NATS server to another node's by a route:\n"
                  "\n"
                  "\tmesh dial HOST[:PORT]\n"
                  "\n"
                  "PORT defaults to this node's -port (minimega's 9000). NATS's own gossip\n"
                  "then connects every node of both meshes."),
            call=mesh_dial),
    Handler(patterns=("mesh dot <filename>",), short="output a graphviz formatted dot file",
            long="Output a graphviz formatted dot file representing the connected topology.",
            call=mesh_dot),
    Handler(patterns=("mesh hangup <hostname>",), short="disconnect from a client",
            long=("Remove the route this node dialed to a node (by its name, or the\n"
                  "HOST[:PORT] it was dialed at)."),
            call=mesh_hangup, suggest={"hostname": _peer_names}),
    Handler(patterns=("mesh list [all,peers]",), short="display the mesh adjacency list",
            long=('Without "all" or "peers", displays the mesh adjacency list. If "all" is\n'
                  'specified, the hostnames of all nodes in the list are printed. If "peers" is\n'
                  'specified, the hostnames of all peers are printed (the local node is not\n'
                  'included).'),
            call=mesh_list),
    Handler(patterns=("mesh status",), short="display a short status report of the mesh",
            call=mesh_status),
    Handler(patterns=("mesh timeout [timeout]",), short="view or set the mesh timeout",
            long=("View or set the timeout on sending mesh commands.\n"
                  "\n"
                  "When a mesh command is issued, if a response isn't sent within mesh timeout\n"
                  "seconds, the command will be dropped and any future response will be\n"
                  "discarded. A node that stops answering altogether is taken out of the mesh\n"
                  "within 2 seconds, and its answer is then `no route to host`.\n"
                  "\n"
                  "By default, the mesh timeout is 0 which disables timeouts."),
            call=mesh_timeout),
    Handler(patterns=("mesh send <hostname or range or all> (command)",),
            short="send a command to one or more connected clients",
            long=("Send a command to one or more connected clients. For example, to get the\n"
                  "vm info from nodes kn1 and kn2:\n"
                  "\n"
                  "\tmesh send kn[1-2] vm info\n"
                  "\n"
                  "You can use 'all' to send a command to all connected clients."),
            call=mesh_send, streams=True,
            suggest={"hostname": lambda s: [*_peer_names(s), "all"]}),
)
