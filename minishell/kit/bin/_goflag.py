"""Go 1.19's flag package, for programs that define flags and call flag.Parse().

Flags take one or two dashes, and a value as `-flag value` or `-flag=value`. Parsing stops at
the first non-flag argument ("-" is one) or after "--". -h and -help print the usage and exit 0.
Every other mistake prints its message and the usage to stderr and exits 2. The usage header
names the program as os.Args[0]. Go gets that name from the caller; a script only sees the path
the kernel ran, so the header uses its last component ("Usage of normal:"), which is what minimega's
PATH lookup passes.
"""

from __future__ import annotations

import os

from _goruntime import STDERR, print_line, write
from _gostrconv import OUT_OF_RANGE, NumError, format_float, parse_float, parse_int64, quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn, TypeAlias


class FlagValueError(Exception):
    """A Value.Set failure; flag prints its text after "invalid value ... for flag -name: "."""


def _number_error(error: NumError) -> FlagValueError:
    """flag's numError: strconv's syntax and range errors become two short words."""
    return FlagValueError("value out of range" if error.reason == OUT_OF_RANGE else "parse error")


class Flag:
    """What PrintDefaults shows of a defined flag; subclasses add the Go Value's Set."""

    __slots__ = ("default_text", "name", "usage")
    type_name = ""  # what UnquoteUsage guesses from the Value's type
    zero_text = b""  # String() of the type's zero value; a default equal to it is not shown
    quoted_default = False  # string defaults are shown with %q

    def __init__(self, name: str, usage: str, default_text: bytes) -> None:
        self.name = name.encode()
        self.usage = usage.encode()
        self.default_text = default_text

    def usage_line(self) -> bytes:
        """One entry of PrintDefaults."""
        line = b"  -" + self.name
        if self.type_name:
            line += b" " + self.type_name.encode()
        # Go puts the usage of a one-letter boolean flag on the same line.
        line += b"\t" if len(line) <= 4 else b"\n    \t"
        line += self.usage.replace(b"\n", b"\n    \t")
        if self.default_text != self.zero_text:
            shown = quote(self.default_text) if self.quoted_default else self.default_text
            line += b" (default " + shown + b")"
        return line


class Float64Flag(Flag):
    """flag.Float64."""

    __slots__ = ("value",)
    type_name = "float"
    zero_text = b"0"

    def __init__(self, name: str, default: float, usage: str) -> None:
        super().__init__(name, usage, format_float(default))
        self.value = default

    def set(self, text: bytes) -> None:
        try:
            self.value = parse_float(text)
        except NumError as error:
            raise _number_error(error) from None


class Int64Flag(Flag):
    """flag.Int64."""

    __slots__ = ("value",)
    type_name = "int"
    zero_text = b"0"

    def __init__(self, name: str, default: int, usage: str) -> None:
        super().__init__(name, usage, str(default).encode())
        self.value = default

    def set(self, text: bytes) -> None:
        try:
            self.value = parse_int64(text)
        except NumError as error:
            raise _number_error(error) from None


class StringFlag(Flag):
    """flag.String."""

    __slots__ = ("value",)
    type_name = "string"
    quoted_default = True

    def __init__(self, name: str, default: bytes, usage: str) -> None:
        super().__init__(name, usage, default)
        self.value = default

    def set(self, text: bytes) -> None:
        self.value = text


DefinedFlag: TypeAlias = "Float64Flag | Int64Flag | StringFlag"


class _CommandLine:
    """flag.CommandLine with ExitOnError."""

    __slots__ = ("flags", "program")

    def __init__(self, program: bytes, flags: Sequence[DefinedFlag]) -> None:
        self.program = program
        self.flags = {flag.name: flag for flag in flags}

    def usage(self) -> None:
        entries = [self.flags[name].usage_line() for name in sorted(self.flags)]
        write(STDERR, b"Usage of %s:\n" % self.program + b"".join(e + b"\n" for e in entries))

    def fail(self, message: bytes) -> NoReturn:
        print_line(STDERR, message)
        self.usage()
        raise SystemExit(2)

    def parse(self, arguments: list[bytes]) -> list[bytes]:
        """FlagSet.Parse: sets the flags and returns the arguments after them."""
        while arguments:
            argument = arguments[0]
            if len(argument) < 2 or argument[:1] != b"-":
                break
            if argument == b"--":
                return arguments[1:]
            name = argument[2:] if argument[1:2] == b"-" else argument[1:]
            if not name or name[:1] in (b"-", b"="):
                self.fail(b"bad flag syntax: " + argument)
            arguments = arguments[1:]
            # "=" cannot be the first byte of a name, so the search starts at the second.
            equals = name.find(b"=", 1)
            value: bytes | None = None
            if equals > 0:
                name, value = name[:equals], name[equals + 1 :]
            flag = self.flags.get(name)
            if flag is None:
                if name in (b"help", b"h"):
                    self.usage()
                    raise SystemExit(0)
                self.fail(b"flag provided but not defined: -" + name)
            if value is None:
                if not arguments:
                    self.fail(b"flag needs an argument: -" + name)
                value, arguments = arguments[0], arguments[1:]
            try:
                flag.set(value)
            except FlagValueError as error:
                reason = str(error).encode()
                self.fail(b"invalid value %s for flag -%s: %s" % (quote(value), name, reason))
        return arguments


def parse(argv: list[bytes], flags: Sequence[DefinedFlag]) -> list[bytes]:
    """flag.Parse() over os.Args, for the flags defined; returns flag.Args()."""
    return _CommandLine(os.path.basename(argv[0]), flags).parse(argv[1:])
