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
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Generic, TypeAlias

import lark
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from minishell.errors import CommandError
from minishell.gostr import trim_space
from minishell.language.command import Command, Target
from minishell.language.lexer import lex
from minishell.language.patterns import Item, Pattern, variants

if TYPE_CHECKING:
    from lark.parsers.lalr_parser_state import ParserState

Builder: TypeAlias = Callable[[Sequence[str], int, "Command[Any] | None"], "Command[Any]"]
"""Makes a command from the line's words, given the index of the command's first
word and, for a command with a `(command)` item, the nested command."""

WORD = "WORD"
REST = "REST"
SUBCOMMAND = "SUBCOMMAND"
END = "$END"
_SLOTS = frozenset({WORD, REST, SUBCOMMAND})
_SYMBOLS = {"string": WORD, "list": REST, "command": SUBCOMMAND}

# Lines up to this many words share the per-shape cache; longer ones (rare, and
# each of them its own shape) are matched afresh so the cache stays small.
_CACHED_WORDS = 32


@dataclass(frozen=True, slots=True)
class Form(Generic[Target]):
    """One registered pattern and what a match of it compiles to.

    `exact_only`: the form matches only when its keywords are spelled in full, so a
    word of minishell's own (`exit`, `cc serial`) cannot make minimega's prefixes
    ambiguous (`e` stays `echo`, `cc se` stays `cc send`), while the keywords it
    shares with minimega's forms (`cc`, `clear`) keep their prefixes in those.
    """

    pattern: Pattern
    target: Target
    exact_only: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Shape:
    """What one word can be as a keyword. Interned: equal shapes are one object."""

    keywords: frozenset[str]  # terminal names of the keywords the word is a prefix of
    exact: str | None  # the keyword's terminal name if the word spells it in full


NO_KEYWORD = Shape(frozenset(), None)


@dataclass(frozen=True, slots=True)
class Language:
    """The LALR tables and the keyword tables derived from the patterns."""

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


# -- the grammar -----------------------------------------------------------------------------


def grammar_text(forms: Sequence[Form[Any]]) -> str:
    """grammar/minimega.lark, then one rule per form: every pattern becomes lark.

    Rule `f<N>` is form N; its alternatives are the pattern's variants (with
    and without an optional last item). `!` keeps every keyword token in the
    tree, so the tokens line up with the pattern's items.
    """
    base = resources.files("minishell.grammar").joinpath("minimega.lark").read_text()
    rules = [f"?start: {' | '.join(f'f{index}' for index in range(len(forms)))}"]
    for index, form in enumerate(forms):
        alternatives = [" ".join(map(_symbol, variant)) for variant in variants(form.pattern)]
        rules.append(f"!f{index}: {' | '.join(alternatives)}")
    return base + "\n" + "\n".join(rules) + "\n"


def _symbol(item: Item) -> str:
    if item.kind in _SYMBOLS:
        return _SYMBOLS[item.kind]
    literals = [json.dumps(keyword) for keyword in item.keywords]
    return literals[0] if len(literals) == 1 else f"({' | '.join(literals)})"


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


def _shapes(literals: Mapping[str, str]) -> dict[str, Shape]:
    keywords: dict[str, set[str]] = {}
    for name, keyword in literals.items():
        for prefix in (keyword[:n] for n in range(len(keyword) + 1)):
            keywords.setdefault(prefix, set()).add(name)
    exact = {keyword: name for name, keyword in literals.items()}
    interned: dict[tuple[frozenset[str], str | None], Shape] = {}
    shapes = {}
    for word, names in keywords.items():
        key = (frozenset(names), exact.get(word))
        shapes[word] = interned.setdefault(key, Shape(*key))
    return shapes


# -- matching ----------------------------------------------------------------------------------


class Parser(Generic[Target]):
    """Lines -> commands of the registered forms."""

    def __init__(self, forms: Sequence[Form[Target]]) -> None:
        self.forms = tuple(forms)
        parser = Lark(grammar_text(self.forms), parser="lalr", cache=_grammar_cache())
        literals = {t.name: t.pattern.value for t in parser.terminals}
        self.language = Language(parser.parse_interactive().parser_state, literals,
                                 _shapes(literals))
        self._cached_plan = functools.lru_cache(maxsize=4096)(self._plan)

    def parse(self, line: str) -> Command[Target] | None:
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
        shapes = self.language.shapes
        line_shape = tuple(map(shapes.get, words))
        plan = (self._cached_plan(line_shape) if len(words) <= _CACHED_WORDS
                else self._plan(line_shape))
        if plan is None:
            raise CommandError(f"invalid command: `{one_line(text)}`")
        command: Command[Target] = plan.build(words)
        return command

    def _plan(self, line_shape: tuple[Shape | None, ...]) -> _Plan | None:
        """The plan for lines of this shape, or None if minicli rejects them.

        A `(command)` item needs the rest of the line resolved first. Rather than
        recurse (a line may nest `.json true` a thousand times), the search asks
        for it by raising _NeedNested and runs again once it is known.
        """
        resolved: dict[int, _Match | None] = {}
        pending = [0]
        while pending:
            start = pending[-1]
            search = _Search(self, line_shape, start, resolved)
            try:
                resolved[start] = search.descend(self.language.begin(), start)
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

    def builder(self, tree: Tree[Token]) -> Builder:
        """How a complete parse of one level makes its command from the words."""
        form = self.forms[int(tree.data[1:])]
        tokens = [child for child in tree.children if isinstance(child, Token)]
        items = form.pattern if len(tokens) == len(form.pattern) else form.pattern[:-1]
        strings: list[tuple[str, int]] = []
        lists: list[tuple[str, int]] = []
        bools: set[str] = set()
        for item, token in zip(items, tokens, strict=True):
            if item.kind == "string":
                strings.append((item.key, token.value))
            elif item.kind == "list":
                lists.append((item.key, token.value))
            elif item.kind == "choice":
                bools.add(self.language.literals[token.type])
        target, chosen = form.target, frozenset(bools)

        def build(words: Sequence[str], base: int, inner: Command[Any] | None) -> Command[Any]:
            return Command(
                target,
                {key: words[base + offset] for key, offset in strings} if strings else {},
                {key: tuple(words[base + offset:]) for key, offset in lists} if lists else {},
                chosen,
                inner,
                tuple(words[base:]) if inner is not None else (),
            )

        return build


# Characters that would end or break the line an error is shown on (tabs do not).
_LINE_BREAKING = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\v": "\\v", "\f": "\\f"}


def one_line(text: str) -> str:
    """The line as typed, with what would break it onto several lines escaped as
    Go writes it (`\\n`, `\\x01`, `\\u2028`): an error stays one line. minimega
    echoes the raw text; lines typed at a prompt or in a script never hold these."""
    return _LINE_BREAKING.sub(lambda m: _ESCAPES.get(m[0]) or _go_escape(m[0]), text)


def _go_escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"


@dataclass(frozen=True, slots=True)
class _Plan:
    """How lines of one shape become commands: a builder per nesting level,
    outermost first, each with the index of its command's first word."""

    levels: tuple[tuple[int, Builder], ...]

    def build(self, words: Sequence[str]) -> Command[Any]:
        command: Command[Any] | None = None
        for start, builder in reversed(self.levels):  # innermost first: no recursion
            command = builder(words, start, command)
        assert command is not None
        return command


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
    exact_only: bool = False  # its form's keywords must be written in full


@dataclass(frozen=True, slots=True)
class _Search:
    """minicli's trie.compile for the command starting at word `base`."""

    parser: Parser[Any]
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
            if found is not None and (exact or not found.exact_only):
                nested = index if token_type == SUBCOMMAND else found.nested
                matches.append(_Match(found.build, found.exact and exact, nested,
                                      found.exact_only))
        return _choose(matches)

    def _finish(self, state: ParserState[int]) -> _Match | None:
        try:
            tree = state.feed_token(Token(END, ""), is_end=True)
        except UnexpectedInput:
            return None
        form = self.parser.forms[int(tree.data[1:])]
        return _Match(self.parser.builder(tree), exact=True, nested=None,
                      exact_only=form.exact_only)


def _choose(matches: Sequence[_Match]) -> _Match | None:
    """trie.compile's tie-break: the only match, or the only exact one."""
    if len(matches) == 1:
        return matches[0]
    exact = [match for match in matches if match.exact]
    return exact[0] if len(exact) == 1 else None
