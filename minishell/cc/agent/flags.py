"""minishell-agent's command line, parsed by the rules of Go's flag package (as miniccc's is).

Flags take one dash or two, and a value as `-flag value` or `-flag=value`; a
boolean takes no separate value (`-v=false`, never `-v false`). Parsing stops at
the first argument that is not a flag ("-" is not one) or after "--". `-h` and
`-help` ask for the usage. Unlike Go, a mistake is reported as one line (the
caller prints it), without the usage after it.

miniccc's flags keep their names, defaults and meanings; `-uuid` and `-hostname`
are the agent's own, for a host that is not a VM. `-verbose` and `-user` are
accepted because miniccc accepts them (the second belongs to its 9p server,
which the agent does not have).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from minishell.gostr import quote

PROGRAM = "minishell-agent"
DEFAULT_PATH = "/tmp/miniccc"
DEFAULT_PORT = 9002
LEVELS = ("debug", "info", "warn", "error", "fatal")  # minilog's, in order
_INT64 = 1 << 63


class FlagError(Exception):
    """The command line cannot be used; the text is one line, without the program's name."""


class HelpRequested(Exception):
    """-h or -help: print the usage and exit 0."""


@dataclass(slots=True)
class Options:
    parent: str = ""
    port: int = DEFAULT_PORT
    family: str = "tcp"
    serial: str = ""
    path: str = DEFAULT_PATH
    pipe: str = ""
    tag: bool = False
    version: bool = False
    level: str = "error"
    logfile: str = ""
    verbose: bool = True
    user: str = ""
    uuid: str = ""
    hostname: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Flag:
    name: str
    attribute: str
    kind: str  # "bool", "int", "string" or "value" (a Go flag.Value: -level)
    usage: str
    convert: Callable[[str], object]

    def usage_lines(self, default: object) -> str:
        """One entry of Go's PrintDefaults."""
        line = f"  -{self.name}"
        if self.kind != "bool":
            line += f" {self.kind}"
        # Go puts the usage of a one-letter boolean on the same line.
        line += "\t" if len(line) <= 4 else "\n    \t"
        line += self.usage
        shown = {"bool": "false", "int": "0", "string": "", "value": ""}[self.kind]
        text = str(default).lower() if isinstance(default, bool) else str(default)
        if text != shown:
            text = quote(text) if self.kind == "string" else text
            line += f" (default {text})"
        return line


def parse_bool(text: str) -> bool:
    """strconv.ParseBool."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError("parse error")


def _underscores_ok(digits: str) -> bool:
    """strconv's underscoreOK: each _ sits between digits, or after a base prefix."""
    saw = "^"  # ^ start, 0 digit or prefix, _ underscore, ! anything else
    at = 0
    hexadecimal = False
    if len(digits) >= 2 and digits[0] == "0" and digits[1].lower() in "box":
        at, saw, hexadecimal = 2, "0", digits[1].lower() == "x"
    for char in digits[at:]:
        if char.isdigit() or (hexadecimal and char.lower() in "abcdef"):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
    return saw != "_"


def parse_int(text: str) -> int:
    """strconv.ParseInt(text, 0, 64): decimal, 0x, 0o, 0b, or a leading 0 for octal."""
    sign, digits = (-1, text[1:]) if text[:1] == "-" else (1, text.removeprefix("+"))
    if not digits or not _underscores_ok(digits):
        raise ValueError("parse error")
    lower = digits.lower()
    if lower[:2] in ("0x", "0o", "0b"):
        base, body = {"x": 16, "o": 8, "b": 2}[lower[1]], digits[2:]
    elif lower[:1] == "0" and len(lower) > 1:
        base, body = 8, digits[1:]
    else:
        base, body = 10, digits
    body = body.replace("_", "")
    if not body or not all(char.isascii() and char.isalnum() for char in body):
        raise ValueError("parse error")
    try:
        value = sign * int(body, base)
    except ValueError:
        raise ValueError("parse error") from None
    if not -_INT64 <= value < _INT64:
        raise ValueError("value out of range")
    return value


def _parse_level(text: str) -> str:
    if text not in LEVELS:
        raise ValueError("invalid log level")
    return text


FLAGS = {flag.name: flag for flag in [
    _Flag("family", "family", "string", "[tcp,unix] family to dial on", str),
    _Flag("hostname", "hostname", "string",
          "the hostname to report (default: this machine's)", str),
    _Flag("level", "level", "value", "set log level: [debug, info, warn, error, fatal]",
          _parse_level),
    _Flag("logfile", "logfile", "string", "specify file to log to", str),
    _Flag("parent", "parent", "string", "parent to connect to (if relay or client)", str),
    _Flag("path", "path", "string", "path to store files in", str),
    _Flag("pipe", "pipe", "string", "read/write to or from a named pipe", str),
    _Flag("port", "port", "int", "port to connect to", parse_int),
    _Flag("serial", "serial", "string", "use serial device instead of tcp", str),
    _Flag("tag", "tag", "bool", "add a key value tag in minimega for this vm", parse_bool),
    _Flag("user", "user", "string", "accepted for miniccc's sake; unused", str),
    _Flag("uuid", "uuid", "string",
          "the uuid to report (default: the DMI product uuid, else one kept under -path)", str),
    _Flag("v", "verbose", "bool", "log on stderr", parse_bool),
    _Flag("verbose", "verbose", "bool", "log on stderr", parse_bool),
    _Flag("version", "version", "bool", "print the version", parse_bool),
]}


def parse(arguments: Sequence[str]) -> Options:
    """Go's FlagSet.Parse over the arguments (without the program's name)."""
    options = Options()
    rest = list(arguments)
    while rest:
        argument = rest[0]
        if len(argument) < 2 or argument[0] != "-":
            break
        rest.pop(0)
        if argument == "--":
            break
        name = argument[2:] if argument[1] == "-" else argument[1:]
        if not name or name[0] in "-=":
            raise FlagError(f"bad flag syntax: {argument}")
        # "=" cannot start a name, so the search starts at its second character
        equals = name.find("=", 1)
        has_value = equals > 0
        name, value = (name[:equals], name[equals + 1:]) if has_value else (name, "")
        flag = FLAGS.get(name)
        if flag is None:
            if name in ("h", "help"):
                raise HelpRequested
            raise FlagError(f"flag provided but not defined: -{name}")
        if flag.kind == "bool" and not has_value:
            value = "true"
        elif not has_value:
            if not rest:
                raise FlagError(f"flag needs an argument: -{name}")
            value = rest.pop(0)
        try:
            converted = flag.convert(value)
        except ValueError as error:
            if flag.kind == "bool":
                raise FlagError(
                    f"invalid boolean value {quote(value)} for -{name}: {error}") from None
            raise FlagError(f"invalid value {quote(value)} for flag -{name}: {error}") from None
        setattr(options, flag.attribute, converted)
    options.arguments = rest
    return options


def usage() -> str:
    defaults = Options()
    entries = [flag.usage_lines(getattr(defaults, flag.attribute))
               for _, flag in sorted(FLAGS.items())]
    return (f"{PROGRAM}: minimega's miniccc, in Python: runs cc commands for a minimega or a\n"
            "minishell, and serves -pipe and -tag inside the machine it runs on.\n"
            f"usage: {PROGRAM} [option]...\n"
            f"       {PROGRAM} [-path P] -pipe NAME\n"
            f"       {PROGRAM} [-path P] -tag KEY VALUE\n"
            + "".join(entry + "\n" for entry in entries))
