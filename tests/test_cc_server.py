"""cc's server side, talked to by a scripted agent over a real socket.

The agent here is a few lines on the ron codec: it says hello, answers what
the test tells it to, and can misbehave on purpose. minishell-agent and the
real miniccc are tested against the server elsewhere (test_cc_agents.py and
.ci/cc_transcripts.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trio

from minishell.cc.filters import filter_text, matches, parse_filter
from minishell.cc.server import CcServer
from minishell.commands.cc import _stdio, cc_server
from minishell.errors import CommandError
from minishell.protocol import ron
from minishell.render import error_text, render
from minishell.session import Session, open_session

TIMEOUT = 10
UUID = "11111111-1111-1111-1111-111111111111"


class ScriptedAgent:
    """An agent whose every step the test takes."""

    def __init__(self, stream: trio.SocketStream, uuid: str, hostname: str) -> None:
        self.stream = stream
        self.codec = ron.RonCodec()
        self.uuid = uuid
        self.hostname = hostname
        self.received: list[ron.Message] = []

    async def hello(self, *, last_command_id: int = 0, tags: dict[str, str] | None = None,
                    ) -> ron.Message:
        await self.stream.send_all(ron.MAGIC)
        await self.send(ron.Message(type=ron.MessageType.CLIENT, uuid=self.uuid, version="v1",
                                    client=self.client(last_command_id, tags)))
        return await self.next(ron.MessageType.CLIENT)

    def client(self, last_command_id: int = 0, tags: dict[str, str] | None = None,
               responses: list[ron.Response] | None = None) -> ron.Client:
        return ron.Client(uuid=self.uuid, arch="amd64", os="linux", hostname=self.hostname,
                          ips=["10.0.0.1"], macs=["52:54:00:00:00:ee"], processes={},
                          tags=tags, responses=responses or [],
                          last_command_id=last_command_id)

    async def send(self, message: ron.Message) -> None:
        await self.stream.send_all(self.codec.encode(message))

    async def next(self, kind: int, mode: int | None = None) -> ron.Message:
        """The next message of this type (and pipe mode), skipping heartbeats and tunnels."""
        while True:
            for index, message in enumerate(self.received):
                if message.type == kind and (mode is None or message.pipe_mode == mode):
                    del self.received[: index + 1]
                    return message
            data = await self.stream.receive_some(65536)
            assert data, "the server closed the connection"
            self.received += self.codec.feed(data)

    async def command(self) -> ron.Command:
        message = await self.next(ron.MessageType.COMMAND)
        assert message.commands is not None and len(message.commands) == 1
        return next(iter(message.commands.values()))

    async def respond(self, response: ron.Response) -> None:
        await self.send(ron.Message(type=ron.MessageType.CLIENT, uuid=self.uuid,
                                    client=self.client(responses=[response])))

    async def pipe(self, name: str, mode: int, data: bytes = b"") -> None:
        await self.send(ron.Message(type=ron.MessageType.PIPE, pipe=name, pipe_mode=mode,
                                    pipe_data=data))


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[Session]:
    async with open_session(hostname="vm", base=str(tmp_path / "base")) as new:
        await new.run_line(".annotate false")
        yield new


async def connect(session: Session, uuid: str = UUID, hostname: str = "vmA") -> ScriptedAgent:
    """An agent connected to the default namespace's cc, as through <base>/cc."""
    server = await cc_server(session, session.namespaces.default)
    ours, theirs = trio.testing.memory_stream_pair()
    server.adopt(theirs)
    return ScriptedAgent(ours, uuid, hostname)  # type: ignore[arg-type]


async def output(session: Session, line: str) -> tuple[str, str]:
    [reply] = await session.run_line(line)
    return render(reply), error_text(reply)


async def wait_until(condition: Callable[[], bool]) -> None:
    with trio.fail_after(TIMEOUT):
        while not condition():  # noqa: ASYNC110 - server state, polled
            await trio.sleep(0.01)


def server_of(session: Session) -> CcServer:
    server = session.namespaces.default.find(CcServer)
    assert server is not None
    return server


# -- the protocol -----------------------------------------------------------------------------


async def test_hello_is_echoed_and_the_agent_is_listed(session: Session) -> None:
    agent = await connect(session)
    with trio.fail_after(TIMEOUT):
        echo = await agent.hello()
    assert echo.client is not None and echo.client.uuid == UUID
    assert await output(session, "cc") == ("clients\n1", "")
    assert await output(session, "cc clients") == (
        "uuid                                 | hostname | arch  | os    | ip         | mac\n"
        f"{UUID} | vmA      | amd64 | linux | [10.0.0.1] | [52:54:00:00:00:ee]", "")


async def test_a_second_agent_with_the_same_uuid_is_refused(session: Session) -> None:
    first, second = await connect(session), await connect(session)
    with trio.fail_after(TIMEOUT):
        await first.hello()
        await second.stream.send_all(ron.MAGIC)
        await second.send(ron.Message(type=ron.MessageType.CLIENT, version="v1",
                                      client=second.client()))
        while await second.stream.receive_some(65536):
            pass  # the server closes it without an answer
    assert await output(session, "cc") == ("clients\n1", "")


async def test_commands_go_at_once_and_responses_land_on_disk(session: Session,
                                                              tmp_path: Path) -> None:
    agent = await connect(session)
    with trio.fail_after(TIMEOUT):
        await agent.hello()
        await session.run_line("cc exec hostname")
        command = await agent.command()
        assert (command.id, command.command) == (1, ["hostname"])
        await agent.respond(ron.Response(id=1, stdout="vmA\n", exit_code=0,
                                         record_exit_code=True))
        folder = tmp_path / "base" / "files" / "miniccc_responses" / "1" / UUID
        await wait_until(lambda: (folder / "exitcode").exists())
    assert (folder / "stdout").read_text() == "vmA\n"
    assert await output(session, "cc responses all") == (f"1/{UUID}/stdout:\nvmA", "")
    assert await output(session, "cc exitcode 1 vmA") == ("0", "")
    assert await output(session, ".columns id,command,responses cc commands") == (
        "id   | command    | responses\n1    | [hostname] | 1", "")


async def test_a_reconnect_re_runs_nothing_a_restart_re_runs_all_but_once(
        session: Session) -> None:
    agent = await connect(session)
    with trio.fail_after(TIMEOUT):
        await agent.hello()
        await session.run_line("cc exec echo one")
        await session.run_line("cc exec-once echo two")
        assert [(await agent.command()).id for _ in range(2)] == [1, 2]
        await agent.stream.aclose()
        await wait_until(lambda: not server_of(session).agents)
        again = await connect(session)
        await again.hello(last_command_id=2)  # a running agent that lost its link
        await session.run_line("cc exec echo three")
        assert (await again.command()).id == 3  # nothing it ran comes again
        await again.stream.aclose()
        await wait_until(lambda: not server_of(session).agents)
        restarted = await connect(session)
        await restarted.hello()  # a new process: it says it ran nothing
        assert [(await restarted.command()).id for _ in range(2)] == [1, 3]


async def test_once_commands_reach_agents_that_connect_later(session: Session) -> None:
    first = await connect(session)
    with trio.fail_after(TIMEOUT):
        await first.hello()
        await session.run_line("cc exec-once echo once")
        assert (await first.command()).once
        later = await connect(session, "22222222-2222-2222-2222-222222222222", "vmB")
        await later.hello()
        command = await later.command()
        assert (command.id, command.command) == (1, ["echo", "once"])


# -- pipes ------------------------------------------------------------------------------------


async def test_an_agents_pipes_are_one_reader_and_one_writer(session: Session) -> None:
    agent = await connect(session)
    with trio.fail_after(TIMEOUT):
        await agent.hello()
        await agent.pipe("in", ron.PipeMode.NEW_READER)
        await agent.pipe("in", ron.PipeMode.NEW_READER)  # a second process: still one reader
        await agent.pipe("out", ron.PipeMode.NEW_WRITER)
        await wait_until(lambda: [p.readers for p in session.plumber.pipes()] == [1, 0])
        await session.run_line("pipe in hello")
        data = await agent.next(ron.MessageType.PIPE, ron.PipeMode.DATA)
        assert (data.pipe, data.pipe_data) == ("in", b"hello\n")
        await agent.pipe("out", ron.PipeMode.DATA, b"answer\n")
        await wait_until(lambda: session.plumber.pipes()[1].count == 1)
        assert await output(session, ".columns name,readers,writers,count,previous pipe") == (
            "name          | readers | writers | count | previous\n"
            "minimega//in  | 1       | 0       | 1     | hello\n"
            "minimega//out | 0       | 1       | 1     | answer", "")
        await session.run_line("clear pipe in")  # deleted: the agent is told
        closed = await agent.next(ron.MessageType.PIPE, ron.PipeMode.CLOSE_READER)
        assert closed.pipe == "in"


async def test_an_agent_that_goes_away_releases_its_pipes_at_once(session: Session) -> None:
    agent = await connect(session)
    with trio.fail_after(TIMEOUT):
        await agent.hello()
        await agent.pipe("in", ron.PipeMode.NEW_READER)
        await agent.pipe("out", ron.PipeMode.NEW_WRITER)
        await wait_until(lambda: len(session.plumber.pipes()) == 2)
        await agent.stream.aclose()
        await wait_until(lambda: all(p.readers == p.writers == 0
                                     for p in session.plumber.pipes()))
    assert await output(session, "clear pipe out") == ("", "")


async def test_a_silent_agent_is_dropped(session: Session,
                                         autojump_clock: trio.testing.MockClock) -> None:
    agent = await connect(session)
    await agent.hello()
    await agent.pipe("out", ron.PipeMode.NEW_WRITER)
    await wait_until(lambda: len(session.plumber.pipes()) == 1)
    await trio.sleep(60)  # it says nothing while the server heartbeats
    assert await output(session, "cc") == ("clients\n0", "")
    assert session.plumber.pipes()[0].writers == 0


@pytest.mark.parametrize("garbage", [
    b"RON" + b"\xff" * 64,  # not gob
    b"RON" + b"\x20" + b"\x00" * 40,  # a message that is not a ron hello
    b"x" * 100,  # never RON
])
async def test_garbage_drops_only_that_connection(session: Session, garbage: bytes) -> None:
    good = await connect(session)
    bad = await connect(session, "22222222-2222-2222-2222-222222222222", "vmB")
    with trio.fail_after(TIMEOUT):
        await good.hello()
        await bad.stream.send_all(garbage)
        await bad.stream.send_eof()
        while await bad.stream.receive_some(65536):
            pass
        await session.run_line("cc exec true")
        assert (await good.command()).command == ["true"]
    assert await output(session, "cc") == ("clients\n1", "")


# -- the commands' words ------------------------------------------------------------------------


@pytest.mark.parametrize(("words", "parsed"), [
    (("cat",), ("", "", "", ["cat"])),
    (("stdin=in", "stdout=out", "cat"), ("in", "out", "", ["cat"])),
    (("stdin=x=y", "stdout=z", "hostname"), ("x", "z", "", ["hostname"])),
    (("stdin=", "hostname"), ("", "", "", ["hostname"])),
    (("foo=bar", "hostname"), ("", "", "", ["foo=bar", "hostname"])),
    (("stdin=a", "stdout=b", "stderr=c"), ("a", "b", "c", [])),
    (("stdin=a", "stdin=b", "stdin=c", "x"), ("c", "", "", ["x"])),
])
def test_stdio_pairs(words: tuple[str, ...], parsed: tuple[str, str, str, list[str]]) -> None:
    assert _stdio(words) == parsed


@pytest.mark.parametrize("words", [("stdin=foo",), ("stdin=a", "stdout=b")])
def test_stdio_pairs_without_a_command(words: tuple[str, ...]) -> None:
    with pytest.raises(CommandError, match="no command given"):
        _stdio(words)


def test_filters_parse_as_minimega_parses_them() -> None:
    assert filter_text(parse_filter(["ip=10.0.0.0/24", "os=linux"])) == (
        "os=linux && ip=10.0.0.0/24")
    assert parse_filter(["UUID=ABC"]).uuid == "abc"
    assert parse_filter(["tag=role:A"]).tags == {"role": "A"}
    assert parse_filter(["tag=role=A"]).tags == {"role": "A"}
    assert parse_filter(["role=C"]).tags == {"role": "C"}
    assert parse_filter(["=x"]).tags == {"": "x"}
    with pytest.raises(CommandError, match="malformed id=value pair: role"):
        parse_filter(["role"])


def test_filters_match_as_minimega_matches() -> None:
    client = ron.Client(uuid="u", hostname="vmA", arch="amd64", os="linux",
                        ips=["10.0.0.1"], macs=["52:54:00:00:00:ee"])
    assert matches(parse_filter(["ip=10.0.0.0/24"]), client, {})
    assert not matches(parse_filter(["ip=10.0.1.0/24"]), client, {})
    assert matches(parse_filter(["name=vmA"]), client, {})  # its hostname is its name
    assert not matches(parse_filter(["hostname=VMA"]), client, {})  # case matters
    assert matches(parse_filter(["role=A"]), client, {"role": "A"})
    assert not matches(parse_filter(["role=A"]), client, {})


async def test_bad_input_is_minimegas_errors(session: Session) -> None:
    assert await output(session, "cc exec stdin=foo") == ("", "Error (vm): no command given")
    assert await output(session, "cc process kill notapid") == (
        "", "Error (vm): invalid PID: `notapid`")
    assert await output(session, "cc exitcode abc vmA") == (
        "", "Error (vm): invalid command ID provided")
    assert await output(session, "cc exitcode 1 nosuchvm") == (
        "", "Error (vm): unable to get exit code: no client nosuchvm")
    assert await output(session, "cc responses 42") == ("", "Error (vm): no responses for 42")
    assert await output(session, "cc delete command 42") == (
        "", "Error (vm): command 42 not found")
    assert await output(session, "cc delete command nosuch") == (
        "", "Error (vm): no such prefix: `nosuch`")
    assert await output(session, "cc tunnel list all") == (
        "", "Error (vm): minishell does not implement `cc tunnel`")
    assert await output(session, "cc send nosuch.txt") == (
        "", "Error (vm): no such file: nosuch.txt")
    files = session.files_dir
    assert await output(session, "cc send /etc/passwd") == (
        "", f"Error (vm): can only send files from {files}")
