"""The command objects a line parses into: plain frozen data, no behaviour.

Strings are kept exactly as lexed (quotes removed, escapes decoded) and are
*not* yet `$VAR`-expanded: minicli preprocesses arguments after matching, with
the flags in force when the command runs, so expansion belongs to the session
(`minishell.language.preprocess`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

PipeMode: TypeAlias = Literal["all", "round-robin", "random"]
PipeAttr: TypeAlias = Literal["mode", "log", "via"]
FlagName: TypeAlias = Literal[
    "annotate", "compress", "csv", "headers", "json", "preprocess", "record", "sort"
]


# -- pipes ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PipeList:
    """`pipe`"""


@dataclass(frozen=True, slots=True)
class PipeWrite:
    """`pipe <pipe> <data>`"""

    pipe: str
    data: str


@dataclass(frozen=True, slots=True)
class PipeSetMode:
    """`pipe <pipe> mode <all,round-robin,random>`"""

    pipe: str
    mode: PipeMode


@dataclass(frozen=True, slots=True)
class PipeSetLog:
    """`pipe <pipe> log <true,false>`"""

    pipe: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class PipeSetVia:
    """`pipe <pipe> via <command>...`"""

    pipe: str
    command: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ClearPipe:
    """`clear pipe [pipe]`: pipe None means every pipe."""

    pipe: str | None


@dataclass(frozen=True, slots=True)
class ClearPipeAttr:
    """`clear pipe <pipe> <mode,log,via>`"""

    pipe: str
    attr: PipeAttr


# -- pipelines --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PlumbList:
    """`plumb`"""


@dataclass(frozen=True, slots=True)
class Plumb:
    """`plumb <src> <dst>...` (at least two stages)."""

    stages: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ClearPlumb:
    """`clear plumb [pipeline]...`: no words means every pipeline."""

    pipeline: tuple[str, ...]


# -- namespaces -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NamespaceList:
    """`namespace`"""


@dataclass(frozen=True, slots=True)
class NamespaceSwitch:
    """`namespace <name>`"""

    name: str


@dataclass(frozen=True, slots=True)
class NamespaceRun:
    """`namespace <name> (command)`: run one command there, then switch back."""

    name: str
    command: Command


@dataclass(frozen=True, slots=True)
class ClearNamespace:
    """`clear namespace [name]`"""

    name: str | None


@dataclass(frozen=True, slots=True)
class NsHosts:
    """`ns hosts`"""


@dataclass(frozen=True, slots=True)
class NsRun:
    """`ns run (command)`"""

    command: Command


# -- other commands ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Echo:
    """`echo [args]...`"""

    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Shell:
    """`shell <command>...`"""

    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Background:
    """`background <command>...`"""

    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Help:
    """`help [command]...`"""

    words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class History:
    """`history`"""


@dataclass(frozen=True, slots=True)
class ClearHistory:
    """`clear history`"""


@dataclass(frozen=True, slots=True)
class Read:
    """`read <file> [check]`"""

    path: str
    check: bool


@dataclass(frozen=True, slots=True)
class ClearAll:
    """`clear all`"""


@dataclass(frozen=True, slots=True)
class Quit:
    """`quit` (and minishell's `exit`)."""


@dataclass(frozen=True, slots=True)
class Version:
    """`version`"""


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A minimega command word that minishell does not implement (`vm`, `cc`...).

    It is part of the language so that prefix matching stays minimega's: `v`
    is ambiguous in minimega (version, vm, vlans...), so it must be here too.
    """

    word: str


# -- dot-builtins -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FlagQuery:
    """`.json` and friends with no argument: print the flag."""

    flag: FlagName


@dataclass(frozen=True, slots=True)
class FlagSet:
    """`.json true`: set the global flag."""

    flag: FlagName
    value: bool


@dataclass(frozen=True, slots=True)
class FlagWrap:
    """`.json true (command)`: the flag applies to that one command only."""

    flag: FlagName
    value: bool
    command: Command


@dataclass(frozen=True, slots=True)
class Columns:
    """`.columns <columns as csv> (command)`: the csv text exactly as given."""

    columns: str
    command: Command


@dataclass(frozen=True, slots=True)
class Filter:
    """`.filter <filter> (command)`"""

    filter: str
    command: Command


@dataclass(frozen=True, slots=True)
class AliasList:
    """`.alias`"""


@dataclass(frozen=True, slots=True)
class AliasSet:
    """`.alias <alias>...`: the words joined by single spaces, split later at `=`."""

    text: str


@dataclass(frozen=True, slots=True)
class Unalias:
    """`.unalias <alias>`"""

    name: str


@dataclass(frozen=True, slots=True)
class EnvList:
    """`.env`"""


@dataclass(frozen=True, slots=True)
class EnvGet:
    """`.env <name>`"""

    name: str


@dataclass(frozen=True, slots=True)
class EnvSet:
    """`.env <name> <value>`: an empty value unsets."""

    name: str
    value: str


Command: TypeAlias = (
    PipeList | PipeWrite | PipeSetMode | PipeSetLog | PipeSetVia | ClearPipe | ClearPipeAttr
    | PlumbList | Plumb | ClearPlumb
    | NamespaceList | NamespaceSwitch | NamespaceRun | ClearNamespace | NsHosts | NsRun
    | Echo | Shell | Background | Help | History | ClearHistory | Read | ClearAll | Quit
    | Version | Unsupported
    | FlagQuery | FlagSet | FlagWrap | Columns | Filter
    | AliasList | AliasSet | Unalias | EnvList | EnvGet | EnvSet
)
