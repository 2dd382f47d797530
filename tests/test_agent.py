"""minishell-agent against a ron server of the tests' own, over real sockets, running real
programs: what it sends (checked against what miniccc 2.9 sends in ../shared/cc/captures),
when, and what it does with what it is sent.

The agent runs in the test's trio loop (its clocks shortened where a test needs it); the
server is a few dozen lines over protocol/ron.py. Nothing here sleeps and hopes: every
wait is for a message or a condition, under a deadline.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
from captures import needs_captures, stream
from plumbing import children

from minishell.cc.agent import plumber as local_plumber
from minishell.cc.agent.agent import Agent, Backoff, dialer
from minishell.cc.agent.identity import Identity, go_arch, go_os
from minishell.cc.agent.link import Timing
from minishell.cc.agent.local_socket import bind_local_socket
from minishell.protocol.ron import (
    MAGIC,
    Client,
    Command,
    ConnTest,
    File,
    LogLevel,
    Message,
    MessageType,
    PipeMode,
    Response,
    RonCodec,
    TunnelMessage,
    TunnelType,
)

UUID = "11111111-1111-1111-1111-111111111111"
WAIT = 10.0  # seconds any one expected message may take
PIPE = MessageType.PIPE
CLIENT = MessageType.CLIENT


# --- the test's ron server ---------------------------------------------------------------


@dataclass
class Peer:
    """The server's end of one agent connection: minimega's handshake, then messages.

    As minimega, it answers the agent's CLOSE_READER of a pipe it reads with a
    CLOSE_READER of its own (`echo_closes`), and sends none for a pipe it deleted.
    """

    stream: trio.abc.Stream
    echo_closes: bool = True
    readers: set[str] = field(default_factory=set)  # pipes the agent reads, as we see it
    codec: RonCodec = field(default_factory=RonCodec)
    received: list[Message] = field(default_factory=list)
    hello: Message | None = None
    closed: bool = False  # the agent closed its end
    _seen: int = 0  # received[:_seen] have been looked at by expect()
    _arrived: trio.Event = field(default_factory=trio.Event)
    _sending: trio.Lock = field(default_factory=trio.Lock)

    async def handshake(self, *, open_tunnel: bool = True) -> Message:
        """minimega's: skip to RON, answer RON, echo the hello, open minitunnel."""
        with trio.fail_after(WAIT):
            while not self.received:
                data = await self.stream.receive_some(65536)
                assert data, "the agent hung up during the handshake"
                if not self.codec.handshake_done:
                    messages = self.codec.feed(data)
                    if self.codec.handshake_done:
                        await self.stream.send_all(MAGIC)
                    self.received += messages
                else:
                    self.received += self.codec.feed(data)
        self.hello = self.received.pop(0)
        await self.send(self.hello)
        if open_tunnel:
            for payload in self.codec.tunnel.encode(TunnelMessage()):
                await self.send(Message(type=MessageType.TUNNEL, uuid=self.hello.uuid,
                                        tunnel=payload))
        return self.hello

    async def send(self, *messages: Message) -> None:
        for message in messages:
            if message.type == PIPE and message.pipe_mode == PipeMode.CLOSE_READER:
                self.readers.discard(message.pipe)  # deleted, or an echo
        async with self._sending:
            await self.stream.send_all(b"".join(map(self.codec.encode, messages)))

    async def send_raw(self, data: bytes) -> None:
        async with self._sending:
            await self.stream.send_all(data)

    async def command(self, command: Command) -> None:
        await self.send(Message(type=MessageType.COMMAND, commands={command.id: command}))

    async def read_forever(self) -> None:
        """Collect what the agent sends until it hangs up; then close our end."""
        try:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                while data := await self.stream.receive_some(65536):
                    messages = self.codec.feed(data)
                    self.received += messages
                    self._arrived.set()
                    self._arrived = trio.Event()
                    for message in messages:
                        await self._answer(message)
        finally:
            self.closed = True
            self._arrived.set()
            await trio.aclose_forcefully(self.stream)

    async def _answer(self, message: Message) -> None:
        if message.type != PIPE:
            return
        if message.pipe_mode == PipeMode.NEW_READER:
            self.readers.add(message.pipe)
        elif message.pipe_mode == PipeMode.CLOSE_READER and message.pipe in self.readers:
            if self.echo_closes:
                await self.send(Message(type=PIPE, pipe=message.pipe,
                                        pipe_mode=PipeMode.CLOSE_READER))
            self.readers.discard(message.pipe)

    async def expect(self, wanted: Callable[[Message], bool], what: str = "",
                     seconds: float = WAIT) -> Message:
        """The next message, after those already expected, that `wanted` accepts."""
        with trio.fail_after(seconds):
            while True:
                while self._seen < len(self.received):
                    message = self.received[self._seen]
                    self._seen += 1
                    if wanted(message):
                        return message
                assert not self.closed, f"the agent hung up while we waited for {what}"
                await self._arrived.wait()

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait for what the agent sends to make `condition` true."""
        with trio.fail_after(WAIT):
            while not condition():
                assert not self.closed, f"the agent hung up while we waited for {what}"
                await self._arrived.wait()

    async def hung_up(self) -> None:
        with trio.fail_after(WAIT):
            while not self.closed:
                await self._arrived.wait()

    def responses(self, command_id: int) -> list[Response]:
        return [r for m in self.received if m.client is not None
                for r in m.client.responses if r.id == command_id]

    async def response(self, command_id: int, seconds: float = WAIT, nth: int = 1) -> Response:
        """The nth response to a command, whenever it came."""
        with trio.fail_after(seconds):
            while len(found := self.responses(command_id)) < nth:
                assert not self.closed, f"the agent hung up before responding to {command_id}"
                await self._arrived.wait()
        return found[nth - 1]

    async def pipe_message(self, pipe: str, mode: PipeMode, nth: int = 1) -> Message:
        """The nth PIPE message of that pipe and mode, whenever it came."""
        with trio.fail_after(WAIT):
            while len(found := [m for m in self.pipe_messages(pipe) if m.pipe_mode == mode]) < nth:
                assert not self.closed, f"the agent hung up before {mode.name} of {pipe}"
                await self._arrived.wait()
        return found[nth - 1]

    def pipe_messages(self, pipe: str) -> list[Message]:
        return [m for m in self.received if m.type == PIPE and m.pipe == pipe]


@dataclass
class Server:
    """A ron server on a unix socket: peers as the agent connects."""

    path: str
    listener: trio.SocketListener
    nursery: trio.Nursery
    _peers: trio.MemoryReceiveChannel[Peer] | None = None

    async def accept(self, *, open_tunnel: bool = True, seconds: float = WAIT) -> Peer:
        with trio.fail_after(seconds):
            stream = await self.listener.accept()
        peer = Peer(stream)
        await peer.handshake(open_tunnel=open_tunnel)
        self.nursery.start_soon(peer.read_forever)
        return peer


@contextlib.asynccontextmanager
async def ron_server(folder: Path) -> AsyncIterator[Server]:
    """A server on folder/cc until the block ends; then it, and every connection, is gone."""
    path = str(folder / "cc")
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen(8)
    listener = trio.SocketListener(sock)
    try:
        async with trio.open_nursery() as nursery:
            yield Server(path, listener, nursery)
            nursery.cancel_scope.cancel()
    finally:
        await listener.aclose()
        os.unlink(path)


def open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


@contextlib.asynccontextmanager
async def running_agent(folder: Path, server_path: str, *, timing: Timing | None = None,
                        hostname: str = "vmA") -> AsyncIterator[Agent]:
    """An agent of the test's own loop, dialing server_path; afterwards no child of ours
    may be left."""
    path = folder / "agent"
    path.mkdir()
    identity = Identity(uuid=UUID, hostname=hostname, arch=go_arch(), os=go_os())
    agent = Agent(identity, str(path), dialer(family="unix", parent=server_path, port=0,
                                              serial=""),
                  timing=timing or Timing(heartbeat=60.0),
                  backoff=Backoff(first=0.02, most=0.2))
    async with trio.open_nursery() as nursery:
        await nursery.start(agent.run, bind_local_socket(str(path)))
        yield agent
        nursery.cancel_scope.cancel()
    assert children() == set()


@contextlib.asynccontextmanager
async def connected(tmp_path: Path, **settings: object) -> AsyncIterator[tuple[Agent, Peer]]:
    """An agent and the server's end of its connection; afterwards no descriptor that
    either opened may be left open."""
    fds_before = open_fds()
    async with ron_server(tmp_path) as server, running_agent(
            tmp_path, server.path, **settings) as agent:  # type: ignore[arg-type]
        peer = await server.accept()
        yield agent, peer
    assert open_fds() <= fds_before


def exec_command(command_id: int, *argv: str, **fields: object) -> Command:
    return Command(id=command_id, command=list(argv), **fields)  # type: ignore[arg-type]


# --- the captures ------------------------------------------------------------------------


def capture(vm: str, direction: str) -> list[Message]:
    return RonCodec().feed(stream(vm, direction))


def shape(value: object) -> object:
    """The fields a value sets, recursively, with the kinds of their values: what to compare
    between two clients that differ in names and numbers."""
    if isinstance(value, Message | Client | Response | Command | File):
        return {name: shape(getattr(value, name)) for name in value.__dataclass_fields__
                if getattr(value, name) != getattr(type(value)(), name)}
    if isinstance(value, dict):
        return ("map", sorted({str(shape(v)) for v in value.values()}))
    if isinstance(value, list):
        return ("list", sorted({str(shape(v)) for v in value}))
    return type(value).__name__


# --- the hello and the heartbeat ---------------------------------------------------------


@needs_captures
async def test_the_hello_has_the_fields_and_shapes_of_minicccs(tmp_path: Path) -> None:
    guest = capture("vmA", "guest")
    async with connected(tmp_path) as (_, peer):
        assert peer.hello is not None
        ours = peer.hello
        assert ours.client is not None
        if not ours.client.macs:  # a machine with no NIC but lo: miniccc lists none either
            pytest.skip("this machine has no interface with a hardware address")
        assert shape(ours) == shape(guest[0])
        assert (ours.uuid, ours.client.uuid, ours.client.hostname) == (UUID, UUID, "vmA")
        assert (ours.client.arch, ours.client.os, ours.version) == ("amd64", "linux", "v1")
        assert (ours.client.processes, ours.client.tags, ours.client.responses,
                ours.client.last_command_id) == ({}, None, [], 0)
        # it answers minitunnel's handshake with the very messages miniccc sends
        answer = await peer.expect(lambda m: m.type == MessageType.TUNNEL, "the tunnel")
        second = await peer.expect(lambda m: m.type == MessageType.TUNNEL, "the tunnel")
        assert [answer.tunnel, second.tunnel] == [m.tunnel for m in guest[1:3]]
        assert answer.uuid == second.uuid == UUID


async def test_heartbeats_carry_tags_and_the_last_command_id(tmp_path: Path) -> None:
    async with connected(tmp_path, timing=Timing(heartbeat=0.2)) as (_, peer):
        beat = await peer.expect(lambda m: m.type == CLIENT, "a heartbeat")
        assert beat.client is not None
        assert (beat.version, beat.client.tags, beat.client.processes,
                beat.client.last_command_id) == ("v1", {}, {}, 0)
        await peer.command(exec_command(4, "true"))
        assert await peer.response(4) == Response(id=4, record_exit_code=True)
        beat = await peer.expect(lambda m: m.type == CLIENT and not m.client.responses,
                                 "a heartbeat after the response")
        assert beat.client is not None and beat.client.last_command_id == 4


@needs_captures
async def test_the_first_commands_of_a_capture_replayed_get_what_miniccc_sent(
        tmp_path: Path) -> None:
    """vmA's first nine commands (bad programs, stdio pairs, a command of no words, exit 1,
    kill all), sent as minimega sent them: the responses and pipe messages have the
    capture's shapes, and the texts are the same but for the folder."""
    host, guest = capture("vmA", "host"), capture("vmA", "guest")
    commands = [m for m in host[:13] if m.type == MessageType.COMMAND]
    assert sorted(i for m in commands for i in m.commands or {}) == list(range(1, 10))
    wanted = {r.id: r for m in guest[:9] if m.client is not None for r in m.client.responses}
    files = str(tmp_path / "agent" / "files")
    async with connected(tmp_path) as (_, peer):
        for message in commands:
            await peer.send(message)
        got = {i: await peer.response(i) for i in range(1, 10)}
    for i in range(1, 10):
        assert shape(got[i]) == shape(wanted[i]), i
        assert got[i].stderr == wanted[i].stderr.replace("/tmp/ccb-ccc/vmA/files", files)
        assert got[i].exit_code == wanted[i].exit_code
    # command 6, `hostname` with stdin=x stdout=z: the same pipe messages; x's reader
    # stays, as in the capture, since nothing came for it before hostname exited
    ours = [m for m in peer.received if m.type == PIPE]
    theirs = [m for m in guest[:9] if m.type == PIPE and m.pipe_mode != PipeMode.CLOSE_READER]
    assert [(m.pipe, m.pipe_mode, shape(m)) for m in ours] == [
        (m.pipe, m.pipe_mode, shape(m)) for m in theirs]
    assert ours[2].pipe_data == socket.gethostname().encode() + b"\n"


# --- order, and when responses go --------------------------------------------------------


async def test_execs_run_one_at_a_time_in_id_order_and_background_does_not_wait(
        tmp_path: Path) -> None:
    async with connected(tmp_path) as (_, peer):
        # 1 holds the lane until its stdin pipe is deleted; 2 and 3 come in one message,
        # 3 first on the wire; 4 is a background command
        await peer.command(exec_command(1, "cat", stdin="gate"))
        await peer.pipe_message("gate", PipeMode.NEW_READER)
        await peer.send(Message(type=MessageType.COMMAND, commands={
            3: exec_command(3, "sh", "-c", "echo three", stdout="order"),
            2: exec_command(2, "sh", "-c", "echo two", stdout="order")}))
        await peer.command(exec_command(4, "sh", "-c", "echo four", background=True,
                                        stdout="order"))
        assert (await peer.response(4)).id == 4
        assert (await peer.pipe_message("order", PipeMode.DATA)).pipe_data == b"four\n"
        await peer.send(Message(type=PIPE, pipe="gate", pipe_mode=PipeMode.DATA,
                                pipe_data=b"through-cat\n"))
        await peer.send(Message(type=PIPE, pipe="gate", pipe_mode=PipeMode.CLOSE_READER))
        assert await peer.response(1) == Response(id=1, stdout="through-cat\n",
                                                  record_exit_code=True)
        await peer.response(2)
        await peer.response(3)
    order = [m.pipe_data for m in peer.pipe_messages("order") if m.pipe_mode == PipeMode.DATA]
    assert order == [b"four\n", b"two\n", b"three\n"]
    responses = [r.id for m in peer.received if m.client is not None for r in m.client.responses]
    assert responses == [4, 1, 2, 3]


async def test_a_response_goes_when_its_command_ends_not_with_the_heartbeat(
        tmp_path: Path) -> None:
    # the heartbeat is a minute away: anything sooner was sent for the response
    async with connected(tmp_path, timing=Timing(heartbeat=60.0)) as (_, peer):
        await peer.command(exec_command(1, "echo", "hi"))
        assert await peer.response(1, seconds=3) == Response(
            id=1, stdout="hi\n", record_exit_code=True)


# --- pipes -------------------------------------------------------------------------------


async def test_stdout_lines_go_to_a_pipe_whole_and_in_order_before_the_end(
        tmp_path: Path) -> None:
    async with connected(tmp_path) as (_, peer):
        await peer.command(exec_command(1, "seq", "1", "100000", stdout="bar"))
        assert await peer.response(1, seconds=60) == Response(id=1, record_exit_code=True)
    bar = peer.pipe_messages("bar")
    assert [m.pipe_mode for m in (bar[0], bar[-1])] == [PipeMode.NEW_WRITER,
                                                         PipeMode.CLOSE_WRITER]
    assert b"".join(m.pipe_data for m in bar[1:-1]) == b"".join(
        b"%d\n" % n for n in range(1, 100001))
    assert all(m.pipe_mode == PipeMode.DATA for m in bar[1:-1])
    # and all of it before the response
    last_line = peer.received.index(bar[-2])
    assert not any(m.client is not None and m.client.responses
                   for m in peer.received[:last_line])


async def test_both_streams_to_one_pipe_open_it_once_and_lines_are_split_as_go_splits(
        tmp_path: Path) -> None:
    script = r"printf 'o\r\n'; printf 'e\n' >&2; printf 'last'"
    async with connected(tmp_path) as (_, peer):
        await peer.command(exec_command(1, "sh", "-c", script, stdout="both", stderr="both"))
        assert await peer.response(1) == Response(id=1, record_exit_code=True)
    both = peer.pipe_messages("both")
    assert [m.pipe_mode for m in both].count(PipeMode.NEW_WRITER) == 1
    assert both[-1].pipe_mode == PipeMode.CLOSE_WRITER
    assert sorted(m.pipe_data for m in both if m.pipe_mode == PipeMode.DATA) == [
        b"e\n", b"last\n", b"o\n"]


async def test_a_line_over_the_limit_is_dropped_and_noted_and_the_stream_goes_on(
        tmp_path: Path) -> None:
    script = "echo before; head -c 1100000 /dev/zero | tr '\\0' x; echo; echo after"
    async with connected(tmp_path) as (_, peer):
        await peer.command(exec_command(1, "sh", "-c", script, stdout="long"))
        response = await peer.response(1)
    assert [m.pipe_data for m in peer.pipe_messages("long")
            if m.pipe_mode == PipeMode.DATA] == [b"before\n", b"after\n"]
    assert response.stderr == ("minishell-agent: 1 lines of stdout of 1048576 bytes or more "
                               "dropped\n")


async def test_stdin_comes_from_a_pipe_and_its_reader_goes_when_the_program_exits(
        tmp_path: Path) -> None:
    async with connected(tmp_path) as (_, peer):
        await peer.command(exec_command(1, "head", "-n", "1", background=True,
                                        stdin="once", stdout="first"))
        await peer.pipe_message("once", PipeMode.NEW_READER)
        await peer.send(Message(type=PIPE, pipe="once", pipe_mode=PipeMode.DATA,
                                pipe_data=b"no newline"))
        assert (await peer.pipe_message("first", PipeMode.DATA)).pipe_data == b"no newline\n"
        # released at the exit, not at the next message (2.9 leaks it and wedges)
        await peer.pipe_message("once", PipeMode.CLOSE_READER)
        await peer.pipe_message("first", PipeMode.CLOSE_WRITER)
        for _ in range(3):  # 2.9 loses the first and wedges on the third
            await peer.send(Message(type=PIPE, pipe="once", pipe_mode=PipeMode.DATA,
                                    pipe_data=b"nobody\n"))
        await peer.command(exec_command(2, "echo", "alive"))
        assert (await peer.response(2)).stdout == "alive\n"


async def test_a_program_that_exits_before_its_input_came_keeps_its_reader_till_it_does(
        tmp_path: Path) -> None:
    """As minimega 2.9 shows it (`readers 1`, the cc_bad_input transcript), but harmless:
    what then comes goes to the other readers, and the reader goes upstream."""
    async with connected(tmp_path) as (_, peer):
        await peer.command(exec_command(1, "cat", background=True, stdin="shared",
                                        stdout="copy"))
        await peer.pipe_message("shared", PipeMode.NEW_READER)
        await peer.command(exec_command(2, "true", stdin="shared"))
        assert (await peer.response(2)).exit_code == 0
        await peer.command(exec_command(3, "echo", "later"))
        await peer.response(3)
        assert PipeMode.CLOSE_READER not in [m.pipe_mode for m in peer.pipe_messages("shared")]
        await peer.send(Message(type=PIPE, pipe="shared", pipe_mode=PipeMode.DATA,
                                pipe_data=b"for cat\n"))
        assert (await peer.pipe_message("copy", PipeMode.DATA)).pipe_data == b"for cat\n"
        await peer.command(exec_command(4, "true", stdin="alone"))
        await peer.pipe_message("alone", PipeMode.NEW_READER)
        await peer.response(4)
        await peer.send(Message(type=PIPE, pipe="alone", pipe_mode=PipeMode.DATA,
                                pipe_data=b"nobody\n"))
        await peer.pipe_message("alone", PipeMode.CLOSE_READER)  # its last reader went
        await peer.command(exec_command(5, "echo", "alive"))
        assert (await peer.response(5)).stdout == "alive\n"


async def test_a_program_that_does_not_read_its_stdin_holds_up_nothing(tmp_path: Path) -> None:
    async with connected(tmp_path) as (_, peer):
        await peer.command(exec_command(1, "sleep", "300", background=True, stdin="slow"))
        await peer.pipe_message("slow", PipeMode.NEW_READER)
        line = b"x" * 999 + b"\n"
        for _ in range(8):  # 8 MiB: far past its reader's queue and the OS pipe
            await peer.send(*[Message(type=PIPE, pipe="slow", pipe_mode=PipeMode.DATA,
                                      pipe_data=line)] * 1024)
        await peer.command(exec_command(2, "echo", "alive"))
        assert (await peer.response(2)).stdout == "alive\n"
        await peer.command(Command(id=3, kill_all="sleep 300"))
        await peer.response(3)
        await peer.pipe_message("slow", PipeMode.CLOSE_READER)


async def test_what_an_exec_left_unread_is_counted_in_its_response(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    async with connected(tmp_path) as (_, peer):
        # reads the fifo, never its stdin, and ends when the test writes to the fifo
        await peer.command(exec_command(1, "head", "-n", "1", str(fifo), stdin="unread"))
        await peer.pipe_message("unread", PipeMode.NEW_READER)
        line = b"y" * 1023 + b"\n"
        for _ in range(4):
            await peer.send(*[Message(type=PIPE, pipe="unread", pipe_mode=PipeMode.DATA,
                                      pipe_data=line)] * 1024)
        # a background command's response: every message before it has been handled
        await peer.command(exec_command(2, "true", background=True))
        await peer.response(2)
        with trio.fail_after(WAIT):
            writer = await trio.to_thread.run_sync(os.open, fifo, os.O_WRONLY)
        os.write(writer, b"go\n")
        os.close(writer)
        response = await peer.response(1)
    assert response.stdout == "go\n"
    count, rest = response.stderr.removeprefix("minishell-agent: ").split(" messages (", 1)
    assert 0 < int(count) < 4096
    assert rest == (f"{int(count) * 1024} bytes) from pipe unread dropped: they were not "
                    "read in time\n")


async def test_a_deleted_pipe_ends_every_local_reader_after_what_they_hold(
        tmp_path: Path) -> None:
    async with connected(tmp_path) as (_, peer):
        for i in (1, 2):
            await peer.command(exec_command(i, "cat", background=True, stdin="src",
                                            stdout="fan"))
            await peer.response(i)
        await peer.send(Message(type=PIPE, pipe="src", pipe_mode=PipeMode.DATA,
                                pipe_data=b"one\n"),
                        Message(type=PIPE, pipe="src", pipe_mode=PipeMode.CLOSE_READER))
        await peer.pipe_message("fan", PipeMode.CLOSE_WRITER)
        beat = await peer.expect(lambda m: m.client is not None and not m.client.processes,
                                 "both cats gone")
        assert beat.client is not None
    src, fan = peer.pipe_messages("src"), peer.pipe_messages("fan")
    assert [m.pipe_mode for m in src] == [PipeMode.NEW_READER, PipeMode.CLOSE_READER]
    assert [m.pipe_data for m in fan if m.pipe_mode == PipeMode.DATA] == [b"one\n"] * 2
    assert [m.pipe_mode for m in fan].count(PipeMode.NEW_WRITER) == 1


async def test_an_exec_that_leaves_a_daemon_holding_its_output_still_ends(
        tmp_path: Path) -> None:
    """Its end is reported once its own output is read: when the daemon stays silent,
    after a second; when it writes on, at once (and its lines still go to the pipe)."""
    async with connected(tmp_path) as (_, peer):
        await peer.command(exec_command(1, "sh", "-c", "echo $$; sleep 300 &"))
        silent = await peer.response(1, seconds=5)
        await peer.command(exec_command(2, "sh", "-c", "echo $$; while :; do echo b; "
                                        "sleep 0.05; done &", stdout="chatty"))
        with trio.fail_after(2):  # long before the chatter could fill a pipe
            await peer.response(2)
        first = await peer.pipe_message("chatty", PipeMode.DATA)
        after = len(peer.received)
        await peer.until(lambda: any(m.type == PIPE and m.pipe == "chatty"
                                     for m in peer.received[after:]), "chatter after the end")
    assert silent.stdout.strip().isdigit() and silent.exit_code == 0
    assert silent.stderr == "".join(
        f"minishell-agent: {stream} was still open after the program exited (a process it "
        "started holds it): the rest is not in this response\n" for stream in ("stdout", "stderr"))
    # the agent's end took the daemons with it
    groups = (int(silent.stdout), int(first.pipe_data))
    with trio.fail_after(WAIT):
        while any(map(group_members, groups)):  # noqa: ASYNC110 - processes apart
            await trio.sleep(0.01)


async def test_a_reader_opened_again_waits_for_the_echo_of_its_close(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three execs in a row read one pipe. minimega echoes each CLOSE_READER, and ignores
    a NEW_READER that comes before it has sent the echo: so the agent holds the next
    NEW_READER until the echo, and does not take the echo for a deletion. From a server
    that sends no echo, it waits ECHO_WINDOW."""
    monkeypatch.setattr(local_plumber, "ECHO_WINDOW", 0.3)
    async with connected(tmp_path) as (agent, peer):
        peer.echo_closes = False  # the test answers by hand, when the race is at its worst
        for i in (1, 2, 3):
            command = ["head", "-n", "1"] if i < 3 else ["cat"]
            await peer.command(exec_command(i, *command, stdin="p"))
        await peer.pipe_message("p", PipeMode.NEW_READER)
        await peer.send(Message(type=PIPE, pipe="p", pipe_mode=PipeMode.DATA,
                                pipe_data=b"first\n"))
        await peer.pipe_message("p", PipeMode.CLOSE_READER)
        with trio.fail_after(WAIT):
            while agent.plumber.reader_count("p") < 1:  # noqa: ASYNC110 - exec 2, apart
                await trio.sleep(0.01)
        await peer.command(exec_command(9, "true", background=True))
        await peer.response(9)  # what the agent queued before this has been sent
        modes = [m.pipe_mode for m in peer.pipe_messages("p")]
        assert modes == [PipeMode.NEW_READER, PipeMode.CLOSE_READER]
        echo = Message(type=PIPE, pipe="p", pipe_mode=PipeMode.CLOSE_READER)
        await peer.send(echo)
        await peer.pipe_message("p", PipeMode.NEW_READER, nth=2)
        await peer.send(Message(type=PIPE, pipe="p", pipe_mode=PipeMode.DATA,
                                pipe_data=b"second\n"))
        assert (await peer.response(2)).stdout == "second\n"
        # no echo this time: after ECHO_WINDOW the third reader is announced all the same
        await peer.pipe_message("p", PipeMode.CLOSE_READER, nth=2)
        await peer.pipe_message("p", PipeMode.NEW_READER, nth=3)
        await peer.send(Message(type=PIPE, pipe="p", pipe_mode=PipeMode.DATA,
                                pipe_data=b"third\n"), echo)  # and this one is a deletion
        assert (await peer.response(3)).stdout == "third\n"
    assert (await peer.response(1)).stdout == "first\n"


# --- processes ---------------------------------------------------------------------------


def group_members(pgid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    found.add(int(entry.name))
    return found


async def test_process_kill_ends_the_whole_group_of_a_background_command(
        tmp_path: Path) -> None:
    async with connected(tmp_path) as (_, peer):
        await peer.command(exec_command(1, "sh", "-c", "sleep 300 & sleep 301",
                                        background=True))
        listed = await peer.expect(lambda m: m.client is not None and bool(m.client.processes),
                                   "the process list")
        assert listed.client is not None and listed.client.processes is not None
        [(pid, process)] = listed.client.processes.items()
        assert process.command == ["sh", "-c", "sleep 300 & sleep 301"]
        with trio.fail_after(WAIT):
            while len(group_members(pid)) < 3:  # noqa: ASYNC110 - processes of their own
                await trio.sleep(0.01)
        await peer.command(Command(id=2, pid=pid))
        assert await peer.response(2) == Response(id=2)
        await peer.expect(lambda m: m.client is not None and m.client.processes == {},
                          "an empty process list")
        with trio.fail_after(WAIT):
            while group_members(pid):  # noqa: ASYNC110 - processes of their own
                await trio.sleep(0.01)


# --- files -------------------------------------------------------------------------------

FILE = MessageType.FILE


def parts(command_id: int, name: str, data: bytes, perm: int = 0o640) -> list[Message]:
    """A file as ron.SendFile sends it: 100 KiB parts, then an empty last one with EOF."""
    found = [Message(type=FILE, file=File(id=command_id, name=name, perm=perm,
                                          data=data[at:at + 102400], offset=at))
             for at in range(0, len(data), 102400)]
    return [*found, Message(type=FILE, file=File(id=command_id, name=name, perm=perm,
                                                 offset=len(data), eof=True))]


async def test_cc_send_fetches_files_in_parts_into_the_files_folder(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000
    files = tmp_path / "agent" / "files"
    async with connected(tmp_path) as (_, peer):
        await peer.command(Command(id=1, files_send=["dir/data.bin", "../escape", "gone"]))
        request = await peer.expect(lambda m: m.type == FILE, "the file request")
        assert request == Message(type=FILE, uuid=UUID, file=File(name="dir/data.bin"))
        await peer.send(*parts(0, "dir/data.bin", data))
        request = await peer.expect(lambda m: m.type == FILE, "the second request")
        assert request.file == File(name="gone")
        await peer.send(Message(type=FILE, file=File(name="gone"), error="no such file: gone"))
        response = await peer.response(1)
        # a file sent in the meantime by nobody's request is ignored
        await peer.send(*parts(0, "stray", b"x"))
        # a program that is not on $PATH is looked for in files/
        await peer.command(Command(id=2, files_send=["hello-agent"]))
        await peer.expect(lambda m: m.type == FILE, "the third request")
        await peer.send(*parts(0, "hello-agent", b"#!/bin/sh\necho hello from files\n", 0o755))
        await peer.command(exec_command(3, "hello-agent"))
        assert (await peer.response(3)).stdout == "hello from files\n"
    assert (files / "dir" / "data.bin").read_bytes() == data
    assert stat.S_IMODE((files / "dir" / "data.bin").stat().st_mode) == 0o640 & ~os.umask(0o22)
    assert sorted(p.name for p in files.rglob("*")) == ["data.bin", "dir", "hello-agent"]
    assert response == Response(id=1, stderr=(
        f"minishell-agent: file ../escape refused: it would be outside {files}\n"
        "minishell-agent: file gone: no such file: gone\n"))


async def test_cc_recv_sends_files_in_parts_named_from_the_root(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_bytes(b"hello\n")
    (out / ".hidden.txt").write_bytes(b"")
    big = os.urandom(250_000)
    (out / "b.txt").write_bytes(big)
    (out / "b.txt").chmod(0o600)
    async with connected(tmp_path) as (_, peer):
        await peer.command(Command(id=7, files_recv=[str(out / "*.txt"), str(out / "none")]))
        response = await peer.response(7)
    sent = [m for m in peer.received if m.type == FILE]
    root = str(out).lstrip("/")
    assert [(m.file.name, m.file.offset, m.file.eof) for m in sent if m.file] == [
        (f"{root}/.hidden.txt", 0, True),
        (f"{root}/a.txt", 0, False), (f"{root}/a.txt", 6, True),
        (f"{root}/b.txt", 0, False), (f"{root}/b.txt", 102400, False),
        (f"{root}/b.txt", 204800, False), (f"{root}/b.txt", 250000, True)]
    assert all(m.file is not None and m.file.id == 7 and not m.uuid for m in sent)
    assert b"".join(m.file.data for m in sent[3:] if m.file) == big
    assert {m.file.perm for m in sent[3:] if m.file} == {0o600}
    assert response == Response(id=7, stderr=f"minishell-agent: no file matches {out}/none\n")
    # the response comes after the last part
    assert peer.received.index(sent[-1]) < next(
        i for i, m in enumerate(peer.received) if m.client is not None and m.client.responses)


# --- duplicates, reconnects ----------------------------------------------------------------


async def test_a_command_sent_again_on_a_connection_runs_once_unless_ids_were_reset(
        tmp_path: Path) -> None:
    async with connected(tmp_path) as (_, peer):
        first = exec_command(1, "echo", "one", background=True, stdout="runs")
        await peer.command(first)
        again = exec_command(1, "echo", "one", background=True, stdout="runs", sent=True)
        await peer.command(again)
        # after `clear cc` minimega numbers from 1 again, and a new command is not yet Sent
        await peer.command(first)
        await peer.command(exec_command(2, "true"))
        await peer.response(2)
        await peer.response(1, nth=2)
        assert len(peer.responses(1)) == 2
        lines = [m for m in peer.pipe_messages("runs") if m.pipe_mode == PipeMode.DATA]
        with trio.fail_after(WAIT):
            while len(lines) < 2:
                await peer.pipe_message("runs", PipeMode.DATA, nth=2)
                lines = [m for m in peer.pipe_messages("runs") if m.pipe_mode == PipeMode.DATA]
        assert len(lines) == 2


async def test_after_the_server_goes_away_the_agent_comes_back_and_runs_only_what_is_resent(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fds_before = open_fds()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    async with running_agent(tmp_path, str(tmp_path / "cc")):
        async with ron_server(tmp_path) as server:
            peer = await server.accept()
            await peer.command(exec_command(1, "cat", background=True, stdin="in",
                                            stdout="out"))
            await peer.response(1)
            # holds the lane until the test writes to the fifo
            await peer.command(exec_command(2, "head", "-n", "1", str(fifo), stdin="gate"))
            await peer.pipe_message("gate", PipeMode.NEW_READER)
            await peer.command(exec_command(3, "echo", "queued"))  # waits in the lane
            await peer.command(exec_command(33, "echo", "once", once=True))  # waits too
            await peer.command(exec_command(4, "true", background=True))
            await peer.response(4)

        def failed_dials() -> int:
            return sum("unable to connect" in r.getMessage() for r in caplog.records)

        # the server is gone (its socket too): the agent dials and backs off meanwhile
        with trio.fail_after(WAIT):
            while failed_dials() < 3:  # noqa: ASYNC110 - the agent runs apart
                await trio.sleep(0.01)
        # exec 2 ends while no server is there, and the -once exec after it runs
        with trio.fail_after(WAIT):
            writer = await trio.to_thread.run_sync(os.open, fifo, os.O_WRONLY)
        os.write(writer, b"done\n")
        os.close(writer)
        async with ron_server(tmp_path) as server:
            peer = await server.accept()
            assert peer.hello is not None and peer.hello.client is not None
            hello = peer.hello.client
            assert (hello.tags, hello.responses) == ({}, [])  # responses never in a hello
            assert [p.command for p in (hello.processes or {}).values()] == [["cat"]]
            # what ended meanwhile comes right after the acknowledgement
            assert (await peer.response(2)).stdout == "done\n"
            assert (await peer.response(33)).stdout == "once\n"
            assert peer.hello.client.last_command_id in (2, 33)
            # the pipes still in use are announced again
            await peer.pipe_message("in", PipeMode.NEW_READER)
            await peer.pipe_message("out", PipeMode.NEW_WRITER)
            await peer.send(Message(type=PIPE, pipe="in", pipe_mode=PipeMode.DATA,
                                    pipe_data=b"still here\n"))
            assert (await peer.pipe_message("out", PipeMode.DATA)).pipe_data == b"still here\n"
            await peer.command(exec_command(5, "echo", "five"))
            await peer.response(5)
            assert peer.responses(3) == []  # not sent again, so not run
            # head read nothing from gate before it exited: its reader stays, as 2.9
            # shows it, until something comes for it
            assert [m.pipe_mode for m in peer.pipe_messages("gate")] == [PipeMode.NEW_READER]
            await peer.command(Command(id=6, pid=-1))
            await peer.response(6)
            await peer.pipe_message("in", PipeMode.CLOSE_READER)
    assert open_fds() <= fds_before


async def test_garbage_or_an_oversized_message_from_the_server_is_a_new_connection(
        tmp_path: Path) -> None:
    async with ron_server(tmp_path) as server, running_agent(tmp_path, server.path) as agent:
        peer = await server.accept()
        await peer.send_raw(b"\xff\x00garbage" * 10)
        await peer.hung_up()
        peer = await server.accept()
        # a message announcing 64 MiB: refused at its length, before any of it is buffered
        await peer.send_raw(b"\xfc\x04\x00\x00\x00")
        await peer.hung_up()
        peer = await server.accept()
        assert agent.links_opened == 3
        # an unknown type, pipe messages the agent cannot use, UFS: ignored on a sound stream
        await peer.send(Message(type=42),
                        Message(type=PIPE, pipe="nobody", pipe_mode=PipeMode.DATA,
                                pipe_data=b"x\n"),
                        Message(type=PIPE, pipe="nobody", pipe_mode=PipeMode.CLOSE_WRITER),
                        Message(type=PIPE, pipe="nobody", pipe_mode=PipeMode.CLOSE_READER),
                        Message(type=MessageType.UFS, uuid=UUID))
        await peer.command(exec_command(1, "echo", "still"))
        assert (await peer.response(1)).stdout == "still\n"
        assert agent.links_opened == 3


async def test_bytes_before_ron_are_skipped(tmp_path: Path) -> None:
    async with ron_server(tmp_path) as server, running_agent(tmp_path, server.path):
        with trio.fail_after(WAIT):
            stream = await server.listener.accept()
        await stream.send_all(b"stale bytes of a dead connection")
        peer = Peer(stream)
        assert (await peer.handshake()).uuid == UUID
        server.nursery.start_soon(peer.read_forever)
        await peer.command(exec_command(1, "true"))
        await peer.response(1)


async def test_tunnel_requests_are_refused_in_minitunnels_own_reply(tmp_path: Path) -> None:
    def replies() -> list[TunnelMessage]:
        reader = RonCodec().tunnel  # the agent's whole tunnel stream, from its start
        return [reply for m in peer.received if m.type == MessageType.TUNNEL
                for reply in reader.feed(m.tunnel)]

    async with connected(tmp_path) as (_, peer):
        for request in [TunnelMessage(type=TunnelType.CONNECT, tid=7, host="h", port=22),
                        TunnelMessage(type=TunnelType.FORWARD, tid=8, source=1, port=2)]:
            for payload in peer.codec.tunnel.encode(request):
                await peer.send(Message(type=MessageType.TUNNEL, uuid=UUID, tunnel=payload))
        with trio.fail_after(WAIT):
            while len(replies()) < 3:
                await peer.expect(lambda m: m.type == MessageType.TUNNEL, "a tunnel reply")
    assert replies() == [
        TunnelMessage(type=TunnelType.HANDSHAKE, ack=True),
        TunnelMessage(type=TunnelType.CLOSED, tid=7,
                      error="minishell-agent does not serve tunnels"),
        TunnelMessage(type=TunnelType.DATA, tid=8, ack=True,
                      error="minishell-agent does not serve tunnels")]


async def test_a_serial_device_carries_ron_too(tmp_path: Path) -> None:
    """-serial DEV: a tty stands in for virtio-serial (its other end is the server's)."""
    master, slave = os.openpty()
    device = os.ttyname(slave)
    path = tmp_path / "agent"
    path.mkdir()
    agent = Agent(Identity(uuid=UUID, hostname="vmS", arch=go_arch(), os=go_os()), str(path),
                  dialer(family="tcp", parent="", port=0, serial=device),
                  timing=Timing(heartbeat=60.0), backoff=Backoff(first=0.02, most=0.2))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(agent.run, bind_local_socket(str(path)))
            os.close(slave)  # the agent holds its own
            slave = -1
            peer = Peer(trio.lowlevel.FdStream(master))
            master = -1
            assert (await peer.handshake()).uuid == UUID
            nursery.start_soon(peer.read_forever)
            await peer.command(exec_command(1, "printf", "over serial"))
            assert (await peer.response(1)).stdout == "over serial"
            nursery.cancel_scope.cancel()
    finally:
        for fd in (master, slave):
            if fd >= 0:
                os.close(fd)
    assert children() == set()


async def test_commands_no_program_could_take_get_errors_not_a_crash(tmp_path: Path) -> None:
    """Go strings may hold what no file name or argument can; a server may send anything."""
    async with connected(tmp_path) as (_, peer):
        await peer.send(Message(type=MessageType.COMMAND, commands={
            1: exec_command(1, "ec\0ho", "x"),
            2: exec_command(2, "echo", "a\0b"),
            3: exec_command(3, ""),
            4: Command(id=4, files_send=["a\0b"], files_recv=["/tmp/\0*"]),
            5: Command(id=5, level=99, pid=123456789012, kill_all="x"),
            6: Command(id=6, conn_test=ConnTest(endpoint="tcp://[::1", wait=-1)),
            7: Command(id=7, conn_test=ConnTest(endpoint="tcp://" + "a" * 300 + ":1")),
        }))
        got = {i: await peer.response(i) for i in range(1, 8)}
        await peer.command(exec_command(8, "echo", "alive"))
        assert (await peer.response(8)).stdout == "alive\n"
    files = tmp_path / "agent" / "files"
    assert got[1] == Response(id=1, exit_code=-1, record_exit_code=True, stderr=(
        f'exec: "{files}/ec\\x00ho": stat {files}/ec\x00ho: no such file or directory'))
    assert got[2].stderr.endswith(": invalid argument") and got[2].exit_code == -1
    assert got[3].stderr == f'exec: "{files}": stat {files}: no such file or directory'
    assert got[4].stderr == (f"minishell-agent: file a\0b refused: it would be outside {files}\n"
                             "minishell-agent: no file matches /tmp/\0*\n")
    assert got[5] == Response(id=5)
    assert got[6].stderr.startswith("unable to parse test URI tcp://[::1")
    assert got[7].stdout == "a" * 300 + ":1 | fail"


async def test_a_log_level_command_sets_the_agents_level(tmp_path: Path) -> None:
    log = logging.getLogger("minishell-test-agent-level")
    log.setLevel(logging.ERROR)
    async with ron_server(tmp_path) as server:
        path = tmp_path / "agent"
        path.mkdir()
        agent = Agent(Identity(uuid=UUID, hostname="vmL", arch=go_arch(), os=go_os()),
                      str(path), dialer(family="unix", parent=server.path, port=0, serial=""),
                      log=log)
        async with trio.open_nursery() as nursery:
            await nursery.start(agent.run, bind_local_socket(str(path)))
            peer = await server.accept()
            await peer.command(Command(id=1, level=LogLevel.DEBUG))
            assert await peer.response(1) == Response(id=1)
            assert log.level == logging.DEBUG
            await peer.command(Command(id=2, level=77))
            await peer.response(2)
            assert log.level == logging.DEBUG
            nursery.cancel_scope.cancel()
