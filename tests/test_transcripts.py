"""Every transcript in transcripts/ replays byte for byte against its .want file."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import trio

from minishell.replay import find_transcripts, in_sessions, replay_one
from minishell.session import open_session

TRANSCRIPTS = find_transcripts([str(Path(__file__).parent.parent / "transcripts")])


def test_there_are_transcripts() -> None:
    assert len(TRANSCRIPTS) >= 9


@pytest.mark.parametrize("script", TRANSCRIPTS, ids=lambda path: path.name)
async def test_transcript(script: Path) -> None:
    with trio.fail_after(60):
        got = await replay_one(script, in_sessions(partial(open_session, hostname="vm",
                                                          base="/tmp/minishell")))
    want = script.with_name(script.name + ".want").read_bytes().decode()
    assert got == want
