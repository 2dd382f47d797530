"""render() against minimega's recorded output and the spec's checked model of its renderer."""

from __future__ import annotations

import functools
import importlib.util
import random
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from minishell.gostr import trim_space
from minishell.ranges import unsplit_list
from minishell.render import (
    _aligned_table,
    _tabulate_reproduces,
    _tabulate_table,
    error_text,
    go_sort_table,
    help_table,
    render,
    tabwriter,
)
from minishell.reply import MODE_CSV, MODE_DEFAULT, MODE_JSON, Flags, Reply, Response

# shared/ sits beside the repository (in CI too); tests that need it skip without it.
SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec"
PIPE_HEADER = ["name", "mode", "readers", "writers", "count", "via", "previous"]


def _load_reference() -> ModuleType | None:
    path = SPEC / "render_reference.py"
    spec = importlib.util.spec_from_file_location("render_reference", path)
    if not path.exists() or spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REFERENCE = _load_reference()
needs_reference = pytest.mark.skipif(REFERENCE is None, reason="spec's render_reference.py absent")
needs_help_all = pytest.mark.skipif(not (SPEC / "help_all.txt").exists(),
                                    reason="spec's help_all.txt absent")


def plain(*, headers: bool = True, sort: bool = True, mode: str = MODE_DEFAULT) -> Flags:
    """The flags a transcript runs with: defaults, but annotate off (spec §4)."""
    return Flags(annotate=False, headers=headers, sort=sort, mode=mode)


def one(flags: Flags | None = None, **fields: Any) -> Reply:
    """A reply of one host's response."""
    return Reply([Response(**fields)], flags or plain())


def pipe_listing(*pipes: tuple[str, str], flags: Flags | None = None) -> Reply:
    """What `pipe` answers for idle pipes named minimega//<name> holding <previous>."""
    rows = [[f"minimega//{name}", "all", "0", "0", "1", "", prev] for name, prev in pipes]
    return one(host="vm", header=list(PIPE_HEADER), tabular=rows, flags=flags or plain())


def with_columns(reply: Reply, *names: str) -> Reply:
    indexes = [PIPE_HEADER.index(name) for name in names]
    resp = reply.responses[0]
    assert resp.tabular is not None
    resp.header = list(names)
    resp.tabular = [[row[i] for i in indexes] for row in resp.tabular]
    return reply


# ------------------------------------------------------------------ transcripts (conformance)


def test_pipe_table_layout() -> None:
    pipes = [
        ("a", "1"),
        ("a_much_longer_pipe_name", "a longer previous value"),
        ("b0", ""),
        ("mid", "12345"),
        ("zz", ""),
    ]
    assert render(pipe_listing(*pipes)) == (
        "name                              | mode | readers | writers | count | via | previous\n"
        "minimega//a                       | all  | 0       | 0       | 1     |     | 1\n"
        "minimega//a_much_longer_pipe_name | all  | 0       | 0       | 1     |     | "
        "a longer previous value\n"
        "minimega//b0                      | all  | 0       | 0       | 1     |     | \n"
        "minimega//mid                     | all  | 0       | 0       | 1     |     | 12345\n"
        "minimega//zz                      | all  | 0       | 0       | 1     |     |"
    )
    assert render(with_columns(pipe_listing(*pipes), "previous", "name")) == (
        "previous                | name\n"
        "                        | minimega//b0\n"
        "                        | minimega//zz\n"
        "1                       | minimega//a\n"
        "12345                   | minimega//mid\n"
        "a longer previous value | minimega//a_much_longer_pipe_name"
    )
    assert render(with_columns(pipe_listing(*pipes), "count")) == "count\n1\n1\n1\n1\n1"


def test_pipe_newlines() -> None:
    pipes = [
        ("n1", "ends with newline"),
        ("n2", ""),
        ("n3", "first\nsecond"),
        ("n4", "x"),
        ("n5", "padded"),
    ]
    assert render(pipe_listing(*pipes)) == (
        "name         | mode | readers | writers | count | via | previous\n"
        "minimega//n1 | all  | 0       | 0       | 1     |     | ends with newline\n"
        "minimega//n2 | all  | 0       | 0       | 1     |     | \n"
        "minimega//n3 | all  | 0       | 0       | 1     |     | first\n"
        "second\n"
        "minimega//n4 | all | 0  | 0  | 1  |    | x\n"
        "minimega//n5 | all | 0  | 0  | 1  |    | padded"
    )
    assert render(with_columns(pipe_listing(*pipes), "name", "previous")) == (
        "name         | previous\n"
        "minimega//n1 | ends with newline\n"
        "minimega//n2 | \n"
        "minimega//n3 | first\n"
        "second\n"
        "minimega//n4 | x\n"
        "minimega//n5 | padded"
    )


HEADERS_SORT_PIPES = [
    ("h1", "10"),
    ("h2", "9"),
    ("h3", "-3"),
    ("h4", "abc"),
    ("h5", "Abc"),
    ("h6", "+5"),
]


def test_headers_false_shrinks_columns() -> None:
    assert render(pipe_listing(*HEADERS_SORT_PIPES, flags=plain(headers=False))) == (
        "minimega//h1 | all | 0  | 0  | 1  |    | 10\n"
        "minimega//h2 | all | 0  | 0  | 1  |    | 9\n"
        "minimega//h3 | all | 0  | 0  | 1  |    | -3\n"
        "minimega//h4 | all | 0  | 0  | 1  |    | abc\n"
        "minimega//h5 | all | 0  | 0  | 1  |    | Abc\n"
        "minimega//h6 | all | 0  | 0  | 1  |    | +5"
    )
    one_column = with_columns(pipe_listing(*HEADERS_SORT_PIPES, flags=plain(headers=False)), "name")
    assert render(one_column) == "\n".join(f"minimega//{name}" for name, _ in HEADERS_SORT_PIPES)


def test_sort_is_numeric_when_both_cells_are_integers() -> None:
    assert render(with_columns(pipe_listing(*HEADERS_SORT_PIPES), "previous", "name")) == (
        "previous | name\n"
        "-3       | minimega//h3\n"
        "+5       | minimega//h6\n"
        "9        | minimega//h2\n"
        "10       | minimega//h1\n"
        "Abc      | minimega//h5\n"
        "abc      | minimega//h4"
    )
    unsorted = pipe_listing(*HEADERS_SORT_PIPES, flags=plain(sort=False))
    assert render(with_columns(unsorted, "previous", "name")) == (
        "previous | name\n"
        "10       | minimega//h1\n"
        "9        | minimega//h2\n"
        "-3       | minimega//h3\n"
        "abc      | minimega//h4\n"
        "Abc      | minimega//h5\n"
        "+5       | minimega//h6"
    )


CSV_PIPES = [("s1", "x,y"), ("s2", 'say "hi"'), ("s3", "plain"), ("s4", "cr\rhere")]


def test_csv_mode() -> None:
    assert render(pipe_listing(*CSV_PIPES, flags=plain(mode=MODE_CSV))) == (
        "name,mode,readers,writers,count,via,previous\n"
        'minimega//s1,all,0,0,1,,"x,y"\n'
        'minimega//s2,all,0,0,1,,"say ""hi"""\n'
        "minimega//s3,all,0,0,1,,plain\n"
        'minimega//s4,all,0,0,1,,"cr\rhere"'
    )
    no_headers = pipe_listing(*CSV_PIPES, flags=plain(mode=MODE_CSV, headers=False))
    assert render(with_columns(no_headers, "name", "previous")) == (
        'minimega//s1,"x,y"\nminimega//s2,"say ""hi"""\nminimega//s3,plain\nminimega//s4,"cr\rhere"'
    )
    simple = one(host="vm", response="simple", flags=plain(mode=MODE_CSV))
    assert render(simple) == "simple"
    empty = one(host="vm", header=["pipeline"], tabular=[], flags=plain(mode=MODE_CSV))
    assert render(empty) == ""


def test_json_mode() -> None:
    table = pipe_listing(("j1", "a<b>&c"), ("j2", 'say "hi"'), flags=plain(mode=MODE_JSON))
    assert render(table) == (
        '[{"Host":"vm","Response":"","Header":["name","mode","readers","writers","count",'
        '"via","previous"],"Tabular":[["minimega//j1","all","0","0","1","",'
        '"a\\u003cb\\u003e\\u0026c"],["minimega//j2","all","0","0","1","","say \\"hi\\""]],'
        '"Error":"","Data":null}]'
    )
    hello = one(host="vm", response="hello", flags=plain(mode=MODE_JSON))
    assert render(hello) == (
        '[{"Host":"vm","Response":"hello","Header":null,"Tabular":null,"Error":"","Data":null}]'
    )
    empty = one(host="vm", header=["pipeline"], tabular=[], flags=plain(mode=MODE_JSON))
    assert render(empty) == (
        '[{"Host":"vm","Response":"","Header":["pipeline"],"Tabular":[],"Error":"","Data":null}]'
    )
    failed = one(
        host="vm", error="no such pipe: minimega//nosuch", flags=plain(mode=MODE_JSON)
    )
    assert render(failed) == (
        '[{"Host":"vm","Response":"","Header":null,"Tabular":null,'
        '"Error":"no such pipe: minimega//nosuch","Data":null}]'
    )


def test_annotate_host() -> None:
    annotated = Flags(annotate=True)
    assert render(pipe_listing(("an1", "v"), flags=annotated)) == (
        "host | name          | mode | readers | writers | count | via | previous\n"
        "vm   | minimega//an1 | all  | 0       | 0       | 1     |     | v"
    )
    assert render(one(host="vm", response="simple", flags=annotated)) == "vm: simple"
    assert render(one(host="vm", response="two\nlines", flags=annotated)) == "vm: two\nlines"
    headless = pipe_listing(("an1", "v"), flags=Flags(annotate=True, headers=False))
    assert render(with_columns(headless, "name")) == "vm   | minimega//an1"
    pipeline = one(
        host="vm", header=["pipeline"], tabular=[["minimega//an1 minimega//an2"]], flags=annotated
    )
    assert render(pipeline) == "host | pipeline\nvm   | minimega//an1 minimega//an2"


def test_empty_table_and_errors_print_nothing() -> None:
    for flags in (plain(), Flags(annotate=True), plain(mode=MODE_CSV)):
        assert render(one(host="vm", header=list(PIPE_HEADER), tabular=[], flags=flags)) == ""
    failed = pipe_listing(("a", "x"))
    failed.responses[0].error = "boom"
    assert render(failed) == ""
    assert render(one(host="vm", response="text", error="boom", flags=plain())) == ""
    assert render(one(host="vm", flags=plain())) == ""


def test_whole_output_is_trimmed_like_go() -> None:
    assert render(one(host="vm", response="\n\nmiddle\n\n", flags=plain())) == "middle"
    # Go's unicode.IsSpace has no \x1c-\x1f, which Python's str.strip() would remove.
    assert render(one(host="vm", response="\x1cx\x1f", flags=plain())) == "\x1cx\x1f"
    assert trim_space("\u3000\u2028 x\x85\xa0\u205f") == "x"


def test_width_mismatch_is_rendered_as_minicli_reports_it() -> None:
    resp = one(host="vm", header=["a", "b"], tabular=[["1", "2"], ["3"]], flags=plain())
    assert render(resp) == "tabular width mismatch, host: vm, row: 1"


def test_csv_quotes_like_go() -> None:
    cells = ["\\.", " lead", "\u3000lead", "\x1clead", "", "a\nb", "<&>"]
    resp = one(
        host="vm",
        header=["c"] * len(cells),
        tabular=[cells],
        flags=plain(mode=MODE_CSV, headers=False),
    )
    assert render(resp) == '"\\."," lead","\u3000lead",\x1clead,,"a\nb",<&>'


def test_json_escapes_like_go_1_19() -> None:
    resp = one(host="vm", response="\b\f\x01\x7f\u2028é\t", flags=plain(mode=MODE_JSON))
    assert render(resp).startswith(
        '[{"Host":"vm","Response":"\\u0008\\u000c\\u0001\x7f\\u2028é\\t"'
    )


# --------------------------------------------------------------------------- help listing


HELP_LINE = re.compile(r"(.*?) \t* :\t (.*?) ?\t*")


@needs_help_all
def test_help_table_reproduces_bare_help() -> None:
    text = (SPEC / "help_all.txt").read_text()
    intro, *lines, last = text.split("\n")
    assert last == ""
    rows = []
    for line in lines:
        match = HELP_LINE.fullmatch(line)
        assert match is not None, line
        rows.append((match[1], match[2]))
    random.Random(7).shuffle(rows)  # help_table sorts, as minicli does
    listing = help_table(rows)
    assert listing.startswith(intro + "\n")
    assert render(one(host="vm", response=listing, flags=plain())) + "\n" == text


def test_tab_padding_rounds_cells_to_tab_stops() -> None:
    text = "ab\tc\nabcdefgh\td\n"
    assert tabwriter(text, minwidth=0, tabwidth=8, padding=0, padchar="\t") == (
        "ab\tc\nabcdefghd\n"  # a cell exactly on a tab stop gets no tab at all
    )
    assert tabwriter(text, minwidth=0, tabwidth=8, padding=1, padchar="\t") == (
        "ab\t\tc\nabcdefgh\td\n"  # widths 9 round up to 16
    )
    assert tabwriter(text, minwidth=0, tabwidth=0, padding=1, padchar="\t") == ("abc\nabcdefghd\n")


def test_tabwriter_cell_terminators() -> None:
    # \v ends a cell like \t, \f ends a line and flushes, an unterminated tail is kept.
    assert (
        tabwriter("a\vb\nccc\vd\fe\tf\ntail", minwidth=0, tabwidth=0, padding=1, padchar=".")
        == "a...b\nccc.d\ne.f\ntail"
    )


# -------------------------------------------------------------------------------- sorting


def go_atoi(text: str) -> int | None:
    if re.fullmatch("[+-]?[0-9]+", text) and -(2**63) <= int(text) < 2**63:
        return int(text)
    return None


def go_less(a: list[str], b: list[str]) -> bool:
    """minicli's table.Less."""
    for x, y in zip(a, b, strict=False):
        if x != y:
            x_int, y_int = go_atoi(x), go_atoi(y)
            if x_int is not None and y_int is not None:
                return x_int < y_int
            return x.encode() < y.encode()
    return True


def test_go_sort_sorts_every_shape_of_input() -> None:
    rng = random.Random(1)
    shapes: dict[str, Callable[[int], list[int]]] = {
        "random": lambda n: [rng.randrange(n) for _ in range(n)],
        "sorted": lambda n: list(range(n)),
        "reversed": lambda n: list(range(n, 0, -1)),
        "few values": lambda n: [rng.randrange(3) for _ in range(n)],
        "organ pipe": lambda n: list(range(n // 2)) + list(range(n // 2, 0, -1)),
        "nearly sorted": lambda n: [
            i if rng.random() > 0.02 else rng.randrange(n) for i in range(n)
        ],
    }
    for shape, make in shapes.items():
        for n in (0, 1, 2, 12, 13, 49, 50, 51, 300, 2000):
            values = make(n)
            rows = [[str(v), f"id{i:05}"] for i, v in enumerate(values)]
            go_sort_table(rows)
            assert rows == sorted(rows, key=lambda r: (int(r[0]), r[1])), (shape, n)


def test_go_sort_keeps_tied_rows_in_place_on_short_tables() -> None:
    # `7` and `007` are equal as integers and differ as text: neither is less.
    # Up to 12 rows Go uses insertion sort, which moves nothing for them.
    rows = [["007"], ["7"], ["+7"]]
    go_sort_table(rows)
    assert rows == [["007"], ["7"], ["+7"]]
    rows = [["9"], ["+7"], ["007"], ["-1"]]
    go_sort_table(rows)
    assert rows == [["-1"], ["+7"], ["007"], ["9"]]


# ------------------------------------------------------- model of the renderer (hypothesis)

ALPHABET = st.sampled_from(
    [*"aAzZ09-+ ,\"'|[]{}<>&\\.\t\n\v\f\r", "é", "日", "\x85", "\xa0", "\x7f"]
)
CELL = st.one_of(
    st.text(ALPHABET, max_size=8),
    st.integers(-(2**64), 2**64).map(str),
    st.sampled_from(["", "+5", "-0", "10", "9", "1a", "[x, y]", "{k: 1}", "\\.", " lead"]),
)


@st.composite
def replies(draw: st.DrawFn) -> Reply:
    width = draw(st.integers(0, 4))
    rows = draw(st.lists(st.lists(CELL, min_size=width, max_size=width), max_size=16))
    header = draw(st.one_of(st.none(), st.lists(CELL, min_size=width, max_size=width)))
    tabular = draw(st.sampled_from([None, rows, rows, rows]))
    flags = Flags(
        annotate=draw(st.booleans()),
        headers=draw(st.booleans()),
        sort=draw(st.booleans()),
        mode=draw(st.sampled_from([MODE_DEFAULT, MODE_DEFAULT, MODE_CSV, MODE_JSON])),
    )
    return one(
        host=draw(st.sampled_from(["vm", "host-1", "ä"])),
        response=draw(st.text(ALPHABET, max_size=6)),
        header=header,
        tabular=tabular,
        error=draw(st.sampled_from(["", "", "", "boom <&>"])),
        flags=flags,
    )


def consistently_ordered(rows: list[list[str]]) -> bool:
    """Whether any correct sort agrees: go_less is a strict total order on distinct rows."""

    def compare(a: list[str], b: list[str]) -> int:
        return -1 if go_less(a, b) else 1

    distinct = sorted(map(list, {tuple(row) for row in rows}), key=functools.cmp_to_key(compare))
    return all(
        go_less(a, b) and not go_less(b, a)
        for i, a in enumerate(distinct)
        for b in distinct[i + 1 :]
    )


def as_go_1_19_json(reference_json: str) -> str:
    """The model uses Python's json, which writes \\b and \\f as Go only does since 1.22."""
    return re.sub(
        r"\\(.)", lambda m: {"b": "\\u0008", "f": "\\u000c"}.get(m[1], m[0]), reference_json
    )


@needs_reference
@settings(max_examples=300, deadline=None)
@given(replies())
def test_render_agrees_with_the_spec_model(reply: Reply) -> None:
    assert REFERENCE is not None
    resp, flags = reply.responses[0], reply.flags
    if flags.sort and resp.tabular and flags.mode != MODE_JSON:
        host = [resp.host] if flags.annotate else []
        assume(consistently_ordered([host + row for row in resp.tabular]))
    # The model has no nil header for tables; Go writes an empty header line for it.
    header = resp.header if flags.mode == MODE_JSON else resp.header or []
    model_input = {
        "Host": resp.host,
        "Response": resp.response,
        "Header": header,
        "Tabular": resp.tabular,
        "Error": resp.error,
    }
    expected = REFERENCE.render(
        model_input,
        annotate=flags.annotate,
        headers=flags.headers,
        sort=flags.sort,
        mode=flags.mode,
    )
    if flags.mode == MODE_JSON:
        expected = as_go_1_19_json(expected)
    assert render(reply) == expected


# ---------------------------------------------------------------------- the tabulate path

PRINTABLE_CELL = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10),
    st.sampled_from(["", " ", "True", "False", "1,000", "nan", "-1.5e3", "0x1F", "| x |", " a "]),
)


@st.composite
def printable_grids(draw: st.DrawFn) -> list[list[str]]:
    width = draw(st.integers(2, 6))
    return draw(
        st.lists(st.lists(PRINTABLE_CELL, min_size=width, max_size=width), min_size=1, max_size=8)
    )


@settings(max_examples=200, deadline=None)
@given(printable_grids())
def test_tabulate_path_gives_tabwriters_bytes(lines: list[list[str]]) -> None:
    assert _tabulate_reproduces(lines)
    text = "".join("\t| ".join(line) + "\n" for line in lines)
    assert _tabulate_table(lines) == tabwriter(text, minwidth=5, tabwidth=0, padding=1, padchar=" ")


@pytest.mark.parametrize(
    "lines",
    [
        [["a", "b\tc"]],
        [["a", "b\nc"]],
        [["é", "b"]],
        [["a", "\x1b[1mb"]],
        [["a"], ["b"]],
        [["only"]],
        [["a", "b"], ["c"]],
        [["a", "\x01"]],
        [["a", "b\rc"]],
    ],
)
def test_tabulate_path_is_not_taken_where_it_would_differ(lines: list[list[str]]) -> None:
    assert not _tabulate_reproduces(lines)


def test_tabulate_globals_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import tabulate

    lines = [["id", "v", "last"], ["1", "", "x"], ["22", "y", ""]]
    expected = "id   | v  | last\n1    |    | x\n22   | y  | \n"
    before = tabulate.MIN_PADDING
    assert _aligned_table(lines) == expected
    assert before == tabulate.MIN_PADDING
    monkeypatch.setattr(tabulate, "MIN_PADDING", 9)  # another caller's setting does not leak in
    monkeypatch.setattr(tabulate, "PRESERVE_WHITESPACE", False)
    assert _aligned_table(lines) == expected


def test_importing_render_stays_light() -> None:
    # The socket client renders replies and must start in milliseconds.
    code = (
        "import sys, minishell.render\n"
        "heavy = {'trio', 'lark', 'prompt_toolkit', 'tabulate'}\n"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout == "[]\n"


# ------------------------------------------------------------------ replies from many hosts


def hosts(*responses: Response, flags: Flags | None = None) -> Reply:
    return Reply(list(responses), flags or Flags())


def test_tables_of_many_hosts_merge_into_one() -> None:
    reply = hosts(Response("vm2", header=["name"], tabular=[["b"], ["a"]]),
                  Response("vm1", header=["name"], tabular=[["c"]]))
    assert render(reply) == "host | name\nvm1  | c\nvm2  | a\nvm2  | b"


def test_same_answers_compress_into_host_ranges() -> None:
    reply = hosts(*(Response(f"node{n}", response="minimega 2.9") for n in (1, 2, 3, 5)),
                  Response("node4", response="other"), Response("node6", error="boom"))
    assert render(reply) == "node4: other\nnode[1-3,5]: minimega 2.9"
    reply.flags = Flags(compress=False)
    assert render(reply).splitlines()[:2] == ["node1: minimega 2.9", "node2: minimega 2.9"]


def test_replies_that_cannot_be_shown_together_say_why() -> None:
    assert render(hosts(Response("a", header=["x"], tabular=[["1"]]),
                        Response("b", header=["y"], tabular=[["2"]]))) == (
        "header mismatch, hosts: a, b")
    assert render(hosts(Response("a", header=["x"], tabular=[["1"]]),
                        Response("b", response="text"))) == (
        "header mismatch, hosts: a, b")  # a simple response has no header
    assert render(hosts(Response("a", tabular=[["1"]]), Response("b", response="text"))) == (
        "responses mix simple and tabular data")


def test_errors_of_many_hosts_are_one_line_each() -> None:
    reply = hosts(Response("a", error="first"), Response("b"), Response("c", error="last\n"))
    assert error_text(reply) == "Error (a): first\nError (c): last"
    assert error_text(hosts(Response("a"))) == ""


def test_json_lists_every_host() -> None:
    reply = hosts(Response("a", response="x"), Response("b", error="e"),
                  flags=Flags(mode=MODE_JSON))
    assert render(reply) == (
        '[{"Host":"a","Response":"x","Header":null,"Tabular":null,"Error":"","Data":null},'
        '{"Host":"b","Response":"","Header":null,"Tabular":null,"Error":"e","Data":null}]')


@pytest.mark.parametrize(
    ("names", "compressed"),
    [
        (["vm"], "vm"),
        (["node1", "node2", "node3", "node5"], "node[1-3,5]"),
        (["b", "a"], "a,b"),
        (["kn1", "kn2", "other"], "kn[1-2],other"),
        (["r1a", "r2a", "r1b"], "r[1-2]a,r1b"),
        (["n9", "n10", "n11"], "n[9-11]"),
    ],
)
def test_host_ranges(names: list[str], compressed: str) -> None:
    assert unsplit_list(names) == compressed
