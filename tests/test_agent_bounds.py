"""minishell-agent's bounds, each where it bites: the outbox, a CLIENT message's responses,
output kept for a response, commands waiting, -pipe connections, file parts, stray logs."""

from __future__ import annotations

import itertools
import socket
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from test_agent import WAIT, connected, exec_command

from minishell.cc.agent import commands as agent_commands
from minishell.cc.agent import files as agent_files
from minishell.cc.agent import local_socket
from minishell.cc.agent import plumber as agent_plumber
from minishell.cc.agent.outbox import CLIENT_INFO_BYTES_MAX, ClientInfo, Outbox, OutboxClosed
from minishell.cc.agent.processes import KEPT_BYTES_MAX, LineSplitter
from minishell.protocol.ron import Command, Message, MessageType, PipeMode, Response


async def test_the_outbox_holds_a_bounded_amount_of_data_and_control_never_waits() -> None:
    outbox = Outbox(data_bytes_max=100)
    line = Message(type=MessageType.PIPE, pipe="p", pipe_mode=PipeMode.DATA, pipe_data=b"x")
    await outbox.put_data(line, 60)
    await outbox.put_data(line, 40)
    with trio.move_on_after(0.05) as waiting:
        await outbox.put_data(line, 1)  # full: waits for the writer
    assert waiting.cancelled_caught
    outbox.put_control(line)  # never waits
    assert len(await outbox.take()) == 3
    await outbox.put_data(line, 1000)  # one message always fits an empty queue
    outbox.close()
    with pytest.raises(OutboxClosed):
        await outbox.put_data(line, 1)


async def test_a_client_message_carries_a_bounded_amount_of_responses() -> None:
    outbox = Outbox()
    big = Response(id=1, stdout="x" * (CLIENT_INFO_BYTES_MAX // 2 + 1))
    outbox.put_client_info([big])
    outbox.put_client_info([Response(id=2)])  # small: joins the first
    outbox.put_client_info([Response(id=3, stdout=big.stdout)])  # would pass the bound
    items = await outbox.take()
    assert [[r.id for r in item.responses] for item in items
            if isinstance(item, ClientInfo)] == [[1, 2], [3]]


async def test_output_kept_for_a_response_is_bounded_and_says_so(tmp_path: Path) -> None:
    async with connected(tmp_path) as (_, peer):
        await peer.command(exec_command(1, "head", "-c", str(KEPT_BYTES_MAX + 5000),
                                        "/dev/zero"))
        response = await peer.response(1)
    assert len(response.stdout) == KEPT_BYTES_MAX
    assert response.stderr == (f"minishell-agent: stdout kept to its first {KEPT_BYTES_MAX} "
                               "bytes, 5000 more dropped\n")


async def test_commands_past_the_waiting_bound_are_refused_with_a_response(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_commands, "LANE_WAITING_MAX", 1)
    async with connected(tmp_path) as (_, peer):
        await peer.command(exec_command(1, "cat", stdin="gate"))  # runs, holding the lane
        await peer.pipe_message("gate", PipeMode.NEW_READER)
        await peer.command(exec_command(2, "true"))  # waits
        await peer.command(exec_command(3, "true"))  # one too many
        assert await peer.response(3) == Response(
            id=3, stderr="minishell-agent: more than 1 commands waiting\n", exit_code=-1,
            record_exit_code=True)
        await peer.send(Message(type=MessageType.PIPE, pipe="gate",
                                pipe_mode=PipeMode.CLOSE_READER))
        await peer.response(2)


async def test_local_connections_past_the_bound_are_closed_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_socket, "CONNECTIONS_MAX", 1)
    async with connected(tmp_path) as (agent, _):
        where = local_socket.socket_path(agent.path)
        first = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        second = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with first, second:
            await first.connect(where)
            await second.connect(where)
            with trio.fail_after(WAIT):
                assert await second.recv(1) == b""  # refused: closed unread
            with trio.move_on_after(0.1) as still_open:
                await first.recv(1)
            assert still_open.cancelled_caught


async def test_a_file_part_that_does_not_come_fails_the_fetch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_files, "FILE_PART_TIMEOUT", 0.2)
    async with connected(tmp_path) as (_, peer):
        await peer.command(Command(id=1, files_send=["slow.bin"]))
        assert (await peer.response(1)).stderr == (
            "minishell-agent: file slow.bin: nothing from the server for 0.2 s\n")
    assert not (tmp_path / "agent" / "files" / "slow.bin").exists()


def test_stray_data_is_logged_once_per_pipe_and_for_a_bounded_number_of_pipes(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_plumber, "_STRAYS_LOGGED_MAX", 2)
    plumber = agent_plumber.LocalPlumber(lambda pipe, mode: None)
    for _ in range(3):
        for name in ("a", "b", "c"):
            plumber.deliver(name, b"x\n")
    assert [r.getMessage() for r in caplog.records] == [
        "data for pipe a, which has no reader here: dropped",
        "data for pipe b, which has no reader here: dropped"]


def test_a_block_of_lines_that_does_not_fit_is_cut_at_a_line_and_the_rest_counted() -> None:
    reader = agent_plumber.LocalReader("p", bytes_max=10)
    reader.put(b"1234\n")
    reader.put(b"ab\ncd\nef\n", 3)  # room for 5 bytes: the first line of the block
    reader.put(b"zz\n")  # full now: dropped
    assert (reader.dropped_messages, reader.dropped_bytes) == (3, 9)
    assert reader.taken == 0
    assert trio.run(reader.receive) == b"1234\n"
    assert trio.run(reader.receive) == b"ab\n"
    assert reader.taken == 2


def lines_as_go_scans_them(data: bytes, line_max: int) -> tuple[bytes, int]:
    """bufio.ScanLines over the whole input, a line of line_max or more dropped."""
    lines = data.split(b"\n")
    if not lines[-1]:
        lines.pop()
    kept = [line for line in lines if len(line) < line_max]
    return b"".join((line[:-1] if line.endswith(b"\r") else line) + b"\n"
                    for line in kept), len(lines) - len(kept)


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.sampled_from([b"x", b"yyy", b"\n", b"\r", b"\r\n"]), max_size=40),
       cuts=st.lists(st.integers(0, 80), max_size=8))
def test_lines_split_as_go_scans_them_however_the_output_is_cut(pieces: list[bytes],
                                                                cuts: list[int]) -> None:
    data = b"".join(pieces)
    splitter = LineSplitter(line_max=4)
    bounds = sorted({0, len(data), *(cut for cut in cuts if cut < len(data))})
    got = b"".join(splitter.feed(data[start:end]) for start, end in itertools.pairwise(bounds))
    got += splitter.finish()
    assert (got, splitter.too_long) == lines_as_go_scans_them(data, 4)
