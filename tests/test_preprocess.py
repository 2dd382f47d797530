"""The argument preprocessor: Go's os.ExpandEnv, then `file:` URLs."""

from __future__ import annotations

import pytest

from minishell.language import parse, preprocess
from minishell.language.commands import (
    ClearPipe,
    ClearPipeAttr,
    Columns,
    Command,
    Echo,
    FlagWrap,
    PipeSetMode,
    PipeWrite,
    Unsupported,
)
from minishell.language.preprocess import expand

FILES = "/tmp/minishell/files"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMSPEC_V", "value1")
    monkeypatch.setenv("a b", "spaced")
    monkeypatch.delenv("UNSET_FOR_TESTS", raising=False)


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("$MMSPEC_V", "value1"),
        ("${MMSPEC_V}_x", "value1_x"),
        ("$MMSPEC_V_x", ""),  # the name takes letters, digits and `_`
        ("[$UNSET_FOR_TESTS]", "[]"),
        ("cost 100$", "cost 100$"),  # a `$` at the very end stays
        ("a$-b", "ab"),  # one special character is a name of its own
        ("$$", ""),
        ("cost $5", "cost "),
        ("${#}x", "x"),
        ("a $ b", "a $ b"),  # `$` before something that is no name stays
        ("$é", "$é"),
        ("${}", ""),  # bad syntax is eaten
        ("x${MMSPEC_V", "xMMSPEC_V"),  # ... `${` only
        ("${a b}", "spaced"),  # braces take anything up to `}`
        ("no dollars", "no dollars"),
        ("$MMSPEC_V$MMSPEC_V", "value1value1"),
    ],
)
def test_expand_env(text: str, expanded: str) -> None:
    assert expand(text, FILES) == expanded


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("file:nosuch", f"{FILES}/nosuch"),
        ("FILE:Upper", f"{FILES}/Upper"),  # schemes are case-insensitive
        ("file:a/../b", f"{FILES}/b"),
        ("file:dir//x/./y", f"{FILES}/dir/x/y"),
        ("file:a?query", f"{FILES}/a"),
        ("file:a#fragment", f"{FILES}/a"),
        ("file:with space", f"{FILES}/with space"),
        ("file:", FILES),
        ("file:///etc/passwd", FILES),  # a path, not opaque: the opaque part is empty
        ("file:$MMSPEC_V", f"{FILES}/value1"),  # after $VAR expansion
        ("file:a#%zz", "file:a#%zz"),  # a bad escape in the fragment: not a URL
        ("file:a\tb", "file:a\tb"),  # control characters: not a URL
        ("mailto:x", "mailto:x"),
        ("http//x", "http//x"),
        ("files:x", "files:x"),
        ("xfile:x", "xfile:x"),
        ("fi#le:x", "fi#le:x"),
    ],
)
def test_file_urls(text: str, expanded: str) -> None:
    assert expand(text, FILES) == expanded


def _preprocessed(line: str, *, enabled: bool = True) -> Command:
    command = parse(line)
    assert command is not None
    return preprocess(command, enabled=enabled, files_dir=FILES)


def test_strings_and_lists_are_expanded() -> None:
    assert _preprocessed("pipe $MMSPEC_V file:x") == PipeWrite("value1", f"{FILES}/x")
    assert _preprocessed("echo $MMSPEC_V ${MMSPEC_V}_x") == Echo(("value1", "value1_x"))
    assert _preprocessed("clear pipe $MMSPEC_V") == ClearPipe("value1")
    assert _preprocessed("clear pipe") == ClearPipe(None)


def test_keywords_are_not_user_text() -> None:
    assert _preprocessed("pipe $MMSPEC_V mode ro") == PipeSetMode("value1", "round-robin")
    assert _preprocessed("clear pipe p mode") == ClearPipeAttr("p", "mode")
    assert _preprocessed("vm info") == Unsupported("vm")


def test_disabled_leaves_the_command_alone() -> None:
    command = parse("pipe env4 $MMSPEC_V")
    assert command is not None
    assert preprocess(command, enabled=False, files_dir=FILES) is command


def test_nested_commands_follow_preprocess_flags() -> None:
    assert _preprocessed(".preprocess false pipe env4 $MMSPEC_V") == FlagWrap(
        "preprocess", False, PipeWrite("env4", "$MMSPEC_V")
    )
    assert _preprocessed(".preprocess true pipe p $MMSPEC_V", enabled=False) == FlagWrap(
        "preprocess", True, PipeWrite("p", "value1")
    )
    assert _preprocessed(".columns $MMSPEC_V .json true echo $MMSPEC_V") == Columns(
        "value1", FlagWrap("json", True, Echo(("value1",)))
    )
    assert _preprocessed(
        ".columns $MMSPEC_V .preprocess false echo $MMSPEC_V"
    ) == Columns("value1", FlagWrap("preprocess", False, Echo(("$MMSPEC_V",))))


def test_deep_nesting() -> None:
    command = _preprocessed(".json true " * 1000 + "echo $MMSPEC_V")
    for _ in range(1000):
        assert isinstance(command, FlagWrap)
        command = command.command
    assert command == Echo(("value1",))
