"""minimega's plumbing helpers (minishell/kit/bin) behave as the Go programs do.

Every expected output here was worked out by hand from minimega's cmd/plumbing sources and
Go 1.19's strconv, fmt, flag, time, os/exec and math/rand, not by running the code under test.
The programs run as real processes. Most tests start them with `python -S`, which skips site
and with it most of an interpreter's start-up; the shebang gets its own test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minishell import kit

BIN = Path(kit.bin_dir())
TIMEOUT = 10

NORMAL_USAGE = (
    b"Usage of normal:\n"
    b"  -seed int\n"
    b"    \tuse seed value (for testing purposes) (default -1)\n"
    b"  -stddev float\n"
    b"    \tstandard deviation\n"
)
DELAY_USAGE = b'Usage of delay:\n  -t string\n    \tdelay (default "1.0s")\n'


def run(
    program: str,
    *args: str | bytes,
    stdin: bytes = b"",
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-S", BIN / program, *args],
        input=stdin,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
        env=env,
        cwd=cwd,
    )


def _default_sigint() -> None:
    # A shell running the tests in the background ignores SIGINT, and so would the program.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(program: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-S", BIN / program, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_default_sigint,
    )


def finish(process: subprocess.Popen[bytes], stdin: bytes | None = None) -> bytes:
    """Writes stdin, waits for the process, closes its pipes and returns its stderr."""
    with process:
        try:
            _, stderr = process.communicate(stdin, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    return stderr


# (line on stdin, what Go's fmt.Println(float64) prints for it)
GO_FLOATS = [
    ("0.1", "0.1"),
    ("1.5", "1.5"),
    ("2", "2"),
    ("-3", "-3"),
    ("100000", "100000"),
    ("999999", "999999"),
    ("123456.7", "123456.7"),
    # Shortest-digit 'g' switches to the exponent form from 1e6 on, not from 1e21.
    ("1000000", "1e+06"),
    ("100000000", "1e+08"),
    ("123456789", "1.23456789e+08"),
    ("1e20", "1e+20"),
    ("1e21", "1e+21"),
    ("1e100", "1e+100"),
    ("12345678901234567890", "1.2345678901234567e+19"),
    ("1.7976931348623157e+308", "1.7976931348623157e+308"),
    ("0.0001", "0.0001"),
    ("0.000123", "0.000123"),
    ("0.00001", "1e-05"),
    ("1e-7", "1e-07"),
    ("2.5e-310", "2.5e-310"),
    ("5e-324", "5e-324"),
    ("4e-324", "5e-324"),
    ("inf", "+Inf"),
    ("+infinity", "+Inf"),
    ("-Inf", "-Inf"),
    ("nan", "NaN"),
    ("NaN", "NaN"),
    # Go's literal syntax: hexadecimal mantissas, underscores, bare points.
    ("0x1p-2", "0.25"),
    ("0X1.8P+1", "3"),
    ("1_000.5", "1000.5"),
    (".5", "0.5"),
    ("5.", "5"),
    ("1E3", "1000"),
    ("1.5\r", "1.5"),  # bufio.Scanner drops the CR of a CRLF line
]


def test_normal_prints_floats_as_go_println_does() -> None:
    result = run("normal", "-stddev", "0", stdin=b"".join(f"{i}\n".encode() for i, _ in GO_FLOATS))
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout.decode().splitlines() == [printed for _, printed in GO_FLOATS]


@pytest.mark.parametrize(
    "flags",
    [
        ["-seed", "7", "-stddev", "5"],
        ["--seed=7", "-stddev=5"],
        ["-stddev", "5e0", "-seed", "0x7", "ignored", "-bogus"],
    ],
)
def test_normal_with_a_seed_gives_minimegas_deviate(flags: list[str]) -> None:
    # Observed from minimega's normal (spec §9.6): Go's math/rand is reproduced bit for bit.
    result = run("normal", *flags, stdin=b"1.5\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"0.30042965581572467\n", b"")


# NormFloat64 after rand.Seed(0), from the golden list in Go's src/math/rand/regress_test.go.
GO_SEED_0_DEVIATES = [
    "-0.28158587086436215", "0.570933095808067", "-1.6920196326157044", "0.1996229111693099",
    "1.9195199291234621", "0.8954838794918353", "0.41457072128813166", "-0.48700161491544713",
    "-0.1684059662402393", "0.37056410998929545", "1.0156889027029008", "-0.5174422210625114",
    "-0.5565834214413804", "0.778320596648391", "-1.8970718197702225", "0.5229525761688676",
    "-1.5515595563231523", "0.0182029289376123", "-0.6820951356608795", "-0.5987943422687668",
]  # fmt: skip


def test_normal_draws_go_math_rand_deviates() -> None:
    result = run("normal", "-seed", "0", "-stddev", "1", stdin=b"0\n" * 20)
    assert result.stdout.decode().splitlines() == GO_SEED_0_DEVIATES


def test_normal_keeps_the_sign_of_a_zero_sum() -> None:
    # Seed 7's first deviate N is negative (see above): N * 0 is -0, and -0 + -0 stays -0.
    result = run("normal", "-seed", "7", stdin=b"-0\n")
    assert result.stdout == b"-0\n"


def test_normal_seeded_is_repeatable_and_unseeded_is_not() -> None:
    seeded = [run("normal", "-seed", "42", "-stddev", "1", stdin=b"0\n0\n0\n") for _ in range(2)]
    assert seeded[0].stdout == seeded[1].stdout
    assert len(set(seeded[0].stdout.splitlines())) == 3
    unseeded = [run("normal", "-stddev", "1", stdin=b"0\n") for _ in range(2)]
    assert unseeded[0].stdout != unseeded[1].stdout


def test_normal_stops_at_the_first_line_that_is_not_a_number() -> None:
    result = run("normal", stdin=b"1\nabc\n2\n")
    assert result.returncode == 0
    assert result.stdout == b"1\n"
    assert result.stderr == b'strconv.ParseFloat: parsing "abc": invalid syntax\n'


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"", b'parsing "": invalid syntax'),
        (b" 1", b'parsing " 1": invalid syntax'),
        (b"1__0", b'parsing "1__0": invalid syntax'),
        (b"+nan", b'parsing "+nan": invalid syntax'),
        (b"infi", b'parsing "infi": invalid syntax'),
        (b"1e400", b'parsing "1e400": value out of range'),
        (b'\xff"\t\xc3\xa9', b'parsing "\\xff\\"\\t\xc3\xa9": invalid syntax'),
    ],
)
def test_normal_reports_what_strconv_reports(line: bytes, error: bytes) -> None:
    result = run("normal", stdin=line + b"\n")
    assert (result.returncode, result.stdout) == (0, b"")
    assert result.stderr == b"strconv.ParseFloat: " + error + b"\n"


@pytest.mark.parametrize(
    ("flags", "status", "message"),
    [
        (["-h"], 0, b""),
        (["-help"], 0, b""),
        (["-bogus"], 2, b"flag provided but not defined: -bogus\n"),
        (["-stddev", "abc"], 2, b'invalid value "abc" for flag -stddev: parse error\n'),
        (
            ["-seed=9223372036854775808"],
            2,
            b'invalid value "9223372036854775808" for flag -seed: value out of range\n',
        ),
        (["-stddev"], 2, b"flag needs an argument: -stddev\n"),
        (["---stddev=1"], 2, b"bad flag syntax: ---stddev=1\n"),
    ],
)
def test_normal_parses_flags_as_go_flag_does(flags: list[str], status: int, message: bytes) -> None:
    result = run("normal", *flags, stdin=b"1\n")
    assert (result.returncode, result.stdout) == (status, b"")
    assert result.stderr == message + NORMAL_USAGE


def test_normal_stops_parsing_flags_at_double_dash() -> None:
    result = run("normal", "--", "-bogus", stdin=b"1\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"1\n", b"")


def test_count_numbers_every_line_and_ignores_arguments() -> None:
    result = run("count", "-h", stdin=b"a\n\nb\r\nlast without newline")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"1\n2\n3\n4\n", b"")
    assert run("count").stdout == b""


def test_count_gives_up_on_a_line_of_64_kib() -> None:
    longest = b"x" * 65535
    result = run("count", stdin=longest + b"\n" + longest + b"y\nnever read\n")
    assert (result.returncode, result.stdout) == (0, b"1\n")
    assert result.stderr == b"bufio.Scanner: token too long\n"


def test_delay_copies_lines_without_their_carriage_returns() -> None:
    # time.Sleep returns at once for a negative duration.
    result = run("delay", "-t", "-1.5h", stdin=b"a\r\n\nb\nc")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"a\n\nb\nc\n", b"")


def test_delay_sleeps_before_each_line() -> None:
    started = time.monotonic()
    result = run("delay", "-t=0.1s", stdin=b"a\nb\n")
    assert time.monotonic() - started >= 0.2
    assert result.stdout == b"a\nb\n"


@pytest.mark.parametrize(
    ("duration", "error"),
    [
        ("5", b'time: missing unit in duration "5"'),
        ("1x", b'time: unknown unit "x" in duration "1x"'),
        ("2\u00b5x", b'time: unknown unit "\\xc2\\xb5x" in duration "2\\xc2\\xb5x"'),
        ("abc", b'time: invalid duration "abc"'),
        ("", b'time: invalid duration ""'),
        ("9223372036854775808ns", b'time: invalid duration "9223372036854775808ns"'),
    ],
)
def test_delay_reports_a_bad_duration_and_reads_nothing(duration: str, error: bytes) -> None:
    result = run("delay", "-t", duration, stdin=b"a\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", error + b"\n")


def test_delay_usage() -> None:
    result = run("delay", "-h")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", DELAY_USAGE)


def test_execf_runs_one_command_per_line() -> None:
    result = run("execf", "echo %s", stdin=b"hello\ntwo  words\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"hello\ntwo words\n", b"")


def test_execf_splits_at_unicode_white_space_only() -> None:
    # U+00A0 is white space to Go's unicode.IsSpace, the file separator U+001C is not.
    result = run("execf", "echo %s", stdin=b"a\xc2\xa0b\na\x1cb\n")
    assert result.stdout == b"a b\na\x1cb\n"


def test_execf_formats_with_sprintf_and_groups_quoted_words() -> None:
    # [1] reuses the one operand. Sprintf gives: echo "[   ab]" "[ab  ]" "ab" 6162 string 0000a
    # and a quoted group is rejoined with single spaces, its quotes dropped.
    command = 'echo "[%5s]" "[%-4[1]s]" %[1]q %[1]X %[1]T %05.1[1]s'
    result = run("execf", command, stdin=b"ab\n")
    assert result.stdout == b"[ ab] [ab ] ab 6162 string 0000a\n"


@pytest.mark.parametrize(
    ("command", "line", "printed"),
    [
        # echo prints "100%\n"; as a format with no operands, "%\n" is a verb with no argument.
        ("echo %s", b"100%", b"100%!\n(MISSING)"),
        # Sprintf gives "%!d(string=ab)"; the second pass reads "%!" as a verb with no argument.
        ("echo %d", b"ab", b"%!!(MISSING)d(string=ab)\n"),
        # No verb for the line: Sprintf appends "%!(EXTRA string=x)".
        ("echo hi", b"x", b"hi%!!(MISSING)(EXTRA string=x)\n"),
    ],
)
def test_execf_output_is_a_format_too(command: str, line: bytes, printed: bytes) -> None:
    result = run("execf", command, stdin=line + b"\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, printed, b"")


def test_execf_gives_commands_an_empty_stdin_and_merges_their_stderr() -> None:
    result = run("execf", 'sh -c "cat; echo out; echo err >&2%s"', stdin=b"\n\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"out\nerr\nout\nerr\n", b"")


@pytest.mark.parametrize(
    ("command", "line", "error"),
    [
        ('sh -c "echo out; echo err >&2; exit %s"', b"3", b"out\nerr\n\nexit status 3\n"),
        ('sh -c "kill -KILL $$%s"', b"", b"\nsignal: killed\n"),
        (
            "nosuchprogram-minishell %s",
            b"",
            b'\nexec: "nosuchprogram-minishell": executable file not found in $PATH\n',
        ),
        (
            "./nosuchprogram-minishell %s",
            b"",
            b"\nfork/exec ./nosuchprogram-minishell: no such file or directory\n",
        ),
    ],
)
def test_execf_stops_at_the_first_failing_command(command: str, line: bytes, error: bytes) -> None:
    result = run("execf", command, stdin=line + b"\n" + line + b"\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", error)


def test_execf_refuses_a_program_found_relative_to_the_current_directory(tmp_path: Path) -> None:
    shutil.copy("/bin/true", tmp_path / "tool")
    result = run("execf", "tool %s", stdin=b"\n", env={**os.environ, "PATH": "."}, cwd=tmp_path)
    assert result.stderr == (
        b'\nexec: "tool": cannot run executable found relative to current directory\n'
    )


@pytest.mark.parametrize("arguments", [[], ["echo %s", "extra"]])
def test_execf_wants_exactly_one_argument(arguments: list[str]) -> None:
    result = run("execf", *arguments, stdin=b"x\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"argument mismatch!\n")


def test_execf_panics_on_an_empty_command() -> None:
    result = run("execf", "%s", stdin=b"\n")
    assert result.returncode == 2
    assert result.stderr.startswith(
        b"panic: runtime error: index out of range [0] with length 0\n\ngoroutine 1 [running]:\n"
    )


def test_a_closed_stdout_kills_with_sigpipe_and_no_traceback() -> None:
    process = start("count")
    assert process.stdout is not None
    process.stdout.close()
    assert finish(process, b"x\n") == b""
    assert process.returncode == -signal.SIGPIPE


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_kills_without_a_traceback(signal_number: int) -> None:
    process = start("delay", "-t", "0")
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(b"a\n")
    process.stdin.flush()
    assert process.stdout.readline() == b"a\n"  # now it is waiting for the next line
    process.send_signal(signal_number)
    assert finish(process) == b""
    assert process.returncode == -signal_number


def test_programs_run_through_path_by_their_shebang() -> None:
    assert all(os.access(BIN / program, os.X_OK) for program in kit.PROGRAMS)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["count"], input=b"a\nb\n", capture_output=True, timeout=TIMEOUT, check=True, env=env
    )
    assert result.stdout == b"1\n2\n"


def test_bin_dir_restores_execute_bits_and_compiles_the_helpers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = tmp_path / "bin"
    shutil.copytree(BIN, installed, ignore=shutil.ignore_patterns("__pycache__"))
    for program in kit.PROGRAMS:
        (installed / program).chmod(0o644)
    monkeypatch.setattr(kit, "__file__", str(tmp_path / "__init__.py"))
    assert kit.bin_dir() == str(installed)
    for program in kit.PROGRAMS:
        assert (installed / program).stat().st_mode & 0o777 == 0o755
    compiled = {path.name.split(".")[0] for path in (installed / "__pycache__").iterdir()}
    assert compiled == {path.stem for path in installed.glob("_go*.py")}
