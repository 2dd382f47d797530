"""minimega's command language as a lark grammar (installed as minishell.grammar)."""
