"""`host`: this machine's figures in minimega's columns and formats."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
import trio
import trio.testing
from test_session import output

from minishell.commands.host import COLUMNS, SAMPLE_SECONDS, BandwidthSampler
from minishell.gostr import duration_string, parse_seconds
from minishell.session import Session

GO_DURATION = r"(\d+h)?(\d+m)?\d+(\.\d+)?s"
FORMATS = {
    "cpus": r"[1-9]\d*",
    "load": r"\d+\.\d\d \d+\.\d\d \d+\.\d\d",
    "memused": r"-?\d+",
    "memtotal": r"[1-9]\d*",
    "rx": r"\d+\.\d",
    "tx": r"\d+\.\d",
    "vms": "0",
    "vmlimit": "-1",
    "cpucommit": "0",
    "memcommit": "0",
    "netcommit": "0",
    "uptime": GO_DURATION,
}


async def test_the_table_has_minimegas_columns_and_formats(session: Session) -> None:
    [(table, error)] = await output(session, "host")
    assert error == ""
    header, row = ([cell.strip() for cell in line.split("|")] for line in table.splitlines())
    assert header == list(COLUMNS) == list(FORMATS)
    for column, cell in zip(header, row, strict=True):
        assert re.fullmatch(FORMATS[column], cell), (column, cell)
    assert int(row[0]) == len(os.sched_getaffinity(0))
    with open("/proc/meminfo") as meminfo:  # noqa: ASYNC230 (a test reading /proc)
        total_kib = int(meminfo.readline().split()[1])
    assert int(row[3]) == total_kib // 1024
    assert 0 <= int(row[2]) <= int(row[3])


@pytest.mark.parametrize("column", list(FORMATS))
async def test_each_column_alone(session: Session, column: str) -> None:
    [(text, error)] = await output(session, f"host {column}")
    assert error == ""
    assert re.fullmatch(FORMATS[column], text), text


async def test_name_is_the_hostname_and_not_a_column(session: Session) -> None:
    assert await output(session, "host name") == [("vm", "")]
    assert await output(session, ".columns name,cpus,memtotal host") == [
        ("", "no such column `name`")]


async def test_uptime_follows_proc(session: Session) -> None:
    with open("/proc/uptime") as uptime:  # noqa: ASYNC230 (a test reading /proc)
        before = parse_seconds(uptime.read().split()[0])
    [(text, _)] = await output(session, "host uptime")
    hours, minutes, seconds = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?([\d.]+)s", text).groups()
    shown = (int(hours or 0) * 3600 + int(minutes or 0) * 60) * 10**9 + parse_seconds(seconds)
    assert 0 <= shown - before < 60 * 10**9


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [  # Go's own time_test.go durationTests
        (0, "0s"), (1, "1ns"), (1100, "1.1µs"), (2_200_000, "2.2ms"),
        (3_300_000_000, "3.3s"), (245_000_000_000, "4m5s"), (245_001_000_000, "4m5.001s"),
        (18_367_001_000_000, "5h6m7.001s"), (480_000_000_001, "8m0.000000001s"),
        (2**63 - 1, "2562047h47m16.854775807s"), (-(2**63), "-2562047h47m16.854775808s"),
        # and minimega's: /proc/uptime's figures
        (29_074_300_000_000, "8h4m34.3s"), (3_600_000_000_000, "1h0m0s"),
        (60_000_000_000, "1m0s"), (999, "999ns"), (-1_500_000, "-1.5ms"),
    ],
)
def test_duration_string_is_gos(nanoseconds: int, text: str) -> None:
    assert duration_string(nanoseconds) == text


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [("2641.71", 2_641_710_000_000), ("0.00", 0), ("5", 5 * 10**9), ("5.", 5 * 10**9),
     (".5", 500_000_000), ("1.1234567899", 1_123_456_789)],
)
def test_parse_seconds(text: str, nanoseconds: int) -> None:
    assert parse_seconds(text) == nanoseconds


@pytest.mark.parametrize("text", ["", ".", "-1", "1e3", "x", "\u0661"])
def test_parse_seconds_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r'^time: invalid duration ".*s"$'):
        parse_seconds(text)


def _counters(received_steps: list[int], sent_steps: list[int]) -> Iterator[tuple[int, int]]:
    received = sent = 0
    yield received, sent
    for received_step, sent_step in zip(received_steps, sent_steps, strict=True):
        received += received_step
        sent += sent_step
        yield received, sent


async def test_rates_are_minimegas_weighted_mean(autojump_clock: trio.testing.MockClock) -> None:
    """Samples every 5 s; interval i from the oldest weighs n - i; MiB per second."""
    mebibyte = 1 << 20
    readings = _counters([10 * mebibyte, 0, 5 * mebibyte], [0, 5 * mebibyte, 0])
    async def read() -> tuple[int, int]:
        return next(readings)

    sampler = BandwidthSampler(read)
    assert sampler.rates() == (0.0, 0.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sampler.run)
        await trio.sleep(SAMPLE_SECONDS / 2)
        assert len(sampler.samples) == 1
        assert sampler.rates() == (0.0, 0.0)  # one sample is no rate yet
        await trio.sleep(SAMPLE_SECONDS * 3)
        nursery.cancel_scope.cancel()
    assert [sample.at for sample in sampler.samples] == [0.0, 5.0, 10.0, 15.0]
    received, sent = sampler.rates()
    # rates 2, 0, 1 MiB/s received and 0, 1, 0 sent, weighted 3, 2, 1 over 6
    assert received == pytest.approx((3 * 2 + 2 * 0 + 1 * 1) / 6)
    assert sent == pytest.approx((3 * 0 + 2 * 1 + 1 * 0) / 6)
    assert f"{received:.1f}" == "1.2"


async def test_samples_are_bounded_and_a_bad_read_is_skipped(
        autojump_clock: trio.testing.MockClock) -> None:
    reads = 0

    async def counters() -> tuple[int, int]:
        nonlocal reads
        reads += 1
        if reads == 3:
            raise OSError("gone for a moment")
        return reads * 1000, 0

    sampler = BandwidthSampler(counters)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sampler.run)
        await trio.sleep(SAMPLE_SECONDS * 30)
        nursery.cancel_scope.cancel()
    assert len(sampler.samples) == 10
    assert sampler.rates()[0] > 0
