"""Every transcript in transcripts/ replays byte for byte against its .want file."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import trio

from minishell import kit
from minishell.plumber import Plumber
from minishell.replay import find_transcripts, replay_one
from minishell.session import Session

TRANSCRIPTS = find_transcripts([str(Path(__file__).parent.parent / "transcripts")])


def _new_session(helper_dir: str, nursery: trio.Nursery) -> Session:
    return Session(Plumber(nursery, helper_dir=helper_dir), nursery, hostname="vm",
                   files_dir="/tmp/minishell/files")


def test_there_are_transcripts() -> None:
    assert len(TRANSCRIPTS) >= 9


@pytest.mark.parametrize("script", TRANSCRIPTS, ids=lambda path: path.name)
async def test_transcript(script: Path) -> None:
    with trio.fail_after(60):
        got = await replay_one(script, partial(_new_session, kit.bin_dir()))
    want = script.with_name(script.name + ".want").read_bytes().decode()
    assert got == want
