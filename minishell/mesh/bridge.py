"""nats-py, an asyncio client, on an asyncio loop in a thread of its own, for trio.

Messages cross between the two loops in batches: a publish appends to a
queue and wakes the asyncio loop only when the queue was idle; what the
subscriptions receive is appended to another queue that wakes trio only when
it was idle, and trio then hands the whole batch to the handlers in plain
synchronous code. A wake-up is one hop and no more, for a lone message's sake:
on the asyncio side a callback that resolves the future the publishing task
waits on, on the trio side the dispatch itself, run as the run_sync_soon
callback (no task to wake). Measured (ecosystem.md (g)): 1.0-1.3x plain nats-py; a
hand-over per message, or trio-asyncio around every call, 0.04-0.2x. A lone
message pays a wake-up on each side (50-100 us on an idle machine); nats-py on
trio's own thread (trio-asyncio) measured no faster one way (README, mesh speed),
so the thread stays. The loop is an explicit SelectorEventLoop (trio-asyncio,
never imported here, would otherwise hand back its own).

Both queues are bounded in bytes. Data publishes wait (in trio) while the
outgoing queue is over its bound; control messages (heartbeats, small
replies) never wait and never sit behind a bound, so that a busy stream cannot
make a node look dead. Streams across nodes run under credits the receiver
grants (pipes.py), so the incoming queue stays far below its bound; past it,
messages are dropped and counted, never held.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

logger = logging.getLogger("minishell.mesh")

OUTGOING_LIMIT = 32 * 1024 * 1024
INCOMING_LIMIT = 256 * 1024 * 1024
CONNECT_TIMEOUT = 10.0
# A hung server is noticed by pings: 1 s apart, two unanswered (ecosystem.md (g): 3 s).
PING_INTERVAL = 1
MAX_OUTSTANDING_PINGS = 2

Handler = Callable[[str, bytes], None]


class BridgeError(Exception):
    """Cannot connect (the text says why, in one line)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """How this node proves itself to NATS: a TLS context (client certificate), a NATS
    credentials file (JWT and nkey seed; needs the nkeys package), a user and password
    (its own nats-server's)."""

    tls: ssl.SSLContext | None = None
    creds_file: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)


class Bridge:
    """One NATS connection, driven from trio."""

    def __init__(self, servers: list[str], *, name: str,
                 credentials: Credentials = Credentials(),
                 on_event: Callable[[str], None] | None = None) -> None:
        self._servers = servers
        self._name = name
        self._credentials = credentials
        self._on_event = on_event or (lambda event: None)
        self._lock = threading.Lock()
        # trio -> asyncio
        self._outgoing: deque[tuple[str, bytes]] = deque()
        self._outgoing_bytes = 0
        self._asyncio_wake_pending = False
        self._room_wanted = False  # a data publish waits for the outgoing queue to shrink
        self._subscribe_requests: deque[tuple[int, str]] = deque()
        # asyncio -> trio
        self._incoming: deque[tuple[int, str, bytes]] = deque()
        self._incoming_bytes = 0
        self._trio_wake_pending = False
        self._events: deque[str] = deque(maxlen=1000)
        self._handlers: dict[int, Handler] = {}
        self._next_sid = 1
        self.dropped_incoming = 0
        self._last_error: BaseException | None = None
        self.connected = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # The asyncio side's state, touched only in its thread:
        self._poked = False  # requests may be waiting
        self._stopping = False
        self._waiter: asyncio.Future[None] | None = None  # the publishing task sleeps on it
        self._trio_token: trio.lowlevel.TrioToken | None = None
        self._room = trio.Event()
        self._thread: threading.Thread | None = None

    # -- trio side ------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Bridge] = trio.TASK_STATUS_IGNORED,
                  ) -> None:
        """Connect (BridgeError if that fails), report started, dispatch what arrives
        until cancelled; then close the connection and join the thread."""
        self._trio_token = trio.lowlevel.current_trio_token()
        connected: list[BaseException | None] = []
        ready = trio.Event()

        def report(error: BaseException | None) -> None:
            connected.append(error)
            ready.set()

        self._thread = threading.Thread(target=self._thread_main, args=(report,),
                                        name="minishell-nats", daemon=True)
        self._thread.start()
        try:
            with trio.move_on_after(CONNECT_TIMEOUT + 2):
                await ready.wait()
            if not connected:
                raise BridgeError("timed out")
            if connected[0] is not None:
                raise BridgeError(_connect_error(connected[0]))
            self.connected = True
            task_status.started(self)
            await trio.sleep_forever()  # what arrives is dispatched by _dispatch, from asyncio
        finally:
            with trio.CancelScope(shield=True):
                await self._shutdown()

    def subscribe(self, subject: str, handler: Handler) -> None:
        """Call `handler(subject, data)` in trio for every message on `subject`."""
        with self._lock:
            sid = self._next_sid
            self._next_sid += 1
            self._handlers[sid] = handler
            self._subscribe_requests.append((sid, subject))
        self._poke_asyncio()

    def publish(self, subject: str, payload: bytes) -> None:
        """Queue a message now, whatever the queue holds (control traffic: small)."""
        with self._lock:
            self._outgoing.append((subject, payload))
            self._outgoing_bytes += len(payload)
            if self._asyncio_wake_pending:
                return
            self._asyncio_wake_pending = True
        self._poke_asyncio(pending=True)

    async def publish_data(self, subject: str, payload: bytes) -> None:
        """Queue a data message, waiting while the outgoing queue is over its bound."""
        await self.room()
        self.publish(subject, payload)

    async def room(self) -> None:
        """Return once the outgoing queue is within its bound."""
        while not self.has_room():
            await self._room.wait()

    def has_room(self) -> bool:
        """True if a data message may be queued now; if not, the next `_room_made` says
        when (the flag is set under the lock that the asyncio side clears it under)."""
        with self._lock:
            if self._outgoing_bytes <= OUTGOING_LIMIT:
                return True
            self._room_wanted = True
            return False

    @property
    def outgoing_bytes(self) -> int:
        return self._outgoing_bytes

    def events(self) -> list[str]:
        """Connection events since the last call (disconnected, reconnected, errors)."""
        with self._lock:
            events = list(self._events)
            self._events.clear()
        return events

    def _dispatch(self) -> None:
        """What has arrived, to the handlers: called by trio's run_sync_soon, so nothing
        may escape it."""
        with self._lock:
            batch, self._incoming = self._incoming, deque()
            self._incoming_bytes = 0
            self._trio_wake_pending = False
            handlers = self._handlers
        for sid, subject, data in batch:
            handler = handlers.get(sid)
            if handler is None:
                continue
            try:
                handler(subject, data)
            except Exception:
                logger.exception("mesh: handling a message on %s", subject)

    def _room_made(self) -> None:
        self._room.set()
        self._room = trio.Event()

    def _event_arrived(self) -> None:
        with self._lock:
            events = list(self._events)
        for event in events:
            self._on_event(event)

    def _poke_asyncio(self, *, pending: bool = False) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed
            loop.call_soon_threadsafe(self._asyncio_woken)

    async def _shutdown(self) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._asyncio_stop)
        if self._thread is not None:
            await trio.to_thread.run_sync(self._thread.join)
        self.connected = False

    # -- asyncio side -----------------------------------------------------------------------

    def _thread_main(self, report: Callable[[BaseException | None], None]) -> None:
        # asyncio's own notes on TLS streams ("returning true from eof_received()...")
        # are nothing a user can act on.
        logging.getLogger("asyncio").setLevel(logging.ERROR)
        loop = asyncio.SelectorEventLoop()
        self._loop = loop
        try:
            loop.run_until_complete(self._amain(report))
        finally:
            with contextlib.suppress(Exception):
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._loop = None

    def _to_trio(self, callback: Callable[[], None]) -> None:
        token = self._trio_token
        if token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(callback)

    def _asyncio_woken(self) -> None:
        self._poked = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _asyncio_stop(self) -> None:
        self._stopping = True
        self._asyncio_woken()

    async def _amain(self, report: Callable[[BaseException | None], None]) -> None:
        import nats  # here: ~60 ms, and only a mesh node needs it

        def event(text: str) -> None:
            with self._lock:
                self._events.append(text)
            self._to_trio(self._event_arrived)

        refused = asyncio.Event()
        refusal: list[Exception] = []

        async def error_cb(error: Exception) -> None:
            self._last_error = error
            if _is_refusal(error) and not refused.is_set():
                refusal.append(error)  # what a reset met while giving up must not hide
                refused.set()  # connecting: no retry changes the server's mind, say so now
            event(f"error: {_connect_error(error)}")

        async def disconnected_cb() -> None:
            event("disconnected")

        async def reconnected_cb() -> None:
            event("reconnected")

        options: dict[str, object] = {}
        if self._credentials.tls is not None:
            options["tls"] = self._credentials.tls
        if self._credentials.creds_file is not None:
            options["user_credentials"] = self._credentials.creds_file
        if self._credentials.user is not None:
            options["user"] = self._credentials.user
            options["password"] = self._credentials.password
        connecting = asyncio.ensure_future(nats.connect(
            self._servers, name=self._name, error_cb=error_cb,
            disconnected_cb=disconnected_cb, reconnected_cb=reconnected_cb,
            allow_reconnect=True, max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,  # seconds: a float works
            connect_timeout=2,
            ping_interval=PING_INTERVAL, max_outstanding_pings=MAX_OUTSTANDING_PINGS,
            pending_size=64 * 1024 * 1024, skip_subject_validation=True,
            **options))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CONNECT_TIMEOUT
        refusing = asyncio.ensure_future(refused.wait())
        # Pokes (publishes, subscriptions before the connection is up) wake this early;
        # a refusal ends it at once: no retry changes the server's mind.
        while (not connecting.done() and not self._stopping and not refused.is_set()
               and loop.time() < deadline):
            waiter = self._waiter = loop.create_future()
            await asyncio.wait({connecting, waiter, refusing}, timeout=deadline - loop.time(),
                               return_when=asyncio.FIRST_COMPLETED)
        self._waiter = None
        refusing.cancel()
        failure: BaseException | None = None
        if not connecting.done():
            # nats-py retries for ever once reconnecting is allowed: what it last met is why.
            connecting.cancel()
            with contextlib.suppress(BaseException):
                await connecting
            failure = refusal[0] if refusal else self._last_error
            if failure is None:
                failure = TimeoutError(f"no server answered within {CONNECT_TIMEOUT:g}s")
        elif connecting.exception() is not None:
            failure = connecting.exception()
        if failure is not None:
            reason = failure
            self._to_trio(lambda: report(reason))
            return
        nc = connecting.result()
        self._to_trio(lambda: report(None))
        try:
            while True:
                if not self._poked:
                    waiter = self._waiter = loop.create_future()
                    await waiter
                    self._waiter = None
                self._poked = False
                if self._stopping:
                    break
                await self._take_requests(nc)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 2)

    async def _take_requests(self, nc: object) -> None:
        with self._lock:
            subscriptions = list(self._subscribe_requests)
            self._subscribe_requests.clear()
            batch, self._outgoing = self._outgoing, deque()
            size = self._outgoing_bytes
            self._asyncio_wake_pending = False
        for sid, subject in subscriptions:
            await nc.subscribe(subject, cb=self._receiver(sid),  # type: ignore[attr-defined]
                               pending_bytes_limit=INCOMING_LIMIT)
        if subscriptions:
            await nc.flush(timeout=5)  # type: ignore[attr-defined]
        publish = nc.publish  # type: ignore[attr-defined]
        for subject, payload in batch:
            await publish(subject, payload)
        if batch:
            with self._lock:
                self._outgoing_bytes -= size
                room = self._room_wanted and self._outgoing_bytes <= OUTGOING_LIMIT
                if room:
                    self._room_wanted = False
            if room:
                self._to_trio(self._room_made)

    def _receiver(self, sid: int) -> Callable[[object], object]:
        async def receive(msg: object) -> None:
            subject: str = msg.subject  # type: ignore[attr-defined]
            data: bytes = msg.data  # type: ignore[attr-defined]
            with self._lock:
                if self._incoming_bytes + len(data) > INCOMING_LIMIT:
                    self.dropped_incoming += 1
                    return
                self._incoming.append((sid, subject, data))
                self._incoming_bytes += len(data)
                if self._trio_wake_pending:
                    return
                self._trio_wake_pending = True
            self._to_trio(self._dispatch)

        return receive


def _is_refusal(error: BaseException) -> bool:
    """The server turned our credentials down, or TLS failed between us (rather than
    the server could not be reached): no retry changes either."""
    if isinstance(error, ssl.SSLError):
        return True
    lowered = str(error).lower()
    return "authorization" in lowered or "authentication" in lowered


def _connect_error(error: BaseException) -> str:
    """nats-py's errors in one line, the way a user can act on them."""
    text = str(error) or type(error).__name__
    lowered = text.lower()
    if "authorization" in lowered:
        return "authorization violation (wrong or missing credentials)"
    if isinstance(error, ssl.SSLError) or "ssl" in lowered or "certificate" in lowered:
        return f"TLS: {text}"
    if "no servers" in lowered or "connection refused" in lowered:
        return "no server answers (connection refused)"
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
