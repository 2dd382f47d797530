"""The minishell command as a user runs it: real processes, real exit statuses."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from minishell import __version__

MINISHELL = [sys.executable, "-c", "import sys; from minishell.cli import main; sys.exit(main())"]


def run(*args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MINISHELL, *args], input=stdin, capture_output=True, text=True,
                          timeout=30, cwd=cwd, check=False)


def processes_with(marker: str) -> list[int]:
    """Live processes whose command line holds `marker` (children we must not leave)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def reap(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Whatever a test did, the process is gone and its pipes closed."""
    if process.poll() is None:
        process.kill()
        process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def test_version() -> None:
    done = run("-version")
    assert done.returncode == 0
    assert done.stdout.startswith("minishell ")


def test_stdin_is_a_script_with_errors_on_stderr() -> None:
    script = '.annotate false\npipe foo "hi"\npipe\nbogus line\necho after\n'
    done = run("-hostname", "vm", stdin=script)
    assert done.stdout == (
        "name          | mode | readers | writers | count | via | previous\n"
        "minimega//foo | all  | 0       | 0       | 1     |     | hi\n"
        "after\n"
    )
    assert done.stderr == "Error (vm): invalid command: `bogus line`\n"
    assert done.returncode == 1


def test_a_clean_script_exits_zero_and_quit_stops_it() -> None:
    done = run("-hostname", "vm", stdin="echo one\nquit\necho never\n")
    assert (done.stdout, done.stderr, done.returncode) == ("vm: one\n", "", 0)


def test_script_files_run_first(tmp_path: Path) -> None:
    script = tmp_path / "setup.mm"
    script.write_text(".annotate false\npipe foo from-file\n")
    done = run("-hostname", "vm", str(script), stdin=".columns name,previous pipe\n")
    assert done.stdout == "name          | previous\nminimega//foo | from-file\n"
    assert done.returncode == 0


def test_a_missing_script_file_is_one_error_line(tmp_path: Path) -> None:
    done = run("-hostname", "vm", str(tmp_path / "nosuch.mm"))
    assert done.stderr == f"Error (vm): open {tmp_path / 'nosuch.mm'}: no such file or directory\n"
    assert done.returncode == 1


def test_bad_flag_is_a_usage_error() -> None:
    done = run("-nosuchflag")
    assert done.returncode == 2
    assert "unrecognized arguments: -nosuchflag" in done.stderr


def test_replay_reports_like_minitest(tmp_path: Path) -> None:
    (tmp_path / "prolog").write_text(".annotate false\n")
    (tmp_path / "good").write_text("echo hi\n\n# note\n")
    (tmp_path / "good.want").write_text("## echo hi\nhi\n\n## # note\n")
    (tmp_path / "bad").write_text("echo real\n")
    (tmp_path / "bad.want").write_text("## echo real\nexpected\n")
    (tmp_path / "notes.txt").write_text("not a transcript: no .want beside it\n")
    done = run("-replay", "-hostname", "vm", str(tmp_path))
    assert done.returncode == 1
    assert "got != want for bad\n" in done.stdout
    assert "-expected\n+real\n" in done.stdout
    assert done.stdout.endswith("1 passed, 1 failed\n")
    assert (tmp_path / "good.got").read_text() == "## echo hi\nhi\n\n## # note\n"
    assert not (tmp_path / "notes.txt.got").exists()


def test_replay_passes_with_exit_zero(tmp_path: Path) -> None:
    (tmp_path / "t").write_text(".annotate false\npipe p x\n.columns name pipe\n")
    (tmp_path / "t.want").write_text("## .annotate false\n## pipe p x\n## .columns name pipe\n"
                                     "name\nminimega//p\n")
    done = run("-replay", "-hostname", "vm", str(tmp_path / "t"))
    assert (done.stdout, done.returncode) == ("1 passed, 0 failed\n", 0)


def test_end_of_input_leaves_no_child_behind() -> None:
    marker = f"{time.time_ns() % 10**6}.5"
    done = run(stdin=f'plumb in "sed -u s/a/b/" mid "sleep {marker}"\npipe in a\nplumb\n')
    assert done.returncode == 0
    assert f"sleep {marker}" in done.stdout
    assert processes_with(f"sleep\0{marker}") == []


def test_sigterm_ends_everything_within_a_second() -> None:
    marker = f"{time.time_ns() % 10**6}.25"
    shell = subprocess.Popen([*MINISHELL, "-hostname", "vm"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert shell.stdin is not None and shell.stdout is not None
        shell.stdin.write(f'plumb a "sleep {marker}"\necho started\n')
        shell.stdin.flush()
        assert shell.stdout.readline() == "vm: started\n"
        assert processes_with(f"sleep\0{marker}") != []
        started = time.monotonic()
        shell.send_signal(signal.SIGTERM)
        assert shell.wait(timeout=5) == 0
        assert time.monotonic() - started < 1.5
        assert processes_with(f"sleep\0{marker}") == []
    finally:
        reap(shell)


def test_sigterm_during_start_up_scripts_leaves_no_child(tmp_path: Path) -> None:
    stage, command = (f"{time.time_ns() % 10**6}.{n}" for n in (125, 375))
    script = tmp_path / "slow.mm"
    script.write_text(f'plumb a "sleep {stage}"\nshell sleep {command}\n')
    shell = subprocess.Popen([*MINISHELL, str(script)], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not processes_with(f"sleep\0{command}"):
            assert time.monotonic() < deadline, "the script never got to its shell command"
            time.sleep(0.01)
        shell.send_signal(signal.SIGTERM)
        assert shell.wait(timeout=5) == 0
        assert shell.stderr is not None and shell.stderr.read() == b""
        assert processes_with(f"sleep\0{stage}") == []
        assert processes_with(f"sleep\0{command}") == []
    finally:
        reap(shell)


def test_ctrl_c_on_a_script_is_a_quiet_exit_130() -> None:
    shell = subprocess.Popen([*MINISHELL], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        assert shell.stdin is not None and shell.stdout is not None
        shell.stdin.write(b"echo ready\n")
        shell.stdin.flush()
        assert shell.stdout.readline().endswith(b"ready\n")
        shell.send_signal(signal.SIGINT)
        assert shell.wait(timeout=5) == 130
        assert shell.stderr is not None and shell.stderr.read() == b""
    finally:
        reap(shell)


def test_a_reader_that_leaves_early_is_not_an_error() -> None:
    done = subprocess.run(
        f"yes 'echo x' | head -20000 | {' '.join(MINISHELL[:2])} '{MINISHELL[2]}' | head -1",
        shell=True, capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.endswith(": x\n")
    assert done.stderr == ""


def test_a_directory_as_stdin_is_one_line_or_not_read(
        compiled_minishell: Path, tmp_path: Path) -> None:
    """CPython dies before any code runs when its stdin is a directory (`Fatal
    Python error: init_sys_streams`). The minishell command gives its Python
    front end /dev/null instead: what needs no stdin runs, and what reads it
    says `read stdin: is a directory`, as the compiled -pipe does."""
    minishell = str(compiled_minishell)
    base = tempfile.mkdtemp(prefix="msdir", dir="/tmp")  # a short socket path
    (tmp_path / "t").write_text(".annotate false\necho hi\n")
    (tmp_path / "t.want").write_text("## .annotate false\n## echo hi\nhi\n")
    directory = os.open(tmp_path, os.O_RDONLY)
    refused = (1, b"", b"minishell: read stdin: is a directory\n")
    cases = {
        ("-version",): (0, f"minishell {__version__}\n".encode(), b""),
        ("-base", base, "-e", "echo", "caf\u00e9"): (0, "vm: caf\u00e9\n".encode(), b""),
        ("-base", base, "-e", "echo", "cafe"): (0, b"vm: cafe\n", b""),
        ("-base", base, "-attach"): refused,
        ("-base", base, "-pipe", "caf\u00e9"): refused,
        ("-base", base, "-pipe", "cafe"): refused,
        ("-base", str(tmp_path / "script")): refused,
        ("-replay", "-hostname", "vm", str(tmp_path / "t")): (0, b"1 passed, 0 failed\n", b""),
    }
    daemon = subprocess.Popen([minishell, "-base", base, "-nostdin", "-hostname", "vm"],
                              stdin=directory, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(base, "minimega")):
            assert daemon.poll() is None, daemon.communicate()[1]
            assert time.monotonic() < deadline, "the daemon never listened"
            time.sleep(0.01)
        outcomes = {}
        for args in cases:
            done = subprocess.run([minishell, *args], stdin=directory, capture_output=True,
                                  timeout=30, check=False)
            outcomes[args] = (done.returncode, done.stdout, done.stderr)
        subprocess.run([minishell, "-base", base, "-e", "quit"], stdin=directory, timeout=30,
                       check=True)
        assert daemon.wait(30) == 0
    finally:
        reap(daemon)
        os.close(directory)
        shutil.rmtree(base)
    assert outcomes == cases
