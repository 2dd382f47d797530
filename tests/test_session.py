"""Session behaviour that transcripts cannot show: environment, background
programs, shutdown, hostile nesting, and scripts that cannot be read."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plumbing import children
from test_cli import processes_with

from minishell.commands.pipes import pipe_names
from minishell.history import History
from minishell.render import render
from minishell.reply import Reply
from minishell.session import Session, open_session


async def output(session: Session, line: str) -> list[tuple[str, str]]:
    """(rendered, error) for each reply of one line."""
    return [(render(reply), "\n".join(r.error for r in reply.responses if r.error))
            for reply in await session.run_line(line)]


async def test_env_lists_sets_and_unsets(session: Session,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINISHELL_TEST_LISTED", "visible")
    listing = await output(session, ".env")
    rows = [[cell.strip() for cell in row.split("|")] for row in listing[0][0].splitlines()]
    assert rows[0] == ["key", "value"]
    assert ["MINISHELL_TEST_LISTED", "visible"] in rows
    assert await output(session, '.env ""') == listing  # minicli lists for an empty name
    await session.run_line(".env MINISHELL_TEST_SET value")
    assert os.environ["MINISHELL_TEST_SET"] == "value"
    await session.run_line('.env MINISHELL_TEST_SET ""')
    assert "MINISHELL_TEST_SET" not in os.environ


async def test_empty_alias_lists(session: Session) -> None:
    await session.run_line(".alias x=echo y")
    assert await output(session, '.alias ""') == await output(session, ".alias")


async def test_env_changes_reach_child_programs(session: Session,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MINISHELL_TEST_CHILD", raising=False)
    await session.run_line(".env MINISHELL_TEST_CHILD from-session")
    assert await output(session, 'shell sh -c "echo $MINISHELL_TEST_CHILD"') == [
        ("from-session", "")]
    monkeypatch.delenv("MINISHELL_TEST_CHILD")


async def test_background_runs_without_waiting(session: Session, tmp_path: Path) -> None:
    done = tmp_path / "done"
    with trio.fail_after(5):
        assert await output(session, f"background touch {done}") == [("", "")]
        while not done.exists():  # noqa: ASYNC110 - made by a process of its own
            await trio.sleep(0.01)
    assert await output(session, "background nosuchprogram") == [
        ("", 'exec: "nosuchprogram": executable file not found in $PATH')]


async def test_quit_sets_quitting(session: Session) -> None:
    assert not session.quitting.is_set()
    await session.run_line("quit")
    assert session.quitting.is_set()


async def test_a_thousand_nested_builtins_run(session: Session) -> None:
    line = ".json false " * 1000 + ".annotate true echo deep"
    assert await output(session, line) == [("vm: deep", "")]


async def test_nested_namespace_commands_restore_the_namespace(session: Session) -> None:
    await session.run_line("namespace a namespace b namespace c pipe p x")
    assert session.namespaces.active.name == "minimega"
    assert [p.name for p in session.plumber.pipes()] == ["c//p"]


async def test_read_of_a_folder_and_of_a_long_line(session: Session, tmp_path: Path) -> None:
    assert await output(session, f"read {tmp_path}") == [("", f"read {tmp_path}: is a directory")]
    script = tmp_path / "long.mm"
    script.write_text("echo before\necho " + "x" * 70_000 + "\necho after\n")
    assert await output(session, f"read {script}") == [
        ("before", ""), ("", "bufio.Scanner: token too long")]


async def test_read_handles_crlf_scripts(session: Session, tmp_path: Path) -> None:
    script = tmp_path / "dos.mm"
    script.write_bytes(b"echo one\r\necho two\r\n")
    assert await output(session, f"read {script}") == [("one", ""), ("two", "")]


async def test_a_long_read_can_be_cancelled(session: Session, tmp_path: Path) -> None:
    script = tmp_path / "big.mm"
    script.write_text("pipe big x\n" * 200_000)
    with trio.move_on_after(0.2) as scope:
        await session.run_line(f"read {script}")
    assert scope.cancelled_caught
    count = session.plumber.pipes()[0].count
    assert 0 < count < 200_000


async def test_pipelines_that_form_a_cycle_do_not_hang_a_write(session: Session) -> None:
    await session.run_line("plumb la lb")
    await session.run_line("plumb lb la")
    with trio.fail_after(5):
        assert await output(session, "pipe la spin") == [("", "")]
        await session.run_line("clear plumb")
    assert await output(session, "plumb") == [("", "")]


HOSTILE_TEXT = st.text(alphabet=st.sampled_from(list('ab=$\x00"\'\\#{}: \t.,/~!-')), max_size=8)
# Commands that cannot run an arbitrary program whatever their arguments: plumb
# stages get a prefix no program has, and shell and background stay out.
SAFE_LINES = st.one_of(
    st.tuples(st.sampled_from(["pipe", "echo", ".env", ".alias", ".unalias", "namespace",
                               "clear pipe", "clear plumb", "clear namespace", "help", "read",
                               ".columns", ".filter", ".json", ".record", ".preprocess", "ns run",
                               "history", "pipe x mode", "pipe x via"]),
              st.lists(HOSTILE_TEXT, max_size=3))
    .map(lambda parts: " ".join([parts[0], *(repr(arg) for arg in parts[1]), "echo"])),
    st.lists(HOSTILE_TEXT, min_size=2, max_size=3)
    .map(lambda stages: "plumb " + " ".join(repr("p_" + stage) for stage in stages)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(SAFE_LINES, min_size=1, max_size=5))
def test_hostile_lines_never_escape_as_exceptions(lines: list[str]) -> None:
    async def main() -> None:
        async with open_session(hostname="vm", base="/tmp/minishell") as session:
            with trio.fail_after(10):
                for line in lines:
                    for reply in await session.run_line(line):
                        assert isinstance(reply, Reply)
                assert await output(session, ".annotate false echo still here") == [
                    ("still here", "")]

    saved = dict(os.environ)
    try:
        trio.run(main)
    finally:
        os.environ.clear()
        os.environ.update(saved)


async def test_nul_bytes_are_one_line_errors(session: Session) -> None:
    assert await output(session, 'read "/tmp/a\x00b"') == [
        ("", "open /tmp/a\x00b: invalid argument")]
    assert await output(session, 'shell echo "a\x00"') == [
        ("", f"fork/exec {shutil.which('echo')}: invalid argument")]
    assert await output(session, '.env "A=B" x') == [("", "setenv: invalid argument")]


async def test_shell_grandchildren_do_not_outlive_a_cancelled_command(session: Session) -> None:
    marker = f"{time.time_ns() % 10**6}.75"
    with trio.move_on_after(0.5):
        await session.run_line(f'shell sh -c "sleep {marker}; true"')
    # The group is signalled as the command ends; the kernel takes a moment to reap it.
    with trio.fail_after(5):
        while processes_with(f"sleep\0{marker}"):  # noqa: ASYNC110 - the kernel, not a task
            await trio.sleep(0.01)


async def test_go_exit_texts(session: Session) -> None:
    assert await output(session, '.preprocess false shell sh -c "kill -TERM $$"') == [
        ("", "signal: terminated")]
    assert await output(session, "shell /") == [("", 'exec: "/": permission denied')]


async def test_a_via_that_never_ends_does_not_hang_the_session() -> None:
    async with open_session(hostname="vm", base="/tmp/minishell",
                            cli_write_patience=0.2) as session:
        await via_that_never_ends(session)
    assert children() == set()


async def via_that_never_ends(session: Session) -> None:
    await session.run_line(".annotate false")
    await session.run_line("plumb slow out")
    await session.run_line("pipe slow via sleep 1000")
    with trio.fail_after(5):
        started = trio.current_time()
        await session.run_line("pipe slow first")  # waits its patience, then goes on
        await session.run_line("pipe slow second")  # behind a stuck write: no wait
        assert await output(session, "echo alive") == [("alive", "")]
        assert trio.current_time() - started < 1
    listing = await output(session, ".columns name,writers,count .filter name=minimega//slow pipe")
    # both writes still in flight: writers while undelivered, not counted yet
    assert listing == [("name           | writers | count\nminimega//slow | 2       | 0", "")]
    # its own via is all that holds it: clearing kills the via and drops the writes
    assert await output(session, "clear pipe slow") == [("", "")]
    assert [pipe.name for pipe in session.plumber.pipes()] == ["minimega//out"]


async def test_a_reader_that_never_reads_does_not_hang_a_script(session: Session,
                                                                 tmp_path: Path) -> None:
    script = tmp_path / "flood.mm"
    script.write_text(f"pipe stuck {'x' * 100}\n" * 5000 + "echo done\n")
    await session.run_line('plumb stuck "sleep 1000"')
    with trio.fail_after(10):
        responses = await session.run_line(f"read {script}")
    assert render(responses[-1]) == "done"
    assert session.plumber.pipes()[0].count >= 2000  # the rest is queued in order


async def test_pipelines_that_multiply_messages_do_not_hang_writes(session: Session) -> None:
    for stages in ("a b", "a c", "b a", "c a"):
        await session.run_line(f"plumb {stages}")
    with trio.fail_after(10):
        await session.run_line("pipe a x")
        await trio.sleep(0.2)  # let the loop fill every outbox
        await session.run_line("pipe a y")
        await session.run_line("clear plumb")
    assert await output(session, "plumb") == [("", "")]


async def test_completion_offers_short_names_in_the_active_namespace(session: Session) -> None:
    await session.run_line("pipe foo x")
    await session.run_line("pipe other//bar y")
    assert sorted(pipe_names(session)) == ["foo", "minimega//foo", "other//bar"]


async def test_reading_a_fifo_does_not_stop_the_event_loop(session: Session,
                                                            tmp_path: Path) -> None:
    """A script that is a FIFO waits for its writer, while everything else goes on."""
    fifo = tmp_path / "commands"
    os.mkfifo(fifo)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await trio.sleep(0.01)
            ticks += 1

    def write_later() -> None:
        time.sleep(0.5)
        fifo.write_text("echo from the fifo\n")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(tick)
            nursery.start_soon(trio.to_thread.run_sync, write_later)
            assert await output(session, f"read {fifo}") == [("from the fifo", "")]
            nursery.cancel_scope.cancel()
    assert ticks >= 10


async def test_reading_a_device_stops_at_the_line_limit(session: Session) -> None:
    with trio.fail_after(10):
        assert await output(session, "read /dev/zero") == [("", "bufio.Scanner: token too long")]


async def test_history_is_bounded_and_clearing_it_frees_it() -> None:
    history = History(max_entries=100, max_size=50_000)
    async with open_session(hostname="vm", base="/tmp/minishell", history=history) as session:
        big = "x" * 1000
        for number in range(300):
            await session.run_line(f"pipe slow{number % 3} {big}")
        assert len(history) <= 100 and history.size <= 50_000
        assert list(history)[-1] == f"pipe slow2 {big}"  # the newest are kept
        await session.run_line("clear history")
        assert (len(history), history.size) == (0, 0)


async def test_a_failing_shell_shows_its_stderr(session: Session) -> None:
    assert await output(session, 'shell sh -c "echo out; echo oops >&2; exit 2"') == [
        ("", "exit status 2: oops")]
    assert await output(session, 'shell sh -c "exit 3"') == [("", "exit status 3")]


async def test_quit_after_a_delay(session: Session, autojump_clock: trio.testing.MockClock,
                                  ) -> None:
    assert await output(session, "quit bogus") == [
        ("", 'strconv.Atoi: parsing "bogus": invalid syntax')]
    assert await output(session, "quit 99999999999999999999") == [
        ("", 'strconv.Atoi: parsing "99999999999999999999": value out of range')]
    started = trio.current_time()
    assert await output(session, "quit 30") == [("quitting after 30 seconds", "")]
    assert not session.quitting.is_set()
    await session.quitting.wait()
    assert trio.current_time() - started == pytest.approx(30)


async def test_shell_output_is_bounded(session: Session) -> None:
    marker = f"endless-{time.time_ns()}"
    with trio.fail_after(20):
        assert await output(session, f"shell yes {marker}") == [
            ("", "output over 16 MiB or errors over 1 MiB: the program was killed")]
    assert processes_with(marker) == []


async def test_what_shell_and_background_start_dies_with_them(session: Session) -> None:
    marker = f"{time.time_ns() % 10**6}.25"
    with trio.fail_after(10):
        assert await output(session, f'shell sh -c "sleep {marker} & exit 0"') == [("", "")]
        await session.run_line(f'background sh -c "sleep 1{marker} & exit 0"')
        while processes_with(f"sleep\0{marker}") or processes_with(f"sleep\0{1}{marker}"):  # noqa: ASYNC110 - the kernel, not a task
            await trio.sleep(0.01)
