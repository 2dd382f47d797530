"""argv -> front end -> exit status. Parses minimega's flags; no logic of its own.

`-pipe`, `-e` and `-attach` are the socket clients, timed from the shell: a
hand-written scan spots them before argparse and logging are even imported
(together over 10 ms here: the clients' whole budget), and for the same reason
there is no `from __future__ import annotations` (client.py says why). Heavy
modules (trio, lark, prompt_toolkit) are imported only by the front end that
needs them.
"""

import os
import sys

from minishell import __version__
from minishell.protocol.control import DEFAULT_BASE, STDIN_ERROR_ENV

# typing imports re: mypy honours a TYPE_CHECKING of our own.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import NoReturn

LEVEL_NAMES = ("debug", "error", "fatal", "info", "warn")  # minimega's -level values


def build_parser() -> "argparse.ArgumentParser":
    import argparse

    parser = argparse.ArgumentParser(
        prog="minishell",
        description="minimega's plumber, driven by minimega's command language. "
        "With no FILE, a terminal gets the minimega$ prompt and any other stdin is "
        "run as a script.",
        allow_abbrev=False,
    )

    def flag(name: str, group: "argparse._ActionsContainer" = parser,
             **options: object) -> None:
        # minimega spells its flags with one dash; both spellings work here.
        group.add_argument(f"-{name}", f"--{name}", **options)  # type: ignore[arg-type]

    flag("base", default=DEFAULT_BASE, metavar="DIR",
         help="base folder: the control socket is DIR/minimega, and file: arguments "
         "resolve to DIR/files (default %(default)s)")
    flag("hostname", metavar="NAME",
         help="host name shown in tables and errors (default: this machine's)")
    flag("level", default="warn", choices=LEVEL_NAMES, help="log level (default %(default)s)")
    flag("history-file", metavar="FILE", dest="history_file",
         help="prompt history (default $MINISHELL_HISTFILE or "
         "$XDG_STATE_HOME/minishell/history)")
    flag("replay", action="store_true",
         help="replay transcripts like minitest: FILEs are scripts or folders of scripts "
         "with NAME.want beside them; each runs in a fresh session, or with -attach "
         "through the socket of the instance running on -base")
    flag("version", action="store_true", help="print the version and exit")
    flag("nostdin", action="store_true",
         help="serve the socket without a prompt (run in the background; stop with "
         "SIGTERM or `minishell -e quit`)")
    flag("force", action="store_true", help="replace a running instance's socket")
    mesh = parser.add_argument_group(
        "mesh (several instances share their pipes, on NATS; see README: Mesh)")
    flag("mesh", mesh, action="store_true",
         help="be a mesh node: start a nats-server of its own, joined to others by "
         "`mesh dial HOST[:PORT]`")
    flag("context", mesh, default="minimega", metavar="NAME",
         help="the mesh's name: nodes of other contexts never see this one "
         "(default %(default)s)")
    flag("port", mesh, default=9000, type=int, metavar="PORT",
         help="the node's cluster port, which `mesh dial` reaches (default %(default)s)")
    flag("nats", mesh, metavar="URL[,URL]",
         help="join the NATS server or cluster at these URLs instead of starting one")
    flag("nats-creds", mesh, dest="nats_creds", metavar="FILE",
         help="a NATS credentials file (JWT and nkey seed) for -nats")
    flag("mesh-tls", mesh, dest="mesh_tls", metavar="DIR",
         help="mutual TLS: DIR holds ca.pem, node.pem and node-key.pem "
         "(made by -mesh-keygen)")
    flag("mesh-listen", mesh, dest="mesh_listen", default="127.0.0.1", metavar="ADDR",
         help="the address the node's cluster port listens on (default %(default)s); "
         "any other needs -mesh-tls or -mesh-insecure")
    flag("mesh-insecure", mesh, dest="mesh_insecure", action="store_true",
         help="the node's nats-server asks no one for credentials, clients or routes "
         "(needed for -mesh-listen without -mesh-tls)")
    flag("mesh-secret", mesh, dest="mesh_secret", metavar="FILE",
         help="the secret a loopback mesh's routes show, the same for all of a user's "
         "nodes; made on first use (default $XDG_STATE_HOME/minishell/mesh-secret)")
    flag("mesh-keygen", mesh, dest="mesh_keygen", metavar="DIR",
         help="make a mesh CA in DIR (once), and a certificate for -hostname signed by it "
         "in DIR/<hostname>, for -mesh-tls; then exit")
    clients = parser.add_argument_group(
        "clients of a running instance (reached through DIR/minimega)")
    flag("pipe", clients, metavar="NAME",
         help="attach stdin and stdout to the pipe NAME (a reader and a writer; "
         "NAME without ns// is in minimega//); exits 0 at the end of stdin")
    flag("e", clients, action="store_true",
         help="run the command given by the remaining arguments, print what it prints, "
         "exit 1 if it failed")
    flag("attach", clients, action="store_true",
         help="a prompt whose commands run on the running instance")
    flag("namespace", clients, metavar="NS", default="",
         help="run -e and -attach commands in the namespace NS")
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="scripts to run at start (with -replay: transcripts; "
                        "with -e: the command's words)")
    return parser


def main(argv: "Sequence[str] | None" = None) -> int:
    """Run the command line `argv` (default: the process's own) to its exit status.

    A client run for the process's own command line ends the process itself
    once its output is out: the interpreter's teardown would add about 2 ms
    to every `-pipe` and `-e`, and there is nothing left to tear down.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    client = scan_client(args)
    if client is not None:
        status = run_client(client)
        if argv is None:
            _exit_now(status)
        return status
    options = build_parser().parse_args(args)
    if options.version:
        print(f"minishell {__version__}")
        return 0
    if (options.pipe or options.e or options.attach) and not options.replay:
        return run_client(ClientCall(options.base, options.namespace, options.pipe or "",
                                     options.e, options.attach, options.files))
    if options.mesh_keygen:
        from minishell.mesh.keys import keygen

        return keygen(options.mesh_keygen, options.hostname)
    # Said by the C launcher, which gave us /dev/null for a stdin we could not take.
    stdin_error = os.environ.pop(STDIN_ERROR_ENV, "")
    if stdin_error and not (options.nostdin or options.replay):
        print(f"minishell: read stdin: {stdin_error}", file=sys.stderr)
        return 1
    from minishell import app, logs

    logs.configure(options.level)

    # trio hands these back inside exception groups, hence except*.
    status = 0
    try:
        status = app.run(options)
    except* KeyboardInterrupt:
        status = 130
    except* BrokenPipeError:
        # `minishell script | head`: the reader left; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        status = 141
    return status


class ClientCall:
    """What the command line asks of a client: one of -pipe, -e, -attach.

    A plain class, not a dataclass: dataclasses imports inspect and re.
    """

    __slots__ = ("attach", "base", "e", "namespace", "pipe", "words")

    def __init__(self, base: str, namespace: str, pipe: str, e: bool, attach: bool,
                 words: "Sequence[str]") -> None:
        self.base = base
        self.namespace = namespace
        self.pipe = pipe
        self.e = e
        self.attach = attach
        self.words = words


_VALUE_FLAGS = ("base", "namespace", "pipe")


def scan_client(args: "Sequence[str]") -> ClientCall | None:
    """The client call that argv spells plainly, or None to let argparse decide.

    Flags come first, as Go's flag package wants them (`-e` takes the words
    after the last flag); anything this scan does not know goes to argparse.
    """
    values = {"base": DEFAULT_BASE, "namespace": "", "pipe": ""}
    switches = {"e": False, "attach": False}
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            index += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        name, equals, value = arg[2 if arg.startswith("--") else 1:].partition("=")
        if name in _VALUE_FLAGS:
            if not equals:
                index += 1
                if index == len(args):
                    return None
                value = args[index]
            values[name] = value
        elif name in switches and not equals:
            switches[name] = True
        else:
            return None
        index += 1
    words = args[index:]
    if not (values["pipe"] or switches["e"] or switches["attach"]):
        return None
    if words and not (switches["e"] and not values["pipe"]):
        return None
    return ClientCall(values["base"], values["namespace"], values["pipe"],
                      switches["e"], switches["attach"], words)


def _exit_now(status: int) -> "NoReturn":
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a reader that left: the status says what happened
        pass
    os._exit(status)


def run_client(call: ClientCall) -> int:
    """minimega's precedence: -pipe, then -e, then -attach."""
    from minishell import client

    try:
        if call.pipe:
            return client.pipe(call.base, call.pipe)
        if call.e:
            return client.execute(call.base, call.namespace, call.words)
        return client.attach(call.base, call.namespace)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
