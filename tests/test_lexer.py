"""minicli's lexer: words, quotes, escapes, comments and its exact error texts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minishell.errors import CommandError
from minishell.gostr import GO_SPACE
from minishell.language import lex
from minishell.language.lexer import scan


@pytest.mark.parametrize(
    ("line", "words"),
    [
        # lex_quotes
        ("echo plain   words   collapse", ["echo", "plain", "words", "collapse"]),
        ('echo "double   quoted   keeps   spaces"', ["echo", "double   quoted   keeps   spaces"]),
        ("echo 'single   quoted'", ["echo", "single   quoted"]),
        ("echo \"it's\" 'say \"hi\"'", ["echo", "it's", 'say "hi"']),
        ('echo pre"mid dle"post', ["echo", "premid dlepost"]),
        ('echo x "" y', ["echo", "x", "", "y"]),
        ('echo ""', ["echo", ""]),
        ("echo '' ''", ["echo", "", ""]),
        ('pipe q3 a"b c"d', ["pipe", "q3", "ab cd"]),
        # lex_escapes
        (r"echo a\tb", ["echo", "a\tb"]),
        (r'echo "c\td"', ["echo", "c\td"]),
        (r"echo 'e\nf'", ["echo", "e\nf"]),
        (r"echo back\\slash", ["echo", "back\\slash"]),
        (r'echo "quote\"inside"', ["echo", 'quote"inside']),
        (r"echo 'apos\'inside'", ["echo", "apos'inside"]),
        (r"echo hash\#notcomment", ["echo", "hash#notcomment"]),
        (r'echo "cr\rx"', ["echo", "cr\rx"]),
        # lex_comments
        ("echo visible # trailing comment is dropped", ["echo", "visible"]),
        ('echo "# inside quotes is kept" # but this is not', ["echo", "# inside quotes is kept"]),
        ("echo a#b", ["echo", "a"]),
        ("echo 'x#y'", ["echo", "x#y"]),
        ("echo one#two three", ["echo", "one"]),
        ("echo ## double", ["echo"]),
        (r"""echo "#" '#' \#""", ["echo", "#", "#", "#"]),
        ('echo ""#rest', ["echo", ""]),
        ("# whole line", []),
        ("", []),
        ("  \t ", []),
    ],
)
def test_words(line: str, words: list[str]) -> None:
    assert lex(line) == words


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ('echo "never closed', 'missing terminal "'),
        ("echo 'never closed", "missing terminal '"),
        (r"echo bad\q", "unexpected escaped character: q"),
        (r'echo "bad\z"', "unexpected escaped character: z"),
        ("echo trailing\\", "expected escape character"),
        (r"a\ b", "unexpected escaped character:  "),
        # the first problem from the left wins, as minicli scans rune by rune
        (r'echo "open \q', "unexpected escaped character: q"),
        ('echo "open \\', "expected escape character"),
        (r'echo "fine\"still open', 'missing terminal "'),
        (r"echo \q 'open", "unexpected escaped character: q"),
        ("echo 'open \\q", "unexpected escaped character: q"),
    ],
)
def test_errors(line: str, error: str) -> None:
    with pytest.raises(CommandError) as raised:
        lex(line)
    assert str(raised.value) == error


def test_go_whitespace_separates_and_python_extras_do_not() -> None:
    # Go's unicode.IsSpace has NBSP, NEL and U+3000, but not U+001C..U+001F,
    # which Python's str.split() would also split on.
    assert lex("a\xa0b\x85c\u3000d") == ["a", "b", "c", "d"]
    assert lex("a\x1cb \x1f") == ["a\x1cb", "\x1f"]
    assert all(lex(f"x{space}y") == ["x", "y"] for space in GO_SPACE)


def test_unicode_and_nul_are_ordinary_characters() -> None:
    assert lex("echo héllo \x00 'ü\x00'") == ["echo", "héllo", "\x00", "ü\x00"]


def test_megabyte_words() -> None:
    word = "w" * (1 << 20)
    assert lex(f"echo {word}") == ["echo", word]
    assert lex(f'echo "{word} {word}"') == ["echo", f"{word} {word}"]
    assert lex("echo " + r"a\t" * (1 << 16)) == ["echo", "a\t" * (1 << 16)]
    with pytest.raises(CommandError, match='missing terminal "'):
        lex(f'echo x"{word}')


@pytest.mark.parametrize(
    ("line", "ending"),
    [("pipe fo", "word"), ("pipe ", "space"), ("", "space"), ("pipe x # note", "comment"),
     ('pipe "a b"', "word"), ("pipe#", "comment")],
)
def test_scan_tells_how_the_line_ends(line: str, ending: str) -> None:
    assert scan(line)[1] == ending


def _go_quote(word: str) -> str:
    """A word written so that minicli reads it back unchanged."""
    escaped = word.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r") + '"'


@given(st.lists(st.text()))
def test_quoted_words_come_back(words: list[str]) -> None:
    assert lex(" ".join(_go_quote(word) for word in words)) == words


@given(st.text(alphabet=st.sampled_from("ab \t\"'\\#\x00\xa0\x1cnt")))
def test_any_line_lexes_or_fails_with_a_command_error(line: str) -> None:
    try:
        outcome: list[str] | str = lex(line)
    except CommandError as error:
        outcome = str(error)
    if isinstance(outcome, str):
        assert outcome.startswith(("missing terminal ", "unexpected escaped", "expected escape"))
    else:
        assert outcome == scan(line)[0]
