"""minimega's host ranges (pkg/ranges): `node[1-3,5]` for node1, node2, node3, node5.

`unsplit_list` is what `.compress` shows for hosts that answered the same.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable


def _is_number(char: str) -> bool:
    """Go's unicode.IsNumber: any Unicode number category (Nd, Nl, No)."""
    return unicodedata.category(char).startswith("N")


def _go_atoi(text: str) -> int:
    """strconv.Atoi as ranges.Flatten uses it: ASCII digits only, 0 on error."""
    if text.isascii() and text.isdigit():
        return int(text)
    return 0


class _Trie:
    __slots__ = ("children", "terminal")

    def __init__(self) -> None:
        self.children: dict[str, _Trie] = {}
        self.terminal = False

    def add(self, text: str) -> None:
        node = self
        for char in text:
            node = node.children.setdefault(char, _Trie())
        node.terminal = True

    def flatten(self) -> list[str]:
        """trieNode.Flatten: runs of numbers with a common suffix become ranges."""
        result = [""] if self.terminal else []
        numbers: dict[int, _Trie] = {}
        for char in sorted(self.children):
            child = self.children[char]
            if _is_number(char):
                for digits, descendant in child._flatten_numbers(char).items():
                    numbers[_go_atoi(digits)] = descendant
                continue
            result += [char + suffix for suffix in child.flatten()]
        by_suffix: dict[str, list[int]] = {}
        for number, descendant in numbers.items():
            for suffix in descendant.flatten():
                by_suffix.setdefault(suffix, []).append(number)
        result += [unsplit_ints(by_suffix[suffix]) + suffix for suffix in sorted(by_suffix)]
        return result

    def _flatten_numbers(self, first: str) -> dict[str, _Trie]:
        found: dict[str, _Trie] = {}
        for char, child in self.children.items():
            if _is_number(char):
                for digits, descendant in child._flatten_numbers(char).items():
                    found[first + digits] = descendant
        return found or {first: self}


def unsplit_ints(numbers: list[int]) -> str:
    """unsplitInts: [1, 2, 3, 5] -> `[1-3,5]`; one number stands alone."""
    if not numbers:
        return ""
    if len(numbers) == 1:
        return str(numbers[0])
    numbers = sorted(numbers)
    parts: list[str] = []
    start = previous = numbers[0]
    for number in numbers[1:]:
        if number - previous != 1:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
            start = number
        previous = number
    parts.append(str(start) if start == previous else f"{start}-{previous}")
    return "[" + ",".join(parts) + "]"


def unsplit_list(values: Iterable[str]) -> str:
    """ranges.UnsplitList: names compressed into ranges, joined by commas."""
    trie = _Trie()
    for value in values:
        trie.add(value)
    return ",".join(trie.flatten())


class RangeError(ValueError):
    """A host list minimega's ranges cannot read; the text is minimega's."""


def split_list(text: str) -> list[str]:
    """ranges.SplitList: `mm[1-3],head` -> mm1, mm2, mm3, head (a bracket holds numbers
    and runs of them; all of one width keep their zero padding)."""
    parts: list[str] = []
    start = 0
    inside = False
    for index, char in enumerate(text):
        if char == "[":
            if inside:
                raise RangeError(f"nested '[' at char {index}")
            inside = True
        elif char == "]":
            if not inside:
                raise RangeError(f"unmatched ']' at char {index}")
            inside = False
        elif char == "," and not inside:
            parts.append(text[start:index])
            start = index + 1
    if inside:
        raise RangeError("unterminated '['")
    if start < len(text):
        parts.append(text[start:])
    hosts: list[str] = []
    for part in parts:
        prefix, bracket, spec = part.partition("[")
        if not bracket:
            hosts.append(part)
            continue
        if not spec.endswith("]"):
            raise RangeError("invalid range specification")
        hosts.extend(prefix + number for number in _expand(spec[:-1]))
    return hosts


def _expand(spec: str) -> list[str]:
    numbers: set[int] = set()
    widths: set[int] = set()
    for item in spec.split(","):
        low, dash, high = item.partition("-")
        if not (low.isascii() and low.isdigit()) or (dash and not (high.isascii()
                                                                   and high.isdigit())):
            raise RangeError(f"invalid subrange {item}" if dash else
                             f'strconv.Atoi: parsing "{item}": invalid syntax')
        first, last = int(low), int(high) if dash else int(low)
        numbers.update(range(first, last + 1))
        widths.add(len(low) if not dash or len(low) == len(high) else 0)
    pad = widths.pop() if len(widths) == 1 else 0
    return [str(number).zfill(pad) for number in sorted(numbers)]
