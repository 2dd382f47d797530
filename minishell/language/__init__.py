"""minimega's command language: patterns, lexing, matching, aliases and argument expansion."""

from minishell.language.aliases import expand_alias, parse_alias
from minishell.language.lexer import lex
from minishell.language.preprocess import expand

__all__ = ["expand", "expand_alias", "lex", "parse_alias"]
