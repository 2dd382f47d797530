""".columns and .filter, checked against minimega's recorded transcripts.

Builtins nest inside out: `.columns name .filter x=y pipe` filters first, then
selects. The `pipe` listing is built by hand; rendering is render.py's.
"""

from __future__ import annotations

import pytest

from minishell.errors import CommandError
from minishell.render import render
from minishell.reply import Flags, Reply, Response
from minishell.tabular import RowFilter, filter_rows, find_column, parse_filter, select_columns

PIPE_HEADER = ["name", "mode", "readers", "writers", "count", "via", "previous"]


def pipe_listing(*pipes: tuple[str, str]) -> Response:
    """What `pipe` answers for idle pipes named minimega//<name> holding <previous>."""
    rows = [[f"minimega//{name}", "all", "0", "0", "1", "", prev] for name, prev in pipes]
    return Response(host="vm", header=list(PIPE_HEADER), tabular=rows)


def shown(resp: Response | None, *, annotate: bool = False) -> str:
    return "" if resp is None else render(Reply([resp], Flags(annotate=annotate)))


def columns(resp: Response, names: str) -> Response:
    select_columns(resp, names)
    return resp


COLS = [("c1", "v1"), ("c2", "v2")]


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ("name,previous", "name         | previous\nminimega//c1 | v1\nminimega//c2 | v2"),
        ("previous,name", "previous | name\nv1       | minimega//c1\nv2       | minimega//c2"),
        ("na,prev", "name         | previous\nminimega//c1 | v1\nminimega//c2 | v2"),
        ("r,w", "readers | writers\n0       | 0\n0       | 0"),
        (
            "name,name",
            "name         | name\nminimega//c1 | minimega//c1\nminimega//c2 | minimega//c2",
        ),
    ],
)
def test_columns_select_reorder_expand_and_repeat(names: str, expected: str) -> None:
    assert shown(columns(pipe_listing(*COLS), names)) == expected


def test_columns_nest() -> None:
    assert shown(columns(columns(pipe_listing(*COLS), "name,mode"), "mode")) == "mode\nall\nall"


def test_columns_leave_simple_responses_alone() -> None:
    resp = Response(host="vm", response="not tabular")
    assert shown(columns(resp, "name")) == "not tabular"


@pytest.mark.parametrize(
    ("names", "error"),
    [
        ("nosuch", "no such column `nosuch`"),
        ("NAME", "no such column `NAME`"),  # names are not lower-cased
        ("name,", "ambiguous column ``"),  # "" is a prefix of every column
        ("", "ambiguous column ``"),
        ("host,name", "no such column `host`"),  # annotation is not data
    ],
)
def test_column_errors(names: str, error: str) -> None:
    resp = pipe_listing(("e1", "v"))
    with pytest.raises(CommandError) as raised:
        select_columns(resp, names)
    assert str(raised.value) == error
    assert resp.header == PIPE_HEADER  # nothing half-done


def test_column_errors_even_on_an_empty_table() -> None:
    with pytest.raises(CommandError, match="no such column `nosuch`"):
        select_columns(pipe_listing(), "nosuch")


def test_annotation_comes_after_columns() -> None:
    resp = columns(pipe_listing(("e1", "v")), "name")
    assert shown(resp, annotate=True) == "host | name\nvm   | minimega//e1"


def test_header_without_table_takes_the_names_as_given() -> None:
    resp = Response(host="vm", header=["a", "b"])
    select_columns(resp, "X,y")
    assert resp.header == ["X", "y"]
    assert resp.tabular is None


def test_find_column_rules() -> None:
    assert find_column(["Name", "names"], "name") == 0  # exact (lower-cased header) wins
    assert find_column(["names", "name"], "name") == 1
    with pytest.raises(CommandError, match="ambiguous column `a`"):
        find_column(["ab", "abc", "a"], "a")  # minicli stops at the second prefix
    # Go lower-cases rune by rune: no final sigma, and U+0130 becomes a plain i.
    assert find_column(["\u03a3\u0391\u03a3"], "\u03c3\u03b1\u03c3") == 0
    assert find_column(["\u0130D"], "id") == 0


FRUIT = [("f1", "Apple"), ("f2", "banana"), ("f3", "[apple, pear]"), ("f4", "cherry")]


def names_matching(filter_text: str) -> str:
    filtered = filter_rows(pipe_listing(*FRUIT), parse_filter(filter_text))
    return shown(None if filtered is None else columns(filtered, "name"))


@pytest.mark.parametrize(
    ("filter_text", "names"),
    [
        ("previous=apple", ["f1", "f3"]),
        ("PREVIOUS=APPLE", ["f1", "f3"]),
        ("previous!=apple", ["f2", "f4"]),
        ("previous~an", ["f2"]),
        ("previous!~an", ["f1", "f3", "f4"]),
        ("previous=pear", ["f3"]),  # [..] cells are searched even with =
        ("prev=cherry", ["f4"]),
        ("host=vm", ["f1", "f2", "f3", "f4"]),
    ],
)
def test_filter_forms(filter_text: str, names: list[str]) -> None:
    expected = "\n".join(["name", *(f"minimega//{name}" for name in names)])
    assert names_matching(filter_text) == expected


def test_filters_stack() -> None:
    selected = columns(pipe_listing(*FRUIT), "name,previous")
    inner = filter_rows(selected, parse_filter("previous!~pp"))
    assert inner is not None
    outer = filter_rows(inner, parse_filter("previous~e"))
    assert shown(outer) == "name         | previous\nminimega//f4 | cherry"


def test_host_filter_drops_the_whole_response() -> None:
    assert filter_rows(pipe_listing(*FRUIT), parse_filter("host=elsewhere")) is None
    simple = Response(host="vm", response="hi")
    assert filter_rows(simple, parse_filter("host!=vm")) is None
    assert filter_rows(simple, parse_filter("host~v")) is simple


def test_filter_leaves_simple_responses_alone() -> None:
    simple = Response(host="vm", response="hi")
    assert filter_rows(simple, parse_filter("name=x")) is simple
    assert simple.response == "hi"


def test_filter_that_removes_every_row_prints_nothing() -> None:
    resp = filter_rows(pipe_listing(*FRUIT), parse_filter("count=2"))
    assert resp is not None
    assert resp.tabular == []
    assert shown(resp) == ""


def test_filter_after_columns_has_only_those_columns() -> None:
    with pytest.raises(CommandError, match="no such column `previous`"):
        filter_rows(columns(pipe_listing(*FRUIT), "name"), parse_filter("previous=banana"))


@pytest.mark.parametrize(
    ("filter_text", "error"),
    [
        ("novalue", "invalid filter, see help"),
        ("a=b=c", "invalid filter, see help"),
        ("x~y=z", "no such column `x`"),  # ~ is tried before =
        ("nosuch=1", "no such column `nosuch`"),
        ("=x", "ambiguous column ``"),
    ],
)
def test_filter_errors(filter_text: str, error: str) -> None:
    with pytest.raises(CommandError) as raised:
        filter_rows(pipe_listing(("fe", "v")), parse_filter(filter_text))
    assert str(raised.value) == error


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("a!~B", RowFilter("a", "b", substring=True, negate=True)),
        ("a~b", RowFilter("a", "b", substring=True, negate=False)),
        ("A!=b", RowFilter("a", "b", substring=False, negate=True)),
        ("a=b", RowFilter("a", "b", substring=False, negate=False)),
        ("a!=b=c", RowFilter("a", "b=c", substring=False, negate=True)),
    ],
)
def test_parse_filter_separator_precedence(text: str, parsed: RowFilter) -> None:
    assert parse_filter(text) == parsed


def test_braces_also_turn_on_substring_matching() -> None:
    row_filter = parse_filter("previous=1")
    assert row_filter.matches("{k: 1}")
    assert not row_filter.matches("{k: 1")
    assert not row_filter.matches("x1")
