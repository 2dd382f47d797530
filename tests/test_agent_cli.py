"""minishell-agent as users start it: its command line, its -pipe and -tag clients (and
the real miniccc's, when it can run here), the agent as a process of its own over TCP,
and what SIGTERM leaves behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from plumbing import children
from test_agent import UUID, WAIT, Peer, connected, exec_command, group_members, ron_server

from minishell.cc.agent import flags
from minishell.cc.agent.link import Timing
from minishell.protocol.ron import Message, MessageType, PipeMode

AGENT = [sys.executable, "-m", "minishell.cc.agent"]
MINICCC = Path("/work/minimega-2.9/bin/miniccc")
PIPE = MessageType.PIPE


def run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AGENT, *arguments], capture_output=True, text=True, timeout=30,
                          check=False)


# --- the command line --------------------------------------------------------------------


def test_flags_take_go_forms() -> None:
    options = flags.parse(["-parent", "10.0.0.1", "--port=0x2332", "-family=unix", "-v=false",
                           "-tag", "-path", "/p", "--", "k", "v"])
    assert (options.parent, options.port, options.family, options.verbose, options.tag,
            options.path, options.arguments) == ("10.0.0.1", 9010, "unix", False, True, "/p",
                                                 ["k", "v"])
    assert flags.parse(["-port", "017", "x", "-y"]).arguments == ["x", "-y"]  # octal, as Go
    assert flags.parse(["-level", "debug", "-uuid", "U", "-hostname=h"]).level == "debug"
    assert flags.parse(["-"]).arguments == ["-"]


@pytest.mark.parametrize(("arguments", "error"), [
    (["-nosuch"], "flag provided but not defined: -nosuch"),
    (["-port"], "flag needs an argument: -port"),
    (["-port", "x"], 'invalid value "x" for flag -port: parse error'),
    (["-port", "1_"], 'invalid value "1_" for flag -port: parse error'),
    (["-port", "9" * 20], f'invalid value "{"9" * 20}" for flag -port: value out of range'),
    (["-v=maybe"], 'invalid boolean value "maybe" for -v: parse error'),
    (["-level", "loud"], 'invalid value "loud" for flag -level: invalid log level'),
    (["---path"], "bad flag syntax: ---path"),
    (["-=x"], "bad flag syntax: -=x"),
])
def test_a_bad_flag_is_one_line_and_status_2(arguments: list[str], error: str) -> None:
    with pytest.raises(flags.FlagError, match=f"^{error.replace('(', '.').replace(')', '.')}$"):
        flags.parse(arguments)


def test_the_program_reports_mistakes_in_one_line() -> None:
    for arguments, status, text in [
        (["-nosuch"], 2, "flag provided but not defined: -nosuch"),
        (["-family", "sctp"], 2, "invalid ron dial network family: sctp"),
        (["-family", "unix"], 2, "-family unix needs -parent PATH, the server's socket"),
        (["-port", "70000"], 2, "invalid port: 70000"),
        (["-tag", "k"], 2, "-tag takes a key and a value: ['k']"),
        (["stray"], 2, "unexpected argument: stray"),
    ]:
        done = run(*arguments)
        assert (done.returncode, done.stdout, done.stderr) == (
            status, "", f"minishell-agent: {text}\n"), arguments


def test_h_prints_the_usage_and_version_the_version() -> None:
    for spelling in ("-h", "--help"):
        done = run(spelling)
        assert (done.returncode, done.stderr) == (0, "")
        assert "  -parent string\n    \tparent to connect to" in done.stdout
        assert "  -v\tlog on stderr (default true)\n" in done.stdout
        assert ('  -path string\n    \tpath to store files in (default "/tmp/miniccc")'
                in done.stdout)
    done = run("-version")
    assert done.returncode == 0
    assert done.stdout.startswith("minishell-agent ") and "1a428a9c" in done.stdout


def test_pipe_and_tag_without_an_agent_fail_in_one_line(tmp_path: Path) -> None:
    for arguments in (["-pipe", "foo"], ["-tag", "k", "v"]):
        done = run("-path", str(tmp_path), *arguments)
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr == (f"minishell-agent: cannot connect to {tmp_path}/miniccc: no such "
                               "file or directory (is minishell-agent running?)\n")


# --- -pipe and -tag, in the machine ------------------------------------------------------


async def read_until(stream: trio.abc.ReceiveStream, wanted: bytes) -> bytes:
    got = b""
    with trio.fail_after(WAIT):
        while wanted not in got:
            data = await stream.receive_some(65536)
            assert data, f"EOF before {wanted!r}; got {got!r}"
            got += data
    return got


@contextlib.asynccontextmanager
async def pipe_client(argv: list[str]) -> AsyncIterator[trio.Process]:
    process = await trio.lowlevel.open_process(argv, stdin=subprocess.PIPE,
                                               stdout=subprocess.PIPE)
    try:
        yield process
    finally:
        with trio.CancelScope(shield=True):
            with trio.move_on_after(WAIT):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    await stream.aclose()


async def test_pipe_is_a_reader_and_a_writer_of_the_pipe_once_for_all_its_users(
        tmp_path: Path) -> None:
    async with connected(tmp_path) as (agent, peer):
        path = agent.path
        client = [*AGENT, "-path", path, "-pipe", "chat"]
        async with pipe_client(client) as first, pipe_client(client) as second:
            assert first.stdin is not None and first.stdout is not None
            assert second.stdin is not None and second.stdout is not None
            await peer.pipe_message("chat", PipeMode.NEW_READER)
            await peer.pipe_message("chat", PipeMode.NEW_WRITER)
            with trio.fail_after(WAIT):
                while agent.plumber.reader_count("chat") < 2:  # noqa: ASYNC110 - apart
                    await trio.sleep(0.01)
            await first.stdin.send_all(b"from first\n\nno newline")
            await first.stdin.aclose()
            data = [await peer.pipe_message("chat", PipeMode.DATA, n) for n in (1, 2, 3)]
            assert [m.pipe_data for m in data] == [b"from first\n", b"\n", b"no newline\n"]
            assert await first.wait() == 0  # at its stdin's EOF
            await peer.send(Message(type=PIPE, pipe="chat", pipe_mode=PipeMode.DATA,
                                    pipe_data=b"to everyone\n"))
            assert await read_until(second.stdout, b"to everyone\n") == b"to everyone\n"
            await second.stdin.aclose()
            assert await second.wait() == 0
            await peer.pipe_message("chat", PipeMode.CLOSE_READER)
            await peer.pipe_message("chat", PipeMode.CLOSE_WRITER)
        modes = [m.pipe_mode for m in peer.pipe_messages("chat")]
        assert (modes.count(PipeMode.NEW_READER), modes.count(PipeMode.NEW_WRITER)) == (1, 1)
        # a pipe deleted on the server ends the -pipe reading it, with 0
        async with pipe_client(client) as third:
            await peer.pipe_message("chat", PipeMode.NEW_READER, nth=2)
            await peer.send(Message(type=PIPE, pipe="chat", pipe_mode=PipeMode.CLOSE_READER))
            with trio.fail_after(WAIT):
                assert await third.wait() == 0


def can_run_miniccc() -> str | None:
    """Why the real miniccc cannot run here, or None. It needs the DMI product uuid,
    which a private mount namespace provides (as ../shared/cc did)."""
    if not MINICCC.exists():
        return f"{MINICCC} is absent"
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "a private mount namespace needs root and unshare"
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    return None if probe.returncode == 0 else "unshare -m is not allowed here"


def miniccc(*arguments: str) -> list[str]:
    script = ("mount -t tmpfs tmpfs /sys/devices/virtual && mkdir -p /sys/devices/virtual/dmi/id"
              f" && echo {UUID} > /sys/devices/virtual/dmi/id/product_uuid"
              ' && exec "$0" "$@"')
    return ["unshare", "-m", "sh", "-c", script, str(MINICCC), *arguments]


async def test_the_real_miniccc_pipe_and_tag_work_against_the_agent(tmp_path: Path) -> None:
    reason = can_run_miniccc()
    if reason is not None:
        pytest.skip(reason)
    async with connected(tmp_path) as (agent, peer):
        async with pipe_client(miniccc("-v=false", "-path", agent.path, "-pipe", "real")) as real:
            assert real.stdin is not None and real.stdout is not None
            await peer.pipe_message("real", PipeMode.NEW_WRITER)
            await real.stdin.send_all(b"from miniccc\n")
            assert (await peer.pipe_message("real", PipeMode.DATA)).pipe_data == b"from miniccc\n"
            await peer.send(Message(type=PIPE, pipe="real", pipe_mode=PipeMode.DATA,
                                    pipe_data=b"to miniccc\n"))
            await read_until(real.stdout, b"to miniccc\n")
            await real.stdin.aclose()
            assert await real.wait() == 0
        await peer.pipe_message("real", PipeMode.CLOSE_WRITER)
        done = await trio.run_process(miniccc("-v=false", "-path", agent.path, "-tag", "by",
                                              "miniccc"), check=False)
        assert done.returncode == 0
        await peer.expect(lambda m: m.client is not None and m.client.tags == {"by": "miniccc"},
                          "the tag")


async def test_tag_reaches_the_next_client_message(tmp_path: Path) -> None:
    async with connected(tmp_path, timing=Timing(heartbeat=0.2)) as (agent, peer):
        done = await trio.run_process([*AGENT, "-path", agent.path, "-tag", "role", "web"],
                                      check=False)
        assert done.returncode == 0
        message = await peer.expect(lambda m: m.client is not None and bool(m.client.tags),
                                    "the tag")
        assert message.client is not None and message.client.tags == {"role": "web"}
        beat = await peer.expect(lambda m: m.client is not None, "the next client message")
        assert beat.client is not None and beat.client.tags == {}  # sent once, as miniccc


# --- the agent as a process of its own ---------------------------------------------------


async def tcp_server(nursery: trio.Nursery) -> tuple[int, trio.MemoryReceiveChannel[Peer]]:
    """A ron server on a TCP port of localhost: the port, and peers as they connect."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    send, receive = trio.open_memory_channel[Peer](4)

    async def serve(stream: trio.SocketStream) -> None:
        peer = Peer(stream)
        await peer.handshake()
        await send.send(peer)
        await peer.read_forever()

    nursery.start_soon(trio.serve_listeners, serve, listeners)
    return listeners[0].socket.getsockname()[1], receive


async def test_sigterm_stops_the_agent_and_every_process_it_started(tmp_path: Path) -> None:
    path = tmp_path / "agent"
    async with trio.open_nursery() as nursery:
        port, peers = await tcp_server(nursery)
        agent = await trio.lowlevel.open_process(
            [*AGENT, "-parent", "127.0.0.1", "-port", str(port), "-path", str(path),
             "-hostname", "vmT", "-v=false"])
        try:
            with trio.fail_after(WAIT):
                peer = await peers.receive()
            assert peer.hello is not None and peer.hello.client is not None
            assert peer.hello.client.hostname == "vmT"
            # no DMI product uuid here: one was made and kept under -path
            assert peer.hello.uuid == (path / "uuid").read_text().strip()
            assert (path / "miniccc.pid").read_text() == str(agent.pid)
            await peer.command(exec_command(1, "sh", "-c", "sleep 300 & sleep 301",
                                            background=True))
            listed = await peer.expect(
                lambda m: m.client is not None and bool(m.client.processes), "the process")
            assert listed.client is not None and listed.client.processes is not None
            [pid] = listed.client.processes
            with trio.fail_after(WAIT):
                while len(group_members(pid)) < 3:  # noqa: ASYNC110 - processes apart
                    await trio.sleep(0.01)
            agent.send_signal(signal.SIGTERM)
            with trio.fail_after(WAIT):
                assert await agent.wait() == 0
            assert group_members(pid) == set()
            assert sorted(p.name for p in path.iterdir()) == ["uuid"]  # no socket, no pid
            await peer.hung_up()
        finally:
            if agent.returncode is None:
                agent.kill()
                await agent.wait()
        nursery.cancel_scope.cancel()
    assert children() == set()


async def test_the_agent_dials_until_a_server_appears(tmp_path: Path) -> None:
    path = tmp_path / "agent"
    socket_path = tmp_path / "cc"
    agent = await trio.lowlevel.open_process(
        [*AGENT, "-family", "unix", "-parent", str(socket_path), "-path", str(path),
         "-uuid", "ABCDEF00-0000-0000-0000-000000000001", "-v=false"])
    try:
        with trio.fail_after(WAIT):
            while not (path / "miniccc").exists():  # noqa: ASYNC110 - the agent runs apart
                await trio.sleep(0.01)
        again = run("-path", str(path), "-family", "unix", "-parent", str(socket_path))
        assert again.returncode == 1
        assert again.stderr == f"minishell-agent: an agent is already running on {path}/miniccc\n"
        async with ron_server(tmp_path) as server:
            peer = await server.accept()
            assert peer.hello is not None
            assert peer.hello.uuid == "abcdef00-0000-0000-0000-000000000001"
    finally:
        agent.send_signal(signal.SIGTERM)
        with trio.fail_after(WAIT):
            await agent.wait()
