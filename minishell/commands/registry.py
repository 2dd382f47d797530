"""One declaration per command, as minimega's handlers are: patterns, help, the call.

Every command module lists its `Handler`s in `HANDLERS`; `minishell.commands`
names the modules. From them alone come the grammar (a lark rule per pattern),
`help`, and Tab completion. minimega 2.9's other patterns
(grammar/minimega-2.9.patterns) are registered too, answering `minishell does
not implement ...`, so that prefixes stay as ambiguous as in minimega.

A handler's `call` gets a `Context` (the session, and where its replies go)
and the compiled `Command`; it returns the local host's `Response` (None for
an empty one) or raises CommandError or PlumberError, whose text is the
error. A handler with a `(command)` item that wraps the command it names
(`.json true pipe`, `namespace foo pipe`) declares a `Wrapper` for it: the
session runs the command inside it, so that nesting a thousand deep needs no
recursion.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import TYPE_CHECKING, Protocol, TypeAlias

from minishell.errors import CommandError
from minishell.language.command import Command as GenericCommand
from minishell.language.complete import Completer
from minishell.language.parser import Form, Parser
from minishell.language.patterns import Pattern, display, parse_pattern, variants
from minishell.reply import Reply, Response

if TYPE_CHECKING:
    from minishell.namespace import Namespace
    from minishell.plumber import Plumber
    from minishell.session import Session

Command: TypeAlias = GenericCommand["Handler"]
Sink: TypeAlias = Callable[[Reply], Awaitable[None]]
Call: TypeAlias = Callable[["Context", Command], Awaitable[Response | None]]
Suggester: TypeAlias = Callable[["Session"], Iterable[str]]
"""The values a string or list item may take, for completion (minicli's Suggest)."""


def command_of(handler: Handler, strings: Mapping[str, str] | None = None,
               subcommand: Command | None = None) -> Command:
    """A command built rather than compiled from a line."""
    return GenericCommand(handler, strings or {}, subcommand=subcommand)


class Context:
    """What a handler sees: the session, and where the replies of its command go."""

    __slots__ = ("emit", "session")

    def __init__(self, session: Session, emit: Sink) -> None:
        self.session = session
        self.emit = emit

    @property
    def plumber(self) -> Plumber:
        return self.session.plumber

    @property
    def namespace(self) -> Namespace:
        """The active namespace."""
        return self.session.namespaces.active

    @property
    def hostname(self) -> str:
        return self.session.hostname

    def text(self, text: str) -> Response:
        return Response(self.session.hostname, response=text)

    def table(self, header: list[str], rows: list[list[str]]) -> Response:
        return Response(self.session.hostname, header=header, tabular=rows)


class Wrapper(Protocol):
    """How a wrapping command (`.columns x pipe`) runs around the command it names.

    Made for each run with the context and the wrapping command. `enter` runs
    before the inner command (raising CommandError runs nothing), `leave`
    after it if `enter` succeeded, and `transform` sees every reply of the
    inner command on its way out (raising CommandError replaces the reply by
    the error). `preprocess` says whether the inner command's arguments are
    expanded, given whether this level's were.
    """

    def enter(self) -> None: ...

    def leave(self) -> None: ...

    def transform(self, reply: Reply) -> Reply: ...

    def preprocess(self, enabled: bool) -> bool: ...


WrapperFactory: TypeAlias = Callable[["Context", Command], Wrapper]


class PlainWrapper:
    """A Wrapper that changes nothing; wrappers override what they need."""

    def __init__(self, ctx: Context, command: Command) -> None:
        self.ctx = ctx
        self.command = command

    def enter(self) -> None:
        pass

    def leave(self) -> None:
        pass

    def transform(self, reply: Reply) -> Reply:
        return reply

    def preprocess(self, enabled: bool) -> bool:
        return enabled


def recorded(command: Command, recording: bool) -> bool:
    """minicli's default: a command is recorded when the `.record` flag is on."""
    return recording


def never_recorded(command: Command, recording: bool) -> bool:
    return False


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Handler:
    """One minicli handler.

    `patterns` in minicli's syntax, in the order `help` lists them; `short`
    and `long` its help (`long` defaults to `short`). `wrapper` runs the
    matches that have a nested command, `call` the others. `record` decides
    whether a run goes into `history`, given the `.record` flag when it was
    compiled. `streams`: the handler emits its own
    replies through the context (`read`) and returns only a last one, if any.
    `suggest` completes string and list items by key. `minimega`: the patterns
    are minimega 2.9's own (a test holds them to its list); minishell's own
    words are `exact_only`, never matched by a prefix. `listed`: offered by
    completion; `in_help`: listed by `help`.
    """

    patterns: tuple[str, ...]
    short: str = ""
    long: str = ""
    call: Call | None = None
    wrapper: WrapperFactory | None = None
    record: Callable[[Command, bool], bool] = recorded
    streams: bool = False
    suggest: Mapping[str, Suggester] = field(default_factory=dict)
    minimega: bool = True
    exact_only: bool = False
    listed: bool = True  # offered by completion: False for what minishell does not run
    in_help: bool = True
    parsed: tuple[Pattern, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.call is None and self.wrapper is None:
            raise ValueError(f"{self.patterns}: a handler needs a call or a wrapper")
        parsed = tuple(parse_pattern(pattern) for pattern in self.patterns)
        object.__setattr__(self, "parsed", parsed)

    @property
    def help_text(self) -> str:
        return self.long or self.short

    def __repr__(self) -> str:
        return f"Handler({', '.join(map(repr, self.patterns))})"


# -- the commands minishell does not run -----------------------------------------------------------


def _leading_words(pattern: Pattern) -> list[str]:
    """The words a pattern starts with: its literals and one-word choices."""
    words: list[str] = []
    for item in pattern:
        if item.kind not in ("literal", "choice") or len(item.keywords) != 1:
            break
        words.append(item.keywords[0])
    return words


def _pattern_name(pattern: Pattern, implemented: set[tuple[str, ...]]) -> str:
    """How `minishell does not implement` names a command: its leading words, as
    many as it takes to leave what minishell implements (`vm`, `clear vm`,
    `file stream`, `clear cc mount`)."""
    words = _leading_words(pattern) or [pattern[0].key]
    count = 1
    while count < len(words) and tuple(words[:count]) in implemented:
        count += 1
    return " ".join(words[:count])


def _unsupported(name: str) -> Call:
    async def call(ctx: Context, command: Command) -> Response | None:
        raise CommandError(f"minishell does not implement `{name}`")

    return call


def minimega_patterns() -> list[tuple[str, str]]:
    """minimega 2.9's (pattern, short help) pairs, in `help`'s order."""
    text = resources.files("minishell.grammar").joinpath("minimega-2.9.patterns").read_text()
    pairs = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            pattern, _, short = line.partition("\t")
            pairs.append((pattern, short))
    return pairs


def unsupported_handlers(implemented: Iterable[Handler]) -> list[Handler]:
    """A handler per command name for what minimega 2.9 has and no module implements.

    Patterns are compared variant by variant (`quit` implemented leaves
    `quit <delay>` of minimega's `quit [delay]`), so that no two handlers
    claim the same words.
    """
    taken = {display(variant) for handler in implemented for pattern in handler.parsed
             for variant in variants(pattern)}
    # Every run of leading words an implemented pattern starts with.
    implemented_words = {tuple(words[:count]) for handler in implemented
                         for pattern in handler.parsed
                         for words in [_leading_words(pattern)]
                         for count in range(1, len(words) + 1)}
    grouped: dict[str, list[tuple[str, str]]] = {}
    for text, short in minimega_patterns():
        pattern = parse_pattern(text)
        group = grouped.setdefault(_pattern_name(pattern, implemented_words), [])
        left = [variant for variant in variants(pattern) if display(variant) not in taken]
        if len(left) == len(variants(pattern)):
            group.append((text, short))
            continue
        for variant in left:  # the last item, optional in the pattern, is there
            required = (*variant[:-1], replace(variant[-1], optional=False))
            group.append((display(required), short))
    return [
        Handler(tuple(pattern for pattern, _ in pairs), short=pairs[0][1],
                call=_unsupported(name), listed=False)
        for name, pairs in grouped.items() if pairs
    ]


# -- the registry ----------------------------------------------------------------------------------


class Registry:
    """Every handler, and the parser built from their patterns."""

    def __init__(self, implemented: Sequence[Handler]) -> None:
        self.implemented = tuple(implemented)
        self.handlers = (*self.implemented, *unsupported_handlers(self.implemented))
        self.parser: Parser[Handler] = Parser([
            Form(pattern, handler, handler.exact_only)
            for handler in self.handlers for pattern in handler.parsed
        ])
        self._completer = Completer([Form(pattern, handler) for handler in self.handlers
                                     if handler.listed for pattern in handler.parsed])

    def parse(self, line: str) -> Command | None:
        return self.parser.parse(line)

    def complete(self, text_before_cursor: str, session: Session) -> list[str]:
        """Tab completion: the candidates for the word under the cursor."""

        def suggest(handler: Handler, key: str) -> Iterable[str]:
            suggester = handler.suggest.get(key)
            return () if suggester is None else suggester(session)

        return self._completer.complete(text_before_cursor, suggest)


@functools.cache
def registry() -> Registry:
    from minishell.commands import MODULES  # the modules import this one

    return Registry([handler for module in MODULES for handler in module.HANDLERS])
