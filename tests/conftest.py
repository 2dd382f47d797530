"""Shared fixtures: a real Session over a real Plumber, owned by the test's nursery."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from minishell import kit
from minishell.plumber import Plumber
from minishell.session import Session


@pytest.fixture
async def session(nursery: trio.Nursery) -> AsyncIterator[Session]:
    helper_dir = kit.bin_dir()
    plumber = Plumber(nursery, helper_dir=helper_dir)
    new = Session(plumber, nursery, hostname="vm", files_dir="/tmp/minishell/files",
                  helper_dir=helper_dir)
    await new.run_line(".annotate false")
    yield new
    await plumber.aclose()
