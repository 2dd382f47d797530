"""cc's server side: agents (miniccc, minishell-agent) speaking ron to a namespace.

A `CcServer` is one namespace's command and control, as minimega keeps one per
namespace: the agents connected to it, the commands it has posted, its filter
and prefix, its responses on disk, its TCP listeners (`cc listen`) and the
VMs' serial ports it dials (`cc serial`, minishell.cc.serial). Each
agent is one connection task in the server's nursery, with its own tasks for
heartbeats and for the pipes it reads; nothing one agent does (stop reading,
stop talking, send garbage, vanish) holds up another or the shell.

The differences from minimega 2.9, all deliberate: any uuid is accepted (no
VMs to check against, as minimega's UseVMs off); an agent that goes away or
stops heartbeating is removed with its pipe readers and writers released
(2.9's reaper leaks them); an `-once` command goes once to every matching
agent, including those that connect later; a reconnect of a running agent
(its hello tells the last command it ran) re-runs nothing; pipe names from an
agent are namespaced like the shell's (`ns2//x` stays `ns2//x`).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, suppress
from typing import Final

import trio

from minishell.cc.filters import matches
from minishell.cc.responses import RESPONSES_FOLDER, Responses
from minishell.cc.serial import SerialLinks
from minishell.errors import CommandError
from minishell.plumber import Plumber, Reader, Writer
from minishell.protocol import ron
from minishell.protocol.gob import GobError

log = logging.getLogger("minishell.cc")

HEARTBEAT_RATE: Final = 5.0  # seconds between the heartbeats each side sends (ron's rate)
# An agent heard from for this long is gone (2.9's reaper takes 30 to 60 s).
SILENCE_LIMIT: Final = 3 * HEARTBEAT_RATE
HANDSHAKE_TIMEOUT: Final = 10.0
READ_SIZE: Final = 256 * 1024
# What one agent may have waiting to be sent to it before the sender waits.
SEND_PATIENCE: Final = 30.0
FILE_PART: Final = 100 * 1024  # ron's PART_SIZE


class CcServer:
    """One namespace's command and control."""

    def __init__(self, namespace: str, plumber: Plumber, files_dir: str, *,
                 heartbeat: float = HEARTBEAT_RATE, silence_limit: float = SILENCE_LIMIT) -> None:
        self.namespace = namespace
        self.plumber = plumber
        self.files_dir = files_dir
        # minimega keeps the default namespace's responses in the files folder itself
        # and every other namespace's in a folder of its name there.
        subpath = "" if namespace == "minimega" else namespace
        self.responses = Responses(os.path.join(files_dir, subpath, RESPONSES_FOLDER))
        self.agents: dict[str, Agent] = {}
        self.commands: dict[int, ron.Command] = {}
        self.filter: ron.Filter | None = None
        self.prefix = ""
        self.heartbeat = heartbeat
        self.silence_limit = silence_limit
        self._last_id = 0
        # The highest command id sent to each agent, kept across its reconnects.
        self._sent_up_to: dict[str, int] = {}
        # The agents an `-once` command went to.
        self._once_sent: dict[int, set[str]] = {}
        self._listeners: dict[str, trio.CancelScope] = {}
        self.serial = SerialLinks(self)  # `cc serial`: the VMs' ports it dials
        self._nursery: trio.Nursery | None = None
        self._scope = trio.CancelScope()
        self._done = trio.Event()

    # -- life ------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until aclose(): every agent connection and listener is a task of this."""
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    await nursery.start(self.serial.run)
                    task_status.started()
                    await trio.sleep_forever()
        finally:
            self._nursery = None
            self._done.set()

    async def aclose(self) -> None:
        """The namespace is destroyed: every agent is dropped (its pipes released)."""
        self._scope.cancel()
        await self._done.wait()

    def adopt(self, stream: trio.abc.Stream) -> None:
        """Serve an agent that connected (to `<base>/cc` or a `cc listen` port)."""
        if self._nursery is None:
            return
        self._nursery.start_soon(self.serve, stream)

    async def listen(self, port: int) -> None:
        """`cc listen <port>`: agents may also connect over TCP."""
        address = f":{port}"
        if address in self._listeners:
            raise CommandError(f"already listening on {address}")
        if self._nursery is None:
            raise CommandError("cc is closing")
        try:
            listeners = await trio.open_tcp_listeners(port)
        except OSError as error:
            raise CommandError(f"listen tcp {address}: {(error.strerror or str(error)).lower()}"
                               ) from None
        scope = trio.CancelScope()
        self._listeners[address] = scope
        self._nursery.start_soon(self._accept, address, listeners, scope)

    async def _accept(self, address: str, listeners: list[trio.SocketListener],
                      scope: trio.CancelScope) -> None:
        try:
            with scope:
                async with trio.open_nursery() as nursery:
                    for listener in listeners:
                        nursery.start_soon(self._accept_on, listener)
        finally:
            for listener in listeners:
                await trio.aclose_forcefully(listener)
            self._listeners.pop(address, None)

    async def _accept_on(self, listener: trio.SocketListener) -> None:
        while True:
            self.adopt(await _next_agent(listener))

    # -- commands --------------------------------------------------------------------------------

    def post(self, command: ron.Command) -> int:
        """A new command with the next id, the namespace's filter and prefix, sent to
        every matching agent at once."""
        self._last_id += 1
        command.id = self._last_id
        command.filter = self.filter
        command.prefix = self.prefix
        self.commands[command.id] = command
        for agent in list(self.agents.values()):
            agent.offer_commands()
        return command.id

    def clear_commands(self) -> None:
        """Every command goes and ids start again at 1, as in minimega."""
        self.commands.clear()
        self._once_sent.clear()
        self._last_id = 0
        self._sent_up_to.clear()
        for agent in self.agents.values():
            agent.sent_up_to = 0

    def commands_for(self, agent: Agent) -> dict[int, ron.Command]:
        """The commands an agent has not been sent yet and matches, marking `-once`
        commands as sent to it."""
        found: dict[int, ron.Command] = {}
        for command_id in sorted(self.commands):
            command = self.commands[command_id]
            if command_id <= agent.sent_up_to or not matches(command.filter, agent.client,
                                                               agent.tags):
                continue
            if command.once:
                sent = self._once_sent.setdefault(command_id, set())
                if agent.uuid in sent:
                    continue
                sent.add(agent.uuid)
            found[command_id] = command
        if self.commands:
            agent.sent_up_to = max(agent.sent_up_to, max(self.commands))
            self._sent_up_to[agent.uuid] = agent.sent_up_to
        return found

    def check_in(self, uuid: str, command_id: int) -> None:
        command = self.commands.get(command_id)
        if command is not None:
            command.checked_in.append(uuid)

    def find_agent(self, name: str) -> Agent | None:
        """An agent by uuid, else by hostname (its VM name here)."""
        found = self.agents.get(name)
        if found is None:
            found = next((agent for agent in self.agents.values()
                          if agent.client.hostname == name), None)
        return found

    # -- one agent -------------------------------------------------------------------------------

    async def serve(self, stream: trio.abc.Stream,
                    connected: Callable[[Agent], None] | None = None) -> str:
        """Serve one agent's connection to its end (`adopt`'s task; a serial link's own).

        `connected` is told of the agent once it is in `agents`. Returns "" once an
        agent has been served, else why none was.
        """
        async with stream:
            try:
                with trio.fail_after(HANDSHAKE_TIMEOUT):
                    codec, hello, early = await _handshake(stream)
            except trio.TooSlowError:
                log.info("cc: an agent took too long to say who it is: dropped")
                return f"no hello within {HANDSHAKE_TIMEOUT:g} s"
            except (GobError, _Refused) as error:
                log.info("cc: an agent was refused: %s", error)
                return f"refused: {error}"
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return "the connection broke before the hello"
            assert hello.client is not None
            uuid = hello.client.uuid
            if uuid in self.agents:
                log.error("cc: client %s already exists!", uuid)
                return f"client {uuid} already exists!"
            agent = Agent(self, stream, codec, hello.client)
            remembered = self._sent_up_to.get(uuid, 0)
            # A running agent that reconnects says which command it ran last: nothing
            # it ran is sent again. A restarted one says 0 and gets every command.
            agent.sent_up_to = min(hello.client.last_command_id, remembered)
            self.agents[uuid] = agent
            log.info("cc: agent %s (%s) connected", uuid, hello.client.hostname)
            if connected is not None:
                connected(agent)
            try:
                await agent.run(hello, early)
            finally:
                del self.agents[uuid]
                log.info("cc: agent %s (%s) left", uuid, hello.client.hostname)
            return ""


class _Refused(Exception):
    pass


async def _next_agent(listener: trio.SocketListener) -> trio.SocketStream:
    """The next agent's connection; out of descriptors, wait for some to close."""
    while True:
        try:
            return await listener.accept()
        except OSError as error:
            log.warning("cc: cannot accept an agent: %s", error)
            await trio.sleep(1)


async def _handshake(stream: trio.abc.Stream) -> tuple[ron.RonCodec, ron.Message,
                                                       list[ron.Message]]:
    """RON both ways, then the agent's first message, which must say who it is."""
    codec = ron.RonCodec()
    messages: list[ron.Message] = []
    answered = False
    while not messages:
        data = await stream.receive_some(READ_SIZE)
        if not data:
            raise _Refused("it left before saying who it is")
        messages = codec.feed(data)
        if codec.handshake_done and not answered:
            await stream.send_all(ron.MAGIC)
            answered = True
    hello, *early = messages
    if hello.type != ron.MessageType.CLIENT or hello.client is None or not hello.client.uuid:
        raise _Refused("its first message is not a client's")
    if not hello.version:
        raise _Refused(f"client {hello.client.uuid}: miniccc client too old -- please update")
    return codec, hello, early


class Agent:
    """One connected agent: what it said of itself, and its pipe handles."""

    def __init__(self, server: CcServer, stream: trio.abc.Stream, codec: ron.RonCodec,
                 client: ron.Client) -> None:
        self.server = server
        self.uuid = client.uuid
        self.client = client
        # A heartbeat carries the tags set since the last one (miniccc -tag); minimega
        # keeps them as its VM's tags, and filters match those.
        self.tags: dict[str, str] = dict(client.tags or {})
        self.sent_up_to = 0
        self._stream = stream
        self._codec = codec
        self._send_lock = trio.Lock()
        self._readers: dict[str, trio.CancelScope] = {}
        self._writers: dict[str, tuple[AsyncExitStack, Writer]] = {}
        self._nursery: trio.Nursery | None = None
        self._commands_waiting = trio.Event()

    def offer_commands(self) -> None:
        """New commands may be for this agent: its sender task looks."""
        self._commands_waiting.set()

    async def run(self, hello: ron.Message, early: list[ron.Message]) -> None:
        # What ends a connection comes out of its nursery in an exception group.
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self.send([hello, *self._tunnel_hello()])
                nursery.start_soon(self._send_commands)
                nursery.start_soon(self._heartbeats)
                await self._receive(early)
                nursery.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            pass
        except* GobError as errors:
            log.info("cc: agent %s sent what is not ron: %s: dropped", self.uuid,
                     errors.exceptions[0])
        except* _Refused as errors:
            log.info("cc: agent %s: %s: dropped", self.uuid, errors.exceptions[0])
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True):
                await self._release_pipes()

    def _tunnel_hello(self) -> list[ron.Message]:
        """minimega's minitunnel says hello right after the handshake; miniccc answers.
        Sent as 2.9 sends it, though no tunnel is ever used here."""
        return [ron.Message(type=ron.MessageType.TUNNEL, uuid=self.uuid, tunnel=part)
                for part in self._codec.tunnel.encode(ron.TunnelMessage())]

    async def send(self, messages: list[ron.Message]) -> None:
        """Send messages in order, whoever sends them; an agent that takes nothing for
        SEND_PATIENCE seconds is dropped."""
        async with self._send_lock:
            await self._send_bytes(b"".join(self._codec.encode(message) for message in messages))

    async def _send_lines(self, pipe: str, block: bytes) -> None:
        async with self._send_lock:
            await self._send_bytes(self._codec.encode_pipe_lines(pipe, block))

    async def _send_bytes(self, data: bytes) -> None:
        with trio.move_on_after(SEND_PATIENCE) as waited:
            await self._stream.send_all(data)
        if waited.cancelled_caught:
            raise _Refused(f"took nothing for {SEND_PATIENCE:g} s")

    async def _send_commands(self) -> None:
        while True:
            commands = self.server.commands_for(self)
            if commands:
                # minimega 2.9 sends each command in a message of its own.
                await self.send([ron.Message(type=ron.MessageType.COMMAND,
                                             commands={command_id: command})
                                 for command_id, command in commands.items()])
            await self._commands_waiting.wait()
            self._commands_waiting = trio.Event()

    async def _heartbeats(self) -> None:
        while True:
            await trio.sleep(self.server.heartbeat)
            await self.send([ron.Message(type=ron.MessageType.HEARTBEAT, version="v1")])

    async def _receive(self, early: list[ron.Message]) -> None:
        for message in early:
            await self._handle(message)
        while True:
            with trio.move_on_after(self.server.silence_limit) as silence:
                data = await self._stream.receive_some(READ_SIZE)
            if silence.cancelled_caught:
                raise _Refused(f"silent for {self.server.silence_limit:g} s")
            if not data:
                self._codec.end_of_stream()
                return
            for item in self._codec.feed_runs(data):
                if isinstance(item, ron.PipeLines):
                    await self._pipe_lines(item)
                else:
                    await self._handle(item)

    async def _handle(self, message: ron.Message) -> None:
        kind = message.type
        if kind == ron.MessageType.CLIENT and message.client is not None:
            await self._check_in(message.client)
        elif kind == ron.MessageType.PIPE:
            await self._pipe(message)
        elif kind == ron.MessageType.FILE and message.file is not None:
            await self._file(message)
        elif kind == ron.MessageType.TUNNEL:
            self._codec.tunnel.feed(message.tunnel)  # the tunnel's hello; nothing else
        elif kind in (ron.MessageType.UFS, ron.MessageType.COMMAND,
                      ron.MessageType.HEARTBEAT):
            log.debug("cc: agent %s: ignoring a message of type %d", self.uuid, kind)
        else:
            raise _Refused(f"unknown message type: {kind}")

    async def _check_in(self, client: ron.Client) -> None:
        """A heartbeat: what the agent says of itself now, and its new responses."""
        if client.uuid and client.uuid != self.uuid:
            raise _Refused(f"said it was {client.uuid}")
        responses, client.responses = client.responses, []
        self.client = client
        self.tags.update(client.tags or {})
        if responses:
            record = self.server.responses.record
            await self.server.responses.run(lambda: [record(self.uuid, each)
                                                     for each in responses])
            for response in responses:
                self.server.check_in(self.uuid, response.id)

    # -- pipes -----------------------------------------------------------------------------------

    def _pipe_name(self, name: str) -> str:
        return name if "//" in name else f"{self.server.namespace}//{name}"

    async def _pipe(self, message: ron.Message) -> None:
        name = message.pipe
        mode = message.pipe_mode
        if mode == ron.PipeMode.NEW_READER:
            if name not in self._readers and self._nursery is not None:
                self._readers[name] = await self._nursery.start(self._read_pipe, name)
        elif mode == ron.PipeMode.NEW_WRITER:
            if name not in self._writers:
                stack = AsyncExitStack()
                writer = await stack.enter_async_context(
                    self.server.plumber.open_writer(self._pipe_name(name)))
                self._writers[name] = (stack, writer)
        elif mode == ron.PipeMode.CLOSE_READER:
            scope = self._readers.pop(name, None)
            if scope is not None:
                scope.cancel()
                # minimega's reader says it has gone, as a CLOSE_READER back: agents
                # wait for it before they open the pipe again.
                await self.send([ron.Message(type=ron.MessageType.PIPE, pipe=name,
                                             pipe_mode=ron.PipeMode.CLOSE_READER)])
        elif mode == ron.PipeMode.CLOSE_WRITER:
            held = self._writers.pop(name, None)
            if held is not None:
                await held[0].aclose()
        elif mode == ron.PipeMode.DATA:
            target = self._writer_of(name)
            if target is not None:
                await target.write_message(message.pipe_data)
        else:
            log.info("cc: agent %s: unknown pipe mode %d: ignored", self.uuid, mode)

    async def _pipe_lines(self, lines: ron.PipeLines) -> None:
        writer = self._writer_of(lines.pipe)
        if writer is not None:
            await writer.write_lines(lines.block)

    def _writer_of(self, name: str) -> Writer | None:
        held = self._writers.get(name)
        if held is None:
            log.info("cc: agent %s wrote to %s, which it does not hold: ignored",
                     self.uuid, name)
            return None
        return held[1]

    async def _read_pipe(self, name: str, *,
                         task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        """The agent's reader of a pipe: each message goes to it as PIPE DATA; when the
        pipe is deleted, CLOSE_READER tells it so (its processes get EOF)."""
        with trio.CancelScope() as scope:
            async with self.server.plumber.open_reader(self._pipe_name(name)) as reader:
                task_status.started(scope)
                await self._forward(name, reader)
            self._readers.pop(name, None)
            await self.send([ron.Message(type=ron.MessageType.PIPE, pipe=name,
                                         pipe_mode=ron.PipeMode.CLOSE_READER)])

    async def _forward(self, name: str, reader: Reader) -> None:
        async for chunk in reader:
            if chunk.one_message:
                await self.send([ron.Message(type=ron.MessageType.PIPE, pipe=name,
                                             pipe_mode=ron.PipeMode.DATA, pipe_data=chunk.data)])
            else:
                await self._send_lines(name, chunk.data)

    async def _release_pipes(self) -> None:
        for scope in self._readers.values():
            scope.cancel()
        self._readers.clear()
        for stack, _ in self._writers.values():
            await stack.aclose()
        self._writers.clear()

    # -- files -----------------------------------------------------------------------------------

    async def _file(self, message: ron.Message) -> None:
        part = message.file
        assert part is not None
        if message.error:
            log.error("cc: file error from %s: %s", self.uuid, message.error)
        elif not part.data and part.offset == 0 and not part.eof:
            await self._send_file(part.name)
        else:
            try:
                await self.server.responses.run(lambda: self.server.responses.receive(
                    self.uuid, part))
            except (OSError, CommandError) as error:
                log.error("cc: file %s from %s: %s", part.name, self.uuid, error)

    async def _send_file(self, name: str) -> None:
        """An agent asks for a file of `cc send`: it goes in parts of 100 KiB, from the
        namespace's folder of the files folder if it is there, else the files folder."""
        server = self.server
        folders = [server.files_dir]
        if server.namespace != "minimega":
            folders.insert(0, os.path.join(server.files_dir, server.namespace))
        for message in await trio.to_thread.run_sync(_file_parts, folders, name):
            await self.send([message])


def _file_parts(folders: list[str], name: str) -> list[ron.Message]:
    """A file's parts as ron sends them, or one message with the error."""
    try:
        path = next((os.path.join(folder, name) for folder in folders
                     if os.path.isfile(os.path.join(folder, name))),
                    os.path.join(folders[-1], name))
        root = os.path.realpath(folders[-1])
        if os.path.commonpath([root, os.path.realpath(path)]) != root:
            raise OSError(f"{name}: outside the files folder")
        parts: list[ron.Message] = []
        with open(path, "rb") as file:
            info = os.fstat(file.fileno())
            offset = 0
            while True:
                data = file.read(FILE_PART)
                eof = offset + len(data) >= info.st_size
                parts.append(ron.Message(type=ron.MessageType.FILE, file=ron.File(
                    name=name, perm=info.st_mode & 0o777, data=data, offset=offset, eof=eof)))
                offset += len(data)
                if eof or not data:
                    return parts
    except OSError as error:
        return [ron.Message(type=ron.MessageType.FILE, file=ron.File(name=name),
                            error=(error.strerror or str(error)).lower())]


async def serve_agents(path: str, server_for: Callable[[], Awaitable[CcServer]], *,
                       task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Accept agents on the unix socket `path` (what `miniccc -family unix -parent
    <base>/cc` dials), each handed to the cc that `server_for` gives (the default
    namespace's). A socket left there by a crash is replaced; the socket goes
    when this ends."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    try:
        await sock.bind(path)
        os.chmod(path, 0o600)  # whoever connects runs commands' pipes: the user's alone
        sock.listen(trio.socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    listener = trio.SocketListener(sock)
    try:
        task_status.started()
        while True:
            stream = await _next_agent(listener)
            (await server_for()).adopt(stream)
    finally:
        await trio.aclose_forcefully(listener)
        with suppress(OSError):
            os.unlink(path)
