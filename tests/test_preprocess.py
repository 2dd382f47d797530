"""The argument preprocessor: Go's os.ExpandEnv, then `file:` URLs."""

from __future__ import annotations

import pytest

from minishell.language.preprocess import expand
from minishell.render import render
from minishell.session import Session

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


async def output(session: Session, line: str) -> str:
    replies = await session.run_line(line)
    assert len(replies) == 1 and not replies[0].failed
    return render(replies[0])


async def test_strings_and_lists_are_expanded(session: Session) -> None:
    await session.run_line("pipe $MMSPEC_V file:x")
    assert await output(session, ".columns name,previous pipe") == (
        f"name             | previous\nminimega//value1 | {FILES}/x")
    assert await output(session, "echo $MMSPEC_V ${MMSPEC_V}_x") == "value1 value1_x"
    await session.run_line("clear pipe $MMSPEC_V")
    assert await output(session, "pipe") == ""


async def test_keywords_are_not_user_text(session: Session) -> None:
    await session.run_line("pipe $MMSPEC_V mode ro")
    assert await output(session, ".columns name,mode pipe") == (
        "name             | mode\nminimega//value1 | round-robin")


async def test_disabled_leaves_arguments_alone(session: Session) -> None:
    await session.run_line(".preprocess false")
    assert await output(session, "echo $MMSPEC_V") == "$MMSPEC_V"
    await session.run_line(".preprocess true")


async def test_nested_commands_follow_preprocess_flags(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMSPEC_COLUMN", "name")
    assert await output(session, ".preprocess false echo $MMSPEC_V") == "$MMSPEC_V"
    await session.run_line(".preprocess false")
    assert await output(session, ".preprocess true echo $MMSPEC_V") == "value1"
    await session.run_line(".preprocess true")
    await session.run_line("pipe p x")
    # each level's own arguments follow the flag in force there
    assert await output(session, ".columns $MMSPEC_COLUMN pipe") == "name\nminimega//p"
    assert await output(
        session, ".columns $MMSPEC_COLUMN .preprocess false echo $MMSPEC_V") == "$MMSPEC_V"


async def test_deep_nesting(session: Session) -> None:
    text = await output(session, ".json true " * 1000 + "echo $MMSPEC_V")
    assert '"Response":"value1"' in text


class Scanned(str):
    """A string that counts how many characters its searches pass over."""

    scanned = 0

    def find(self, sub: str, start: int | None = 0, end: int | None = None) -> int:  # type: ignore[override]
        start = start or 0
        found = super().find(sub, start, len(self) if end is None else end)
        Scanned.scanned += (found if found >= 0 else len(self)) - start
        return found


def test_expansion_scans_a_line_once() -> None:
    """A line of a million `${` once took 11 s and held every client: each `${`
    searched the rest of the line for its `}`."""
    text = Scanned("${" * 20_000)
    Scanned.scanned = 0
    assert expand(text, FILES) == ""
    assert Scanned.scanned <= 3 * len(text)
