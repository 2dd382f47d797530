"""`namespace`, `ns` and `clear namespace` (cmd/minimega/namespace_cli.go)."""

from __future__ import annotations

from minishell.commands.registry import Command, Context, Handler, PlainWrapper, command_of
from minishell.errors import CommandError
from minishell.namespace import DEFAULT_NAMESPACE, check_name
from minishell.ranges import unsplit_list
from minishell.reply import Response


async def namespace(ctx: Context, command: Command) -> Response | None:
    """`namespace`: the listing; `namespace <name>`: switch."""
    namespaces = ctx.session.namespaces
    name = command.optional("name")
    if name is None:
        rows = [[each.name, each.vlans, "true" if each is namespaces.active else "false"]
                for each in namespaces]
        return ctx.table(["namespace", "vlans", "active"], rows)
    namespaces.switch(name)
    return None


class InNamespace(PlainWrapper):
    """`namespace <name> (command)`: creates the namespace, runs there, switches back."""

    def enter(self) -> None:
        name = self.command.string("name")
        check_name(name)
        namespaces = self.ctx.session.namespaces
        self._previous = namespaces.active.name
        namespaces.active = namespaces.get(name)

    def leave(self) -> None:
        # minimega switches back only if the command left the namespace alone.
        namespaces = self.ctx.session.namespaces
        if namespaces.active.name == self.command.string("name"):
            namespaces.active = namespaces.get(self._previous)


async def clear_namespace(ctx: Context, command: Command) -> Response | None:
    namespaces = ctx.session.namespaces
    name = command.optional("name")
    if name is not None:
        await namespaces.destroy(name)
    elif namespaces.active.name == DEFAULT_NAMESPACE:
        raise CommandError(f"already in namespace: {DEFAULT_NAMESPACE}")
    else:
        namespaces.active = namespaces.default
    return None


async def ns_hosts(ctx: Context, command: Command) -> Response | None:
    """`ns hosts`: the hosts the active namespace spans, as a range."""
    return ctx.text(unsplit_list(sorted(ctx.namespace.hosts)))


NAMESPACE = Handler(
    patterns=("namespace [name]", "namespace <name> (command)"),
    short="display or change namespace",
    long=(
        'With no arguments, "namespace" prints summary info about namespaces:\n'
        '\n'
        '- name   : name of the namespace\n'
        '- vlans  : range of VLANs, empty if not set\n'
        '- active : active or not\n'
        '\n'
        'When a namespace is specified, it changes the active namespace or runs a single\n'
        'command in the different namespace.'
    ),
    call=namespace,
    wrapper=InNamespace,
)


def in_namespace(name: str, command: Command) -> Command:
    """`namespace <name> (command)`."""
    return command_of(NAMESPACE, {"name": name}, command)


def is_switch(command: Command) -> bool:
    """Whether the command is `namespace <name>`, which switches the namespace."""
    return command.handler is NAMESPACE and command.subcommand is None and bool(command.strings)


HANDLERS = (
    NAMESPACE,
    Handler(
        patterns=("ns <hosts,>", "ns <run,> (command)"),
        short="tinker with active namespace",
        long=(
            'Display or modify the active namespace. minishell has one host, so of\n'
            "minimega's subcommands only these two apply:\n"
            '\n'
            '- hosts     : list hosts\n'
            '- run       : run a command on all nodes in the namespace'
        ),
        call=ns_hosts,
        # The namespace spans this host alone, where the command runs as it is.
        wrapper=PlainWrapper,
    ),
    Handler(
        patterns=("clear namespace [name]",),
        short="unset or delete namespace",
        long=(
            'Without an argument, "clear namespace" will reset the namespace to the default\n'
            'namespace, minimega.\n'
            '\n'
            'With an argument, "clear namespace <name>" will destroy the specified\n'
            'namespace, cleaning up all state associated with it. You may use "all" to\n'
            'destroy all namespaces. This command is broadcast to the cluster to clean up\n'
            'any remote state as well.'
        ),
        call=clear_namespace,
    ),
)
