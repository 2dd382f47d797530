"""`host` and its one-column forms (cmd/minimega/stats.go, namespace.go NewHostStats).

The figures are this machine's, read from /proc in a worker thread. minishell
runs no VMs, so the VM figures are those of a minimega with none: no VMs, no
limit (-1), nothing committed. rx and tx differ in what they measure: 2.9
sums its VMs' taps (0.0 with no VMs); minishell measures this machine's
network interfaces but `lo`, sampled as 2.9 samples its taps: every 5 seconds,
the 10 newest samples kept, their rates averaged with minimega's weights.
Sampling starts at a session's first `host` that shows them, so they read
0.0 until two samples are in (5 seconds later).
"""

from __future__ import annotations

import itertools
import logging
import os
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import trio

from minishell.commands.registry import Command, Context, Handler
from minishell.gostr import duration_string, parse_seconds

if TYPE_CHECKING:
    from minishell.reply import Response
    from minishell.session import Session

log = logging.getLogger("minishell.host")

# minimega's order, without `name` (the host column says it).
COLUMNS: Final = ("cpus", "load", "memused", "memtotal", "rx", "tx", "vms", "vmlimit",
                  "cpucommit", "memcommit", "netcommit", "uptime")
SAMPLE_SECONDS: Final = 5.0
SAMPLES_KEPT: Final = 10
_MEBIBYTE: Final = 1 << 20
_PROC_READ_MAX: Final = 1 << 20  # /proc files are small; a runaway one is not read whole


# -- bandwidth -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Traffic:
    """Bytes received and sent, in total, at a moment (trio's clock, in seconds)."""

    at: float
    received: int
    sent: int


def read_interface_counters() -> tuple[int, int]:
    """Bytes received and sent by every network interface but `lo` (/proc/net/dev)."""
    received = sent = 0
    with open("/proc/net/dev", encoding="ascii", errors="replace") as table:
        for line in table.read(_PROC_READ_MAX).splitlines()[2:]:
            name, _, counters = line.partition(":")
            fields = counters.split()
            if name.strip() == "lo" or len(fields) < 9:
                continue
            received += int(fields[0])
            sent += int(fields[8])
    return received, sent


async def read_counters_in_thread() -> tuple[int, int]:
    return await trio.to_thread.run_sync(read_interface_counters)


class BandwidthSampler:
    """Traffic samples every SAMPLE_SECONDS, the newest SAMPLES_KEPT kept (2.9's taps)."""

    def __init__(self, read_counters: Callable[[], Awaitable[tuple[int, int]]]
                 = read_counters_in_thread) -> None:
        self.samples: deque[Traffic] = deque(maxlen=SAMPLES_KEPT)
        self._read_counters = read_counters

    async def run(self) -> None:
        """Sample until cancelled; a sample that cannot be read is skipped, as in 2.9."""
        due = trio.current_time()
        while True:
            try:
                received, sent = await self._read_counters()
            except (OSError, ValueError) as error:
                log.debug("cannot read interface counters: %s", error)
            else:
                self.samples.append(Traffic(due, received, sent))
            due += SAMPLE_SECONDS
            await trio.sleep_until(due)

    def rates(self) -> tuple[float, float]:
        """MB/s received and sent: minimega's weighted mean of the rates between
        samples, where the i-th interval from the oldest weighs n - i. A counter
        that went down (an interface gone) counts as no traffic."""
        samples = list(self.samples)
        intervals = len(samples) - 1
        if intervals < 1:
            return 0.0, 0.0
        received = sent = 0.0
        for index, (earlier, later) in enumerate(itertools.pairwise(samples)):
            seconds = later.at - earlier.at
            if seconds <= 0:  # two samples at one moment carry no rate
                continue
            weight = intervals - index
            received += weight * (max(later.received - earlier.received, 0) / _MEBIBYTE / seconds)
            sent += weight * (max(later.sent - earlier.sent, 0) / _MEBIBYTE / seconds)
        total_weight = intervals * (intervals + 1) / 2
        return received / total_weight, sent / total_weight


_samplers: weakref.WeakKeyDictionary[Session, BandwidthSampler] = weakref.WeakKeyDictionary()


def bandwidth(session: Session) -> BandwidthSampler:
    """The session's sampler, started in the session's nursery on first use."""
    sampler = _samplers.get(session)
    if sampler is None:
        sampler = _samplers[session] = BandwidthSampler()
        session.nursery.start_soon(sampler.run)
    return sampler


# -- the other figures -----------------------------------------------------------------------------


def _read_proc(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as file:
        return file.read(_PROC_READ_MAX)


def load_average() -> str:
    """/proc/loadavg's three averages, as `0.31 0.28 0.24`."""
    fields = _read_proc("/proc/loadavg").split()
    if len(fields) != 5:
        raise ValueError("could not read loadavg")
    return " ".join(fields[:3])


def memory_mib() -> tuple[int, int]:
    """Total and used memory in MiB, used being what is neither free, buffers nor cache."""
    figures = {"MemTotal:": 0, "MemFree:": 0, "Buffers:": 0, "Cached:": 0}
    for line in _read_proc("/proc/meminfo").splitlines():
        fields = line.split()
        if fields and fields[0] in figures:
            try:
                figures[fields[0]] = int(fields[1])
            except (IndexError, ValueError):
                raise ValueError(f"cannot parse meminfo {fields[0].rstrip(':')}") from None
    total = figures["MemTotal:"]
    used = total - (figures["MemFree:"] + figures["Buffers:"] + figures["Cached:"])
    return total // 1024, _go_divide(used, 1024)


def _go_divide(numerator: int, denominator: int) -> int:
    """Go's integer division, which truncates toward zero."""
    quotient = abs(numerator) // denominator
    return -quotient if numerator < 0 else quotient


def uptime() -> str:
    """/proc/uptime's first figure as Go prints a time.Duration: `8h4m34.3s`."""
    fields = _read_proc("/proc/uptime").split()
    if len(fields) != 2:
        raise ValueError("malformed uptime, expected float float")
    return duration_string(parse_seconds(fields[0]))


def _figure(what: str, read: Callable[[], str]) -> str:
    """A figure, or the zero value 2.9 shows (after logging why) when it cannot be read."""
    try:
        return read()
    except (OSError, ValueError) as error:
        log.error("unable to compute %s: %s", what, error)
        return ""


def host_figures() -> dict[str, str]:
    """Every column but rx and tx (blocking: call it in a thread)."""
    try:
        total, used = memory_mib()
    except (OSError, ValueError) as error:
        log.error("unable to compute memory stats: %s", error)
        total = used = 0
    return {
        "cpus": str(len(os.sched_getaffinity(0))),  # Go's runtime.NumCPU
        "load": _figure("load", load_average),
        "memused": str(used),
        "memtotal": str(total),
        "vms": "0",
        "vmlimit": "-1",
        "cpucommit": "0",
        "memcommit": "0",
        "netcommit": "0",
        "uptime": _figure("uptime", uptime) or "0s",
    }


async def host(ctx: Context, command: Command) -> Response | None:
    chosen = next(iter(command.bools), None)
    if chosen == "name":
        return ctx.text(ctx.hostname)
    figures = await trio.to_thread.run_sync(host_figures)
    if chosen in (None, "rx", "tx"):
        received, sent = bandwidth(ctx.session).rates()
        figures["rx"], figures["tx"] = f"{received:.1f}", f"{sent:.1f}"
    if chosen is not None:
        return ctx.text(figures[chosen])
    return ctx.table(list(COLUMNS), [[figures[column] for column in COLUMNS]])


HANDLERS = (
    Handler(
        patterns=("host", "host <cpucommit,>", "host <cpus,>", "host <load,>",
                  "host <memcommit,>", "host <memtotal,>", "host <memused,>", "host <name,>",
                  "host <netcommit,>", "host <rx,>", "host <tx,>", "host <uptime,>",
                  "host <vms,>", "host <vmlimit,>"),
        short="report information about hosts",
        long=(
            "Report information about this host:\n"
            "\n"
            "- cpucommit  : total cpu commit\n"
            "- cpus       : number of cpus\n"
            "- load       : system load average\n"
            "- memcommit  : total memory commit in MB\n"
            "- memtotal   : total memory in MB\n"
            "- memused    : memory used in MB\n"
            "- name       : name of the machine\n"
            "- netcommit  : total network interface commit\n"
            "- rx         : RX bandwidth stats (MB/s)\n"
            "- tx         : TX bandwidth stats (MB/s)\n"
            "- uptime     : uptime\n"
            "- vms        : number of VMs\n"
            "- vmlimit    : limit based on coschedule values (-1 is no limit)\n"
            "\n"
            "minishell runs no VMs: vms is 0, vmlimit -1 and the commits 0. rx and tx are\n"
            "this machine's network interfaces but lo, sampled every 5 seconds from the\n"
            "first host that shows them (0.0 until the second sample), as a weighted\n"
            "average over the last 10 samples."
        ),
        call=host,
    ),
)
