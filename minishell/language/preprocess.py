"""minimega's argument preprocessor (cmd/minimega/cli.go cliPreprocess), for one argument.

Every string argument and list element of a command, once matched, goes
through Go's os.ExpandEnv and then, if it parses as a URL with scheme `file`,
becomes a path in the files directory. Matching never sees the expansion:
`pipe $X mode` writes "mode" even when $X is "all". The session applies it to
each command as it runs.
"""

from __future__ import annotations

import os
import posixpath

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


# -- Go's os.ExpandEnv (os/env.go Expand, getShellName) ----------------------
def _expand_env(text: str) -> str:
    out: list[str] = []
    copied = 0  # text[:copied] is already in out
    dollar = text.find("$")
    closes = _Closes(text)
    while dollar != -1 and dollar + 1 < len(text):
        out.append(text[copied:dollar])
        name, width = _shell_name(text, dollar + 1, closes)
        if name:
            out.append(os.environ.get(name, ""))
        elif width == 0:  # `$` not followed by a name stays
            out.append("$")
        # else: bad syntax (`${`, `${}`) is eaten
        copied = dollar + 1 + width
        dollar = text.find("$", copied)
    out.append(text[copied:])
    return "".join(out)


class _Closes:
    """Where the next `}` is. Names are looked up left to right, so each search
    starts where the last one found its `}` (or knows there is none): a line of
    a million `${` is scanned once, not a million times."""

    __slots__ = ("_found", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._found = -2  # not searched yet

    def after(self, position: int) -> int:
        """text.find("}", position), for positions that never go back."""
        if self._found == -2 or 0 <= self._found < position:
            self._found = self._text.find("}", position)
        return self._found


def _shell_name(text: str, start: int, closes: _Closes) -> tuple[str, int]:
    """The variable name at text[start:] and how many characters it took."""
    first = text[start]
    if first == "{":
        if len(text) - start > 2 and text[start + 1] in _SPECIAL and text[start + 2] == "}":
            return text[start + 1], 3
        close = closes.after(start + 1)
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
