"""A Response as minimega 2.9 prints it: minicli's `Responses.String()` for one host.

Everything here is a port of the Go code minimega runs (pkg/minicli/output.go with
text/tabwriter, encoding/csv, encoding/json and sort.Sort from go1.19), because
transcripts compare bytes. Stdlib only at import time: the socket client renders
with this module and must start fast; tabulate is imported where it is used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from minishell.gostr import GO_SPACE, trim_space
from minishell.protocol.control import go_json_string
from minishell.ranges import unsplit_list
from minishell.reply import MODE_CSV, MODE_JSON, Reply, Response

HELP_INTRO = "Display help on a command. Here is a list of commands:\n"

# printTabular joins cells with this; the "| " therefore belongs to the next cell.
_CELL_SEPARATOR = "\t| "
_TABLE_MINWIDTH = 5


class _Invalid(Exception):
    """Responses that cannot be shown together: minicli returns the error text instead."""


def render(reply: Reply) -> str:
    """The `Rendered` text minimega produces for a reply (Responses.String); "" prints nothing.

    Errors are never part of it (the front end shows them, see `error_text`),
    except inside the JSON objects in JSON mode.
    """
    responses, flags = reply.responses, reply.flags
    if not responses:
        return ""
    if flags.mode == MODE_JSON:
        return json_responses(reply)
    try:
        header = _common_header(responses)
        tabular = _tabular(responses, header)
    except _Invalid as error:
        return str(error)
    if tabular and any(response.tabular for response in responses):
        text = _tabular_text(reply, header)
    elif flags.compress and len(responses) > 1:
        text = _compressed_text(reply)
    else:
        text = "".join(f"{r.host}: {r.response}\n" if flags.annotate else f"{r.response}\n"
                       for r in responses if not r.error and r.response)
    return trim_space(text)


def error_text(reply: Reply) -> str:
    """Responses.Error(): `Error (<host>): <error>` for each host that failed, trimmed.

    minicli puts a newline after each error except when its response is the
    last of all, so errors of several hosts are one per line.
    """
    last = len(reply.responses) - 1
    text = "".join(
        f"Error ({response.host}): {response.error}" + ("\n" if index != last else "")
        for index, response in enumerate(reply.responses) if response.error)
    return trim_space(text)


def _common_header(responses: list[Response]) -> list[str] | None:
    """getHeader: the header every response without an error shares."""
    first = next((r for r in responses if not r.error and r.header is not None), None)
    if first is None:
        return None
    for response in responses:
        if not response.error and response.header != first.header:
            raise _Invalid(f"header mismatch, hosts: {first.host}, {response.host}")
    return first.header


def _tabular(responses: list[Response], header: list[str] | None) -> bool:
    """validTabular: whether the responses are tables, each row as wide as the header."""
    simple = tabular = False
    for response in responses:
        if response.error:
            continue
        if response.tabular is not None:
            tabular = True
            if header is not None:
                for index, row in enumerate(response.tabular):
                    if len(row) != len(header):
                        raise _Invalid(
                            f"tabular width mismatch, host: {response.host}, row: {index}")
        elif response.response:
            simple = True
    if simple and tabular:
        raise _Invalid("responses mix simple and tabular data")
    return tabular


def _tabular_text(reply: Reply, header: list[str] | None) -> str:
    flags = reply.flags
    columns = list(header or ())
    rows: list[list[str]] = []
    for response in reply.responses:
        for row in response.tabular or ():
            rows.append([response.host, *row] if flags.annotate else list(row))
    if flags.annotate:
        columns.insert(0, "host")
    if flags.sort:
        go_sort_table(rows)
    lines = [columns, *rows] if flags.headers else rows
    if flags.mode == MODE_CSV:
        return "".join(_csv_record(line) for line in lines)
    return _aligned_table(lines)


def _compressed_text(reply: Reply) -> str:
    """compressString: hosts that answered the same text share one line, as a range."""
    by_text: dict[str, list[str]] = {}
    for response in reply.responses:
        if not response.error and response.response:
            by_text.setdefault(response.response, []).append(response.host)
    lines = {(hosts[0] if len(hosts) == 1 else unsplit_list(hosts)): text
             for text, hosts in by_text.items()}
    annotate = reply.flags.annotate
    return "".join(f"{hosts}: {lines[hosts]}\n" if annotate else f"{lines[hosts]}\n"
                   for hosts in sorted(lines))


# ---------------------------------------------------------------------------------- default mode


def _aligned_table(lines: list[list[str]]) -> str:
    """printTabular's tabwriter output (before TrimSpace)."""
    if _tabulate_reproduces(lines):
        return _tabulate_table(lines)
    text = "".join(_CELL_SEPARATOR.join(line) + "\n" for line in lines)
    return tabwriter(text, minwidth=_TABLE_MINWIDTH, tabwidth=0, padding=1, padchar=" ")


def _tabulate_reproduces(lines: list[list[str]]) -> bool:
    """Whether tabulate gives tabwriter's bytes for these lines.

    Then the layout is a plain grid: every line has the same n >= 2 cells, so each
    column but the last is one tabwriter block. Printable ASCII keeps out what the
    two libraries read differently: tabwriter's cell and line breaks (\\t \\n \\v \\f),
    tabulate's multi-line cells (\\r), ANSI codes, separating lines (\\x01) and
    wide characters (tabulate measures wcwidth, Go counts runes).
    """
    width = len(lines[0])
    return width >= 2 and all(
        len(line) == width and all(cell.isascii() and cell.isprintable() for cell in line)
        for line in lines
    )


def _tabulate_table(lines: list[list[str]]) -> str:
    from tabulate import DataRow, TableFormat, tabulate  # ~80 ms to import: not at startup

    # tabwriter pads each column but the last, "| value" (or the first value), to
    # max(5, width + 1). tabulate pads the bare values to the widest one and the
    # " | " separator supplies the rest; pre-padding the first line to 4 (first
    # column) or 2 (after a "| ") gives the minimum. No headers are passed, so
    # tabulate.MIN_PADDING, a module global, never applies and is never touched.
    grid = TableFormat(
        lineabove=None,
        linebelowheader=None,
        linebetweenrows=None,
        linebelow=None,
        headerrow=DataRow("", " | ", " |"),
        datarow=DataRow("", " | ", " |"),  # ends in "|": tabulate's rstrip() cannot eat padding
        padding=0,
        with_header_hide=None,
    )
    first, *rest = (line[:-1] for line in lines)
    first = [cell.ljust(4 if index == 0 else 2) for index, cell in enumerate(first)]
    body = tabulate(
        [first, *rest],
        tablefmt=grid,
        disable_numparse=True,
        stralign="left",
        preserve_whitespace=True,
    )
    return "".join(
        f"{aligned} {line[-1]}\n" for aligned, line in zip(body.split("\n"), lines, strict=True)
    )


_CELL_END = re.compile("[\t\v\n\f]")


def tabwriter(text: str, *, minwidth: int, tabwidth: int, padding: int, padchar: str) -> str:
    """Go's text/tabwriter with flags 0: Init(..., minwidth, tabwidth, padding, padchar, 0),
    one Write(text), then Flush().

    Widths count runes (characters). With padchar "\\t" cells are padded with tabs,
    assuming a tab advances to the next multiple of tabwidth.
    """
    if min(minwidth, tabwidth, padding) < 0:
        raise ValueError("negative minwidth, tabwidth, or padding")
    if len(padchar) != 1:
        raise ValueError("padchar must be one character")
    writer = _TabFormatter(minwidth, tabwidth, padding, padchar)
    lines: list[list[str]] = [[]]
    start = 0
    for match in _CELL_END.finditer(text):
        line = lines[-1]
        line.append(text[start : match.start()])
        start = match.end()
        if match.group() in "\n\f":
            lines.append([])
            # A line of one cell cannot widen any column, so Go flushes there:
            # the lines after it are aligned on their own.
            if match.group() == "\f" or len(line) == 1:
                writer.format(lines)
                lines = [[]]
    if start < len(text):
        lines[-1].append(text[start:])
    writer.format(lines)
    return "".join(writer.out)


class _TabFormatter:
    """tabwriter's format/writeLines over one flushed batch of lines."""

    __slots__ = ("minwidth", "out", "padchar", "padding", "tabwidth", "widths")

    def __init__(self, minwidth: int, tabwidth: int, padding: int, padchar: str) -> None:
        self.minwidth = minwidth
        self.tabwidth = tabwidth
        self.padding = padding
        self.padchar = padchar
        self.out: list[str] = []
        self.widths: list[int] = []

    def format(self, lines: list[list[str]]) -> None:
        """Format lines; the last one is unterminated (often empty) and gets no newline."""
        self._format(lines, 0, len(lines))

    def _format(self, lines: list[list[str]], line0: int, line1: int) -> None:
        # A column block is a run of lines that have a tab-terminated cell in this
        # column (a line's last cell never belongs to a column); blocks of the next
        # column are found inside each block.
        column = len(self.widths)
        this = line0
        while this < line1:
            if column < len(lines[this]) - 1:
                self._write_lines(lines, line0, this)
                line0 = this
                width = self.minwidth
                while this < line1 and column < len(lines[this]) - 1:
                    width = max(width, len(lines[this][column]) + self.padding)
                    this += 1
                self.widths.append(width)
                self._format(lines, line0, this)
                self.widths.pop()
                line0 = this
            this += 1
        self._write_lines(lines, line0, line1)

    def _write_lines(self, lines: list[list[str]], line0: int, line1: int) -> None:
        out, widths = self.out, self.widths
        for index in range(line0, line1):
            for column, cell in enumerate(lines[index]):
                out.append(cell)
                if column < len(widths):
                    out.append(self._padding(len(cell), widths[column]))
            if index + 1 < len(lines):
                out.append("\n")

    def _padding(self, text_width: int, cell_width: int) -> str:
        if self.padchar != "\t":
            return self.padchar * (cell_width - text_width)
        if self.tabwidth == 0:
            return ""  # tabs have no width: Go cannot pad
        tab = self.tabwidth
        cell_width = -(-cell_width // tab) * tab
        return "\t" * -(-(cell_width - text_width) // tab)


def help_table(rows: Iterable[tuple[str, str]]) -> str:
    """minicli's printHelpShort: the bare `help` listing, from (pattern, short help) pairs.

    Returns the handler's Response text (as Go's Help("") does); rendering it
    trims the trailing tab and newline. Patterns are sorted byte-wise; a pattern
    listed twice shows the help given last, as minicli's map does.
    """
    rows = list(rows)
    short_help = dict(rows)
    patterns = sorted(pattern for pattern, _ in rows)
    # fmt.Fprintln(w, v, "\t", ":\t", vals[v], "\t") puts a space between operands.
    text = "".join(f"{pattern} \t :\t {short_help[pattern]} \t\n" for pattern in patterns)
    return HELP_INTRO + tabwriter(text, minwidth=0, tabwidth=8, padding=0, padchar="\t")


# ------------------------------------------------------------------------------------- sorting

_GO_INT = re.compile("[+-]?[0-9]+")
_INT64 = range(-(2**63), 2**63)


def _go_atoi(text: str) -> int | None:
    """strconv.Atoi on a 64-bit platform; None where Go returns an error."""
    if _GO_INT.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value in _INT64 else None


def go_sort_table(rows: list[list[str]]) -> None:
    """minicli's sort.Sort(table(rows)), in place, exactly as go1.19 orders them.

    table.Less is not a strict weak order (equal rows are "less" both ways, `7`
    and `007` tie, `9 < 10 < 1a < 9` cycles), so the result depends on the
    algorithm: this is Go's pdqsort step for step.
    """
    ints = [[_go_atoi(cell) for cell in row] for row in rows]

    def less(i: int, j: int) -> bool:
        for a, b, a_int, b_int in zip(rows[i], rows[j], ints[i], ints[j], strict=False):
            if a != b:
                if a_int is not None and b_int is not None:
                    return a_int < b_int
                return a < b  # code point order is UTF-8 byte order
        return True

    def swap(i: int, j: int) -> None:
        rows[i], rows[j] = rows[j], rows[i]
        ints[i], ints[j] = ints[j], ints[i]

    _GoSort(less, swap).sort(len(rows))


class _GoSort:
    """sort.Sort from go1.19 (src/sort/zsortinterface.go, sort.go) over Less/Swap callbacks."""

    __slots__ = ("less", "swap")

    _MAX_INSERTION = 12
    _SHORTEST_NINTHER = 50
    _MAX_SWAPS = 4 * 3
    _UNKNOWN, _INCREASING, _DECREASING = range(3)

    def __init__(self, less: Callable[[int, int], bool], swap: Callable[[int, int], None]) -> None:
        self.less = less
        self.swap = swap

    def sort(self, n: int) -> None:
        if n > 1:
            self._pdqsort(0, n, n.bit_length())

    def _insertion_sort(self, a: int, b: int) -> None:
        for i in range(a + 1, b):
            j = i
            while j > a and self.less(j, j - 1):
                self.swap(j, j - 1)
                j -= 1

    def _sift_down(self, lo: int, hi: int, first: int) -> None:
        root = lo
        while True:
            child = 2 * root + 1
            if child >= hi:
                return
            if child + 1 < hi and self.less(first + child, first + child + 1):
                child += 1
            if not self.less(first + root, first + child):
                return
            self.swap(first + root, first + child)
            root = child

    def _heap_sort(self, a: int, b: int) -> None:
        first, hi = a, b - a
        for i in range((hi - 1) // 2, -1, -1):
            self._sift_down(i, hi, first)
        for i in range(hi - 1, -1, -1):
            self.swap(first, first + i)
            self._sift_down(0, i, first)

    def _pdqsort(self, a: int, b: int, limit: int) -> None:
        was_balanced = True
        was_partitioned = True
        while True:
            length = b - a
            if length <= self._MAX_INSERTION:
                self._insertion_sort(a, b)
                return
            if limit == 0:
                self._heap_sort(a, b)
                return
            if not was_balanced:
                self._break_patterns(a, b)
                limit -= 1
            pivot, hint = self._choose_pivot(a, b)
            if hint == self._DECREASING:
                self._reverse_range(a, b)
                pivot = (b - 1) - (pivot - a)
                hint = self._INCREASING
            if (
                was_balanced
                and was_partitioned
                and hint == self._INCREASING
                and self._partial_insertion_sort(a, b)
            ):
                return
            if a > 0 and not self.less(a - 1, pivot):
                a = self._partition_equal(a, b, pivot)
                continue
            mid, was_partitioned = self._partition(a, b, pivot)
            left_len, right_len = mid - a, b - mid
            balance_threshold = length // 8
            if left_len < right_len:
                was_balanced = left_len >= balance_threshold
                self._pdqsort(a, mid, limit)
                a = mid + 1
            else:
                was_balanced = right_len >= balance_threshold
                self._pdqsort(mid + 1, b, limit)
                b = mid

    def _partition(self, a: int, b: int, pivot: int) -> tuple[int, bool]:
        less, swap = self.less, self.swap
        swap(a, pivot)
        i, j = a + 1, b - 1
        while i <= j and less(i, a):
            i += 1
        while i <= j and not less(j, a):
            j -= 1
        if i > j:
            swap(j, a)
            return j, True
        swap(i, j)
        i += 1
        j -= 1
        while True:
            while i <= j and less(i, a):
                i += 1
            while i <= j and not less(j, a):
                j -= 1
            if i > j:
                break
            swap(i, j)
            i += 1
            j -= 1
        swap(j, a)
        return j, False

    def _partition_equal(self, a: int, b: int, pivot: int) -> int:
        less, swap = self.less, self.swap
        swap(a, pivot)
        i, j = a + 1, b - 1
        while True:
            while i <= j and not less(a, i):
                i += 1
            while i <= j and less(a, j):
                j -= 1
            if i > j:
                return i
            swap(i, j)
            i += 1
            j -= 1

    def _partial_insertion_sort(self, a: int, b: int) -> bool:
        max_steps, shortest_shifting = 5, 50
        less, swap = self.less, self.swap
        i = a + 1
        for _ in range(max_steps):
            while i < b and not less(i, i - 1):
                i += 1
            if i == b:
                return True
            if b - a < shortest_shifting:
                return False
            swap(i, i - 1)
            if i - a >= 2:  # shift the smaller one to the left
                j = i - 1
                while j >= 1 and less(j, j - 1):
                    swap(j, j - 1)
                    j -= 1
            if b - i >= 2:  # shift the greater one to the right
                j = i + 1
                while j < b and less(j, j - 1):
                    swap(j, j - 1)
                    j += 1
        return False

    def _break_patterns(self, a: int, b: int) -> None:
        length = b - a
        if length < 8:
            return
        random = length
        modulus = 1 << length.bit_length()
        for idx in range(a + (length // 4) * 2 - 1, a + (length // 4) * 2 + 2):
            # go1.19's xorshift (the 13/17/5 triple, on a uint64)
            random ^= (random << 13) & 0xFFFF_FFFF_FFFF_FFFF
            random ^= random >> 17
            random ^= (random << 5) & 0xFFFF_FFFF_FFFF_FFFF
            other = random & (modulus - 1)
            if other >= length:
                other -= length
            self.swap(idx, a + other)

    def _choose_pivot(self, a: int, b: int) -> tuple[int, int]:
        length = b - a
        swaps = [0]
        i, j, k = a + length // 4, a + length // 4 * 2, a + length // 4 * 3
        if length >= 8:
            if length >= self._SHORTEST_NINTHER:
                i = self._median(i - 1, i, i + 1, swaps)
                j = self._median(j - 1, j, j + 1, swaps)
                k = self._median(k - 1, k, k + 1, swaps)
            j = self._median(i, j, k, swaps)
        if swaps[0] == 0:
            return j, self._INCREASING
        if swaps[0] == self._MAX_SWAPS:
            return j, self._DECREASING
        return j, self._UNKNOWN

    def _median(self, a: int, b: int, c: int, swaps: list[int]) -> int:
        a, b = self._order2(a, b, swaps)
        b, c = self._order2(b, c, swaps)
        a, b = self._order2(a, b, swaps)
        return b

    def _order2(self, a: int, b: int, swaps: list[int]) -> tuple[int, int]:
        if self.less(b, a):
            swaps[0] += 1
            return b, a
        return a, b

    def _reverse_range(self, a: int, b: int) -> None:
        i, j = a, b - 1
        while i < j:
            self.swap(i, j)
            i += 1
            j -= 1


# -------------------------------------------------------------------------------------- CSV

_CSV_NEEDS_QUOTES = re.compile('[,"\r\n]')


def _csv_field(field: str) -> str:
    """encoding/csv's Writer (Comma ',', UseCRLF false) for one field."""
    if field and (
        field == "\\." or _CSV_NEEDS_QUOTES.search(field) is not None or field[0] in GO_SPACE
    ):
        return '"' + field.replace('"', '""') + '"'
    return field


def _csv_record(fields: Sequence[str]) -> str:
    return ",".join(_csv_field(field) for field in fields) + "\n"


# ------------------------------------------------------------------------------------- JSON

# Go's encoding/json for strings lives with the socket's protocol, which the
# clients share; tables in JSON mode use the same.
json_string = go_json_string


def _json_strings(items: Sequence[str] | None) -> str:
    if items is None:
        return "null"
    return "[" + ",".join(json_string(item) for item in items) + "]"


def json_response(resp: Response) -> str:
    """json.Marshal of one minicli.Response; the flags are `json:"-"` and Data is always nil."""
    if resp.tabular is None:
        tabular = "null"
    else:
        tabular = "[" + ",".join(_json_strings(row) for row in resp.tabular) + "]"
    return (
        f'{{"Host":{json_string(resp.host)},"Response":{json_string(resp.response)},'
        f'"Header":{_json_strings(resp.header)},"Tabular":{tabular},'
        f'"Error":{json_string(resp.error)},"Data":null}}'
    )


def json_responses(reply: Reply) -> str:
    """json.Marshal(Responses): the reply's `Resp` on the socket, and JSON mode's text."""
    return "[" + ",".join(json_response(response) for response in reply.responses) + "]"
