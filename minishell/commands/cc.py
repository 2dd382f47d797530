"""`cc` and `clear cc` (cmd/minimega/cc_cli.go): command and control of agents.

Each namespace has its own cc (minishell.cc.server.CcServer), made when first
used: agents that dial `<base>/cc` join the default namespace, agents that
dial a `cc listen` port join the namespace it was opened in.
"""

from __future__ import annotations

import glob
import os
from typing import TYPE_CHECKING, Final

from minishell.cc import serial
from minishell.cc.filters import filter_row, filter_text, parse_filter
from minishell.cc.server import CcServer
from minishell.commands.registry import Command, Context, Handler
from minishell.errors import CommandError
from minishell.gostr import atoi
from minishell.protocol import ron
from minishell.reply import Response

if TYPE_CHECKING:
    from minishell.namespace import Namespace
    from minishell.session import Session

_LEVELS: Final = {"debug": 1, "info": 2, "warn": 3, "error": 4, "fatal": 5}  # minilog's


async def cc_server(session: Session, namespace: Namespace) -> CcServer:
    """The namespace's cc, started on first use; it goes with the namespace."""
    server = namespace.find(CcServer)
    if server is None:
        server = CcServer(namespace.name, session.plumber, session.files_dir)
        await session.nursery.start(server.run)
        namespace.keep(server)
    return server


def _go_list(items: list[str]) -> str:
    """fmt's %v of a []string: `[a b]`, `[]` when empty."""
    return "[" + " ".join(items) + "]"


def _stdio(words: tuple[str, ...]) -> tuple[str, str, str, list[str]]:
    """ccCommandPreProcess: up to three leading stdin=/stdout=/stderr= pairs, split at
    every `=` with the value in the second field; the first word that is not one
    starts the command. One or two pairs and no command crash 2.9: an error here."""
    streams = {"stdin": "", "stdout": "", "stderr": ""}
    for index, word in enumerate(words[:3]):
        fields = word.split("=")
        if len(fields) == 1 or fields[0] not in streams:
            return streams["stdin"], streams["stdout"], streams["stderr"], list(words[index:])
        streams[fields[0]] = fields[1]
    if len(words) < 3:
        raise CommandError("no command given")
    return streams["stdin"], streams["stdout"], streams["stderr"], list(words[3:])


def _run_command(command: Command, *, background: bool, once: bool) -> ron.Command:
    stdin, stdout, stderr, argv = _stdio(command.words("command"))
    return ron.Command(background=background, once=once, command=argv, stdin=stdin,
                       stdout=stdout, stderr=stderr)


def _files_to_send(server: CcServer, files: tuple[str, ...]) -> list[str]:
    """NewFilesSendCommand: names relative to the files folder (the namespace's
    folder in it first), globs expanded; 2.9 keeps only the last file's matches."""
    root = os.path.normpath(server.files_dir)
    folders = [root] if server.namespace == "minimega" else [
        os.path.join(root, server.namespace), root]
    found: list[str] = []
    for name in files:
        path = os.path.normpath(name)
        if os.path.isabs(path):
            if os.path.commonpath([root, path]) != root:
                raise CommandError(f"can only send files from {root}")
            matches = sorted(glob.glob(path))
            found += [os.path.relpath(match, root) for match in matches]
        else:
            matches = []
            for folder in folders:
                matches = sorted(glob.glob(os.path.join(folder, path)))
                if matches:
                    found += [os.path.relpath(match, folder) for match in matches]
                    break
        if not matches:
            raise CommandError(f"no such file: {path}")
    return found


async def cc(ctx: Context, command: Command) -> Response | None:
    server = await cc_server(ctx.session, ctx.namespace)
    chosen = command.bools
    if not chosen:
        return ctx.table(["clients"], [[str(len(server.agents))]])
    if "listen" in chosen:
        try:
            port = atoi(command.string("port"))
        except ValueError as error:
            raise CommandError(str(error)) from None
        await server.listen(port)
        return None
    if "clients" in chosen:
        rows = [[agent.uuid, agent.client.hostname, agent.client.arch, agent.client.os,
                 _go_list(agent.client.ips), _go_list(agent.client.macs)]
                for agent in server.agents.values()]
        return ctx.table(["uuid", "hostname", "arch", "os", "ip", "mac"], rows)
    if "filter" in chosen:
        pairs = command.words("filter")
        if pairs:
            server.filter = parse_filter(pairs)
            return None
        if server.filter is None:
            return None
        return ctx.table(["uuid", "hostname", "arch", "os", "ip", "mac", "tags"],
                         [filter_row(server.filter)])
    if "prefix" in chosen:
        prefix = command.optional("prefix")
        if prefix is None:
            return ctx.text(server.prefix)
        server.prefix = prefix
        return None
    if "commands" in chosen:
        return ctx.table(COMMANDS_HEADER, [_command_row(server.commands[command_id])
                                           for command_id in sorted(server.commands)])
    if "responses" in chosen:
        return ctx.text(await _responses(server, command.string("id"), "raw" in chosen))
    if "exitcode" in chosen:
        return ctx.text(str(await _exit_code(server, command)))
    if "delete" in chosen:
        await _delete(server, command)
        return None
    if "process" in chosen and "list" in chosen:
        return ctx.table(["name", "uuid", "pid", "command"], _processes(server, command))
    server.post(_new_command(server, command))
    return None


COMMANDS_HEADER: Final = ["id", "prefix", "command", "responses", "background", "once", "sent",
                          "received", "connectivity", "level", "filter"]


def _command_row(command: ron.Command) -> list[str]:
    level = next((name for name, value in _LEVELS.items() if value == command.level), "")
    return [str(command.id), command.prefix, _go_list(command.command),
            str(len(command.checked_in)), str(command.background).lower(),
            str(command.once).lower(), _go_list(command.files_send),
            _go_list(command.files_recv), "", level, filter_text(command.filter)]


def _new_command(server: CcServer, command: Command) -> ron.Command:
    """The command a `cc` line posts to the agents."""
    chosen = command.bools
    if "exec" in chosen or "exec-once" in chosen:
        return _run_command(command, background=False, once="exec-once" in chosen)
    if "background" in chosen or "background-once" in chosen:
        return _run_command(command, background=True, once="background-once" in chosen)
    if "send" in chosen:
        return ron.Command(files_send=_files_to_send(server, command.words("file")))
    if "recv" in chosen:
        return ron.Command(files_recv=list(command.words("file")))
    if "kill" in chosen:
        pid = command.string("pid")
        if pid == "all":
            return ron.Command(pid=-1)
        try:
            return ron.Command(pid=atoi(pid))
        except ValueError:
            raise CommandError(f"invalid PID: `{pid}`") from None
    if "killall" in chosen:
        return ron.Command(kill_all=command.string("name"))
    level = next(name for name in _LEVELS if name in chosen)
    return ron.Command(level=_LEVELS[level])


async def _responses(server: CcServer, which: str, raw: bool) -> str:
    """`cc responses <id or prefix or all>`."""
    responses = server.responses
    if which == "all":
        return await responses.run(lambda: responses.show(None, raw))
    try:
        command_id = atoi(which)
    except ValueError:
        pass
    else:
        return await responses.run(lambda: responses.show(command_id, raw))
    ids = [command.id for command in server.commands.values() if command.prefix == which]
    if not ids:
        raise CommandError(f"no such prefix: `{which}`")

    def show_each() -> str:
        return "".join(responses.show(command_id, raw) + "\n" for command_id in ids)

    return await responses.run(show_each)


async def _exit_code(server: CcServer, command: Command) -> int:
    try:
        command_id = atoi(command.string("id"))
    except ValueError:
        raise CommandError("invalid command ID provided") from None
    name = command.string("vm")
    agent = server.find_agent(name)
    if agent is None:
        raise CommandError(f"unable to get exit code: no client {name}")
    responses = server.responses
    return await responses.run(lambda: responses.exit_code(command_id, agent.uuid))


async def _delete(server: CcServer, command: Command) -> None:
    """`cc delete command|response <id or prefix or all>`."""
    which = command.string("id")
    responses = server.responses
    try:
        command_id: int | None = atoi(which)
    except ValueError:
        command_id = None
    if "command" in command.bools:
        if which == "all":
            server.clear_commands()
        elif command_id is not None:
            if server.commands.pop(command_id, None) is None:
                raise CommandError(f"command {command_id} not found")
        else:
            doomed = [each.id for each in server.commands.values() if each.prefix == which]
            if not doomed:
                raise CommandError(f"no such prefix: `{which}`")  # 2.9 prints its Server
            for each in doomed:
                del server.commands[each]
        return
    if which == "all":
        await responses.run(responses.delete)
    elif command_id is not None:
        await responses.run(lambda: responses.delete(command_id))
    else:
        doomed = [each.id for each in server.commands.values() if each.prefix == which]
        if not doomed:
            raise CommandError(f"no such prefix: `{which}`")

        def delete_each() -> None:
            for each in doomed:
                responses.delete(each)

        await responses.run(delete_each)


def _processes(server: CcServer, command: Command) -> list[list[str]]:
    """`cc process list <vm name, uuid or all>`: background processes, as of each
    agent's last heartbeat."""
    which = command.string("vm")
    if which == "all":
        agents = list(server.agents.values())
    else:
        agent = server.find_agent(which)
        if agent is None:
            raise CommandError(f"vm not found: {which}")
        agents = [agent]
    return [[agent.client.hostname, agent.uuid, str(pid), " ".join(process.command)]
            for agent in agents
            for pid, process in sorted((agent.client.processes or {}).items())]


async def clear_cc(ctx: Context, command: Command) -> Response | None:
    """`clear cc [commands|filter|prefix|responses]`: all of it when none is named."""
    server = await cc_server(ctx.session, ctx.namespace)
    chosen = command.bools
    if not chosen or "filter" in chosen:
        server.filter = None
    if not chosen or "commands" in chosen:
        server.clear_commands()
    if not chosen or "responses" in chosen:
        await server.responses.run(server.responses.delete)
    if not chosen or "prefix" in chosen:
        server.prefix = ""
    # The serial ports stay dialed: they stand for VMs, whose agents 2.9's `clear cc`
    # leaves connected (as it leaves network agents); `clear cc serial` stops them.
    return None


async def cc_serial(ctx: Context, command: Command) -> Response | None:
    """`cc serial [PATH]...`: list the serial ports dialed, or dial more."""
    server = await cc_server(ctx.session, ctx.namespace)
    paths = command.words("path")
    if not paths:
        return ctx.table(serial.HEADER, server.serial.rows())
    for namespace in ctx.session.namespaces:  # one dialer a socket: qemu takes one client
        other = namespace.find(CcServer)
        if other is None or other is server:
            continue
        for path in paths:
            if other.serial.dials(serial.normalized(path)):
                raise CommandError(f"already dialing {path} in namespace {namespace.name}")
    server.serial.dial(paths)
    return None


async def clear_cc_serial(ctx: Context, command: Command) -> Response | None:
    server = await cc_server(ctx.session, ctx.namespace)
    await server.serial.clear(command.optional("path"))
    return None


HANDLERS = (
    Handler(
        patterns=(
            "cc",
            "cc <listen,> <port>",
            "cc <clients,>",
            "cc <filter,> [filter]...",
            "cc <commands,>",
            "cc <prefix,> [prefix]",
            "cc <send,> <file>...",
            "cc <recv,> <file>...",
            "cc <exec,> <command>...",
            "cc <exec-once,> <command>...",
            "cc <background,> <command>...",
            "cc <background-once,> <command>...",
            "cc <process,> <list,> <vm name, uuid or all>",
            "cc <process,> <kill,> <pid or all>",
            "cc <process,> <killall,> <name>",
            "cc <log,> level <debug,info,warn,error,fatal>",
            "cc <responses,> <id or prefix or all> [raw,]",
            "cc <exitcode,> <id> <vm name, hostname, or uuid>",
            "cc <delete,> <command,> <id or prefix or all>",
            "cc <delete,> <response,> <id or prefix or all>",
        ),
        short="command and control commands",
        long=(
            "Command and control for agents: VMs, containers or plain processes running\n"
            "minimega's miniccc client or minishell-agent, connected to minishell's cc\n"
            "socket <base>/cc (the default namespace) or to a port opened with \"cc listen\"\n"
            "(the namespace it was opened in). Commands run in command creation order. For\n"
            "example, to send a file 'foo' and display its contents on every agent:\n"
            "\n"
            "\tcc send foo\n"
            "\tcc exec cat foo\n"
            "\n"
            "Files to be sent must be in the files folder, <base>/files.\n"
            "\n"
            "Executed commands can have their stdio tied to pipes used by the plumb and pipe\n"
            "APIs. To use named pipes, simply specify stdin, stdout, or stderr as a\n"
            "key=value pair. For example:\n"
            "\n"
            "\tcc exec stderr=foo cat server.log\n"
            "\tcc background stdin=foo stdout=bar /usr/bin/program\n"
            "\n"
            "Executed commands can also be marked to be sent to each agent only once, so\n"
            "that they are not run again when an agent restarts:\n"
            "\n"
            "\tcc exec-once shutdown -r now\n"
            "\n"
            "Responses are kept in <base>/files/miniccc_responses, with a folder for each\n"
            "command and in it one for each agent, named by its uuid, and can be shown with\n"
            "\"cc responses\". The responses of executed (not backgrounded) commands include\n"
            "the exit code, shown with \"cc exitcode\". minishell's agents send their responses\n"
            "as soon as a command ends; miniccc sends them with its next heartbeat (5 s).\n"
            "\n"
            "Filters limit which agents run a posted command. For example, to run only on\n"
            "linux agents with a given IP:\n"
            "\n"
            "\tcc filter os=linux ip=10.0.0.1\n"
            "\n"
            "Agents can be filtered by the tags they report (minishell-agent -tag or\n"
            "miniccc -tag), with or without the tag= prefix, and by name, which is the\n"
            "agent's hostname:\n"
            "\n"
            "\tcc filter tag=foo:bar\n"
            "\tcc filter foo=bar\n"
            "\tcc filter name=server\n"
            "\n"
            "Agents in VMs that minishell did not start (plain qemu, libvirt, Proxmox) can\n"
            "also come over a virtio-serial port, off the VMs' network: see \"help cc serial\".\n"
            "\n"
            "cc tunnel, cc rtunnel, cc mount and cc test-conn are minimega's, not minishell's."
        ),
        call=cc,
    ),
    Handler(
        patterns=("cc serial [path]...",),
        short="dial VMs' virtio-serial ports for cc (minishell's own)",
        long=(
            "minishell's own command (minimega dials the ports of the KVM VMs it starts):\n"
            "dial the host end of VMs' virtio-serial ports, so that the agents in them\n"
            "(minishell-agent -serial or miniccc -serial, on /dev/virtio-ports/cc in the\n"
            "guest) join this namespace's cc without touching the VMs' network.\n"
            "\n"
            "Each path is the unix socket qemu listens on for the port (-chardev\n"
            "socket,path=...,server=on,wait=off), given as an absolute path, or a glob of\n"
            "them that is evaluated again every second, so that the sockets of VMs started\n"
            "later are dialed as they appear:\n"
            "\n"
            "\tcc serial /run/vms/web/cc\n"
            "\tcc serial /run/vms/*/cc\n"
            "\n"
            "Without a path, every path is listed with its state: waiting (not dialed: the\n"
            "socket is absent, refuses or is not a socket, as the error says; it is dialed\n"
            "again within 2 s), dialed (no agent yet: the guest may still be booting) or\n"
            "connected, with the agent's uuid and hostname, the glob that found it, how\n"
            "many times an agent connected again over it, and the last error. An agent that\n"
            "restarts connects again over the same line; a VM that goes away leaves its\n"
            "path waiting, and a glob forgets it. A glob that matches no socket is listed as\n"
            "a row of its own.\n"
            "\n"
            "\"clear cc serial [path]\" stops dialing a path, or a glob and what it found,\n"
            "or everything, and drops the agents connected over them; so does \"clear all\".\n"
            "\"clear cc\" leaves them dialed, as minimega leaves its VMs' agents connected."
        ),
        call=cc_serial,
        minimega=False,
        exact_only=True,
    ),
    Handler(
        patterns=(
            "clear cc",
            "clear cc <commands,>",
            "clear cc <filter,>",
            "clear cc <prefix,>",
            "clear cc <responses,>",
        ),
        short="reset command and control state",
        long=(
            "Resets state for the command and control infrastructure provided by minishell.\n"
            'See "help cc" for more information.'
        ),
        call=clear_cc,
    ),
    Handler(
        patterns=("clear cc serial [path]",),
        short="stop dialing VMs' serial ports (minishell's own)",
        long='minishell\'s own: see "help cc serial".',
        call=clear_cc_serial,
        minimega=False,
        exact_only=True,
    ),
)
