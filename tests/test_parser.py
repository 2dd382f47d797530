"""Lines -> command objects, with minicli's prefix matching and error texts."""

from __future__ import annotations

import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minishell.errors import CommandError
from minishell.language import parse
from minishell.language.commands import (
    AliasList,
    AliasSet,
    Background,
    ClearAll,
    ClearHistory,
    ClearNamespace,
    ClearPipe,
    ClearPipeAttr,
    ClearPlumb,
    Columns,
    Command,
    Echo,
    EnvGet,
    EnvList,
    EnvSet,
    Filter,
    FlagQuery,
    FlagSet,
    FlagWrap,
    Help,
    History,
    NamespaceList,
    NamespaceRun,
    NamespaceSwitch,
    NsHosts,
    NsRun,
    PipeList,
    PipeSetLog,
    PipeSetMode,
    PipeSetVia,
    PipeWrite,
    Plumb,
    PlumbList,
    Quit,
    Read,
    Shell,
    Unalias,
    Unsupported,
    Version,
)


@pytest.mark.parametrize(
    ("line", "command"),
    [
        # pipes
        ("pipe", PipeList()),
        ('pipe d1 "hello world"', PipeWrite("d1", "hello world")),
        ("pipe x mode all", PipeSetMode("x", "all")),
        ("pipe x mode round-robin", PipeSetMode("x", "round-robin")),
        ("pipe x log false", PipeSetLog("x", enabled=False)),
        ('pipe foo via normal -stddev 5.0', PipeSetVia("foo", ("normal", "-stddev", "5.0"))),
        ("clear pipe", ClearPipe(None)),
        ("clear pipe x", ClearPipe("x")),
        ("clear pipe x mode", ClearPipeAttr("x", "mode")),
        ("clear pipe x log", ClearPipeAttr("x", "log")),
        ("clear pipe x via", ClearPipeAttr("x", "via")),
        # with three words a keyword in the data slot is data (pipe_data_forms)
        ("pipe d2 mode", PipeWrite("d2", "mode")),
        ("pipe d3 log", PipeWrite("d3", "log")),
        ("pipe d4 via", PipeWrite("d4", "via")),
        ("pipe x all", PipeWrite("x", "all")),
        ("pipe foo pipe", PipeWrite("foo", "pipe")),
        ("pipe mode mode all", PipeSetMode("mode", "all")),
        ("clear pipe mode", ClearPipe("mode")),
        # pipelines
        ("plumb", PlumbList()),
        ('plumb foo "sed -u s/foo/moo/" bar', Plumb(("foo", "sed -u s/foo/moo/", "bar"))),
        ("clear plumb", ClearPlumb(())),
        ("clear plumb a b", ClearPlumb(("a", "b"))),
        # namespaces
        ("namespace", NamespaceList()),
        ("namespace beta", NamespaceSwitch("beta")),
        ("namespace beta pipe p v", NamespaceRun("beta", PipeWrite("p", "v"))),
        ("clear namespace", ClearNamespace(None)),
        ("clear namespace beta", ClearNamespace("beta")),
        ("ns hosts", NsHosts()),
        ("ns run pipe", NsRun(PipeList())),
        # other commands
        ("echo", Echo(())),
        ('echo x "" y', Echo(("x", "", "y"))),
        ("echo pipe mode", Echo(("pipe", "mode"))),
        ("shell sleep 1", Shell(("sleep", "1"))),
        ("background sleep 10", Background(("sleep", "10"))),
        ("help", Help(())),
        ("help clear pipe", Help(("clear", "pipe"))),
        ("history", History()),
        ("clear history", ClearHistory()),
        ("read /tmp/x.mm", Read("/tmp/x.mm", check=False)),
        ("read /tmp/x.mm check", Read("/tmp/x.mm", check=True)),
        ("clear all", ClearAll()),
        ("quit", Quit()),
        ("exit", Quit()),
        ("version", Version()),
        # dot-builtins
        (".json", FlagQuery("json")),
        (".csv true", FlagSet("csv", value=True)),
        (".record false", FlagSet("record", value=False)),
        (".preprocess false pipe env4 $V", FlagWrap("preprocess", False, PipeWrite("env4", "$V"))),
        (".columns name,previous pipe", Columns("name,previous", PipeList())),
        (".filter name=bar .columns name pipe", Filter("name=bar", Columns("name", PipeList()))),
        (".alias", AliasList()),
        (".alias say=echo said", AliasSet("say=echo said")),
        (".alias spaced = echo x", AliasSet("spaced = echo x")),
        ('.alias "q=echo a  b"', AliasSet("q=echo a  b")),
        (".unalias pl", Unalias("pl")),
        (".env", EnvList()),
        (".env MMSPEC_V", EnvGet("MMSPEC_V")),
        ('.env MMSPEC_V ""', EnvSet("MMSPEC_V", "")),
        # comments and trailing comments
        ("pipe c1 value # comment after data", PipeWrite("c1", "value")),
        ("  pipe   c1   v  ", PipeWrite("c1", "v")),
    ],
)
def test_commands(line: str, command: Command) -> None:
    assert parse(line) == command


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("pip Upper one", PipeWrite("Upper", "one")),
        ("pi", PipeList()),
        ("pipe x mode ro", PipeSetMode("x", "round-robin")),
        ("pipe x mode ra", PipeSetMode("x", "random")),
        ("pipe x mode a", PipeSetMode("x", "all")),
        ("pipe x log t", PipeSetLog("x", enabled=True)),
        ("pipe x v normal", PipeSetVia("x", ("normal",))),
        ("cl pi x", ClearPipe("x")),
        ("cl pi x m", ClearPipeAttr("x", "mode")),
        ("clear pl", ClearPlumb(())),
        ("e x", Echo(("x",))),
        ("e", Echo(())),
        ("s x", Shell(("x",))),  # status only takes `updates`
        ("h x", Help(("x",))),  # history takes nothing, host only its choices
        ("n beta", NamespaceSwitch("beta")),
        ("b sleep 1", Background(("sleep", "1"))),
        ("q", Quit()),  # qos needs `add`
        ("ver", Version()),
        ("read f c", Read("f", check=True)),
        (".h", FlagQuery("headers")),
        (".an", FlagQuery("annotate")),
        (".al", AliasList()),
        (".an t", FlagSet("annotate", value=True)),
        (".c name pipe", Columns("name", PipeList())),  # .csv/.compress only take true|false
        (".col name pipe", Columns("name", PipeList())),
        (".j t pi x y", FlagWrap("json", True, PipeWrite("x", "y"))),
        ("namespace a b c", NamespaceRun("a", Background(("c",)))),  # b is only background here
        (".u pl", Unalias("pl")),
        # the nested command is resolved on its own: ambiguity there is fatal only there
        ("namespace a .a", None),
        # minicli drops a child whose own subtree is ambiguous: pipe's `mode r`
        # is, so the only remaining match is plumb
        ("p x mode r", Plumb(("x", "mode", "r"))),
    ],
)
def test_prefixes(line: str, command: Command | None) -> None:
    if command is None:
        with pytest.raises(CommandError, match="invalid command"):
            parse(line)
    else:
        assert parse(line) == command


@pytest.mark.parametrize(
    "line",
    [
        "bogus", "PIPE", "Pipe", "pipe foo MODE all", "pipe m8 mode ALL",  # case matters
        "p", "p foo bar", "clear p", ".a", "pipe x mode r", '""', "v", "n", "c", "clear",
        "pipe d1 hello world", "pipe d5", "pipe d6 mode all extra", "plumb a", "shell",
        "background", ".filter x", ".columns a", ".json maybe", "exi", "exit now", ".j t p x y",
        "ns", "ns hosts x", "read", "read a b", "quit 5 6", "history x", "vm foo",
        ".unalias", ".env a b c", "clear pipe a b c", "clear all x", ".json true .json maybe",
    ],
)
def test_invalid(line: str) -> None:
    with pytest.raises(CommandError) as raised:
        parse(line)
    assert str(raised.value) == f"invalid command: `{line}`"


def test_invalid_command_shows_the_trimmed_line_as_typed() -> None:
    with pytest.raises(CommandError) as raised:
        parse('\t  pipe x "mode"  all  extra \xa0')
    assert str(raised.value) == 'invalid command: `pipe x "mode"  all  extra`'


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ('pipe u1 "open', 'missing terminal "'),
        ("echo 'x", "missing terminal '"),
        (r"echo bad\q", "unexpected escaped character: q"),
        ("echo trailing\\", "expected escape character"),
        ("bogus 'x", "missing terminal '"),  # lexing comes before matching
    ],
)
def test_lexer_errors_are_bare(line: str, error: str) -> None:
    with pytest.raises(CommandError) as raised:
        parse(line)
    assert str(raised.value) == error


@pytest.mark.parametrize(
    "line", ["", "   ", "\t", "# comment", "  # indented", '#echo "unterminated', "\xa0#x"]
)
def test_blank_and_comment_lines_are_nothing(line: str) -> None:
    assert parse(line) is None


@pytest.mark.parametrize(
    ("line", "word"),
    [
        ("vm info", "vm"),
        ("vm config memory 2048", "vm"),
        ("cc exec ls", "cc"),
        ("v x", "viz"),  # of v's commands only viz takes one free word
        ("dnsmasq", "dnsmasq"),
        ("nuke", "nuke"),
        ("write /tmp/h", "write"),
        ("quit 5", "quit"),
        ("clear vm tag", "clear vm"),
        ("clear cc", "clear cc"),
        ("clear deploy flags", "clear deploy"),
        ("ns load cpucommit", "ns load"),
        ("ns queueing true", "ns queueing"),
        ("mesh send all pipe", "mesh"),
    ],
)
def test_unsupported_minimega_commands(line: str, word: str) -> None:
    assert parse(line) == Unsupported(word)


def test_same_shape_different_words() -> None:
    # lines of one shape share a cached plan; the words must still be their own
    assert parse("pipe a 1") == PipeWrite("a", "1")
    assert parse("pipe b 2") == PipeWrite("b", "2")
    assert parse(".json true namespace n pipe p q") == FlagWrap(
        "json", True, NamespaceRun("n", PipeWrite("p", "q"))
    )
    assert parse(".csv false namespace m pipe r s") == FlagWrap(
        "csv", False, NamespaceRun("m", PipeWrite("r", "s"))
    )


def test_long_lines() -> None:
    words = tuple(f"w{n}" for n in range(5000))
    assert parse("echo " + " ".join(words)) == Echo(words)
    assert parse("plumb " + " ".join(words)) == Plumb(words)
    with pytest.raises(CommandError, match="invalid command"):
        parse("pipe " + " ".join(words))


def test_deep_nesting() -> None:
    command = parse(".json true " * 1000 + "pipe x y")
    for _ in range(1000):
        assert isinstance(command, FlagWrap)
        command = command.command
    assert command == PipeWrite("x", "y")
    with pytest.raises(CommandError, match="invalid command"):
        parse(".json true " * 1000 + "p")


# Words that exercise prefix matching, quoting and the lexer's corners.
_HOSTILE_WORDS = st.sampled_from(
    [
        "pipe", "p", "pi", "plumb", "clear", "cl", "mode", "m", "r", "ro", "all", "log", "t",
        "via", ".json", ".j", "true", ".columns", ".c", "name", "namespace", "ns", "run", "echo",
        "e", "exit", "vm", "v", "", '""', "''", '"', "'", "\\", "\\n", "\\q", "#", "a#b", "x",
        "\x00", "\xa0", "\x1c", "é", "🙂", "\u2028", '"a b"', "'a\\'b'", "\\#", "$HOME",
    ]
)
_HOSTILE_LINES = st.one_of(
    st.text(st.characters(exclude_categories=())),  # lone surrogates too, as surrogateescape gives
    st.lists(_HOSTILE_WORDS, max_size=12).map(" ".join),
    st.lists(_HOSTILE_WORDS, max_size=40).map("".join),
    st.integers(min_value=1, max_value=300).map(lambda n: ".json true " * n + "pipe"),
    st.integers(min_value=1, max_value=50).map(lambda n: "\\" * n + '"' * n),
)


@settings(max_examples=300, deadline=None)
@given(_HOSTILE_LINES)
def test_any_line_is_a_command_nothing_or_a_command_error(line: str) -> None:
    try:
        outcome: Command | str | None = parse(line)
    except CommandError as error:
        outcome = str(error)
    if isinstance(outcome, str):
        assert outcome  # a message to show, never an empty one
    else:
        assert outcome is None or isinstance(outcome, typing.get_args(Command))
