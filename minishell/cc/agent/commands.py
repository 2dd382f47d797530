"""What the agent does with the commands the server sends: miniccc's processCommand.

Each command is handled in miniccc's order: its files fetched, then the kills
(PID, -1 for all; KillAll, a substring of the joined command line), the log
level, the program, the connection test, the files sent back; then its response
goes to the server at once (miniccc waits for its next 5 s heartbeat).

Order. A connection's commands are taken in the order they arrive (by id within
a message, as miniccc sorts them). An `exec` (a foreground program), a `cc recv`
and a connection test wait in the exec lane, which runs one at a time: a second
exec starts when the first has ended, and a recv fetches what the execs before it
made. Everything else is done as its turn comes, without waiting for the lane:
a `background` program starts at once even while an exec runs (in miniccc it
waits behind it), and so do kills, log levels and fetches (so that `cc send`
then `cc exec` of what was sent works).

Duplicates. A command whose id this connection has already handled, arriving
again with Sent set, is not run again. minimega sends every command to a
connection once, but numbers from 1 again after `clear cc`: those new commands
come with Sent false (they have never been sent to anyone), so a reset is never
taken for a repeat. A connection that ends drops its commands still waiting in
the lane (the server sends them again with the rest when the agent is back),
except `-once` ones, which it will not send again. What already runs goes on.
"""

from __future__ import annotations

import contextlib
import logging
import urllib.parse
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import trio

from minishell.cc.agent.files import FileLink, fetch_files, send_files
from minishell.cc.agent.plumber import LocalPlumber
from minishell.cc.agent.processes import Program, StartError, look_path
from minishell.protocol.ron import Command, ConnTest, Response

logger = logging.getLogger("minishell.cc.agent")

LANE_WAITING_MAX = 10_000
CONNECT_ATTEMPT = 0.5  # seconds per attempt of a connection test, as miniccc's
CONNECT_PAUSE = 0.1  # between attempts (miniccc retries a refusal in a tight loop)


class CommandLink(FileLink, Protocol):
    seen_command_ids: set[int]

    @property
    def closed(self) -> bool: ...


class CommandHost(Protocol):
    """What running commands needs from the agent."""

    files_dir: str
    plumber: LocalPlumber

    @property
    def link(self) -> CommandLink | None: ...

    def respond(self, response: Response) -> None: ...

    def processes_changed(self) -> None: ...

    def set_level(self, level: int) -> None: ...

    async def send_pipe_lines(self, pipe: str, block: bytes) -> None: ...


def text(data: bytes) -> str:
    """Bytes as a Go string holds them (the gob codec gives them back unchanged)."""
    return data.decode("utf-8", "surrogateescape")


def in_lane(command: Command) -> bool:
    return bool((command.command and not command.background) or command.files_recv
                or command.conn_test is not None)


@dataclass(slots=True)
class _Waiting:
    command: Command
    link: CommandLink


class Commands:
    def __init__(self, host: CommandHost, programs: trio.Nursery) -> None:
        """`programs` owns every program started (and stops them when cancelled)."""
        self.background: dict[int, Program] = {}  # by pid, until each ends
        self._host = host
        self._programs = programs
        self._lane: deque[_Waiting] = deque()
        self._lane_ready = trio.lowlevel.ParkingLot()

    async def dispatch(self, link: CommandLink, command: Command) -> None:
        """One command from `link`, in its turn."""
        if command.id in link.seen_command_ids and command.sent:
            logger.info("command %d sent again on this connection: not run again", command.id)
            return
        link.seen_command_ids.add(command.id)
        if not in_lane(command):
            await self._process(command, link)
        elif len(self._lane) >= LANE_WAITING_MAX:
            self.refuse(command, f"more than {LANE_WAITING_MAX} commands waiting")
        else:
            self._lane.append(_Waiting(command, link))
            self._lane_ready.unpark_all()

    def refuse(self, command: Command, reason: str) -> None:
        logger.error("command %d refused: %s", command.id, reason)
        self._host.respond(Response(id=command.id, stderr=f"minishell-agent: {reason}\n",
                                    exit_code=-1, record_exit_code=not command.background))

    def link_closed(self, link: CommandLink) -> None:
        kept = [waiting for waiting in self._lane
                if waiting.link is not link or waiting.command.once]
        if len(kept) < len(self._lane):
            logger.warning("%d commands of the lost connection not run: the server sends "
                           "them again", len(self._lane) - len(kept))
        self._lane = deque(kept)

    async def run_lane(self) -> None:
        while True:
            while not self._lane:
                await self._lane_ready.park()
            waiting = self._lane.popleft()
            await self._process(waiting.command, waiting.link)

    async def _process(self, command: Command, link: CommandLink) -> None:
        logger.debug("processCommand %d: %s", command.id, command.command)
        response = Response(id=command.id)
        notes: list[str] = []
        if command.files_send:
            notes += await self._with_link(link, "fetch files", lambda open_link: fetch_files(
                open_link, command.files_send, self._host.files_dir))
        if command.pid:
            self._kill(command.pid)
        if command.kill_all:
            self._kill_all(command.kill_all)
        if command.level is not None:
            self._host.set_level(command.level)
        if command.command:
            notes += await self._run(command, response)
            response.record_exit_code = not command.background
        if command.conn_test is not None:
            response.stdout, response.stderr = await test_connection(command.conn_test)
        if command.files_recv:
            notes += await self._with_link(link, "send files", lambda open_link: send_files(
                open_link, command.id, command.files_recv))
        response.stderr += "".join(note + "\n" for note in notes)
        self._host.respond(response)

    async def _with_link(self, link: CommandLink, what: str, action: _FileAction) -> list[str]:
        """Files move on the connection the command came by, or on the current one."""
        if link.closed:
            current = self._host.link
            if current is None:
                return [f"minishell-agent: cannot {what}: not connected to the server"]
            link = current
        return await action(link)

    async def _run(self, command: Command, response: Response) -> list[str]:
        """Start the program; for an exec, wait for its end. Fills the response."""
        try:
            path = look_path(command.command[0], self._host.files_dir)
            program = Program(path, command.command, stdin_pipe=command.stdin,
                              stdout_pipe=command.stdout, stderr_pipe=command.stderr,
                              plumber=self._host.plumber, sender=self._host)
            # shielded: once started, a program is listed and answered for, even when
            # the connection that asked for it ends at that very moment
            with trio.CancelScope(shield=True):
                await self._programs.start(program.run)
        except StartError as error:
            logger.error("%s", error)
            response.stderr, response.exit_code = str(error), -1
            return []
        if command.background:
            self.background[program.pid] = program
            self._host.processes_changed()
            self._programs.start_soon(self._forget, program)
            return []
        await program.finished.wait()
        outcome = program.outcome
        if outcome is None:  # stopped by the shutdown
            response.exit_code = -1
            return []
        response.stdout, response.stderr = text(outcome.stdout), text(outcome.stderr)
        response.exit_code = outcome.exit_code
        return outcome.notes

    async def _forget(self, program: Program) -> None:
        """A background program leaves the process list once it has ended."""
        await program.finished.wait()
        if program.outcome is not None:
            for name, kept in (("stdout", program.outcome.stdout),
                               ("stderr", program.outcome.stderr)):
                if kept:
                    logger.info("%s of %s: %s", name, program.argv, text(kept))
            for note in program.outcome.notes:
                logger.error("%s: %s", program.argv, note)
        self.background.pop(program.pid, None)
        self._host.processes_changed()

    def _kill(self, pid: int) -> None:
        if pid == -1:
            logger.info("killing all processes")
            for program in self.background.values():
                program.kill()
            return
        found = self.background.get(pid)
        if found is None:
            logger.error("no such process: %d", pid)
            return
        logger.info("killing PID %d", pid)
        found.kill()

    def _kill_all(self, needle: str) -> None:
        logger.info("killing all processes matching `%s`", needle)
        for program in self.background.values():
            if needle in " ".join(program.argv):
                logger.info("killing matched process: %s", program.argv)
                program.kill()


class _FileAction(Protocol):
    async def __call__(self, link: CommandLink, /) -> list[str]: ...


async def test_connection(test: ConnTest) -> tuple[str, str]:
    """miniccc's testConnect: dial the endpoint until it answers or Wait passes.

    (stdout, stderr): `host:port | pass` or `| fail`. tcp passes on a connection;
    udp on an answer of at least one byte to Packet.
    """
    try:
        parsed = urllib.parse.urlsplit(test.endpoint)
    except ValueError:
        parsed = urllib.parse.SplitResult("", "", "", "", "")
    if parsed.scheme not in ("tcp", "udp") or not parsed.netloc:
        return "", f"unable to parse test URI {test.endpoint}: want tcp:// or udp://host:port"
    host = parsed.netloc
    deadline = trio.current_time() + test.wait / 1e9
    while True:
        if await _dial_once(parsed, test.packet):
            return f"{host} | pass", ""
        if trio.current_time() >= deadline:
            return f"{host} | fail", ""
        await trio.sleep(min(CONNECT_PAUSE, max(0.0, deadline - trio.current_time())))


async def _dial_once(endpoint: urllib.parse.SplitResult, packet: bytes) -> bool:
    try:
        host, port = endpoint.hostname or "", endpoint.port or 0
    except ValueError:
        return False
    # ValueError: a host name that cannot be one (too long a label, a NUL)
    with trio.move_on_after(CONNECT_ATTEMPT), contextlib.suppress(OSError, ValueError):
        if endpoint.scheme == "tcp":
            stream = await trio.open_tcp_stream(host, port)
            await stream.aclose()
            return True
        found = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_DGRAM)
        if not found:
            return False
        family, kind, protocol, _, address = found[0]
        with trio.socket.socket(family, kind, protocol) as sock:
            await sock.connect(address)
            if packet:
                await sock.send(packet)
            return bool(await sock.recv(1))
    return False
