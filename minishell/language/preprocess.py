"""minimega's argument preprocessor (cmd/minimega/cli.go cliPreprocess).

Every string argument and list element of a command, once matched, goes
through Go's os.ExpandEnv and then, if it parses as a URL with scheme `file`,
becomes a path in the files directory. Matching never sees the expansion:
`pipe $X mode` writes "mode" even when $X is "all".
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import typing

from minishell.language import commands
from minishell.language.commands import Command, FlagWrap

_SPECIAL = frozenset("*#$@!?-0123456789")
_NAME_CHARS = frozenset("_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_SCHEME_CHARS = _NAME_CHARS - {"_"} | {"+", "-", "."}


def expand(text: str, files_dir: str) -> str:
    """One argument through the preprocessor: $VARs from os.environ, then `file:`."""
    if "$" in text:
        text = _expand_env(text)
    if text[:5].lower() == "file:":
        opaque = _file_url_opaque(text)
        if opaque is not None:
            return _go_join(files_dir, opaque)
    return text


def preprocess(command: Command, *, enabled: bool, files_dir: str) -> Command:
    """The command with its user strings expanded when preprocessing is enabled.

    Nested commands are included; `.preprocess <bool> (command)` decides for its
    inner command. Keywords (modes, flag names, attributes) and bools are left
    alone. Iterative, since a line may nest commands a thousand deep.
    """
    levels: list[tuple[Command, bool, Command | None]] = []  # outermost first
    current: Command | None = command
    while current is not None:
        nested = _nested(current)
        levels.append((current, enabled, nested))
        if isinstance(current, FlagWrap) and current.flag == "preprocess":
            enabled = current.value
        current = nested
    inner: Command | None = None
    for outer, on, nested in reversed(levels):
        changes = _expanded(outer, files_dir) if on else {}
        field = _FIELDS[type(outer)].nested
        if field is not None and inner is not nested:
            changes[field] = inner
        inner = _replace(outer, changes) if changes else outer
    assert inner is not None
    return inner


# -- the command's fields ---------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class _Fields:
    """A command class's fields by declared type: `str` and `str | None` hold
    one user string, `tuple[str, ...]` several; Literal keywords and bools none."""

    strings: tuple[str, ...]
    lists: tuple[str, ...]
    nested: str | None  # the field holding a nested command


def _fields(cls: type) -> _Fields:
    hints = typing.get_type_hints(cls, vars(commands))
    names = [field.name for field in dataclasses.fields(cls)]
    nested = [name for name in names if hints[name] == Command]
    return _Fields(
        strings=tuple(name for name in names if hints[name] in (str, str | None)),
        lists=tuple(name for name in names if hints[name] == tuple[str, ...]),
        nested=nested[0] if nested else None,
    )


_FIELDS = {cls: _fields(cls) for cls in typing.get_args(Command)}


def _nested(command: Command) -> Command | None:
    field = _FIELDS[type(command)].nested
    return None if field is None else typing.cast("Command", getattr(command, field))


def _expanded(command: Command, files_dir: str) -> dict[str, object]:
    fields = _FIELDS[type(command)]
    changes: dict[str, object] = {}
    for name in fields.strings:
        value = getattr(command, name)
        if value is not None and _may_expand(value):
            changes[name] = expand(value, files_dir)
    for name in fields.lists:
        values = getattr(command, name)
        if any(_may_expand(value) for value in values):
            changes[name] = tuple(expand(value, files_dir) for value in values)
    return changes


def _may_expand(text: str) -> bool:
    """A cheap test that passes every string that expand() would change."""
    return "$" in text or ":" in text


def _replace(command: Command, changes: dict[str, object]) -> Command:
    # mypy types dataclasses.replace per class, which a union of classes defeats
    untyped: typing.Any = command
    return typing.cast("Command", dataclasses.replace(untyped, **changes))


# -- Go's os.ExpandEnv (os/env.go Expand, getShellName) ----------------------
def _expand_env(text: str) -> str:
    out: list[str] = []
    copied = 0  # text[:copied] is already in out
    dollar = text.find("$")
    while dollar != -1 and dollar + 1 < len(text):
        out.append(text[copied:dollar])
        name, width = _shell_name(text, dollar + 1)
        if name:
            out.append(os.environ.get(name, ""))
        elif width == 0:  # `$` not followed by a name stays
            out.append("$")
        # else: bad syntax (`${`, `${}`) is eaten
        copied = dollar + 1 + width
        dollar = text.find("$", copied)
    out.append(text[copied:])
    return "".join(out)


def _shell_name(text: str, start: int) -> tuple[str, int]:
    """The variable name at text[start:] and how many characters it took."""
    first = text[start]
    if first == "{":
        if len(text) - start > 2 and text[start + 1] in _SPECIAL and text[start + 2] == "}":
            return text[start + 1], 3
        close = text.find("}", start + 1)
        if close == -1:
            return "", 1  # eat "${"
        if close == start + 1:
            return "", 2  # eat "${}"
        return text[start + 1 : close], close - start + 1
    if first in _SPECIAL:
        return first, 1
    end = start
    while end < len(text) and text[end] in _NAME_CHARS:
        end += 1
    return text[start:end], end - start


# -- Go's url.Parse, as far as `file:` needs it (net/url/url.go) --------------
def _file_url_opaque(text: str) -> str | None:
    """The opaque part if `text` parses as a URL with scheme file, else None.

    `file:name?query#fragment` gives `name`. A path that starts with `/`
    (`file:/x`, `file:///x`) is not opaque, so the opaque part is empty and the
    result is the files directory itself; Go's checks of a `//host` part are not
    reproduced. Text with control characters, or a fragment with a bad `%`
    escape, does not parse and stays as it is.
    """
    url, _, fragment = text.partition("#")
    if any(char < "\x20" or char == "\x7f" for char in url) or not _valid_escapes(fragment):
        return None
    colon = url.find(":")
    scheme = url[:colon]
    if colon < 1 or not scheme[0].isascii() or not scheme[0].isalpha():
        return None
    if any(char not in _SCHEME_CHARS for char in scheme) or scheme.lower() != "file":
        return None
    rest = url[colon + 1 :]
    # a lone trailing `?` is Go's ForceQuery; otherwise the query is cut off
    rest = rest[:-1] if rest.endswith("?") and rest.count("?") == 1 else rest.partition("?")[0]
    return "" if rest.startswith("/") else rest


def _valid_escapes(text: str) -> bool:
    hex_digits = "0123456789abcdefABCDEF"
    percent = text.find("%")
    while percent != -1:
        escape = text[percent + 1 : percent + 3]
        if len(escape) < 2 or any(char not in hex_digits for char in escape):
            return False
        percent = text.find("%", percent + 3)
    return True


def _go_join(directory: str, name: str) -> str:
    """Go's filepath.Join: the elements joined by `/` and cleaned."""
    joined = "/".join(part for part in (directory, name) if part)
    return _go_clean(joined) if joined else ""


def _go_clean(path: str) -> str:
    """Go's filepath.Clean. normpath differs only in keeping a leading `//`."""
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned
