"""The agent: what lasts across connections, and the loop that keeps one open.

State that outlives a connection, as in miniccc: the programs (they go on
running while the agent redials), the local pipes, the responses and tags not
yet sent, LastCommandID. On each new connection the agent re-announces the
pipes its programs and `-pipe` users hold (miniccc forgets to, so survivors of a
reconnect go deaf) and sends what it kept.

Messages it sends, and when:
- the hello: a CLIENT message with its identity and processes, Version "v1",
  no Tags on the first connection of its life and an empty map afterwards, as
  miniccc; never responses or tags (minimega 2.9 reads the hello for identity
  only, so miniccc loses the responses and tags it puts there): those go in the
  first message after the acknowledgement;
- a CLIENT message as soon as there are responses to report, a tag was set, or
  the background processes changed; and every 5 s otherwise (the heartbeat);
- PIPE NEW_*/CLOSE_* as the local pipes gain their first or lose their last
  user, DATA for each line written;
- FILE requests and parts, TUNNEL answers.

Dialing: after a connection ends (or fails to open) the agent waits, then dials
again: 0.25 s at first, doubling to 15 s (miniccc's fixed period), with jitter,
for ever (miniccc gives up after 2 h); back to 0.25 s once a connection has
been acknowledged. A line written to a pipe while no connection is open is
dropped, as a pipe with no reader drops it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import termios
import tty
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from minishell.cc.agent.commands import Commands
from minishell.cc.agent.identity import Identity, NetworkInfo, network_info
from minishell.cc.agent.link import Link, LinkLost, Timing, open_link
from minishell.cc.agent.local_socket import serve_local_socket, socket_path
from minishell.cc.agent.outbox import OutboxClosed
from minishell.cc.agent.plumber import LocalPlumber
from minishell.protocol.ron import (
    Client,
    Command,
    LogLevel,
    Message,
    MessageType,
    PipeLines,
    PipeMode,
    Process,
    Response,
)

logger = logging.getLogger("minishell.cc.agent")

DIAL_TIMEOUT = 10.0
NETWORK_INFO_SECONDS = 1.0  # how long a reading of the interfaces is reused
_PYTHON_LEVELS: dict[int, int] = {
    LogLevel.DEBUG: logging.DEBUG, LogLevel.INFO: logging.INFO, LogLevel.WARN: logging.WARNING,
    LogLevel.ERROR: logging.ERROR, LogLevel.FATAL: logging.CRITICAL}


@dataclass(frozen=True, slots=True)
class Backoff:
    first: float = 0.25
    most: float = 15.0
    jitter: float = 0.2  # each wait is off by up to this fraction, either way


Dialer = Callable[[], Awaitable[trio.abc.Stream]]


def dialer(*, family: str, parent: str, port: int, serial: str) -> Dialer:
    """How the agent reaches its server: -serial DEV, -family unix -parent PATH, or tcp."""
    host = parent.removeprefix("[").removesuffix("]") or "localhost"

    async def dial() -> trio.abc.Stream:
        if serial:
            return await _open_serial(serial)
        if family == "unix":
            return await trio.open_unix_socket(parent)
        return await trio.open_tcp_stream(host, port)

    return dial


async def _open_serial(device: str) -> trio.abc.Stream:
    """A character device in raw mode (virtio-serial in a guest, or a tty)."""
    fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        if os.isatty(fd):
            tty.setraw(fd, termios.TCSANOW)
        return trio.lowlevel.FdStream(fd)
    except termios.error as error:
        os.close(fd)
        raise OSError(f"{device}: cannot make it raw: {error}") from None
    except BaseException:
        os.close(fd)
        raise


class Agent:
    """One agent: run() serves its local socket and keeps a connection to its server."""

    def __init__(self, identity: Identity, path: str, dial: Dialer, *,
                 timing: Timing | None = None, backoff: Backoff | None = None,
                 log: logging.Logger | None = None) -> None:
        self.identity = identity
        self.uuid = identity.uuid
        self.path = path
        self.files_dir = os.path.join(path, "files")
        self.plumber = LocalPlumber(self._pipe_control)
        self.link: Link | None = None
        self.links_opened = 0  # acknowledged connections, for tests and the log
        self._dial = dial
        self._timing = timing or Timing()
        self._backoff = backoff or Backoff()
        self._log = log or logging.getLogger("minishell")
        self._responses: list[Response] = []  # not yet handed to a connection
        self._tags: dict[str, str] = {}  # set since the last CLIENT message
        self._last_command_id = 0
        self._hellos = 0
        self._network: tuple[float, NetworkInfo] | None = None
        self._commands: Commands | None = None

    async def run(self, listener: trio.SocketListener, *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the local socket and the server until cancelled; then every program stops."""
        async with trio.open_nursery() as nursery:
            self._commands = Commands(self, nursery)
            nursery.start_soon(serve_local_socket, listener, socket_path(self.path), self)
            nursery.start_soon(self._commands.run_lane)
            nursery.start_soon(self.plumber.expire_echoes)
            task_status.started()
            await self._stay_connected()

    @property
    def commands(self) -> Commands:
        assert self._commands is not None, "the agent is not running"
        return self._commands

    async def _stay_connected(self) -> None:
        wait = self._backoff.first
        while True:
            acknowledged = await self._connect_once()
            if acknowledged:
                wait = self._backoff.first
            jitter = 1 + self._backoff.jitter * (2 * random.random() - 1)
            logger.info("dialing again in %.2f s", wait * jitter)
            await trio.sleep(wait * jitter)
            wait = min(wait * 2, self._backoff.most)

    async def _connect_once(self) -> bool:
        """One connection, dial to end; True if the server acknowledged the hello."""
        try:
            with trio.fail_after(DIAL_TIMEOUT):
                stream = await self._dial()
        except (OSError, ValueError, trio.TooSlowError) as error:  # ValueError: a bad name
            logger.error("unable to connect: %s", error or "timed out")
            return False
        try:
            link = await open_link(stream, self, self._timing)
            reason = await link.serve()
            logger.warning("server connection lost: %s", reason)
            return True
        except LinkLost as lost:
            logger.error("unable to connect: %s", lost)
            return False
        finally:
            await trio.aclose_forcefully(stream)

    # --- LinkOwner ------------------------------------------------------------------------

    def hello(self) -> Message:
        # miniccc's first hello has a nil Tags map; its later ones an empty one
        tags: dict[str, str] | None = None if self._hellos == 0 else {}
        self._hellos += 1
        return self._client_message(tags=tags, responses=[])

    def client_info(self, responses: list[Response]) -> Message:
        tags, self._tags = self._tags, {}
        return self._client_message(tags=tags, responses=responses)

    def link_opened(self, link: Link) -> None:
        self.link = link
        self.links_opened += 1
        for pipe, mode in self.plumber.announcements():
            link.send_control(Message(type=MessageType.PIPE, pipe=pipe, pipe_mode=mode))
        if self._responses or self._tags:
            link.send_client_info(self._responses)
            self._responses = []

    def link_closed(self, link: Link, unsent: list[Response]) -> None:
        if self.link is link:
            self.link = None
        self._responses[:0] = unsent
        if self._commands is not None:
            self._commands.link_closed(link)

    def pipe_data(self, pipe: str, data: bytes, messages: int = 1) -> None:
        self.plumber.deliver(pipe, data, messages)

    def pipe_deleted(self, pipe: str) -> None:
        self.plumber.delete(pipe)

    async def dispatch(self, link: Link, command: Command) -> None:
        await self.commands.dispatch(link, command)

    def refuse(self, command: Command, reason: str) -> None:
        self.commands.refuse(command, reason)

    # --- CommandHost and LocalHost --------------------------------------------------------

    def respond(self, response: Response) -> None:
        logger.debug("response: %d", response.id)
        self._last_command_id = response.id
        if self.link is None:
            self._responses.append(response)
        else:
            self.link.send_client_info([response])

    def processes_changed(self) -> None:
        if self.link is not None:
            self.link.send_client_info([])

    def add_tag(self, key: str, value: str) -> None:
        logger.debug("tag: %s %s", key, value)
        self._tags[key] = value
        self.processes_changed()

    def set_level(self, level: int) -> None:
        python_level = _PYTHON_LEVELS.get(level)
        if python_level is None:
            logger.error("unknown log level %d: ignored", level)
            return
        logger.info("setting level to: %s", LogLevel(level).name.lower())
        self._log.setLevel(python_level)

    async def send_pipe_data(self, pipe: str, data: bytes) -> None:
        await self._send_upstream(Message(type=MessageType.PIPE, pipe=pipe,
                                          pipe_mode=PipeMode.DATA, pipe_data=data), len(data))

    async def send_pipe_lines(self, pipe: str, block: bytes) -> None:
        await self._send_upstream(PipeLines(pipe, block), len(block))

    async def _send_upstream(self, item: Message | PipeLines, size: int) -> None:
        link = self.link
        if link is None:
            return  # no server: nobody reads the pipe, as with a pipe without readers
        with contextlib.suppress(OutboxClosed):  # the connection ended meanwhile
            await link.send_data(item, size)

    # --- helpers --------------------------------------------------------------------------

    def _pipe_control(self, pipe: str, mode: PipeMode) -> None:
        if self.link is not None:
            self.link.send_control(Message(type=MessageType.PIPE, pipe=pipe, pipe_mode=mode))

    def _network_info(self) -> NetworkInfo:
        now = trio.current_time()
        if self._network is None or now - self._network[0] > NETWORK_INFO_SECONDS:
            self._network = (now, network_info())
        return self._network[1]

    def _client_message(self, *, tags: dict[str, str] | None,
                        responses: list[Response]) -> Message:
        network = self._network_info()
        processes = {pid: Process(pid=pid, command=list(program.argv))
                     for pid, program in sorted(self.commands.background.items())}
        client = Client(uuid=self.uuid, arch=self.identity.arch, os=self.identity.os,
                        version=self.identity.version,
                        hostname=self.identity.current_hostname(), ips=list(network.ips),
                        macs=list(network.macs), processes=processes, tags=tags,
                        responses=list(responses), last_command_id=self._last_command_id)
        return Message(type=MessageType.CLIENT, uuid=self.uuid, client=client, version="v1")
