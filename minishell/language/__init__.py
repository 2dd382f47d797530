"""minimega's command language: lexing, matching, aliases and argument expansion."""

from minishell.language.aliases import expand_alias, parse_alias
from minishell.language.complete import complete
from minishell.language.lexer import lex
from minishell.language.parser import parse
from minishell.language.preprocess import expand, preprocess

__all__ = ["complete", "expand", "expand_alias", "lex", "parse", "parse_alias", "preprocess"]
