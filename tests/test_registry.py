"""The command registry: one declaration per command is the single source."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from minishell.commands import MODULES
from minishell.commands.registry import (
    Command,
    Context,
    Handler,
    Registry,
    minimega_patterns,
    registry,
)
from minishell.errors import CommandError
from minishell.help import help_text
from minishell.language.patterns import display, parse_pattern, variants
from minishell.reply import Response


def test_implemented_patterns_are_minimegas() -> None:
    """A handler that says it is minimega's uses minimega 2.9's exact patterns, so
    that what it matches and what `help` shows are minimega's."""
    known = {display(parse_pattern(pattern)) for pattern, _ in minimega_patterns()}
    for handler in registry().implemented:
        if handler.minimega:
            for pattern in handler.parsed:
                assert display(pattern) in known, handler


def test_every_minimega_pattern_is_in_the_language() -> None:
    """minimega's words all parse, implemented or not, so prefixes resolve as in 2.9."""
    forms = {display(variant) for form in registry().parser.forms
             for variant in variants(form.pattern)}
    for pattern, _ in minimega_patterns():
        for variant in variants(parse_pattern(pattern)):
            required = display(variant).replace("[", "<").replace("]", ">")
            assert display(variant) in forms or required in forms, pattern


def test_no_two_handlers_claim_the_same_words() -> None:
    seen: dict[str, Handler] = {}
    for form in registry().parser.forms:
        for variant in variants(form.pattern):
            claimed = display(variant)
            assert seen.setdefault(claimed, form.target) is form.target, claimed


def test_every_module_lists_its_handlers() -> None:
    for module in MODULES:
        assert module.HANDLERS and all(isinstance(h, Handler) for h in module.HANDLERS)


async def test_a_new_command_is_one_declaration() -> None:
    """What adding a command takes: a handler in a module's HANDLERS. The grammar,
    help and completion follow from it."""

    async def greet(ctx: Context, command: Command) -> Response | None:
        return ctx.text(f"hello {command.string('name')}")

    greeting = Handler(patterns=("greet <name>", "greet <loudly,> <name>"), short="say hello",
                       call=greet, minimega=False,
                       suggest={"name": lambda session: ["world", "wide"]})
    extended = Registry([*registry().implemented, greeting])
    command = extended.parse("gr world")
    assert command is not None and command.handler is greeting
    assert command.strings == {"name": "world"}
    assert extended.parse("greet lo x") is not None
    session: Any = SimpleNamespace()
    assert extended.complete("greet w", session) == ["wide", "world"]
    assert extended.complete("gre", session) == ["greet"]
    assert help_text(("greet",), [greeting]) == (
        "Usage:\n\tgreet <name>\n\tgreet loudly <name>\n\nsay hello")
    context: Any = SimpleNamespace(text=lambda text: Response("vm", response=text))
    assert greeting.call is not None
    answer = await greeting.call(context, command)
    assert answer is not None and answer.response == "hello world"


def test_a_handler_needs_a_call_or_a_wrapper() -> None:
    with pytest.raises(ValueError, match="needs a call or a wrapper"):
        Handler(patterns=("nothing",))


def test_a_word_of_minishells_own_leaves_minimegas_prefixes_as_they_were() -> None:
    """`cc serial` is exact-only beside minimega's forms: its words must be written in
    full, and the words it shares with minimega's (`cc`, `clear`) keep their prefixes."""

    def target(line: str) -> tuple[str, ...]:
        command = registry().parse(line)
        assert command is not None
        return command.handler.patterns

    assert target("cc se foo")[0] == "cc"  # still `cc send foo`, as in minimega
    assert target("cl cc com")[0] == "clear cc"
    assert target("cc serial") == ("cc serial [path]...",)
    assert target("clear cc serial /x") == ("clear cc serial [path]",)
    for line in ("cc seria /x", "cl cc serial", "c serial"):
        with pytest.raises(CommandError, match="invalid command"):
            registry().parse(line)
