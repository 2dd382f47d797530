"""cc serial end to end: a real `minishell -nostdin` dials VMs' virtio-serial ports.

Each VM is a stand-in (vm_relay.py, beside this file): a unix socket that listens
as qemu's `server=on` does, relayed to a pseudo-terminal, the guest's device,
which a real `minishell-agent -serial <pty>` opens.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from plumbing import settled
from test_cc_agents import NAMES, Instance, eventually
from test_cc_server import TIMEOUT, UUID, ScriptedAgent, server_of
from test_cli import reap

from minishell.cc import serial
from minishell.protocol import ron
from minishell.session import Session

RELAY = [sys.executable, str(Path(__file__).with_name("vm_relay.py"))]
BESIDE = "44444444-4444-4444-4444-444444444444"  # an agent on the unix socket, vmD
LISTED = ".columns path,glob,state,uuid,hostname,reconnects,error cc serial"


class SerialInstance(Instance):
    """A running minishell, its agents, and the VMs they run in."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.folder = folder
        self.relays: dict[str, subprocess.Popen[bytes]] = {}
        self.ptys: dict[str, str] = {}

    def start_vm(self, name: str, path: Path | None = None) -> Path:
        """A VM whose port's host end is `path`; its guest end is self.ptys[name]."""
        path = path or self.folder / f"{name}.sock"
        relay = subprocess.Popen([*RELAY, str(path)], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE)
        self.relays[name] = relay
        assert relay.stdout is not None
        self.ptys[name] = relay.stdout.readline().decode().strip()
        assert self.ptys[name], "the relay did not start"
        return path

    def start_guest_agent(self, name: str) -> None:
        self.start_agent(name, "-serial", self.ptys[name])

    def listed(self) -> list[list[str]]:
        return self.table(LISTED)

    def row(self, path: Path) -> list[str]:
        return next((row for row in self.listed() if row[0] == str(path)), [])

    def pipes(self) -> list[list[str]]:
        return self.table(".columns name,readers,writers pipe")

    def stop(self) -> None:
        for relay in self.relays.values():
            relay.terminate()
        for relay in self.relays.values():
            reap(relay)
        super().stop()


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[SerialInstance]:
    running = SerialInstance(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def write_at_the_guest_end(pty: str, data: bytes) -> None:
    """What an earlier boot left on the line: bytes written at the guest's end."""
    with os.fdopen(os.open(pty, os.O_WRONLY | os.O_NOCTTY), "wb") as guest:
        guest.write(data)


def test_three_agents_over_serial_beside_one_over_the_unix_socket(
        instance: SerialInstance) -> None:
    paths = [instance.start_vm(name) for name in NAMES]
    instance.e("cc serial " + " ".join(map(str, paths)))
    eventually(lambda: [row[2] for row in instance.listed()] == ["dialed"] * 3,
               "three ports dialed")
    for name in NAMES:
        instance.start_guest_agent(name)
    instance.start_agent("vmD", uuid=BESIDE)
    eventually(lambda: instance.clients() == 4, "four agents")
    assert instance.table(".columns uuid,hostname cc clients") == [
        *([uuid, name] for name, uuid in NAMES.items()), [BESIDE, "vmD"]]
    assert instance.listed() == [[str(path), "", "connected", uuid, name, "0", ""]
                                 for path, (name, uuid) in zip(paths, NAMES.items(), strict=True)]

    instance.e("cc exec hostname")
    eventually(lambda: instance.table(".columns id,responses cc commands") == [["1", "4"]],
               "four answers")
    assert instance.e("cc responses 1 raw").split() == [socket.gethostname()] * 4

    # stdin= and stdout= pipes through a serial line, as on the other transports
    instance.e("cc filter hostname=vmB")
    instance.e("cc exec stdin=foo stdout=bar sed -u s/^/vmB:/")
    eventually(lambda: instance.pipes() == [["minimega//bar", "0", "1"],
                                            ["minimega//foo", "1", "0"]], "vmB's pipes")
    instance.e("pipe foo hello")
    eventually(lambda: instance.table(".columns previous .filter name=minimega//bar pipe")
               == [["vmB:hello"]], "the line back from vmB")
    instance.e("clear pipe foo")  # its stdin ends: so does the exec
    eventually(lambda: instance.table(".columns id,responses cc commands")[-1] == ["2", "1"],
               "the exec's end")
    assert instance.e("cc exitcode 2 vmB") == "0"
    assert instance.pipes() == [["minimega//bar", "0", "0"]]

    instance.e("clear cc")  # commands and responses go; the VMs' agents stay, as in 2.9
    assert [row[2] for row in instance.listed()] == ["connected"] * 3
    assert instance.clients() == 4
    instance.e("clear cc serial")
    assert instance.listed() == []
    eventually(lambda: instance.clients() == 1, "only vmD left")


def test_an_agent_restarted_in_its_vm_and_a_vm_that_goes(instance: SerialInstance) -> None:
    path = instance.start_vm("vmA")
    instance.e(f"cc serial {path}")
    eventually(lambda: instance.row(path)[2] == "dialed", "the port dialed")
    instance.start_guest_agent("vmA")
    eventually(lambda: instance.row(path)[2] == "connected", "vmA connected")
    instance.e("cc background stdin=in stdout=out cat")
    held = [["minimega//in", "1", "0"], ["minimega//out", "0", "1"]]
    eventually(lambda: instance.pipes() == held, "vmA's pipes")

    # a new RON on the same line: the same uuid, a new connection, pipes held once
    instance.agents["vmA"].kill()
    reap(instance.agents["vmA"])
    instance.start_guest_agent("vmA")
    eventually(lambda: instance.row(path)[2:6] == ["connected", NAMES["vmA"], "vmA", "1"],
               "vmA connected again")
    eventually(lambda: instance.table(".columns id,responses cc commands") == [["1", "2"]],
               "the background command run again")
    eventually(lambda: instance.pipes() == held, "vmA's pipes, once")
    instance.e("pipe in through")
    eventually(lambda: instance.table(".columns count,previous .filter name=minimega//out pipe")
               == [["1", "through"]], "one line through the new cat")

    # qemu exits: the line ends, the path waits, nothing is left on any pipe
    instance.relays["vmA"].kill()
    reap(instance.relays["vmA"])
    eventually(lambda: instance.row(path)[2:] == [
        "waiting", "", "", "1", f"dial unix {path}: connect: connection refused"],
        "the path waiting")
    assert instance.pipes() == [["minimega//in", "0", "0"], ["minimega//out", "0", "0"]]
    assert instance.clients() == 0
    assert instance.e("clear pipe out") == ""


def test_bytes_before_ron_are_skipped_up_to_the_bound(instance: SerialInstance) -> None:
    path = instance.start_vm("vmA")
    instance.e(f"cc serial {path}")
    eventually(lambda: instance.row(path)[2] == "dialed", "the port dialed")
    write_at_the_guest_end(instance.ptys["vmA"], b"R" + b"x" * (1024 * 1024))
    eventually(lambda: instance.row(path)[6] == "no RON within the first 1048576 bytes: "
               "the line was closed", "the line closed")
    eventually(lambda: instance.row(path)[2] == "dialed", "the port dialed again")
    write_at_the_guest_end(instance.ptys["vmA"], b"stale RO\x00\xffRN output\n" * 1000)
    instance.start_guest_agent("vmA")
    eventually(lambda: instance.row(path)[2:7] == ["connected", NAMES["vmA"], "vmA", "0", ""],
               "vmA connected after the stale bytes")
    instance.e("cc exec true")
    eventually(lambda: instance.table(".columns id,responses cc commands") == [["1", "1"]],
               "an answer")


def test_a_glob_dials_sockets_made_after_it_and_forgets_those_gone(
        instance: SerialInstance, tmp_path: Path) -> None:
    pattern = tmp_path / "vms" / "*" / "cc"
    instance.e(f"cc serial {pattern}")
    assert instance.listed() == [[str(pattern), str(pattern), "waiting", "", "", "0", ""]]
    (tmp_path / "vms" / "vmA").mkdir(parents=True)
    (tmp_path / "vms" / "notes").mkdir()
    (tmp_path / "vms" / "notes" / "cc").write_text("not a socket")
    path = instance.start_vm("vmA", tmp_path / "vms" / "vmA" / "cc")
    eventually(lambda: instance.row(path)[1:3] == [str(pattern), "dialed"], "the new socket")
    instance.start_guest_agent("vmA")
    eventually(lambda: instance.row(path)[2] == "connected", "vmA connected")
    assert len(instance.listed()) == 1

    instance.relays["vmA"].kill()
    reap(instance.relays["vmA"])
    path.unlink()  # as libvirt removes the socket of a VM that stopped
    eventually(lambda: instance.listed() == [
        [str(pattern), str(pattern), "waiting", "", "", "0", ""]], "the path forgotten")
    assert instance.clients() == 0


# -- in one session: what needs no agent ---------------------------------------------------------


async def run(session: Session, line: str) -> tuple[list[list[str]], str]:
    """A command's rows and error."""
    (reply,) = await session.run_line(line)
    (response,) = reply.responses
    return response.tabular or [], response.error


async def listed(session: Session) -> list[list[str]]:
    return (await run(session, "cc serial"))[0]


async def test_a_path_that_is_no_socket_waits_and_bad_input_is_one_line(
        session: Session, tmp_path: Path) -> None:
    regular = tmp_path / "file"
    regular.write_text("")
    assert await run(session, f"cc serial {regular} /nowhere/cc") == ([], "")
    links = server_of(session).serial
    await settled(lambda: [row[6] for row in links.rows()] == [
        f"{regular}: not a socket", "dial unix /nowhere/cc: connect: no such file or directory"])
    assert [row[2] for row in await listed(session)] == ["waiting", "waiting"]
    for line, error in [
        ("cc serial relative/cc", "not an absolute path: relative/cc"),
        ('cc serial "/a\x00b"', "not a path: it holds a NUL byte"),
        (f"cc serial /a {regular}", f"already dialing {regular}"),
        (f"namespace other cc serial {regular}",
         f"already dialing {regular} in namespace minimega"),
        ("clear cc serial /elsewhere", "not dialing /elsewhere"),
        ("cc seria /a", "invalid command: `cc seria /a`"),
    ]:
        assert await run(session, line) == ([], error), line
    assert len(await listed(session)) == 2  # nothing of a refused line was dialed
    assert await run(session, f"clear cc serial {regular}") == ([], "")
    assert [row[0] for row in await listed(session)] == ["/nowhere/cc"]
    assert await run(session, "clear all") == ([], "")
    assert await listed(session) == []


async def test_help_says_cc_serial_is_minishells_own(session: Session) -> None:
    async def text(line: str) -> str:
        (reply,) = await session.run_line(line)
        return reply.responses[0].response

    assert (await text("help cc serial")).startswith(
        "Usage:\n\tcc serial [path]...\n\nminishell's own command")
    cc_help = await text("help cc")
    assert "\tcc serial [path]...\n" in cc_help and "Command and control for agents" in cc_help
    assert "\tclear cc serial [path]\n" in await text("help clear cc")
    summary = await text("help")
    assert ("cc serial [path]... \t\t\t\t\t :\t "
            "dial VMs' virtio-serial ports for cc (minishell's own)") in summary


async def test_an_agent_that_dies_inside_a_message_is_followed_by_its_successor(
        session: Session, tmp_path: Path) -> None:
    """The new agent's RON lands inside what the old one's last message still owes;
    it waits for the host's RON, so the line falls silent, and the host cuts there."""
    path = tmp_path / "vm.sock"
    with trio.socket.socket(trio.socket.AF_UNIX) as listener:  # qemu's end
        await listener.bind(str(path))
        listener.listen(1)
        assert await run(session, f"cc serial {path}") == ([], "")
        with trio.fail_after(TIMEOUT):
            line = trio.SocketStream((await listener.accept())[0])
    async with line:
        old = ScriptedAgent(line, UUID, "vmA")
        with trio.fail_after(TIMEOUT):
            await old.hello()
        whole = old.codec.encode(ron.Message(type=ron.MessageType.PIPE, pipe="p",
                                             pipe_mode=ron.PipeMode.DATA, pipe_data=b"x" * 100))
        await line.send_all(whole[:50] + ron.MAGIC)
        successor = ScriptedAgent(line, UUID, "vmB")
        with trio.fail_after(TIMEOUT):
            while not successor.codec.handshake_done:  # the old connection's bytes, then RON
                successor.received += successor.codec.feed(await line.receive_some(65536))
            await successor.send(ron.Message(type=ron.MessageType.CLIENT, uuid=UUID,
                                             version="v1", client=successor.client()))
            await successor.next(ron.MessageType.CLIENT)
        links = server_of(session).serial
        assert [row[2:6] for row in links.rows()] == [["connected", UUID, "vmB", "1"]]


async def test_a_namespace_dials_a_bounded_number_of_paths(
        session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serial, "MAX_PATHS", 2)
    assert await run(session, "cc serial /a /b /c") == ([], "cannot dial more than 2 serial paths")
    for name in ("x", "y", "z"):
        with socket.socket(socket.AF_UNIX) as listening:
            listening.bind(str(tmp_path / name))  # left behind: still a socket to a glob
    assert await run(session, f"cc serial /a {tmp_path}/*") == ([], "")
    pattern = str(tmp_path / "*")
    await settled(lambda: [row[:2] + row[6:] for row in server_of(session).serial.rows()] == [
        ["/a", "", "dial unix /a: connect: no such file or directory"],
        [pattern, pattern, "3 sockets not dialed: at most 2 paths"]])
