"""run_program: one program to its end, in its own process group, with bounded output;
nothing it started outlives it, and it is always reaped."""

from __future__ import annotations

import os
import resource
import signal
import time

import pytest
import trio
from plumbing import children, leftovers_killed, running, settled

from minishell.plumber.programs import KillSwitch, ProgramResult, run_program

LIMIT = 64 * 1024


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def run(*argv: str, **options: object) -> ProgramResult:
    with trio.fail_after(5):
        result = await run_program(argv[0] if argv[0].startswith("/") else f"/bin/{argv[0]}",
                                   argv, stdout_limit=LIMIT, stderr_limit=LIMIT,
                                   **options)  # type: ignore[arg-type]
    assert children() == set()
    return result


async def test_output_and_status_are_captured_apart() -> None:
    before = fds()
    result = await run("sh", "-c", "echo out; echo err >&2; exit 3")
    assert result == ProgramResult(3, b"out\n", b"err\n", over_limit=False, timed_out=False)
    assert fds() == before


async def test_stdin_is_dev_null_or_the_bytes_given() -> None:
    assert (await run("cat")).stdout == b""
    assert (await run("cat", stdin=b"given\n")).stdout == b"given\n"
    big = os.urandom(3 * 1024 * 1024)  # much more than a pipe holds: written as cat reads
    result = await run_program("/bin/cat", ("cat",), stdin=big, stdout_limit=len(big),
                               stderr_limit=LIMIT)
    assert result.stdout == big and not result.over_limit


async def test_what_the_program_leaves_behind_does_not_outlive_it() -> None:
    with leftovers_killed("sleep", "1001"):
        result = await run("sh", "-c", "sleep 1001 & echo started")
        assert (result.returncode, result.stdout) == (0, b"started\n")
        await settled(lambda: running("sleep", "1001") == set())


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
async def test_endless_output_is_cut_at_the_limit_and_the_group_killed(stream: str) -> None:
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    result = await run("sh", "-c", "yes" if stream == "stdout" else "yes >&2")
    assert result.over_limit and not result.timed_out
    assert (len(getattr(result, stream)), result.returncode) == (LIMIT, -signal.SIGKILL)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 16 * 1024
    await settled(lambda: running("yes") == set())


async def test_a_deadline_kills_the_group() -> None:
    with leftovers_killed("sleep", "1002"):
        result = await run("sh", "-c", "sleep 1002; echo never",
                           deadline=trio.current_time() + 0.2)
        assert (result.timed_out, result.returncode, result.stdout) == (
            True, -signal.SIGKILL, b"")
        await settled(lambda: running("sleep", "1002") == set())  # SIGKILL takes a moment


@pytest.mark.parametrize(("script", "signal_seen"), [
    ("sleep 1003", signal.SIGTERM),
    ("trap '' TERM; sleep 1003 & wait; wait", signal.SIGKILL),
])
async def test_cancel_terminates_then_kills_after_the_grace(
        script: str, signal_seen: signal.Signals) -> None:
    with leftovers_killed("sleep", "1003"):
        started = time.monotonic()
        with trio.move_on_after(0.3) as timer:
            await run_program("/bin/sh", ("sh", "-c", script), stdout_limit=LIMIT,
                              stderr_limit=LIMIT, grace=0.2)
        assert timer.cancelled_caught
        assert time.monotonic() - started < 3
        assert children() == set()
        await settled(lambda: running("sleep", "1003") == set())  # SIGKILL takes a moment
        del signal_seen  # the status is not returned once cancelled; the group is gone


async def test_spawn_errors_raise_and_leak_nothing(tmp_path: object) -> None:
    before = fds()
    with pytest.raises(FileNotFoundError):
        await run_program("/no/such/program", ("x",), stdout_limit=LIMIT, stderr_limit=LIMIT)
    with pytest.raises(PermissionError):
        await run_program("/etc/passwd", ("passwd",), stdout_limit=LIMIT, stderr_limit=LIMIT)
    with pytest.raises(ValueError, match="null"):
        await run_program("/bin/echo", ("echo", "a\0b"), stdout_limit=LIMIT, stderr_limit=LIMIT)
    assert (fds(), children()) == (before, set())


async def test_signals_the_daemon_ignores_are_reset_for_the_child() -> None:
    """Python ignores SIGPIPE; a child must not inherit that (`yes | head` must end)."""
    result = await run("sh", "-c", "yes | head -n 2")
    assert (result.returncode, result.stdout) == (0, b"y\ny\n")


async def test_a_kill_switch_kills_runs_under_way_and_to_come(nursery: trio.Nursery) -> None:
    """SIGKILL at once, no SIGTERM grace: `trap '' TERM` makes no difference."""
    switch = KillSwitch()
    results: list[ProgramResult] = []

    async def stubborn() -> None:
        results.append(await run("sh", "-c", "trap '' TERM; sleep 1004", kill_switch=switch,
                                 grace=60))

    with leftovers_killed("sleep", "1004"):
        nursery.start_soon(stubborn)
        await settled(lambda: running("sleep", "1004") != set())
        switch.kill()
        await settled(lambda: len(results) == 1)
        late = await run("sh", "-c", "sleep 1004", kill_switch=switch)
        assert [result.returncode for result in (*results, late)] == [-signal.SIGKILL] * 2
        await settled(lambda: running("sleep", "1004") == set())
