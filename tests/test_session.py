"""Session behaviour that transcripts cannot show: environment, background
programs, shutdown, hostile nesting, and scripts that cannot be read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from minishell.render import render
from minishell.session import Session


async def output(session: Session, line: str) -> list[tuple[str, str]]:
    """(rendered, error) for each response of one line."""
    return [(render(r), r.error) for r in await session.run_line(line)]


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
    assert session.namespace == "minimega"
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
