"""The control socket as its clients see it: real Unix sockets in a temp folder.

Most tests serve a Session in-process and talk to it with raw sockets speaking
the wire protocol (or with minimega's own Python bindings); the tests of
starting, refusing and stopping run the daemon as a real process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import resource
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import minimega
import pexpect
import pytest
import trio
from test_cli import processes_with

from minishell import kit
from minishell.plumber import Plumber
from minishell.server import LINE_MAX, ControlServer, ServeError, socket_path
from minishell.session import Session

TIMEOUT = 10
RAW_ACK = b'{"Raw":true}\n'
EMPTY_OK = (b'{"Resp":[{"Host":"vm","Response":"","Header":null,"Tabular":null,"Error":"",'
            b'"Data":null}],"Rendered":"","More":false,"Status":false}\n')
ERROR_REPLY = (b'{"Resp":[{"Host":"vm","Response":"","Header":null,"Tabular":null,"Error":"%s",'
               b'"Data":null}],"Rendered":"","More":false,"Status":false}\n')

MINISHELL = [sys.executable, "-c", "import sys; from minishell.cli import main; sys.exit(main())"]
DAEMON = [*MINISHELL, "-nostdin"]


# -- clients ----------------------------------------------------------------------------------


class Client:
    """One connection, read by lines or to the end."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def line(self) -> bytes:
        while b"\n" not in self.buffer:
            data = await self.stream.receive_some(1 << 16)
            assert data, f"EOF before a whole line: {self.buffer[:200]!r}"
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    async def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            data = await self.stream.receive_some(1 << 20)
            assert data, f"EOF after {len(self.buffer)} of {size} bytes"
            self.buffer += data
        taken, self.buffer = self.buffer[:size], self.buffer[size:]
        return taken

    async def rest(self) -> bytes:
        """Everything until the server closes (a reset counts as a close)."""
        chunks = [self.buffer]
        self.buffer = b""
        try:
            while data := await self.stream.receive_some(1 << 20):
                chunks.append(data)
        except trio.BrokenResourceError:
            pass
        return b"".join(chunks)

    async def ask(self, request: bytes) -> bytes:
        await self.stream.send_all(request)
        return await self.line()

    async def aclose(self) -> None:
        await self.stream.aclose()


async def connect(path: str) -> Client:
    return Client(await trio.open_unix_socket(path))


async def attach(path: str, pipe: str = "minimega//foo") -> Client:
    """A raw pipe attachment, registered once the ack is read."""
    client = await connect(path)
    await client.stream.send_all(b'{"PlumbPipe":"%s","Raw":true}\n' % pipe.encode())
    assert await client.line() == RAW_ACK
    return client


def command(text: str) -> bytes:
    return json.dumps({"Command": text}).encode() + b"\n"


async def wait_served(path: str, replacing: int | None = None) -> None:
    """Until a daemon process accepts connections on `path` (on a new socket file,
    if `replacing` is the inode of the one it replaces)."""
    while True:
        with contextlib.suppress(OSError):  # not there yet, or not listening yet
            if (await trio.Path(path).lstat()).st_ino != replacing:
                stream = await trio.open_unix_socket(path)
                await stream.aclose()
                return
        await trio.sleep(0.02)


async def exists(path: str) -> bool:
    return await trio.Path(path).exists()


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def exchange(client: Client, data: bytes, rng: random.Random | None = None) -> bytes:
    """Send everything (in pieces of random sizes, so that lines straddle reads,
    if given a generator), then EOF, while reading until the server closes."""
    async with trio.open_nursery() as nursery:

        async def send() -> None:
            if rng is None:
                await client.stream.send_all(data)
            else:
                position = 0
                while position < len(data):
                    size = rng.randrange(1, 40_000)
                    await client.stream.send_all(data[position:position + size])
                    position += size
            await client.stream.send_eof()

        nursery.start_soon(send)
        return await client.rest()


async def write_all(writer: Client, data: bytes) -> None:
    """A writer whose echo must be all it wrote."""
    assert await exchange(writer, data) == data


async def keep_writing(writer: Client, data: bytes) -> None:
    """A writer that never reads its echo: it stalls once buffers are full, until the
    server goes."""
    with contextlib.suppress(trio.BrokenResourceError):
        await writer.stream.send_all(data)


def numbered(prefix: bytes, count: int) -> list[bytes]:
    return [b"%s %06d\n" % (prefix, index) for index in range(count)]


async def wait_until(condition: Callable[[], bool]) -> None:
    """Until `condition()` holds; the caller's fail_after bounds the wait."""
    while True:
        if condition():
            return
        await trio.sleep(0.01)


def hung_up(client: Client) -> bool:
    """Whether the server has closed the client's connection (read or not)."""
    poll = select.poll()
    poll.register(client.stream.socket.fileno(), select.POLLIN)
    return any(events & select.POLLHUP for _, events in poll.poll(0))


def unique_seconds() -> str:
    """A sleep no other process has: its command line tells its process apart."""
    return f"1007.{os.getpid()}{random.randrange(10**6):06d}"


# -- fixtures ---------------------------------------------------------------------------------


def new_session(nursery: trio.Nursery, base: Path) -> Session:
    helper_dir = kit.bin_dir()
    plumber = Plumber(nursery, helper_dir=helper_dir, rng=random.Random(7))
    return Session(plumber, nursery, hostname="vm", base=str(base))


@pytest.fixture
async def server(nursery: trio.Nursery, tmp_path: Path) -> AsyncIterator[ControlServer]:
    served = await serve(nursery, tmp_path / "base")
    yield served
    served.close()
    await served.session.plumber.aclose()


async def serve(nursery: trio.Nursery, base: Path, **options: float) -> ControlServer:
    session = new_session(nursery, base)
    await session.run_line(".annotate false")
    served = ControlServer(session, socket_path(str(base)), **options)
    await nursery.start(served.run)
    return served


async def listing(server: ControlServer) -> list[list[str]]:
    [reply] = await server.session.run_line("pipe")
    return reply.responses[0].tabular or []


# -- where it listens ---------------------------------------------------------------------------


async def test_folder_is_private_and_socket_is_the_users_alone(
        server: ControlServer, tmp_path: Path) -> None:
    assert server.path == str(tmp_path / "base" / "minimega")
    assert stat.S_IMODE(os.stat(tmp_path / "base").st_mode) == 0o700
    info = os.lstat(server.path)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600


async def test_an_existing_folder_of_ours_is_made_private(
        nursery: trio.Nursery, tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir(mode=0o755)
    base.chmod(0o755)
    served = ControlServer(new_session(nursery, base), socket_path(str(base)))
    await nursery.start(served.run)
    assert stat.S_IMODE(os.stat(base).st_mode) == 0o700
    served.close()


async def test_a_live_socket_is_refused_and_a_stale_one_replaced(
        server: ControlServer, nursery: trio.Nursery, tmp_path: Path) -> None:
    second = ControlServer(server.session, server.path)
    with pytest.raises(ServeError) as refused:
        await nursery.start(second.run)
    assert str(refused.value) == (f"minishell: another minishell is running on {server.path} "
                                  "(use -force to replace it)")
    assert await exists(server.path)

    stale_path = str(tmp_path / "stale" / "minimega")
    os.makedirs(os.path.dirname(stale_path), mode=0o700)
    with socket.socket(socket.AF_UNIX) as crashed:  # bound, never listening: left by a crash
        crashed.bind(stale_path)
    revived = ControlServer(server.session, stale_path)
    await nursery.start(revived.run)
    client = await connect(stale_path)
    assert await client.ask(command("echo back")) == (
        b'{"Resp":[{"Host":"vm","Response":"back","Header":null,"Tabular":null,"Error":"",'
        b'"Data":null}],"Rendered":"back","More":false,"Status":false}\n')
    await client.aclose()
    revived.close()
    assert not await exists(stale_path)


async def test_something_else_at_the_socket_path_is_never_removed(
        nursery: trio.Nursery, tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir(mode=0o700)
    (base / "minimega").write_text("precious")
    served = ControlServer(new_session(nursery, base), socket_path(str(base)))
    with pytest.raises(ServeError, match=r"^minishell: .*/minimega exists and is not a socket$"):
        await nursery.start(served.run)
    assert (base / "minimega").read_text() == "precious"


async def test_daemons_refuse_force_and_clean_up(tmp_path: Path) -> None:
    """A second daemon is refused, -force takes over, the first leaves the
    newcomer's socket alone, `quit` from a client ends the newcomer; a script on
    stdin never serves, so it runs beside them."""
    base = tmp_path / "base"
    path = socket_path(str(base))
    flags = ["-base", str(base), "-hostname", "vm"]

    async def start(*force: str) -> trio.Process:
        return await trio.lowlevel.open_process([*DAEMON, *force, *flags],
                                                stdin=subprocess.DEVNULL)

    with trio.fail_after(TIMEOUT):
        first = await start()
        try:
            await wait_served(path)
            done: dict[str, subprocess.CompletedProcess[bytes]] = {}

            async def run(name: str, argv: list[str], stdin: bytes) -> None:
                done[name] = await trio.run_process(argv, stdin=stdin, capture_stdout=True,
                                                    capture_stderr=True, check=False)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(run, "refused", [*DAEMON, *flags], b"")
                nursery.start_soon(run, "script", [*MINISHELL, *flags], b"echo beside\n")
            assert (done["refused"].returncode, done["refused"].stderr.decode()) == (
                1, f"minishell: another minishell is running on {path} "
                "(use -force to replace it)\n")
            assert (done["script"].returncode, done["script"].stdout,
                    done["script"].stderr) == (0, b"vm: beside\n", b"")

            first_socket = (await trio.Path(path).lstat()).st_ino
            second = await start("-force")
            try:
                await wait_served(path, replacing=first_socket)
                first.send_signal(signal.SIGTERM)
                assert await first.wait() == 0
                client = await connect(path)  # the newcomer's socket survived
                assert await client.ask(command("quit")) == EMPTY_OK
                assert await client.rest() == b""
                await client.aclose()
                assert await second.wait() == 0
                assert not await exists(path)
            finally:
                second.kill()
                await second.wait()
        finally:
            first.kill()
            await first.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
async def test_a_signal_mid_stream_ends_every_attachment_and_unlinks(
        tmp_path: Path, signum: signal.Signals) -> None:
    base = tmp_path / "base"
    path = socket_path(str(base))
    with trio.fail_after(TIMEOUT):
        daemon = await trio.lowlevel.open_process(
            [*DAEMON, "-base", str(base)], stdin=subprocess.DEVNULL)
        try:
            await wait_served(path)
            reader = await attach(path)
            writer = await attach(path)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(keep_writing, writer, b"".join(numbered(b"w", 200_000)))
                await reader.exactly(100_000)  # the stream is flowing
                daemon.send_signal(signum)
                with trio.fail_after(1):
                    await reader.rest()
                    await writer.rest()
                    assert await daemon.wait() == 0
            assert not await exists(path)
            await reader.aclose()
            await writer.aclose()
        finally:
            daemon.kill()
            await daemon.wait()


def test_the_interactive_prompt_serves_until_ctrl_d(tmp_path: Path) -> None:
    minishell = shutil.which("minishell", path=os.pathsep.join(
        [sysconfig.get_path("scripts"), os.environ.get("PATH", os.defpath)]))
    if minishell is None:
        pytest.skip("minishell is not installed")
    base = tmp_path / "base"
    path = socket_path(str(base))
    env = {**os.environ, "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state"),
           "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}
    shell = pexpect.spawn(minishell, ["-base", str(base), "-hostname", "vm"], env=env,
                          encoding="utf-8", timeout=TIMEOUT, dimensions=(24, 80))
    shell.logfile_read = io.StringIO()
    try:
        shell.expect(r"minimega\$")
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
            client.sendall(command("pipe from-socket hello"))
            with client.makefile("rb") as replies:
                reply = replies.readline()
            assert reply == EMPTY_OK
        shell.send(".columns name,previous pipe\r")
        shell.expect(r"minimega//from-socket \| hello")
        shell.expect(r"minimega\$")
        shell.send("\x04")
        shell.expect(pexpect.EOF)
        shell.close()
        assert shell.exitstatus == 0
        assert not os.path.exists(path)
    finally:
        shell.close(force=True)


# -- commands and suggestions ---------------------------------------------------------------------


async def test_command_replies_are_minimegas_bytes(server: ControlServer) -> None:
    client = await connect(server.path)
    with trio.fail_after(TIMEOUT):
        assert await client.ask(command("pipe foo hi")) == EMPTY_OK
        assert await client.ask(command("pipe")) == (
            b'{"Resp":[{"Host":"vm","Response":"","Header":["name","mode","readers","writers",'
            b'"count","via","previous"],"Tabular":[["minimega//foo","all","0","0","1","","hi"]],'
            b'"Error":"","Data":null}],"Rendered":"name          | mode | readers | writers | '
            b'count | via | previous\\nminimega//foo | all  | 0       | 0       | 1     |     | '
            b'hi","More":false,"Status":false}\n')
        # Go escapes <, > and & and leaves other text as UTF-8.
        assert await client.ask(command('echo "<b> & \u00e9\t"')) == (
            b'{"Resp":[{"Host":"vm","Response":"\\u003cb\\u003e \\u0026 \xc3\xa9\\t",'
            b'"Header":null,"Tabular":null,"Error":"","Data":null}],'
            b'"Rendered":"\\u003cb\\u003e \\u0026 \xc3\xa9","More":false,"Status":false}\n')
        assert await client.ask(command("# only a comment")) == (
            b'{"Resp":null,"Rendered":"","More":false,"Status":false}\n')
        assert await client.ask(command("bogus")) == (
            b'{"Resp":[{"Host":"vm","Response":"","Header":null,"Tabular":null,'
            b'"Error":"invalid command: `bogus`","Data":null}],"Rendered":"","More":false,'
            b'"Status":false}\n')
    await client.aclose()


async def test_several_responses_come_with_more(server: ControlServer, tmp_path: Path) -> None:
    script = tmp_path / "two.mm"
    script.write_text("echo one\necho two\n")
    client = await connect(server.path)
    with trio.fail_after(TIMEOUT):
        await client.stream.send_all(command(f"read {script}"))
        replies = [json.loads(await client.line()) for _ in range(2)]
    assert [(reply["Rendered"], reply["More"]) for reply in replies] == [
        ("one", True), ("two", False)]
    await client.aclose()


async def test_replies_go_out_while_the_command_runs(server: ControlServer,
                                                     tmp_path: Path) -> None:
    """A script's replies stream: the first is out while the script still runs (so
    a script of any length needs no memory for replies it has already sent)."""
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    script = tmp_path / "slow.mm"
    script.write_text(f"echo one\necho two\nshell cat {gate}\necho last\n")
    client = await connect(server.path)
    with trio.fail_after(TIMEOUT):
        await client.stream.send_all(command(f"read {script}"))
        first = json.loads(await client.line())
        assert (first["Rendered"], first["More"]) == ("one", True)
        await trio.to_thread.run_sync(gate.write_text, "released\n")
        rest = [json.loads(await client.line()) for _ in range(3)]
    assert [(reply["Rendered"], reply["More"]) for reply in rest] == [
        ("two", True), ("released", True), ("last", False)]
    await client.aclose()


async def test_suggest_and_the_neither_error(server: ControlServer) -> None:
    neither = (b'{"Resp":[{"Host":"vm","Response":"","Header":null,"Tabular":null,'
               b'"Error":"must specify either command or suggest","Data":null}],"Rendered":"",'
               b'"More":false,"Status":false}\n')
    await server.session.run_line("pipe pipe-a x")
    client = await connect(server.path)
    with trio.fail_after(TIMEOUT):
        assert await client.ask(b'{"Suggest":"pi"}\n') == (
            b'{"Resp":null,"Rendered":"","More":false,"Status":false,"Suggest":["pipe"]}\n')
        assert await client.ask(b'{"Suggest":"pipe minimega//pipe-"}\n') == (
            b'{"Resp":null,"Rendered":"","More":false,"Status":false,'
            b'"Suggest":["minimega//pipe-a"]}\n')
        # Go's `json:",omitempty"`: no candidates, no field.
        assert await client.ask(b'{"Suggest":"zzz"}\n') == (
            b'{"Resp":null,"Rendered":"","More":false,"Status":false}\n')
        assert await client.ask(b"{}\n") == neither
        assert await client.ask(b'{"Command":"echo","Suggest":"e"}\n') == neither
    await client.aclose()


async def test_requests_are_framed_by_json_not_by_newlines(server: ControlServer) -> None:
    """minimega's Python bindings send each request without a newline, and Go
    matches field names whatever their case."""
    client = await connect(server.path)
    with trio.fail_after(TIMEOUT):
        await client.stream.send_all(b'{"command": "pipe a 1"} {"COMMAND":\n"pipe b 2"}')
        assert [await client.line(), await client.line()] == [EMPTY_OK, EMPTY_OK]
        await client.stream.send_all(b'{"Command": "pipe c')
        await client.stream.send_all(b' 3"}')
        assert await client.line() == EMPTY_OK
    assert [row[0] for row in await listing(server)] == [
        "minimega//a", "minimega//b", "minimega//c"]
    await client.aclose()


async def test_a_broken_request_closes_only_its_connection(server: ControlServer) -> None:
    other = await connect(server.path)
    with trio.fail_after(TIMEOUT):
        deep = b"[" * 100_000 + b"]" * 100_000
        for broken in (b'{"Command": nope}\n', b'{"Command": 42}\n', deep,
                       b'{"PlumbPipe":"minimega//x"}\n42\n'):
            client = await connect(server.path)
            await client.stream.send_all(broken)
            assert await client.rest() == b""
            await client.aclose()
        assert await other.ask(command("pipe x y")) == EMPTY_OK
    assert (await listing(server))[0][2:5] == ["0", "0", "1"]
    await other.aclose()


@pytest.mark.parametrize(("opening", "filler", "size"), [
    (b"", b"[", 12 << 20), (b'{"Command":"pipe foo ', b"x", 40 << 20)])
async def test_a_request_over_1_mib_gets_one_error_and_the_others_go_on(
        server: ControlServer, opening: bytes, filler: bytes, size: int) -> None:
    """A request that never ends (12 MiB of `[`, a 40 MiB string) is refused with
    one error once past 1 MiB, and its connection closed; meanwhile every other
    client's commands are answered at once."""
    got: dict[str, bytes] = {}
    with trio.fail_after(TIMEOUT):
        other = await connect(server.path)
        flood = await connect(server.path)
        refused = trio.Event()

        async def send_flood() -> None:
            piece = filler * (65536 // len(filler))
            with contextlib.suppress(trio.BrokenResourceError):
                await flood.stream.send_all(opening)
                for _ in range(size // len(piece)):
                    await flood.stream.send_all(piece)

        async def read_flood() -> None:
            got["reply"] = await flood.line()
            got["rest"] = await flood.rest()
            refused.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_flood)
            nursery.start_soon(read_flood)
            while not refused.is_set():
                with trio.fail_after(1):
                    assert await other.ask(command("pipe x y")) == EMPTY_OK
    assert got == {"reply": ERROR_REPLY % b"request longer than 1 MiB", "rest": b""}
    await other.aclose()
    await flood.aclose()


async def test_lone_surrogates_read_as_u_fffd(server: ControlServer) -> None:
    """Go reads a lone surrogate escape as U+FFFD; kept as such, it broke every listing."""
    client = await connect(server.path)
    with trio.fail_after(TIMEOUT):
        assert await client.ask(b'{"Command":"pipe \\ud800 x"}') == EMPTY_OK
        assert await client.ask(b'{"Command":"pipe foo \\udfff\\ud83d\\ude00"}') == EMPTY_OK
        reply = json.loads(await client.ask(command(".columns name,previous pipe")))
        assert reply["Resp"][0]["Tabular"] == [
            ["minimega//foo", "\ufffd\U0001f600"], ["minimega//\ufffd", "x"]]
        strings = await connect(server.path)
        await strings.stream.send_all(b'{"PlumbPipe":"minimega//foo"}"\\udc80 js\\n"')
        assert await strings.line() == '"\ufffd js\\n"\n'.encode()
    assert [row[-1] for row in await listing(server)] == ["\ufffd js", "x"]
    await client.aclose()
    await strings.aclose()


async def test_a_client_that_goes_away_cancels_its_command(server: ControlServer) -> None:
    """As Ctrl-C at the prompt: its program is stopped, and the next command runs at once."""
    seconds = unique_seconds()
    with trio.fail_after(TIMEOUT):
        leaving = await connect(server.path)
        await leaving.stream.send_all(command(f"shell sleep {seconds}"))
        await wait_until(lambda: bool(processes_with(f"/sleep\0{seconds}")))
        await leaving.aclose()
        other = await connect(server.path)
        with trio.fail_after(2):
            assert await other.ask(command("pipe x y")) == EMPTY_OK
        await wait_until(lambda: not processes_with(f"/sleep\0{seconds}"))
    await other.aclose()


async def test_a_client_that_only_stops_writing_still_gets_every_reply(
        server: ControlServer) -> None:
    """A half-close (`socat`, `nc -N`) is no departure: the client still reads."""
    client = await connect(server.path)
    with trio.fail_after(TIMEOUT):
        await client.stream.send_all(command("shell echo done") + command("echo two"))
        await client.stream.send_eof()
        replies = [json.loads(await client.line()) for _ in range(2)]
        assert await client.rest() == b""
    assert [reply["Resp"][0]["Response"] for reply in replies] == ["done\n", "two"]
    await client.aclose()


async def test_requests_sent_ahead_are_answered_in_order_and_none_waits_long(
        server: ControlServer) -> None:
    """Replies to requests sent ahead go out together, but none waits behind a
    command that takes its time."""
    client = await connect(server.path)
    with trio.fail_after(TIMEOUT):
        await client.stream.send_all(b"".join(command(f"echo {n}") for n in range(2000)))
        replies = [json.loads(await client.line())["Rendered"] for _ in range(2000)]
        assert replies == [str(n) for n in range(2000)]
        await client.stream.send_all(command("echo first") + command("shell sleep 3"))
        with trio.fail_after(1.5):
            assert json.loads(await client.line())["Rendered"] == "first"
    await client.aclose()


async def test_a_client_that_takes_no_reply_is_disconnected_after_the_patience(
        nursery: trio.Nursery, tmp_path: Path) -> None:
    served = await serve(nursery, tmp_path / "base", reply_patience=0.2)
    with trio.fail_after(TIMEOUT):
        stalled = await connect(served.path)
        # A reply larger than what the socket buffers hold, never read.
        await stalled.stream.send_all(command("echo " + "x" * 600_000))
        other = await connect(served.path)
        assert await other.ask(command("pipe x y")) == EMPTY_OK
        await wait_until(lambda: hung_up(stalled))
        assert await other.ask(command("pipe x y")) == EMPTY_OK
    for client in (stalled, other):
        await client.aclose()
    served.close()
    await served.session.plumber.aclose()


async def test_minimegas_python_bindings(server: ControlServer) -> None:
    def drive() -> tuple[object, ...]:
        mm = minimega.connect(server.path)
        try:
            mm.pipe("foo", "hello")
            pipes = mm.pipe()[0]["Tabular"]
            mm.plumb("foo", "bar")
            pipelines = mm.plumb()[0]["Tabular"]
            mm.clear_plumb()
            after_clear = mm.plumb()[0]["Tabular"]
            mm.clear_pipe("foo")
            with pytest.raises(minimega.Error) as missing:
                mm.clear_pipe("foo")
            return pipes, pipelines, after_clear, str(missing.value)
        finally:
            mm._socketfile.close()
            mm._socket.close()

    with trio.fail_after(TIMEOUT):
        pipes, pipelines, after_clear, error = await trio.to_thread.run_sync(drive)
    assert pipes == [["minimega//foo", "all", "0", "0", "1", "", "hello"]]
    assert pipelines == [["minimega//foo minimega//bar"]]
    assert after_clear == []
    assert error == "no such pipe: minimega//foo"
    assert [row[0] for row in await listing(server)] == ["minimega//bar"]


# -- raw attachments ------------------------------------------------------------------------------


async def test_attach_write_read_own_echo_then_eof(server: ControlServer) -> None:
    with trio.fail_after(TIMEOUT):
        client = await attach(server.path)
        # Registered before the ack: a reader and a writer.
        assert await listing(server) == [["minimega//foo", "all", "1", "1", "0", "", ""]]
        await client.stream.send_all(b"one\ntwo\n")
        assert await client.exactly(8) == b"one\ntwo\n"
        await client.stream.send_all(b"\nthree\nlast line without newline")
        await client.stream.send_eof()
        assert await client.rest() == b"\nthree\nlast line without newline\n"
    assert await listing(server) == [
        ["minimega//foo", "all", "0", "0", "5", "", "last line without newline"]]
    await client.aclose()


async def test_raw_lines_may_follow_the_request_at_once(server: ControlServer) -> None:
    with trio.fail_after(TIMEOUT):
        eager = await connect(server.path)
        await eager.stream.send_all(b'{"PlumbPipe":"minimega//foo","Raw":true}\nfirst\nsec')
        assert await eager.line() == RAW_ACK
        await eager.stream.send_all(b"ond\n")
        assert await eager.exactly(13) == b"first\nsecond\n"
        # The request's own newline may come late: it is no empty message.
        late = await connect(server.path)
        await late.stream.send_all(b'{"PlumbPipe":"minimega//foo","Raw":true}')
        assert await late.line() == RAW_ACK
        await late.stream.send_all(b"\nthird\n")
        assert await eager.line() == b"third\n"
    assert (await listing(server))[0][4] == "3"
    await eager.aclose()
    await late.aclose()


async def test_writers_and_readers_keep_each_writers_order(server: ControlServer) -> None:
    rng = random.Random(1)
    count = 30_000
    sent = {b"w%d" % index: numbered(b"w%d" % index, count) for index in range(3)}
    total = sum(len(b"".join(lines)) for lines in sent.values())

    def by_writer(data: bytes) -> dict[bytes, list[bytes]]:
        seen: dict[bytes, list[bytes]] = {}
        for line in data.splitlines(keepends=True):
            seen.setdefault(line.split(b" ")[0], []).append(line)
        return seen

    with trio.fail_after(TIMEOUT):
        readers = [await attach(server.path) for _ in range(2)]
        writers = {name: await attach(server.path) for name in sent}
        echoes: dict[bytes, bytes] = {}
        received: list[bytes] = []

        async def write(name: bytes) -> None:
            echoes[name] = await exchange(writers[name], b"".join(sent[name]), rng)

        async def read(reader: Client) -> None:
            received.append(await reader.exactly(total))
            await reader.stream.send_eof()
            assert await reader.rest() == b""

        async with trio.open_nursery() as nursery:
            for name in sent:
                nursery.start_soon(write, name)
            for reader in readers:
                nursery.start_soon(read, reader)

    for data in received:
        assert by_writer(data) == sent
    for name, echo in echoes.items():
        seen = by_writer(echo)
        assert seen[name] == sent[name]  # all of its own lines, drained before EOF
        for other, lines in seen.items():
            assert lines == sent[other][:len(lines)]
    for client in [*readers, *writers.values()]:
        await client.aclose()


async def test_a_reader_that_falls_behind_still_gets_every_line_in_order(
        server: ControlServer) -> None:
    """Small blocks go straight to a waiting reader's socket until it is full;
    the rest waits in the outbox, behind what was cut in two."""
    data = b"".join(numbered(b"m", 30_000))  # more than a socket buffer, less than it + an outbox
    with trio.fail_after(TIMEOUT):
        reader = await attach(server.path)
        writer = await attach(server.path)
        # In pieces of up to 40 KB, while the reader reads nothing.
        assert await exchange(writer, data, random.Random(3)) == data
        await reader.stream.send_eof()
        assert await reader.rest() == data
    await reader.aclose()
    await writer.aclose()


async def split_over_readers(server: ControlServer, mode: str, count: int) -> list[bytes]:
    """Four readers, then a writer (the fifth reader): what each of the five got."""
    await server.session.run_line(f"pipe foo mode {mode}")
    with trio.fail_after(TIMEOUT):
        readers = [await attach(server.path) for _ in range(4)]
        writer = await attach(server.path)
        await writer.stream.send_all(b"".join(numbered(b"m", count)))
        await writer.stream.send_eof()
        got: list[bytes] = [b""] * 5

        async def drain(index: int, client: Client) -> None:
            got[index] = await client.rest()

        async with trio.open_nursery() as nursery:
            for index, reader in enumerate(readers):
                nursery.start_soon(drain, index, reader)
            # The writer's EOF comes once its messages are all routed.
            got[4] = await writer.rest()
            for reader in readers:
                await reader.stream.send_eof()
    for client in [*readers, writer]:
        await client.aclose()
    return got


async def test_round_robin_rotates_in_registration_order(server: ControlServer) -> None:
    lines = numbered(b"m", 10_000)
    got = await split_over_readers(server, "round-robin", len(lines))
    assert got == [b"".join(lines[index::5]) for index in range(5)]


async def test_random_is_even_and_keeps_order(server: ControlServer) -> None:
    count = 50_000
    got = await split_over_readers(server, "random", count)
    shares = [data.splitlines(keepends=True) for data in got]
    assert sorted(line for share in shares for line in share) == numbered(b"m", count)
    for share in shares:
        assert share == sorted(share)
        assert abs(len(share) - count / 5) < count / 5 * 0.03


async def test_a_reader_gone_mid_stream_is_dropped_and_the_others_get_everything(
        server: ControlServer) -> None:
    data = b"".join(numbered(b"m", 200_000))  # far more than socket buffers and outboxes hold
    with trio.fail_after(TIMEOUT):
        steady = await attach(server.path)
        leaving = await attach(server.path)
        writer = await attach(server.path)
        async with trio.open_nursery() as nursery:

            nursery.start_soon(write_all, writer, data)
            await leaving.exactly(100_000)
            await leaving.aclose()  # unread data and all
            assert await steady.exactly(len(data)) == data
    assert (await listing(server))[0][2:4] == ["1", "1"]
    await steady.aclose()
    await writer.aclose()


async def test_a_reader_killed_with_sigkill_is_dropped(server: ControlServer) -> None:
    """A reader process that never reads holds the stream back (nothing is lost)
    until it is killed; then the stream goes on."""
    stuck_reader = [sys.executable, "-c", """if True:
        import socket, sys, time
        s = socket.socket(socket.AF_UNIX)
        s.connect(sys.argv[1])
        s.sendall(b'{"PlumbPipe":"minimega//foo","Raw":true}\\n')
        sys.stdout.write(s.recv(13).decode())
        sys.stdout.flush()
        time.sleep(60)
    """, server.path]
    data = b"".join(numbered(b"m", 200_000))
    with trio.fail_after(TIMEOUT):
        process = await trio.lowlevel.open_process(stuck_reader, stdout=subprocess.PIPE)
        try:
            assert process.stdout is not None
            ack = b""
            while not ack.endswith(b"\n"):
                ack += await process.stdout.receive_some()
            assert ack == RAW_ACK
            steady = await attach(server.path)
            writer = await attach(server.path)
            async with trio.open_nursery() as nursery:

                nursery.start_soon(write_all, writer, data)
                first = await steady.exactly(9_000)  # flowing, held back by the stuck reader
                process.kill()
                assert first + await steady.exactly(len(data) - len(first)) == data
        finally:
            process.kill()
            await process.wait()
            assert process.stdout is not None
            await process.stdout.aclose()
    assert (await listing(server))[0][2:4] == ["1", "1"]
    await steady.aclose()
    await writer.aclose()


async def test_a_new_reader_never_blocks_a_busy_pipe(server: ControlServer) -> None:
    """2.9 deadlocks when a client attaches to a pipe in full flow."""
    data = b"".join(numbered(b"m", 500_000))  # much more than buffers and outboxes hold
    mid_stream, late_attached = trio.Event(), trio.Event()
    got: dict[str, bytes] = {}
    with trio.fail_after(TIMEOUT):
        clients = {"steady": await attach(server.path), "writer": await attach(server.path)}

        async def read_steadily() -> None:
            first = await clients["steady"].exactly(len(data) // 4)
            mid_stream.set()
            await late_attached.wait()  # holding the writer back meanwhile: it cannot finish
            got["steady"] = first + await clients["steady"].exactly(len(data) - len(first))

        async def write_then_let_late_go() -> None:
            await write_all(clients["writer"], data)  # all routed: its EOF is through
            await late_attached.wait()
            await clients["late"].stream.send_eof()

        async def read_late() -> None:
            got["late"] = await clients["late"].rest()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_steadily)
            nursery.start_soon(write_then_let_late_go)
            await mid_stream.wait()
            clients["late"] = await attach(server.path)
            nursery.start_soon(read_late)
            late_attached.set()
    assert got["steady"] == data
    late = got["late"]
    assert late and data.endswith(late) and data[-len(late) - 1:].startswith(b"\n")
    for client in clients.values():
        await client.aclose()


async def test_a_line_of_1_mib_is_refused_and_the_attachment_closed(
        server: ControlServer) -> None:
    longest = b"y" * (LINE_MAX - 1) + b"\n"
    with trio.fail_after(TIMEOUT):
        reader = await attach(server.path)
        fine = await attach(server.path)
        await fine.stream.send_all(longest)
        assert await reader.exactly(len(longest)) == longest

        refused = await attach(server.path)
        await refused.stream.send_all(b"before\n")
        assert await reader.line() == b"before\n"
        await refused.stream.send_all(b"x" * LINE_MAX + b"\n")
        await refused.rest()
        assert (await listing(server))[0][2:5] == ["2", "2", "2"]
        # Nothing of it was written: the next message comes right after.
        await fine.stream.send_all(b"after\n")
        assert await reader.line() == b"after\n"
    for client in (reader, fine, refused):
        await client.aclose()


async def test_a_writer_that_dies_mid_line_delivers_no_fragment(server: ControlServer) -> None:
    """Only a clean end of input (a half-close) completes a last line without a newline."""
    dying_writer = [sys.executable, "-c", """if True:
        import socket, sys
        s = socket.socket(socket.AF_UNIX)
        s.connect(sys.argv[1])
        s.sendall(b'{"PlumbPipe":"minimega//foo","Raw":true}\\n')
        echo = b'{"Raw":true}\\nwhole\\n'
        got = b''
        s.sendall(b'whole\\n')
        while got != echo:  # nothing left unread: its death is an EOF, not a reset
            got += s.recv(100)
        s.sendall(b'fragment')
        print('sent', flush=True)
        sys.stdin.read()
    """, server.path]
    with trio.fail_after(TIMEOUT):
        reader = await attach(server.path)
        process = await trio.lowlevel.open_process(dying_writer, stdin=subprocess.PIPE,
                                                   stdout=subprocess.PIPE)
        try:
            assert process.stdout is not None
            said = b""
            while not said.endswith(b"\n"):
                said += await process.stdout.receive_some()
            assert said == b"sent\n"
            assert await reader.line() == b"whole\n"
            process.kill()
            await process.wait()
        finally:
            process.kill()
            await process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    await stream.aclose()
        while True:  # until the writer is detached
            if (await listing(server))[0][2:4] == ["1", "1"]:
                break
            await trio.sleep(0.01)
        writer = await attach(server.path)
        await writer.stream.send_all(b"after\n")
        assert await reader.line() == b"after\n"
    assert (await listing(server))[0][4:] == ["2", "", "after"]
    await reader.aclose()
    await writer.aclose()


# -- minimega's JSON-strings attachments ----------------------------------------------------------


async def test_json_strings_attachment(server: ControlServer) -> None:
    with trio.fail_after(TIMEOUT):
        raw = await attach(server.path, "minimega//js")
        strings = await connect(server.path)
        await strings.stream.send_all(
            b'{"PlumbPipe":"minimega//js"}\n"hello wire\\n"\n"from python"\n""\n"<&>\\u00e9\\n"\n')
        delivered = "hello wire\nfrom python\n<&>\u00e9\n".encode()
        assert await raw.exactly(len(delivered)) == delivered
        echo = b'"hello wire\\n"\n"from python\\n"\n"\\u003c\\u0026\\u003e\xc3\xa9\\n"\n'
        assert await strings.exactly(len(echo)) == echo
        # Invalid UTF-8 reaches a JSON client as U+FFFD, as Go encodes it.
        await raw.stream.send_all(b"raw \xff\n")
        assert await strings.line() == b'"raw \\ufffd\\n"\n'
        assert await raw.line() == b"raw \xff\n"
        # A string with newlines inside is one message all the same.
        await strings.stream.send_all(b'"two\\nlines"')
        assert await raw.exactly(10) == b"two\nlines\n"
        assert await strings.line() == b'"two\\nlines\\n"\n'
        assert (await listing(server))[0] == ["minimega//js", "all", "2", "2", "5", "",
                                              "two\nlines"]
        await strings.stream.send_all(json.dumps("z" * LINE_MAX).encode())
        assert await strings.rest() == b""
        assert (await listing(server))[0][2:5] == ["1", "1", "5"]
    await raw.aclose()
    await strings.aclose()


# -- shutdown -------------------------------------------------------------------------------------


async def test_shutdown_mid_stream_ends_everything_and_leaves_no_fd(
        nursery: trio.Nursery, tmp_path: Path) -> None:
    base = tmp_path / "base"
    session = new_session(nursery, base)
    served = ControlServer(session, socket_path(str(base)))
    fds = open_fds()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as serving:
            await serving.start(served.run)
            reader = await attach(served.path)
            writer = await attach(served.path)
            idle = await connect(served.path)
            serving.start_soon(keep_writing, writer, b"".join(numbered(b"m", 200_000)))
            await reader.exactly(1000)
            with trio.fail_after(1):
                served.close()
                assert not await exists(served.path)  # at once
                for client in (reader, writer, idle):
                    await client.rest()
        # Every connection's task has ended with the server's nursery.
        for client in (reader, writer, idle):
            await client.aclose()
    await session.plumber.aclose()
    assert open_fds() == fds


async def test_running_out_of_file_descriptors_is_one_warning_not_a_flood(
        tmp_path: Path) -> None:
    """With 80 idle clients and `ulimit -n 64`, accept() fails until some close:
    one line when it starts, one when it ends (trio logs a traceback every 0.1 s)."""
    base = tmp_path / "base"
    path = socket_path(str(base))

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    stderr = bytearray()
    with trio.fail_after(TIMEOUT):
        daemon = await trio.lowlevel.open_process(
            [*DAEMON, "-base", str(base), "-hostname", "vm"], stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE, preexec_fn=low_limit)
        assert daemon.stderr is not None
        try:
            async with trio.open_nursery() as nursery:

                async def read_stderr() -> None:
                    assert daemon.stderr is not None
                    while chunk := await daemon.stderr.receive_some():
                        stderr.extend(chunk)

                nursery.start_soon(read_stderr)
                await wait_served(path)
                idle = [await trio.open_unix_socket(path) for _ in range(80)]
                await wait_until(lambda: b"cannot accept" in stderr)
                await trio.sleep(0.5)  # a shortage that lasts: five retries at least
                for stream in idle:
                    await stream.aclose()
                client = await connect(path)
                assert await client.ask(command("pipe x y")) == EMPTY_OK
                await wait_until(lambda: b"accepting connections again" in stderr)
                await client.aclose()
                daemon.send_signal(signal.SIGTERM)
                assert await daemon.wait() == 0
        finally:
            daemon.kill()
            await daemon.wait()
            await daemon.stderr.aclose()
    lines = stderr.decode().splitlines()
    assert all("WARN" in line for line in lines), lines
    assert [line.split(": ", 1)[1] for line in lines] == [
        "cannot accept connections: too many open files (the limit is 64: ulimit -n); "
        "clients wait until some close",
        "accepting connections again"]
