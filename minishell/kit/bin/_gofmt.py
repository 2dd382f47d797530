"""fmt.Sprintf as Go 1.19 formats string operands, error forms included.

minimega's execf hands its user-given format and one line to Sprintf, then hands the command's
output to Fprintf as a format with no operands at all. So every directive a user can write must
come out as Go writes it: flags, width, precision, [n] indexes, `*` (which no string satisfies),
%T and %p, and the %!verb(string=...), %!verb(MISSING), %!verb(BADINDEX), %!(BADWIDTH),
%!(BADPREC), %!(NOVERB) and %!(EXTRA string=...) forms.
"""

from __future__ import annotations

from _gostrconv import can_backquote, quote
from _goutf8 import decode_rune, encode_rune, rune_count

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

_PERCENT = 0x25
_TOO_LARGE = 1_000_000  # fmt's tooLarge: widths, precisions and indexes beyond are refused
_LOWER_HEX = b"0123456789abcdefx"
_UPPER_HEX = b"0123456789ABCDEFX"


def _parse_number(text: bytes, start: int, end: int) -> tuple[int, bool, int]:
    """parsenum: (value, present, next offset); an absurdly long number swallows the rest."""
    if start >= end:
        return 0, False, end
    number = 0
    present = False
    offset = start
    while offset < end and 0x30 <= text[offset] <= 0x39:
        if number > _TOO_LARGE:
            return 0, False, end
        number = number * 10 + text[offset] - 0x30
        present = True
        offset += 1
    return number, present, offset


def _parse_argument_index(text: bytes) -> tuple[int, int, bool]:
    """parseArgNumber on text starting at "[": (zero-based index, bytes consumed, well formed)."""
    if len(text) < 3:
        return 0, 1, False
    close = text.find(b"]", 1)
    if close < 0:
        return 0, 1, False
    number, present, offset = _parse_number(text, 1, close)
    if not present or offset != close:
        return 0, close + 1, False
    return number - 1, close + 1, True


class _Printer:
    """fmt's pp and fmt structs, reduced to string operands."""

    __slots__ = (
        "good_argument_index",
        "minus",
        "operands",
        "out",
        "plus",
        "plus_v",
        "precision",
        "precision_present",
        "reordered",
        "sharp",
        "sharp_v",
        "space",
        "width",
        "width_present",
        "zero",
    )

    def __init__(self, operands: Sequence[bytes]) -> None:
        self.operands = operands
        self.out = bytearray()
        self.reordered = False
        self.good_argument_index = True
        self.clear_flags()

    def clear_flags(self) -> None:
        self.plus = self.minus = self.sharp = self.space = self.zero = False
        self.plus_v = self.sharp_v = False
        self.width = self.precision = 0
        self.width_present = self.precision_present = False

    def write_padding(self, count: int) -> None:
        if count > 0:
            self.out += (b"0" if self.zero else b" ") * count

    def pad(self, text: bytes) -> None:
        if not self.width_present or self.width == 0:
            self.out += text
            return
        padding = self.width - rune_count(text)
        if self.minus:
            self.out += text
            self.write_padding(padding)
        else:
            self.write_padding(padding)
            self.out += text

    def truncate(self, text: bytes) -> bytes:
        """Precision counts runes for strings."""
        if not self.precision_present:
            return text
        count = 0
        offset = 0
        while offset < len(text):
            if count == self.precision:
                return text[:offset]
            offset += decode_rune(text, offset)[1]
            count += 1
        return text

    def format_s(self, text: bytes) -> None:
        self.pad(self.truncate(text))

    def format_hex(self, text: bytes, digits: bytes) -> None:
        """fmtSbx for a string: two hex digits a byte, `#` adds 0x, ` ` spaces the bytes."""
        length = min(len(text), self.precision) if self.precision_present else len(text)
        width = 2 * length
        if width == 0:
            if self.width_present:
                self.write_padding(self.width)
            return
        if self.space:
            if self.sharp:
                width *= 2
            width += length - 1
        elif self.sharp:
            width += 2
        if self.width_present and self.width > width and not self.minus:
            self.write_padding(self.width - width)
        prefix = b"0" + digits[16:17]
        if self.sharp:
            self.out += prefix
        for index, byte in enumerate(text[:length]):
            if self.space and index > 0:
                self.out += b" " + prefix if self.sharp else b" "
            self.out += digits[byte >> 4 : (byte >> 4) + 1] + digits[byte & 0xF : (byte & 0xF) + 1]
        if self.width_present and self.width > width and self.minus:
            self.write_padding(self.width - width)

    def format_q(self, text: bytes) -> None:
        text = self.truncate(text)
        if self.sharp and can_backquote(text):
            self.pad(b"`" + text + b"`")
        else:
            self.pad(quote(text, ascii_only=self.plus))

    def format_string(self, text: bytes, verb: int) -> None:
        if verb == 0x76:  # v
            if self.sharp_v:
                self.format_q(text)
            else:
                self.format_s(text)
        elif verb == 0x73:  # s
            self.format_s(text)
        elif verb == 0x78:  # x
            self.format_hex(text, _LOWER_HEX)
        elif verb == 0x58:  # X
            self.format_hex(text, _UPPER_HEX)
        elif verb == 0x71:  # q
            self.format_q(text)
        else:
            self.bad_verb(verb, text)

    def print_argument(self, argument: bytes, verb: int) -> None:
        if verb == 0x54:  # T: the operand's type
            self.format_s(b"string")
        elif verb == 0x70:  # p: a string has no address to print
            self.bad_verb(verb, argument)
        else:
            self.format_string(argument, verb)

    def bad_verb(self, verb: int, argument: bytes) -> None:
        # The operand is printed again with %v and whatever flags are still set.
        self.out += b"%!" + encode_rune(verb) + b"(string="
        self.print_argument(argument, 0x76)
        self.out += b")"

    def argument_index(self, index: int, text: bytes, offset: int) -> tuple[int, int, bool]:
        """argNumber: an explicit [n] at offset, if any."""
        if offset >= len(text) or text[offset] != 0x5B:
            return index, offset, False
        self.reordered = True
        explicit, consumed, well_formed = _parse_argument_index(text[offset:])
        if well_formed and 0 <= explicit < len(self.operands):
            return explicit, offset + consumed, True
        self.good_argument_index = False
        return index, offset + consumed, well_formed

    def star_argument(self, index: int) -> int:
        """intFromArg: `*` takes its number from an operand, and a string is never one."""
        return index + 1 if index < len(self.operands) else index

    def printf(self, text: bytes) -> bytes:
        end = len(text)
        index = 0
        after_index = False
        offset = 0
        while offset < end:
            self.good_argument_index = True
            percent = text.find(b"%", offset)
            if percent < 0:
                self.out += text[offset:]
                break
            self.out += text[offset:percent]
            offset = percent + 1
            self.clear_flags()
            while offset < end:
                flag = text[offset]
                if flag == 0x23:  # #
                    self.sharp = True
                elif flag == 0x30:  # 0 pads with zeros, but only on the left
                    self.zero = not self.minus
                elif flag == 0x2B:  # +
                    self.plus = True
                elif flag == 0x2D:  # -
                    self.minus = True
                    self.zero = False
                elif flag == 0x20:  # space
                    self.space = True
                else:
                    break
                offset += 1
            index, offset, after_index = self.argument_index(index, text, offset)
            if offset < end and text[offset] == 0x2A:  # *
                offset += 1
                index = self.star_argument(index)
                self.out += b"%!(BADWIDTH)"
                after_index = False
            else:
                self.width, self.width_present, offset = _parse_number(text, offset, end)
                if after_index and self.width_present:  # "%[3]2d"
                    self.good_argument_index = False
            if offset + 1 < end and text[offset] == 0x2E:  # .
                offset += 1
                if after_index:  # "%[3].2d"
                    self.good_argument_index = False
                index, offset, after_index = self.argument_index(index, text, offset)
                if offset < end and text[offset] == 0x2A:
                    offset += 1
                    index = self.star_argument(index)
                    self.out += b"%!(BADPREC)"
                    after_index = False
                else:
                    self.precision, _, offset = _parse_number(text, offset, end)
                    self.precision_present = True
            if not after_index:
                index, offset, after_index = self.argument_index(index, text, offset)
            if offset >= end:
                self.out += b"%!(NOVERB)"
                break
            verb, size = decode_rune(text, offset)
            offset += size
            if verb == _PERCENT:  # takes no operand and ignores width and precision
                self.out += b"%"
            elif not self.good_argument_index:
                self.out += b"%!" + encode_rune(verb) + b"(BADINDEX)"
            elif index >= len(self.operands):
                self.out += b"%!" + encode_rune(verb) + b"(MISSING)"
            else:
                if verb == 0x76:  # %#v and %+v are flags of their own
                    self.sharp_v, self.sharp = self.sharp, False
                    self.plus_v, self.plus = self.plus, False
                self.print_argument(self.operands[index], verb)
                index += 1
        if not self.reordered and index < len(self.operands):
            self.clear_flags()
            self.out += b"%!(EXTRA "
            for position, operand in enumerate(self.operands[index:]):
                if position:
                    self.out += b", "
                self.out += b"string="
                self.print_argument(operand, 0x76)
            self.out += b")"
        return bytes(self.out)


def sprintf(text: bytes, *operands: bytes) -> bytes:
    """fmt.Sprintf(text, operands...) for string operands."""
    return _Printer(operands).printf(text)
