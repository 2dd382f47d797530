"""minimega's commands, one module per verb family; each lists its handlers in HANDLERS.

A new command is a module here and its name in MODULES: the grammar, `help`
and completion come from its declarations (registry.py).
"""

from minishell.commands import (
    builtins,
    cc,
    check,
    debug,
    files,
    history,
    host,
    log,
    mesh,
    misc,
    namespaces,
    pipes,
    scripts,
    shell,
)

MODULES = (pipes, namespaces, builtins, history, scripts, shell, misc, log, host, files, debug,
           check, cc, mesh)
