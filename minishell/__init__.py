"""minishell: minimega's plumber, re-created in Python.

Kept empty on purpose: `minishell -pipe` and `-e` import this package, and
they must start without trio, lark or prompt_toolkit.
"""

__version__ = "0.1.0"
