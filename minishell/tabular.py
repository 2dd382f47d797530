"""The `.columns` and `.filter` builtins' work on a response (pkg/minicli/builtins.go).

Both change the Response they are given, as minicli does; `filter_rows` returns
None when a `host` filter drops the whole response, which then prints nothing
at all (not even in JSON mode: minicli sends an empty Responses list).
"""

from __future__ import annotations

from dataclasses import dataclass

from minishell.errors import CommandError
from minishell.reply import Response

# Tried in this order; the first that splits the text into exactly two parts wins.
_SEPARATORS = (("!~", True, True), ("~", True, False), ("!=", False, True), ("=", False, False))


def _go_lower(text: str) -> str:
    """strings.ToLower: per-rune simple mapping. str.lower() applies SpecialCasing
    (U+0130 becomes two characters) and final-sigma context; Go does neither."""
    if text.isascii():
        return text.lower()
    return "".join("i" if char == "\u0130" else char.lower() for char in text)


def find_column(header: list[str], name: str) -> int:
    """minicli's findColumn: an exact match of the lower-cased header, else a unique prefix.

    `name` is used as given, so an upper-case name never matches. The first
    exact match wins at once; a second prefix match is an error even if a
    later header would have matched exactly.
    """
    found = -1
    for index, column in enumerate(header):
        lowered = _go_lower(column)
        if lowered == name:
            return index
        if lowered.startswith(name):
            if found >= 0:
                raise CommandError(f"ambiguous column `{name}`")
            found = index
    if found < 0:
        raise CommandError(f"no such column `{name}`")
    return found


def select_columns(resp: Response, columns: str) -> None:
    """`.columns <columns as csv>`: keep and order the named columns, in place.

    Columns are checked even when the table has no rows. A response without a
    header passes unchanged; one with a header but no table gets the names as
    its header, unchecked (cliColumns does that too).
    """
    names = columns.split(",")
    if resp.header is None:
        return
    if resp.tabular is None:
        resp.header = names
        return
    indexes = [find_column(resp.header, name) for name in names]
    resp.header = [resp.header[index] for index in indexes]
    resp.tabular = [[row[index] for index in indexes] for row in resp.tabular]


@dataclass(frozen=True, slots=True)
class RowFilter:
    """A parsed `.filter` expression; column and value are lower-cased."""

    column: str
    value: str
    substring: bool
    negate: bool

    def matches(self, cell: str) -> bool:
        cell = _go_lower(cell)
        # A cell that looks like a list or an object is searched, whatever the operator.
        substring = self.substring or (cell[:1], cell[-1:]) in (("[", "]"), ("{", "}"))
        found = cell == self.value or (substring and self.value in cell)
        return found != self.negate


def parse_filter(text: str) -> RowFilter:
    """Parse `.filter`'s argument. minicli does this before running the command,
    so a bad filter means the command never runs."""
    for separator, substring, negate in _SEPARATORS:
        parts = text.split(separator)
        if len(parts) == 2:
            return RowFilter(_go_lower(parts[0]), _go_lower(parts[1]), substring, negate)
    raise CommandError("invalid filter, see help")


def filter_rows(resp: Response, row_filter: RowFilter) -> Response | None:
    """`.filter <filter>`: drop the rows that do not match, in place; return `resp`.

    The `host` column is the response's host, annotated or not, and a mismatch
    drops the whole response (None). Other filters leave non-tabular responses alone.
    """
    if row_filter.column == "host":
        return resp if row_filter.matches(resp.host) else None
    if resp.header is None or resp.tabular is None:
        return resp
    index = find_column(resp.header, row_filter.column)
    resp.tabular = [row for row in resp.tabular if row_filter.matches(row[index])]
    return resp
