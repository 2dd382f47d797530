"""A minimega session: one line in, replies out, one command at a time.

Every front end (prompt, scripts, replay, the socket) ends in `Session.run`.
It follows minimega's command path (spec §1): alias expansion, compile,
preprocess, execute, history. What a command does is its handler's affair
(minishell.commands); the session only runs handlers, the commands that wrap
others (`.json true ...`, `namespace foo ...`) around the command they name,
and keeps what minimega keeps process-wide besides the plumber: output flags,
aliases, namespaces and history.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from minishell import kit
from minishell.commands.registry import Command, Context, Sink, Wrapper, registry
from minishell.errors import CommandError
from minishell.gostr import trim_space
from minishell.history import History
from minishell.language import expand, expand_alias
from minishell.namespace import Namespaces
from minishell.origin import FROM_MESH
from minishell.plumber import Plumber, PlumberError, open_plumber
from minishell.reply import Flags, Reply, Response

if TYPE_CHECKING:
    from minishell.mesh.node import Node


class Session:
    """Flags, aliases, namespaces and history around one Plumber."""

    def __init__(self, plumber: Plumber, nursery: trio.Nursery, *, hostname: str,
                 base: str, history: History | None = None) -> None:
        self.plumber = plumber
        self.hostname = hostname
        self.base = base
        self.files_dir = os.path.join(base, "files")
        self.flags = Flags()
        self.namespaces = Namespaces(hostname)
        self.aliases: dict[str, str] = {}
        self.history = history if history is not None else History()
        self.quitting = trio.Event()
        self.nursery = nursery  # owns what commands leave running (`background`)
        # This node's place in a mesh (set while it is joined), and what `mesh status`
        # shows without one.
        self.mesh: Node | None = None
        self.mesh_context = "minimega"
        self.mesh_port = 9000
        self.mesh_timeout = 0.0  # `mesh timeout` of a node without a mesh: kept, unused
        # Commands from the prompt, scripts and socket clients run one at a
        # time, as minimega's cmdLock makes them.
        self._command_lock = trio.Lock()
        self._registry = registry()

    # -- entry points --------------------------------------------------------------------------

    async def run(self, line: str, sink: Sink) -> None:
        """Run one line as the prompt and the socket do (aliases apply); each reply
        goes to `sink` as soon as it is made."""
        async with self._turn():
            await self._run_locked(line, sink)

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """The command lock, for one command: not given back at the end if the command
        gave it up while waiting on other nodes and was cancelled then (`lend_while`)."""
        lock = self._command_lock
        await lock.acquire()
        try:
            yield
        finally:
            if lock.statistics().owner is trio.lowlevel.current_task():
                lock.release()

    async def _run_locked(self, line: str, sink: Sink) -> None:
        expanded = expand_alias(line, self.aliases)
        try:
            command = self.compile(expanded)
        except CommandError as error:
            await sink(self.error_reply(str(error)))
            return
        if command is not None:
            await self.execute(command, sink, original=trim_space(expanded))

    async def run_command(self, command: Command, sink: Sink, *, original: str) -> None:
        """Run a command built rather than typed (start-up scripts), in turn with the others."""
        async with self._turn():
            await self.execute(command, sink, original=original)

    async def run_responses(self, line: str) -> list[Response]:
        """`run`, with every reply's responses collected in order (for `mesh send`)."""
        return [response for reply in await self.run_line(line) for response in reply.responses]

    async def run_from_mesh(self, line: str) -> list[Response]:
        """`run_responses` for a command another node sent (`mesh send`), marked as
        such (origin.py). It takes its turn as any command does; a command of this node
        that waits on other nodes gives the turn up meanwhile (`lend_while`), so two
        nodes that `mesh send` each other at once never wait for each other's turn
        (2.9's distributed deadlock, spec mesh §8.3)."""
        token = FROM_MESH.set(True)
        try:
            return await self.run_responses(line)
        finally:
            FROM_MESH.reset(token)

    async def lend_while(self, wait: Callable[[], Awaitable[None]]) -> None:
        """Await `wait` (a command's wait for other nodes' answers) without the turn,
        if this task holds it: any command, from a client or another node, runs
        meanwhile, and no node, however slow or hung, holds up this one's others. The
        waiting command touches nothing until it has the turn back; cancelled (Ctrl-C),
        it ends at once instead, without waiting for the turn."""
        lock = self._command_lock
        if lock.statistics().owner is not trio.lowlevel.current_task():
            await wait()
            return
        lock.release()
        try:
            await wait()
        except trio.Cancelled:
            raise
        except BaseException:
            await lock.acquire()
            raise
        await lock.acquire()

    async def run_line(self, line: str) -> list[Reply]:
        """`run`, with the replies collected."""
        replies: list[Reply] = []

        async def collect(reply: Reply) -> None:
            replies.append(reply)

        await self.run(line, collect)
        return replies

    # -- compiling and running ---------------------------------------------------------------------

    def compile(self, line: str) -> Command | None:
        """The command a line compiles to, None for a blank or comment line;
        CommandError with minimega's text otherwise. Aliases are not expanded."""
        return self._registry.parse(line)

    def error_reply(self, text: str) -> Reply:
        return Reply([Response(self.hostname, error=text)], self.flags)

    async def execute(self, command: Command, sink: Sink, *, original: str) -> None:
        """Run a compiled command (the caller holds the command lock) and record it.

        Whether it goes into the history is decided now, with the `.record`
        flag in force when it was compiled; it is recorded once it has run.
        """
        record = command.handler.record(command, self.flags.record)
        await self._run_wrapped(command, sink, self.flags.preprocess)
        if record:
            self.history.append(original)

    async def _run_wrapped(self, command: Command, sink: Sink, preprocess: bool) -> None:
        """Run the command inside the commands that wrap it.

        `.json true .columns name pipe` nests; the wrappers are peeled in a loop,
        not by recursion, so a line nesting a thousand builtins runs too. Each
        wrapper sees what the wrappers inside it produced, errors included, as
        in minicli where an inner error is just a response with Error set. Each
        level's arguments are preprocessed when it runs, if enabled there.
        """
        wrappers: list[Wrapper] = []
        while (factory := command.handler.wrapper) is not None and command.subcommand:
            if preprocess:
                command = self._preprocessed(command)
            wrapper = factory(Context(self, sink), command)
            preprocess = wrapper.preprocess(preprocess)
            wrappers.append(wrapper)
            assert command.subcommand is not None  # preprocessing keeps it
            command = command.subcommand
        if not wrappers:  # the common case, kept short
            await self._call(self._preprocessed(command) if preprocess else command, sink)
            return

        async def emit_through(level: int, reply: Reply) -> None:
            """A reply made inside wrappers[:level], on its way out through them."""
            for wrapper in reversed(wrappers[:level]):
                try:
                    reply = wrapper.transform(reply)
                except CommandError as error:
                    reply = self.error_reply(str(error))
            await sink(reply)

        async def emit_from_inside(reply: Reply) -> None:
            await emit_through(len(wrappers), reply)

        entered = 0
        try:
            for wrapper in wrappers:
                wrapper.enter()
                entered += 1
            await self._call(self._preprocessed(command) if preprocess else command,
                             emit_from_inside)
        except CommandError as error:  # a wrapper refused: nothing inside it ran
            await emit_through(entered, self.error_reply(str(error)))
        finally:
            for wrapper in reversed(wrappers[:entered]):
                wrapper.leave()

    async def _call(self, command: Command, emit: Sink) -> None:
        handler = command.handler
        assert handler.call is not None  # a wrapper's patterns always have their command
        try:
            response = await handler.call(Context(self, emit), command)
        except (CommandError, PlumberError) as error:
            response = Response(self.hostname, error=str(error))
        if response is None:
            if handler.streams:
                return
            response = Response(self.hostname)
        await emit(Reply([response], self.flags))

    def _preprocessed(self, command: Command) -> Command:
        """minicli's preprocessor over this level's strings and lists (spec §7)."""
        strings, lists = command.strings, command.lists
        if any(_may_expand(value) for value in strings.values()):
            strings = {key: expand(value, self.files_dir) for key, value in strings.items()}
        if any(_may_expand(value) for values in lists.values() for value in values):
            lists = {key: tuple(expand(value, self.files_dir) for value in values)
                     for key, values in lists.items()}
        if strings is command.strings and lists is command.lists:
            return command
        return command.with_arguments(strings, lists)


def _may_expand(text: str) -> bool:
    """A cheap test that passes every string that expand() would change."""
    return "$" in text or ":" in text


@asynccontextmanager
async def open_session(*, hostname: str, base: str, history: History | None = None,
                       **plumber_options: Any) -> AsyncIterator[Session]:
    """A session over a plumber of its own, with minimega's helper programs.

    On the way out, whatever commands left running (`background`) is stopped,
    then the plumber closes: every pipeline ends and every child is reaped.
    """
    plumber_options.setdefault("helper_dir", kit.bin_dir())
    async with open_plumber(**plumber_options) as plumber, trio.open_nursery() as nursery:
        try:
            yield Session(plumber, nursery, hostname=hostname, base=base, history=history)
        finally:
            nursery.cancel_scope.cancel()
