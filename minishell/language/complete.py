"""Tab completion from the grammar: what the word under the cursor could be.

The words before it are fed to lark's interactive parser as every token they
could be (as in parsing, but keeping every path alive); whatever the reached
states accept is offered: keywords of the commands minishell runs, and pipe
names where a pipe goes.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from lark.parsers.lalr_analysis import Reduce, Shift

from minishell.errors import CommandError
from minishell.language.lexer import scan
from minishell.language.parser import REST, SUBCOMMAND, WORD, Language, actions, feed, language

if TYPE_CHECKING:
    from collections.abc import Iterable

    from lark.parsers.lalr_parser_state import ParserState

Path = tuple[str, ...]  # the token types fed since the command's first word


def complete(text_before_cursor: str, pipe_names: Iterable[str]) -> list[str]:
    """Sorted candidates for the last, possibly empty, word of the text."""
    try:
        words, ending = scan(text_before_cursor)
    except CommandError:  # inside an unterminated quote, or after a bad escape
        return []
    if ending == "comment":
        return []
    typed = words.pop() if ending == "word" else ""
    lang = language()
    keywords, pipe_slot = _next_tokens(lang, words)
    found = {lang.literals[name] for name in keywords}
    if pipe_slot:
        found.update(pipe_names)
    return sorted(candidate for candidate in found if candidate.startswith(typed))


def _next_tokens(lang: Language, words: list[str]) -> tuple[set[str], bool]:
    """The keywords that may follow the words, and whether a pipe name may.

    A worklist rather than recursion, since nested commands may go deep; each
    nested command start is explored once.
    """
    single_pipe, pipe_list = _pipe_slots()
    keywords: set[str] = set()
    pipe_slot = False
    nested_starts: set[int] = set()
    work: list[tuple[ParserState[int], int, Path]] = [(lang.begin(), 0, ())]
    while work:
        state, index, path = work.pop()
        shape = lang.shape(words[index]) if index < len(words) else None
        for token_type in actions(state):
            if token_type == SUBCOMMAND:
                if index not in nested_starts:
                    nested_starts.add(index)
                    work.append((lang.begin(), index, ()))
            elif token_type == REST:  # the word under the cursor is in the list
                pipe_slot = pipe_slot or path in pipe_list
            elif shape is None:
                if token_type == WORD:
                    pipe_slot = pipe_slot or path in single_pipe
                elif token_type in lang.literals and _leads_to_a_run_command(state, token_type):
                    keywords.add(token_type)
            elif token_type == WORD or token_type in shape.keywords:
                branch = feed(state, token_type, index)
                if branch is not None:
                    work.append((branch, index + 1, (*path, token_type)))
    return keywords, pipe_slot


def _leads_to_a_run_command(state: ParserState[int], keyword: str) -> bool:
    """Whether the keyword can start or continue a command that minishell runs,
    rather than one of minimega's that it only recognises."""
    branch = feed(state, keyword, 0)
    return branch is not None and branch.position in _run_command_states()


@functools.cache
def _run_command_states() -> frozenset[int]:
    """The LALR states from which some rule other than `unsupported` is reduced
    after more shifts (a fixpoint over the parse table)."""
    states = language().start.parse_conf.states
    found = {
        state
        for state, table in states.items()
        if any(kind is Reduce and arg.origin.name != "unsupported" for kind, arg in table.values())
    }
    grown = True
    while grown:
        before = len(found)
        found.update(
            state
            for state, table in states.items()
            if any(kind is Shift and arg in found for kind, arg in table.values())
        )
        grown = len(found) > before
    return frozenset(found)


@functools.cache
def _pipe_slots() -> tuple[frozenset[Path], frozenset[Path]]:
    """Where a pipe name goes: as the next WORD after these paths (`pipe <pipe>`,
    `clear pipe <pipe>`, `plumb <src>`), or anywhere in the list after these
    (`plumb <src> <dst>...`, `clear plumb [pipeline]...`)."""
    name = {keyword: terminal for terminal, keyword in language().literals.items()}
    single = frozenset({(name["pipe"],), (name["clear"], name["pipe"]), (name["plumb"],)})
    listed = frozenset({(name["plumb"], WORD), (name["clear"], name["plumb"])})
    return single, listed
