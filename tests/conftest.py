"""Shared fixtures: a real Plumber, and a real Session over one, owned by the test's
nursery; the two front ends of the `minishell` command, for client tests."""

from __future__ import annotations

import os
import random
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from launchers import PYTHON_FRONT_END, install_launcher
from plumbing import children

from minishell.plumber import Plumber
from minishell.session import Session, open_session

# A run started in the background of a script (`.ci/run &`) inherits SIGINT ignored,
# and so would every minishell it starts: a Python that starts with SIGINT ignored
# never raises KeyboardInterrupt. The Ctrl-C tests need what a terminal gives.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True, scope="session")
def _private_state(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The minishells the tests start keep their state (the mesh secret, history) in a
    folder of this run, not in the user's: a run leaves nothing behind and never
    reads a secret the user made."""
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))


@pytest.fixture
async def plumber(nursery: trio.Nursery) -> AsyncIterator[Plumber]:
    """A plumber with a seeded rng; after the test, no child process may be left."""
    plumber = Plumber(nursery, rng=random.Random(7))
    yield plumber
    await plumber.aclose()
    assert children() == set()


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    """A session as minitest's prolog leaves it; after the test, no child may be left."""
    async with open_session(hostname="vm", base="/tmp/minishell") as new:
        await new.run_line(".annotate false")
        yield new
    assert children() == set()


@pytest.fixture(scope="session")
def compiled_minishell(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_launcher(tmp_path_factory.mktemp("bin"))


@pytest.fixture(params=["python", "compiled"])
def minishell(request: pytest.FixtureRequest) -> list[str]:
    """The command line that starts `minishell`: the Python front end, or the
    compiled launcher that serves -pipe and -e itself (README: The control socket)."""
    if request.param == "python":
        return PYTHON_FRONT_END
    return [str(request.getfixturevalue("compiled_minishell"))]
