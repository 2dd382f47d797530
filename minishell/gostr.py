"""Go's string conventions that minimega's output depends on.

Python's notion of whitespace is wider than Go's unicode.IsSpace (it also
counts U+001C..U+001F), so str.strip() would trim bytes minimega keeps.
"""

from __future__ import annotations

# unicode.IsSpace: '\t', '\n', '\v', '\f', '\r', ' ', U+0085, U+00A0 and the
# Unicode White_Space property.
GO_SPACE = (
    "\t\n\v\f\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


_INT64 = range(-(2**63), 2**63)


def atoi(text: str) -> int:
    """strconv.Atoi on a 64-bit platform; ValueError with Go's text otherwise."""
    digits = text[1:] if text[:1] in "+-" else text
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"strconv.Atoi: parsing {quote(text)}: invalid syntax")
    value = int(text)
    if value not in _INT64:
        raise ValueError(f"strconv.Atoi: parsing {quote(text)}: value out of range")
    return value


_BASE_PREFIXES = {"0x": 16, "0o": 8, "0b": 2}


def parse_uint(text: str, bits: int) -> int:
    """strconv.ParseUint(text, 0, bits); ValueError with Go's text otherwise.

    Base prefixes 0x, 0o, 0b and a leading 0 for octal, as Go's; Go's underscores
    between digits are not accepted (an invalid syntax here).
    """
    digits, base = text, 10
    if text[:2].lower() in _BASE_PREFIXES:
        digits, base = text[2:], _BASE_PREFIXES[text[:2].lower()]
    elif len(text) > 1 and text.startswith("0"):
        digits, base = text[1:], 8
    if not digits or any(char not in "0123456789abcdef"[:base] for char in digits.lower()):
        raise ValueError(f"strconv.ParseUint: parsing {quote(text)}: invalid syntax")
    value = int(digits, base)
    if value >= 1 << bits:
        raise ValueError(f"strconv.ParseUint: parsing {quote(text)}: value out of range")
    return value


def trim_space(text: str) -> str:
    """strings.TrimSpace."""
    return text.strip(GO_SPACE)


_C_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
}


def quote(text: str) -> str:
    """strconv.Quote, for the `%q` in minimega's error messages."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable() or char == " ":
            out.append(char)
        elif char in _C_ESCAPES:
            out.append(_C_ESCAPES[char])
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


# syscall.Signal.String() on Linux, signals 1 to 31 (kit/bin/_goexec.py has its own
# copy: the helper programs never import minishell).
_SIGNAL_NAMES = (
    "hangup", "interrupt", "quit", "illegal instruction", "trace/breakpoint trap", "aborted",
    "bus error", "floating point exception", "killed", "user defined signal 1",
    "segmentation fault", "user defined signal 2", "broken pipe", "alarm clock", "terminated",
    "stack fault", "child exited", "continued", "stopped (signal)", "stopped",
    "stopped (tty input)", "stopped (tty output)", "urgent I/O condition",
    "CPU time limit exceeded", "file size limit exceeded", "virtual timer expired",
    "profiling timer expired", "window changed", "I/O possible", "power failure",
    "bad system call",
)


def exit_text(returncode: int) -> str:
    """exec.ExitError's text for a child's status (a negative returncode is a signal)."""
    if returncode >= 0:
        return f"exit status {returncode}"
    number = -returncode
    name = _SIGNAL_NAMES[number - 1] if number <= len(_SIGNAL_NAMES) else f"signal {number}"
    return f"signal: {name}"


def duration_string(nanoseconds: int) -> str:
    """time.Duration.String: `8h4m34.3s`, `1.5ms`, `0s` (a port of Go's time/time.go)."""
    negative = nanoseconds < 0
    magnitude = -nanoseconds if negative else nanoseconds
    if magnitude < 1_000_000_000:
        # Under a second, Go picks the largest unit below it: 1.2ms, 3µs, 7ns.
        if magnitude == 0:
            return "0s"
        if magnitude < 1_000:
            text = f"{magnitude}ns"
        elif magnitude < 1_000_000:
            text = f"{_decimal(magnitude, 3)}µs"
        else:
            text = f"{_decimal(magnitude, 6)}ms"
    else:
        seconds, fraction = divmod(magnitude, 1_000_000_000)
        minutes, seconds = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        text = f"{_decimal(seconds * 1_000_000_000 + fraction, 9)}s"
        # Hours are the largest unit (days differ in length); zero units above
        # the seconds are left out only while every larger one is zero too.
        if hours:
            text = f"{hours}h{minutes}m{text}"
        elif minutes:
            text = f"{minutes}m{text}"
    return f"-{text}" if negative else text


def _decimal(value: int, places: int) -> str:
    """value / 10**places without trailing zeros, nor a point when it is whole (fmtFrac)."""
    whole, fraction = divmod(value, 10**places)
    digits = f"{fraction:0{places}d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def parse_seconds(text: str) -> int:
    """time.ParseDuration(text + "s") for the unsigned decimals /proc/uptime holds,
    in nanoseconds; ValueError with Go's text for anything else."""
    whole, _, fraction = text.partition(".")
    if (not (whole or fraction) or not (whole.isascii() and fraction.isascii())
            or not (whole + fraction).isdigit()):
        raise ValueError(f"time: invalid duration {quote(text + 's')}")
    nanoseconds = int(whole or "0") * 1_000_000_000
    # Go keeps the fraction's first digits and drops the rest (below a nanosecond).
    nanoseconds += int((fraction[:9] or "0").ljust(9, "0"))
    if nanoseconds >= 2**63:
        raise ValueError(f"time: invalid duration {quote(text + 's')}")
    return nanoseconds
