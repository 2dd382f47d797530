"""Lines -> commands, with minicli's prefix matching and error texts.

A compiled command is described here by its handler (named by its first
pattern), the words bound to its items and its nested command.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minishell.commands.registry import Command, registry
from minishell.errors import CommandError

Described = tuple[str, dict[str, Any], tuple[str, ...], "Described | None"]


def parse(line: str) -> Command | None:
    return registry().parse(line)


def described(command: Command | None) -> Described | None:
    if command is None:
        return None
    arguments: dict[str, Any] = {**command.strings, **command.lists}
    return (command.handler.patterns[0], arguments, tuple(sorted(command.bools)),
            described(command.subcommand))


def form(pattern: str, *bools: str, sub: Described | None = None, **arguments: Any) -> Described:
    return (pattern, arguments, tuple(sorted(bools)), sub)


def pipe_list() -> Described:
    return form("pipe")


def pipe_write(pipe: str, data: str) -> Described:
    return form("pipe <pipe> <data>", pipe=pipe, data=data)


def pipe_set_mode(pipe: str, mode: str) -> Described:
    return form("pipe", "mode", mode, pipe=pipe)


def pipe_set_log(pipe: str, enabled: bool) -> Described:
    return form("pipe", "log", "true" if enabled else "false", pipe=pipe)


def pipe_set_via(pipe: str, command: tuple[str, ...]) -> Described:
    return form("pipe <pipe> <data>", "via", pipe=pipe, command=command)


def clear_pipe(pipe: str | None) -> Described:
    return form("clear pipe [pipe]") if pipe is None else form("clear pipe [pipe]", pipe=pipe)


def clear_pipe_attr(pipe: str, attr: str) -> Described:
    return form("clear pipe [pipe]", attr, pipe=pipe)


def plumb_list() -> Described:
    return form("plumb")


def plumb(stages: tuple[str, ...]) -> Described:
    return form("plumb <src> <dst>...", src=stages[0], dst=stages[1:])


def clear_plumb(words: tuple[str, ...]) -> Described:
    if not words:
        return form("clear plumb [pipeline]...")
    return form("clear plumb [pipeline]...", pipeline=words)


def namespace_list() -> Described:
    return form("namespace [name]")


def namespace_switch(name: str) -> Described:
    return form("namespace [name]", name=name)


def namespace_run(name: str, sub: Described) -> Described:
    return form("namespace [name]", name=name, sub=sub)


def clear_namespace(name: str | None) -> Described:
    if name is None:
        return form("clear namespace [name]")
    return form("clear namespace [name]", name=name)


def echo(args: tuple[str, ...]) -> Described:
    return form("echo [args]...", args=args) if args else form("echo [args]...")


def shell(argv: tuple[str, ...]) -> Described:
    return form("shell <command>...", command=argv)


def background(argv: tuple[str, ...]) -> Described:
    return form("background <command>...", command=argv)


def help_(words: tuple[str, ...]) -> Described:
    return form("help [command]...", command=words) if words else form("help [command]...")


def read(path: str, check: bool) -> Described:
    return form("read <file> [check,]", *(("check",) if check else ()), file=path)


def flag_query(flag: str) -> Described:
    return form(f".{flag} [true,false]")


def flag_set(flag: str, value: bool) -> Described:
    return form(f".{flag} [true,false]", "true" if value else "false")


def flag_wrap(flag: str, value: bool, sub: Described) -> Described:
    return form(f".{flag} [true,false]", "true" if value else "false", sub=sub)


def columns(text: str, sub: Described) -> Described:
    return form(".columns <columns as csv> (command)", columns=text, sub=sub)


def filter_(text: str, sub: Described) -> Described:
    return form(".filter <filter> (command)", filter=text, sub=sub)


def alias_set(words: tuple[str, ...]) -> Described:
    return form(".alias", alias=words)


def env_get(name: str) -> Described:
    return form(".env [name]", name=name)


def env_set(name: str, value: str) -> Described:
    return form(".env [name]", name=name, value=value)


def unalias(name: str) -> Described:
    return form(".unalias <alias>", alias=name)


def ns_run(sub: Described) -> Described:
    return form("ns <hosts,>", "run", sub=sub)


@pytest.mark.parametrize(
    ("line", "command"),
    [
        # pipes
        ("pipe", pipe_list()),
        ('pipe d1 "hello world"', pipe_write("d1", "hello world")),
        ("pipe x mode all", pipe_set_mode("x", "all")),
        ("pipe x mode round-robin", pipe_set_mode("x", "round-robin")),
        ("pipe x log false", pipe_set_log("x", enabled=False)),
        ('pipe foo via normal -stddev 5.0', pipe_set_via("foo", ("normal", "-stddev", "5.0"))),
        ("clear pipe", clear_pipe(None)),
        ("clear pipe x", clear_pipe("x")),
        ("clear pipe x mode", clear_pipe_attr("x", "mode")),
        ("clear pipe x log", clear_pipe_attr("x", "log")),
        ("clear pipe x via", clear_pipe_attr("x", "via")),
        # with three words a keyword in the data slot is data (pipe_data_forms)
        ("pipe d2 mode", pipe_write("d2", "mode")),
        ("pipe d3 log", pipe_write("d3", "log")),
        ("pipe d4 via", pipe_write("d4", "via")),
        ("pipe x all", pipe_write("x", "all")),
        ("pipe foo pipe", pipe_write("foo", "pipe")),
        ("pipe mode mode all", pipe_set_mode("mode", "all")),
        ("clear pipe mode", clear_pipe("mode")),
        # pipelines
        ("plumb", plumb_list()),
        ('plumb foo "sed -u s/foo/moo/" bar', plumb(("foo", "sed -u s/foo/moo/", "bar"))),
        ("clear plumb", clear_plumb(())),
        ("clear plumb a b", clear_plumb(("a", "b"))),
        # namespaces
        ("namespace", namespace_list()),
        ("namespace beta", namespace_switch("beta")),
        ("namespace beta pipe p v", namespace_run("beta", pipe_write("p", "v"))),
        ("clear namespace", clear_namespace(None)),
        ("clear namespace beta", clear_namespace("beta")),
        ("ns hosts", form("ns <hosts,>", "hosts")),
        ("ns run pipe", ns_run(pipe_list())),
        # other commands
        ("echo", echo(())),
        ('echo x "" y', echo(("x", "", "y"))),
        ("echo pipe mode", echo(("pipe", "mode"))),
        ("shell sleep 1", shell(("sleep", "1"))),
        ("background sleep 10", background(("sleep", "10"))),
        ("help", help_(())),
        ("help clear pipe", help_(("clear", "pipe"))),
        ("history", form("history")),
        ("clear history", form("clear history")),
        ("read /tmp/x.mm", read("/tmp/x.mm", check=False)),
        ("read /tmp/x.mm check", read("/tmp/x.mm", check=True)),
        ("clear all", form("clear all")),
        ("quit", form("quit [delay]")),
        ("exit", form("exit")),
        ("version", form("version")),
        # dot-builtins
        (".json", flag_query("json")),
        (".csv true", flag_set("csv", value=True)),
        (".record false", flag_set("record", value=False)),
        (".preprocess false pipe env4 $V",
         flag_wrap("preprocess", False, pipe_write("env4", "$V"))),
        (".columns name,previous pipe", columns("name,previous", pipe_list())),
        (".filter name=bar .columns name pipe", filter_("name=bar", columns("name", pipe_list()))),
        (".alias", form(".alias")),
        (".alias say=echo said", alias_set(("say=echo", "said"))),
        (".alias spaced = echo x", alias_set(("spaced", "=", "echo", "x"))),
        ('.alias "q=echo a  b"', alias_set(("q=echo a  b",))),
        (".unalias pl", unalias("pl")),
        (".env", form(".env [name]")),
        (".env MMSPEC_V", env_get("MMSPEC_V")),
        ('.env MMSPEC_V ""', env_set("MMSPEC_V", "")),
        # comments and trailing comments
        ("pipe c1 value # comment after data", pipe_write("c1", "value")),
        ("  pipe   c1   v  ", pipe_write("c1", "v")),
    ],
)
def test_commands(line: str, command: Described) -> None:
    assert described(parse(line)) == command


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("pip Upper one", pipe_write("Upper", "one")),
        ("pi", pipe_list()),
        ("pipe x mode ro", pipe_set_mode("x", "round-robin")),
        ("pipe x mode ra", pipe_set_mode("x", "random")),
        ("pipe x mode a", pipe_set_mode("x", "all")),
        ("pipe x log t", pipe_set_log("x", enabled=True)),
        ("pipe x v normal", pipe_set_via("x", ("normal",))),
        ("cl pi x", clear_pipe("x")),
        ("cl pi x m", clear_pipe_attr("x", "mode")),
        ("clear pl", clear_plumb(())),
        ("e x", echo(("x",))),
        ("e", echo(())),
        ("s x", shell(("x",))),  # status only takes `updates`
        ("h x", help_(("x",))),  # history takes nothing, host only its choices
        ("n beta", namespace_switch("beta")),
        ("b sleep 1", background(("sleep", "1"))),
        ("q", form("quit [delay]")),  # qos needs `add`
        ("ver", form("version")),
        ("read f c", read("f", check=True)),
        (".h", flag_query("headers")),
        (".an", flag_query("annotate")),
        (".al", form(".alias")),
        (".an t", flag_set("annotate", value=True)),
        (".c name pipe", columns("name", pipe_list())),  # .csv/.compress only take true|false
        (".col name pipe", columns("name", pipe_list())),
        (".j t pi x y", flag_wrap("json", True, pipe_write("x", "y"))),
        ("namespace a b c", namespace_run("a", background(("c",)))),  # b is only background here
        (".u pl", unalias("pl")),
        # the nested command is resolved on its own: ambiguity there is fatal only there
        ("namespace a .a", None),
        # minicli drops a child whose own subtree is ambiguous: pipe's `mode r`
        # is, so the only remaining match is plumb
        ("p x mode r", plumb(("x", "mode", "r"))),
    ],
)
def test_prefixes(line: str, command: Described | None) -> None:
    if command is None:
        with pytest.raises(CommandError, match="invalid command"):
            parse(line)
    else:
        assert described(parse(line)) == command


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
        ("cc tunnel list all", "cc tunnel"),
        ("cc mount", "cc mount"),
        ("v x", "viz"),  # of v's commands only viz takes one free word
        ("dnsmasq", "dnsmasq"),
        ("nuke", "nuke"),
        ("file stream a.txt", "file stream"),  # file is implemented but for stream
        ("log syslog remote udp x:514", "log syslog"),
        ("debug cpu stop", "debug cpu"),
        ("log mesh", "log mesh"),
        ("clear vm tag", "clear vm"),
        ("clear cc mount", "clear cc mount"),
        ("clear deploy flags", "clear deploy"),
        ("ns load cpucommit", "ns load"),
        ("ns queueing true", "ns queueing"),
    ],
)
async def test_unsupported_minimega_commands(line: str, word: str) -> None:
    command = parse(line)
    assert command is not None and command.handler.call is not None
    assert not command.handler.listed
    with pytest.raises(CommandError) as raised:
        await command.handler.call(None, command)  # type: ignore[arg-type]
    assert str(raised.value) == f"minishell does not implement `{word}`"


def test_same_shape_different_words() -> None:
    # lines of one shape share a cached plan; the words must still be their own
    assert described(parse("pipe a 1")) == pipe_write("a", "1")
    assert described(parse("pipe b 2")) == pipe_write("b", "2")
    assert described(parse(".json true namespace n pipe p q")) == flag_wrap(
        "json", True, namespace_run("n", pipe_write("p", "q"))
    )
    assert described(parse(".csv false namespace m pipe r s")) == flag_wrap(
        "csv", False, namespace_run("m", pipe_write("r", "s"))
    )


def test_long_lines() -> None:
    words = tuple(f"w{n}" for n in range(5000))
    assert described(parse("echo " + " ".join(words))) == echo(words)
    assert described(parse("plumb " + " ".join(words))) == plumb(words)
    with pytest.raises(CommandError, match="invalid command"):
        parse("pipe " + " ".join(words))


def test_deep_nesting() -> None:
    command = parse(".json true " * 1000 + "pipe x y")
    for _ in range(1000):
        assert command is not None and command.handler.patterns[0] == ".json [true,false]"
        command = command.subcommand
    assert described(command) == pipe_write("x", "y")
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
        assert outcome is None or outcome.handler in registry().handlers


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("bogus\nline", "bogus\\nline"),
        ("bo\x01gus \u2028x\ry", "bo\\x01gus \\u2028x\\ry"),
        ("tab\tstays", "tab\tstays"),
    ],
)
def test_an_invalid_command_is_shown_on_one_line(line: str, shown: str) -> None:
    with pytest.raises(CommandError) as raised:
        parse(line)
    assert str(raised.value) == f"invalid command: `{shown}`"
