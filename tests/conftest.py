"""Shared fixtures: a real Plumber, and a real Session over one, owned by the test's nursery."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
import trio
from plumbing import children

from minishell import kit
from minishell.plumber import Plumber
from minishell.session import Session


@pytest.fixture
async def plumber(nursery: trio.Nursery) -> AsyncIterator[Plumber]:
    """A plumber with a seeded rng; after the test, no child process may be left."""
    plumber = Plumber(nursery, rng=random.Random(7))
    yield plumber
    await plumber.aclose()
    assert children() == set()


@pytest.fixture
async def session(nursery: trio.Nursery) -> AsyncIterator[Session]:
    helper_dir = kit.bin_dir()
    plumber = Plumber(nursery, helper_dir=helper_dir)
    new = Session(plumber, nursery, hostname="vm", files_dir="/tmp/minishell/files")
    await new.run_line(".annotate false")
    yield new
    await plumber.aclose()
