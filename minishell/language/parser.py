"""A line of minimega's language -> a command object, matched as minicli matches.

minicli (pkg/minicli/trie.go) walks a trie of every pattern. A word takes any
keyword it is a prefix of, or any string slot; at each trie node the children
that compile are compared: one is taken, or else the single one written with
full keywords ("exact"), or else none. Lists take the rest of the line, and a
`(command)` slot compiles the rest on its own, counting as exact.

Here the patterns are the LALR grammar `minimega.lark`, and the trie walk is a
depth-first search that feeds lark's interactive parser each token a word could
be. The search result depends only on the line's *shape* (which keywords each
word could be, and which it spells in full), not on the data, so it is cached
per shape as a small builder that makes the command from the words.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias, cast

import lark
from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedInput, VisitError

from minishell.errors import CommandError
from minishell.gostr import trim_space
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
    FlagName,
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
    PipeAttr,
    PipeList,
    PipeMode,
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
from minishell.language.lexer import lex

if TYPE_CHECKING:
    from lark.parsers.lalr_parser_state import ParserState

Builder: TypeAlias = Callable[[Sequence[str], int, "Command | None"], Command]
"""Makes a command from the line's words, given the index of the command's first
word and, for a command with a `(command)` slot, the nested command."""

WORD = "WORD"
REST = "REST"
SUBCOMMAND = "SUBCOMMAND"
END = "$END"
_SLOTS = frozenset({WORD, REST, SUBCOMMAND})

# minishell's own word: offered only when typed in full, so that it cannot make
# any of minimega's prefixes (`e` is echo) ambiguous.
_EXACT_ONLY = frozenset({"exit"})

# Lines up to this many words share the per-shape cache; longer ones (rare, and
# each of them its own shape) are matched afresh so the cache stays small.
_CACHED_WORDS = 32


@dataclass(frozen=True, slots=True, eq=False)
class Shape:
    """What one word can be as a keyword. Interned: equal shapes are one object."""

    keywords: frozenset[str]  # terminal names of the keywords the word is a prefix of
    exact: str | None  # the keyword's terminal name if the word spells it in full


NO_KEYWORD = Shape(frozenset(), None)


@dataclass(frozen=True, slots=True)
class Language:
    """The grammar and the keyword tables derived from it."""

    start: ParserState[int]  # lark's interactive parser state before any token: copy, then feed
    literals: Mapping[str, str]  # keyword terminal name -> the keyword
    shapes: Mapping[str, Shape]  # word -> its shape, for every prefix of a keyword

    def shape(self, word: str) -> Shape:
        return self.shapes.get(word, NO_KEYWORD)

    def begin(self) -> ParserState[int]:
        return self.start.copy(deepcopy_values=False)


def actions(state: ParserState[int]) -> Mapping[str, object]:
    """The token types (and rule names) the LALR table has an action for in this
    state: a superset of what is accepted, as a reduction may still fail."""
    return state.parse_conf.states[state.position]


def feed(state: ParserState[int], token_type: str, value: object) -> ParserState[int] | None:
    """A copy of the state advanced by one token, or None if it is not accepted.

    Sub-trees are shared between copies, which is safe: they are never mutated.
    """
    branch = state.copy(deepcopy_values=False)
    try:
        branch.feed_token(Token(token_type, value))
    except UnexpectedInput:
        return None
    return branch


def _grammar_cache() -> str | bool:
    """Where lark keeps the analysed LALR tables: building them takes 0.4 s, loading 0.06 s.

    A folder of the user's own (not lark's default in the shared /tmp, where
    another user could plant the pickle lark loads). lark checks the grammar's
    hash before using the file. No cache when the folder cannot be made.
    """
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(home, "minishell")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return False
    if not os.access(folder, os.W_OK):
        return False
    return os.path.join(folder, f"grammar-lark-{lark.__version__}.cache")


@functools.cache
def language() -> Language:
    parser = Lark.open_from_package(
        "minishell.grammar", "minimega.lark", parser="lalr", maybe_placeholders=True,
        cache=_grammar_cache(),
    )
    literals = {t.name: t.pattern.value for t in parser.terminals}
    return Language(parser.parse_interactive().parser_state, literals, _shapes(literals))


def _shapes(literals: Mapping[str, str]) -> dict[str, Shape]:
    keywords: dict[str, set[str]] = {}
    for name, keyword in literals.items():
        lengths = [len(keyword)] if keyword in _EXACT_ONLY else range(len(keyword) + 1)
        for prefix in (keyword[:n] for n in lengths):
            keywords.setdefault(prefix, set()).add(name)
    exact = {keyword: name for name, keyword in literals.items()}
    interned: dict[tuple[frozenset[str], str | None], Shape] = {}
    shapes = {}
    for word, names in keywords.items():
        key = (frozenset(names), exact.get(word))
        shapes[word] = interned.setdefault(key, Shape(*key))
    return shapes


def parse(line: str) -> Command | None:
    """Compile a line as minicli does: None for a blank or comment line.

    Raises CommandError with minimega's text: a lexer error as is, otherwise
    ``invalid command: `<line>` `` with the trimmed line as typed.
    """
    text = trim_space(line)
    # minicli lexes before its comment check, but a line starting with `#` lexes
    # to nothing and cannot fail, so the check can come first.
    if not text or text[0] == "#":
        return None
    words = lex(text)
    shapes = language().shapes
    line_shape = tuple(map(shapes.get, words))
    plan = _cached_plan(line_shape) if len(words) <= _CACHED_WORDS else _plan(line_shape)
    if plan is None:
        raise CommandError(f"invalid command: `{text}`")
    return plan.build(words)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How lines of one shape become commands: a builder per nesting level,
    outermost first, each with the index of its command's first word."""

    levels: tuple[tuple[int, Builder], ...]

    def build(self, words: Sequence[str]) -> Command:
        command: Command | None = None
        for start, builder in reversed(self.levels):  # innermost first: no recursion
            command = builder(words, start, command)
        assert command is not None
        return command


def _plan(line_shape: tuple[Shape | None, ...]) -> _Plan | None:
    """The plan for lines of this shape, or None if minicli rejects them.

    A `(command)` slot needs the rest of the line resolved first. Rather than
    recurse (a line may nest `.json true` a thousand times), the search asks for
    it by raising _NeedNested and runs again once it is known.
    """
    resolved: dict[int, _Match | None] = {}
    pending = [0]
    while pending:
        start = pending[-1]
        search = _Search(language(), line_shape, start, resolved)
        try:
            resolved[start] = search.descend(search.language.begin(), start)
        except _NeedNested as need:
            pending.append(need.start)
            continue
        pending.pop()
    levels = []
    level: int | None = 0
    while level is not None:
        match = resolved[level]
        if match is None:
            return None
        levels.append((level, match.build))
        level = match.nested
    return _Plan(tuple(levels))


_cached_plan = functools.lru_cache(maxsize=4096)(_plan)


class _NeedNested(Exception):
    def __init__(self, start: int) -> None:
        super().__init__(start)
        self.start = start


@dataclass(frozen=True, slots=True)
class _Match:
    """A complete parse of one nesting level."""

    build: Builder
    exact: bool  # every keyword written in full
    nested: int | None  # where its nested command starts


@dataclass(frozen=True, slots=True)
class _Search:
    """minicli's trie.compile for the command starting at word `base`."""

    language: Language
    line_shape: tuple[Shape | None, ...]
    base: int
    resolved: Mapping[int, _Match | None]

    def descend(self, state: ParserState[int], index: int) -> _Match | None:
        possible = actions(state)
        end = len(self.line_shape)
        if index == end:
            return self._finish(state) if END in possible else None
        shape = self.line_shape[index] or NO_KEYWORD
        matches = []
        for token_type in _SLOTS.intersection(possible) | shape.keywords.intersection(possible):
            following, exact = index + 1, True
            if token_type == REST:
                following = end
            elif token_type == SUBCOMMAND:
                if index not in self.resolved:
                    raise _NeedNested(index)
                if self.resolved[index] is None:
                    continue
                following = end
            elif token_type != WORD:
                exact = token_type == shape.exact
            branch = feed(state, token_type, index - self.base)
            if branch is None:
                continue
            found = self.descend(branch, following)
            if found is not None:
                nested = index if token_type == SUBCOMMAND else found.nested
                matches.append(_Match(found.build, found.exact and exact, nested))
        return _choose(matches)

    def _finish(self, state: ParserState[int]) -> _Match | None:
        try:
            tree = state.feed_token(Token(END, ""), is_end=True)
        except UnexpectedInput:
            return None
        return _Match(_to_builder(tree, self.language.literals), exact=True, nested=None)


def _choose(matches: Sequence[_Match]) -> _Match | None:
    """trie.compile's tie-break: the only match, or the only exact one."""
    if len(matches) == 1:
        return matches[0]
    exact = [match for match in matches if match.exact]
    return exact[0] if len(exact) == 1 else None


def _to_builder(tree: Tree[Token], literals: Mapping[str, str]) -> Builder:
    try:
        return _Builders(literals).transform(tree)
    except VisitError as error:  # lark wraps what its callbacks raise
        raise error.orig_exc from None


def _constant(command: Command) -> Builder:
    return lambda words, base, inner: command


def _rest(words: Sequence[str], start: int) -> tuple[str, ...]:
    return tuple(words[start:])


def _given(inner: Command | None) -> Command:
    """The nested command, which _Plan.build always passes to a level that has one."""
    assert inner is not None
    return inner


@v_args(inline=True)
class _Builders(Transformer[Token, Builder]):
    """A parse tree -> a builder. WORD and REST tokens carry the index of their
    word, relative to the command's first word; keyword tokens are read by type,
    since the word may be a prefix of the keyword."""

    def __init__(self, literals: Mapping[str, str]) -> None:
        super().__init__()
        self._literals = literals

    def _keyword(self, token: Token) -> str:
        return self._literals[token.type]

    # -- choices --------------------------------------------------------------
    def pipe_mode(self, token: Token) -> PipeMode:
        return cast("PipeMode", self._keyword(token))

    def pipe_attr(self, token: Token) -> PipeAttr:
        return cast("PipeAttr", self._keyword(token))

    def flag(self, token: Token) -> FlagName:
        return cast("FlagName", self._keyword(token).removeprefix("."))

    def boolean(self, token: Token) -> bool:
        return self._keyword(token) == "true"

    def read_check(self, token: Token) -> bool:
        return True

    # -- pipes ----------------------------------------------------------------
    def pipe_list(self) -> Builder:
        return _constant(PipeList())

    def pipe_write(self, pipe: Token, data: Token) -> Builder:
        p, d = pipe.value, data.value
        return lambda words, base, inner: PipeWrite(words[base + p], words[base + d])

    def pipe_set_mode(self, pipe: Token, mode: PipeMode) -> Builder:
        p = pipe.value
        return lambda words, base, inner: PipeSetMode(words[base + p], mode)

    def pipe_set_log(self, pipe: Token, enabled: bool) -> Builder:
        p = pipe.value
        return lambda words, base, inner: PipeSetLog(words[base + p], enabled)

    def pipe_set_via(self, pipe: Token, command: Token) -> Builder:
        p, c = pipe.value, command.value
        return lambda words, base, inner: PipeSetVia(words[base + p], _rest(words, base + c))

    def clear_pipe(self, pipe: Token | None) -> Builder:
        if pipe is None:
            return _constant(ClearPipe(None))
        p = pipe.value
        return lambda words, base, inner: ClearPipe(words[base + p])

    def clear_pipe_attr(self, pipe: Token, attr: PipeAttr) -> Builder:
        p = pipe.value
        return lambda words, base, inner: ClearPipeAttr(words[base + p], attr)

    # -- pipelines ------------------------------------------------------------
    def plumb_list(self) -> Builder:
        return _constant(PlumbList())

    def plumb(self, source: Token, destinations: Token) -> Builder:
        s = source.value
        return lambda words, base, inner: Plumb(_rest(words, base + s))

    def clear_plumb(self, pipeline: Token | None) -> Builder:
        if pipeline is None:
            return _constant(ClearPlumb(()))
        p = pipeline.value
        return lambda words, base, inner: ClearPlumb(_rest(words, base + p))

    # -- namespaces -----------------------------------------------------------
    def namespace_list(self) -> Builder:
        return _constant(NamespaceList())

    def namespace_switch(self, name: Token) -> Builder:
        n = name.value
        return lambda words, base, inner: NamespaceSwitch(words[base + n])

    def namespace_run(self, name: Token, command: Token) -> Builder:
        n = name.value
        return lambda words, base, inner: NamespaceRun(words[base + n], _given(inner))

    def clear_namespace(self, name: Token | None) -> Builder:
        if name is None:
            return _constant(ClearNamespace(None))
        n = name.value
        return lambda words, base, inner: ClearNamespace(words[base + n])

    def ns_hosts(self) -> Builder:
        return _constant(NsHosts())

    def ns_run(self, command: Token) -> Builder:
        return lambda words, base, inner: NsRun(_given(inner))

    # -- other commands -------------------------------------------------------
    def echo(self, args: Token | None) -> Builder:
        if args is None:
            return _constant(Echo(()))
        a = args.value
        return lambda words, base, inner: Echo(_rest(words, base + a))

    def shell(self, argv: Token) -> Builder:
        a = argv.value
        return lambda words, base, inner: Shell(_rest(words, base + a))

    def background(self, argv: Token) -> Builder:
        a = argv.value
        return lambda words, base, inner: Background(_rest(words, base + a))

    def help(self, topic: Token | None) -> Builder:
        if topic is None:
            return _constant(Help(()))
        t = topic.value
        return lambda words, base, inner: Help(_rest(words, base + t))

    def history(self) -> Builder:
        return _constant(History())

    def clear_history(self) -> Builder:
        return _constant(ClearHistory())

    def read(self, path: Token, check: bool | None) -> Builder:
        p, checking = path.value, bool(check)
        return lambda words, base, inner: Read(words[base + p], checking)

    def clear_all(self) -> Builder:
        return _constant(ClearAll())

    def quit(self) -> Builder:
        return _constant(Quit())

    def version(self) -> Builder:
        return _constant(Version())

    # -- dot-builtins ---------------------------------------------------------
    def flag_query(self, flag: FlagName) -> Builder:
        return _constant(FlagQuery(flag))

    def flag_set(self, flag: FlagName, value: bool) -> Builder:
        return _constant(FlagSet(flag, value))

    def flag_wrap(self, flag: FlagName, value: bool, command: Token) -> Builder:
        return lambda words, base, inner: FlagWrap(flag, value, _given(inner))

    def columns(self, columns: Token, command: Token) -> Builder:
        c = columns.value
        return lambda words, base, inner: Columns(words[base + c], _given(inner))

    def filter(self, filter_: Token, command: Token) -> Builder:
        f = filter_.value
        return lambda words, base, inner: Filter(words[base + f], _given(inner))

    def alias_list(self) -> Builder:
        return _constant(AliasList())

    def alias_set(self, alias: Token) -> Builder:
        a = alias.value
        return lambda words, base, inner: AliasSet(" ".join(words[base + a :]))

    def unalias(self, name: Token) -> Builder:
        n = name.value
        return lambda words, base, inner: Unalias(words[base + n])

    def env_list(self) -> Builder:
        return _constant(EnvList())

    def env_get(self, name: Token) -> Builder:
        n = name.value
        return lambda words, base, inner: EnvGet(words[base + n])

    def env_set(self, name: Token, value: Token) -> Builder:
        n, v = name.value, value.value
        return lambda words, base, inner: EnvSet(words[base + n], words[base + v])

    # -- minimega commands minishell does not run -----------------------------
    def unsupported(self, command: Token, *arguments: Token | None) -> Builder:
        word = self._keyword(command)
        if word in ("clear", "ns"):  # named by their subcommand: `clear vm`, `ns load`
            subcommand = arguments[0]
            assert subcommand is not None
            word = f"{word} {self._keyword(subcommand)}"
        return _constant(Unsupported(word))
