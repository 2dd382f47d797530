"""Tab completion: command words from the patterns, pipe names where pipes go."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minishell.commands.registry import registry

# What the suggestions read of a session: the active namespace and the pipe names.
SESSION: Any = SimpleNamespace(
    aliases={"zz": "echo"},
    namespaces=SimpleNamespace(active=SimpleNamespace(name="minimega")),
    plumber=SimpleNamespace(names=lambda: ("minimega//foo", "minimega//foopipe", "other//bar")),
)
# Every pipe by its full name, and the active namespace's also without it.
PIPES = ["foo", "foopipe", "minimega//foo", "minimega//foopipe", "other//bar"]


def complete(text: str) -> list[str]:
    return registry().complete(text, SESSION)
COMMANDS = [
    ".alias", ".annotate", ".columns", ".compress", ".csv", ".env", ".filter", ".headers",
    ".json", ".preprocess", ".record", ".sort", ".unalias", "background", "cc", "check", "clear",
    "debug", "echo", "exit", "file", "help", "history", "host", "log", "mesh", "namespace", "ns",
    "pipe", "plumb", "quit", "read", "shell", "version", "write",
]


@pytest.mark.parametrize(
    ("text", "candidates"),
    [
        ("", COMMANDS),  # minimega's other commands (vm, cc...) are not offered
        ("p", ["pipe", "plumb"]),
        ("pi", ["pipe"]),
        (".c", [".columns", ".compress", ".csv"]),
        ("pipe ", PIPES),
        ("pipe f", ["foo", "foopipe"]),
        ("pipe foo ", ["log", "mode", "via"]),
        ("pipe foo mode ", ["all", "random", "round-robin"]),
        ("pipe foo mode r", ["random", "round-robin"]),
        ("pipe foo log ", ["false", "true"]),
        ("pipe foo via ", []),
        ("clear ", ["all", "cc", "history", "log", "namespace", "pipe", "plumb"]),
        ("clear p", ["pipe", "plumb"]),
        ("clear pipe ", PIPES),
        ("clear pipe foo ", ["log", "mode", "via"]),
        ("cl pi f", ["foo", "foopipe"]),  # prefixes count as their keywords
        ("plumb ", PIPES),
        ("plumb foo ", PIPES),
        ("plumb foo bar m", ["minimega//foo", "minimega//foopipe"]),
        ("clear plumb ", PIPES),
        ("ns ", ["hosts", "run"]),
        ("read x ", ["check"]),
        (".json ", ["false", "true"]),
        (".json true p", ["pipe", "plumb"]),
        (".columns name ", COMMANDS),
        ("namespace beta pipe f", ["foo", "foopipe"]),
        ("echo ", []),
        ("e", ["echo", "exit"]),
        ("bogus ", []),
        ("echo # comment ", []),
        ('pipe "fo', []),
        ("pipe foo\\q", []),
    ],
)
def test_candidates(text: str, candidates: list[str]) -> None:
    assert complete(text) == candidates


def test_deep_nesting() -> None:
    assert complete(".json true " * 1000 + "p") == ["pipe", "plumb"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([*"pi ecl.jsonrt\"'\\#\x00\xa0", "pipe ", "clear "])).map("".join))
def test_never_raises(text: str) -> None:
    result = complete(text)
    assert result == sorted(set(result))
