"""The socket clients (`-pipe`, `-e`, `-attach`) as real processes against a fake server.

The fake speaks the client-facing half of the socket contract and records
what it was sent, so that these tests pin the client down on their own; the
real server is met in test_end_to_end.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from launchers import PYTHON_FRONT_END, install_launcher

from minishell import client
from minishell.cli import ClientCall, scan_client
from minishell.gostr import GO_SPACE
from minishell.language.lexer import lex
from minishell.protocol.control import DEFAULT_BASE, LINE_MAX, RAW_ACK

ACK = RAW_ACK
TIMEOUT = 20


def run(minishell: list[str], *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*minishell, *args], input=stdin, capture_output=True,
                          timeout=TIMEOUT, check=False)


def start_pipe(minishell: list[str], base: Path) -> subprocess.Popen[bytes]:
    """A `-pipe foo` client whose stdin stays open until the test closes it."""
    return subprocess.Popen([*minishell, "-base", str(base), "-pipe", "foo"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture
def base() -> Iterator[Path]:
    # A short folder: a Unix socket's path must fit in 108 bytes, and
    # pytest's tmp_path for a long test name does not.
    folder = tempfile.mkdtemp(prefix="mscl", dir="/tmp")
    try:
        yield Path(folder)
    finally:
        shutil.rmtree(folder)


Handler = Callable[[socket.socket, "FakeServer"], None]


class FakeServer:
    """One connection at a time on <base>/minimega, each given to `handler`."""

    def __init__(self, base: Path, handler: Handler) -> None:
        self.path = str(base / "minimega")
        self.requests: list[dict[str, object]] = []
        self.received = bytearray()  # raw bytes after a raw attachment
        self.ahead = 0  # requests taken before the first reply, where a handler counts them
        self.handled = threading.Event()
        self._handler = handler
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen()
        self._listener.settimeout(0.05)
        self._thread = threading.Thread(target=self._serve)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)
        self._listener.close()
        assert not self._thread.is_alive()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(TIMEOUT)
                try:
                    self._handler(conn, self)
                except OSError:  # the client left: what it sent is recorded
                    pass
                finally:
                    self.handled.set()

    def read_request(self, conn: socket.socket, pending: bytearray) -> dict[str, object] | None:
        while b"\n" not in pending:
            data = conn.recv(1 << 16)
            if not data:
                return None
            pending += data
        line, _, rest = bytes(pending).partition(b"\n")
        pending[:] = rest
        request: dict[str, object] = json.loads(line)
        self.requests.append(request)
        return request


Serve = Callable[..., FakeServer]  # (handler, folder=base): a fake on <folder>/minimega


@pytest.fixture
def serve(base: Path) -> Iterator[Serve]:
    servers: list[FakeServer] = []

    def start(handler: Handler, folder: Path = base) -> FakeServer:
        folder.mkdir(exist_ok=True)
        servers.append(FakeServer(folder, handler))
        return servers[-1]

    try:
        yield start
    finally:
        for server in servers:
            server.close()


def raw_echo(conn: socket.socket, server: FakeServer) -> None:
    """A pipe with this one attachment: what it writes comes back, line by line."""
    pending = bytearray()
    server.read_request(conn, pending)
    conn.sendall(ACK)
    while data := conn.recv(1 << 16):
        server.received += data
        pending += data
        complete = pending.rfind(b"\n") + 1
        conn.sendall(pending[:complete])
        del pending[:complete]
    if pending:  # a last line without its newline gets one
        conn.sendall(pending + b"\n")
    conn.shutdown(socket.SHUT_WR)


def raw_drop_after(count: int) -> Handler:
    """Attach, take `count` bytes, then vanish as a killed daemon would."""

    def handler(conn: socket.socket, server: FakeServer) -> None:
        server.read_request(conn, bytearray())
        conn.sendall(ACK)
        while len(server.received) < count:
            server.received += conn.recv(1 << 16)

    return handler


def minimega_pipe(conn: socket.socket, server: FakeServer) -> None:
    """minimega 2.9: no ack; messages come as JSON strings."""
    server.read_request(conn, bytearray())
    conn.sendall(b'"hello\\n"\n')
    while data := conn.recv(1 << 16):
        server.received += data


def commands(replies: Callable[[str], list[dict[str, object]]],
             suggestions: dict[str, list[str]] | None = None) -> Handler:
    """Answer Command requests with `replies(command)`, Suggest ones from a table."""

    def handler(conn: socket.socket, server: FakeServer) -> None:
        pending = bytearray()
        while request := server.read_request(conn, pending):
            if "Suggest" in request:
                words = (suggestions or {}).get(str(request["Suggest"]), [])
                answer: list[dict[str, object]] = [
                    {"Resp": None, "Rendered": "", "More": False, "Status": False,
                     "Suggest": words}]
            else:
                answer = replies(str(request["Command"]))
            for reply in answer:
                conn.sendall(json.dumps(reply).encode() + b"\n")

    return handler


def reply(rendered: str = "", error: str = "", *, more: bool = False,
          host: str = "vm") -> dict[str, object]:
    resp = {"Host": host, "Response": rendered, "Header": None, "Tabular": None,
            "Error": error, "Data": None}
    return {"Resp": [resp], "Rendered": rendered, "More": more, "Status": False}


def echo_command(command: str) -> list[dict[str, object]]:
    return [reply(f"ran: {command}")]


# -pipe ------------------------------------------------------------------------


def test_pipe_sends_every_line_and_copies_its_own_echo(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    server = serve(raw_echo)
    done = run(minishell, "-base", str(base), "-pipe", "foo", stdin=b"a\nb\n\nc")
    assert (done.returncode, done.stderr) == (0, b"")
    assert server.requests == [{"PlumbPipe": "minimega//foo", "Raw": True}]
    assert server.received == b"a\nb\n\nc"  # the half-close ends the last line
    assert done.stdout == b"a\nb\n\nc\n"


def test_pipe_keeps_a_namespace_and_takes_both_flag_spellings(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    server = serve(raw_echo)
    assert run(minishell, f"--base={base}", "--pipe=ns//foo").returncode == 0
    assert server.requests == [{"PlumbPipe": "ns//foo", "Raw": True}]


def test_pipe_moves_bulk_data_intact(base: Path, serve: Serve, minishell: list[str]) -> None:
    lines = b"".join(b"%d\n" % number for number in range(200_000))
    server = serve(raw_echo)
    done = run(minishell, "-base", str(base), "-pipe", "bulk", stdin=lines)
    assert (done.returncode, done.stderr) == (0, b"")
    assert server.received == lines
    assert done.stdout == lines


def test_pipe_without_a_daemon_is_one_line(base: Path, minishell: list[str]) -> None:
    done = run(minishell, "-base", str(base), "-pipe", "foo", stdin=b"x\n")
    assert done.stderr == (
        f"minishell: cannot connect to {base}/minimega: no such file or directory\n".encode())
    assert (done.returncode, done.stdout) == (1, b"")


def test_a_stale_socket_is_connection_refused(base: Path, minishell: list[str]) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(base / "minimega"))
    stale.close()  # the file stays, nobody listens
    done = run(minishell, "-base", str(base), "-e", "pipe")
    assert done.stderr == (
        f"minishell: cannot connect to {base}/minimega: connection refused\n".encode())
    assert done.returncode == 1


def test_daemon_gone_mid_stream_is_one_line_and_status_1(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    server = serve(raw_drop_after(2))
    process = start_pipe(minishell, base)
    try:
        assert process.stdin is not None
        process.stdin.write(b"a\n")
        process.stdin.flush()  # and stdin stays open: only the daemon can end this
        assert server.handled.wait(TIMEOUT)
        status = process.wait(TIMEOUT)
    finally:
        process.kill()
        _, err = process.communicate()
    assert err == f"minishell: connection to {base}/minimega lost\n".encode()
    assert status == 1


def test_a_line_of_1_mib_is_refused_and_nothing_of_it_sent(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    server = serve(raw_echo)
    done = run(minishell, "-base", str(base), "-pipe", "foo",
               stdin=b"before\n" + b"x" * LINE_MAX + b"\nafter\n")
    assert done.stderr == b"minishell: line longer than 1 MiB on stdin\n"
    assert done.returncode == 1
    assert server.handled.wait(TIMEOUT)
    assert server.received == b"before\n"


def test_a_last_line_of_1_mib_without_newline_is_refused(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    server = serve(raw_echo)
    done = run(minishell, "-base", str(base), "-pipe", "foo", stdin=b"ok\n" + b"y" * LINE_MAX)
    assert (done.returncode, done.stderr) == (1, b"minishell: line longer than 1 MiB on stdin\n")
    assert server.handled.wait(TIMEOUT)
    assert server.received == b"ok\n"


def test_a_line_just_under_1_mib_goes_through(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    longest = b"z" * (LINE_MAX - 1) + b"\n"
    server = serve(raw_echo)
    done = run(minishell, "-base", str(base), "-pipe", "foo", stdin=b"a\n" + longest + longest)
    assert (done.returncode, done.stderr) == (0, b"")
    assert server.received == b"a\n" + longest + longest
    assert done.stdout == server.received


def test_a_server_without_raw_mode_is_one_line(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    server = serve(minimega_pipe)
    process = start_pipe(minishell, base)
    try:
        status = process.wait(TIMEOUT)  # stdin still open: no data was sent
    finally:
        process.kill()
        out, err = process.communicate()
    assert err == b"minishell: the server does not speak minishell's raw pipe protocol\n"
    assert (status, out) == (1, b"")
    assert server.handled.wait(TIMEOUT)
    assert server.received == b""


def test_a_server_that_never_acks_is_not_raw() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        import _socket

        raw = _socket.socket(fileno=ours.detach())
        try:
            with pytest.raises(client.ClientError, match="does not speak minishell's raw"):
                client.open_raw_pipe(raw, "/x/minimega", "minimega//foo", ack_timeout=0.05)
        finally:
            raw.close()
        assert theirs.recv(1 << 16) == b'{"PlumbPipe":"minimega//foo","Raw":true}\n'


def test_the_pipe_name_is_json_escaped(base: Path, serve: Serve, minishell: list[str]) -> None:
    server = serve(raw_echo)
    assert run(minishell, "-base", str(base), "-pipe", 'a"b\\c\u00e9').returncode == 0
    assert server.requests == [{"PlumbPipe": 'minimega//a"b\\c\u00e9', "Raw": True}]


# -e -----------------------------------------------------------------------------


def test_e_sends_quote_joined_words_and_prints_rendered(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    server = serve(commands(echo_command))
    done = run(minishell, "-base", str(base), "-e", "pipe", "foo", "two words", '""')
    assert server.requests == [{"Command": 'pipe foo "two words" ""'}]
    assert (done.returncode, done.stdout, done.stderr) == (
        0, b'ran: pipe foo "two words" ""\n', b"")


def test_e_quotes_words_so_that_the_lexer_reads_them_back(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    """The compiled launcher hands words outside printable ASCII to Python: alike."""
    server = serve(commands(echo_command))
    assert run(minishell, "-base", str(base), "-e", "echo", "a\x01 b", "x\u2028y z").returncode == 0
    assert server.requests == [{"Command": 'echo "a\x01 b" "x\u2028y z"'}]


def test_e_sends_a_single_word_as_it_is(base: Path, serve: Serve, minishell: list[str]) -> None:
    server = serve(commands(echo_command))
    assert run(minishell, "-base", str(base), "-e", "pipe foo hi").returncode == 0
    assert server.requests == [{"Command": "pipe foo hi"}]


def test_e_prints_every_reply_and_errors_on_stderr_and_exits_1(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    def replies(command: str) -> list[dict[str, object]]:
        return [reply("first", more=True), reply(more=True),
                reply("", "no such pipe: foo\n", host="h2")]

    serve(commands(replies))
    done = run(minishell, "-base", str(base), "-e", "pipe", "foo")
    assert done.stdout == b"first\n"
    assert done.stderr == b"Error (h2): no such pipe: foo\n"
    assert done.returncode == 1


def test_e_with_a_namespace(base: Path, serve: Serve, minishell: list[str]) -> None:
    server = serve(commands(echo_command))
    assert run(minishell, "-base", str(base), "-namespace", "lab", "-e", "pipe").returncode == 0
    done = run(minishell, "-e", "-base", str(base), "--namespace=two words", "pipe", "x y")
    assert done.returncode == 0
    assert server.requests == [{"Command": "namespace lab pipe"},
                               {"Command": 'namespace "two words" pipe "x y"'}]


def test_e_with_an_empty_command_sends_nothing(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    server = serve(commands(echo_command))
    done = run(minishell, "-base", str(base), "-e")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    assert server.handled.wait(TIMEOUT)
    assert server.requests == []


def test_e_words_may_look_like_flags(base: Path, serve: Serve, minishell: list[str]) -> None:
    server = serve(commands(echo_command))
    assert run(minishell, "-base", str(base), "-e", "echo", "-x", "--y").returncode == 0
    assert server.requests == [{"Command": "echo -x --y"}]


def test_e_goes_through_argparse_with_other_flags(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    server = serve(commands(echo_command))
    done = run(minishell, "-level", "debug", "-base", str(base), "-e", "pipe")
    assert (done.returncode, done.stdout) == (0, b"ran: pipe\n")
    assert server.requests == [{"Command": "pipe"}]


def test_e_when_the_daemon_leaves_before_answering(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    def hang_up(conn: socket.socket, server: FakeServer) -> None:
        server.read_request(conn, bytearray())

    serve(hang_up)
    done = run(minishell, "-base", str(base), "-e", "pipe")
    assert done.stderr == f"minishell: connection to {base}/minimega lost\n".encode()
    assert done.returncode == 1


def replies_as_sent(*lines: bytes) -> Handler:
    """Answer one Command with these reply lines, byte for byte."""

    def handler(conn: socket.socket, server: FakeServer) -> None:
        server.read_request(conn, bytearray())
        conn.sendall(b"".join(line + b"\n" for line in lines))
        conn.recv(1)  # until the client leaves

    return handler


@pytest.mark.parametrize(("lines", "stdout", "stderr"), [
    ([rb'{"Rendered":"caf\u00e9 \ud83d\ude00 x\u00e9\n\ty","More":false,"Resp":[]}'],
     "café 😀 xé\n\ty\n", ""),
    ([rb'{"Rendered":"q\"b\\s\/n\nr\rt\tb\bf\f"}'], 'q"b\\s/n\nr\rt\tb\bf\f\n', ""),
    ([b"", b"  \t\r", b'  {"Rendered":"a","More":true} \r', b'{"Rendered":"b"}'], "a\nb\n", ""),
    ([b'{"Rendered":"a\xffb\xe2\x82","Resp":null}'], "a\ufffdb\ufffd\n", ""),
    ([rb'{"Rendered":"a\ud800b\udc00","Resp":null}'], "a\ufffdb\ufffd\n", ""),  # as Go
    ([rb'{"Resp":[{"Host":"h1","Error":"e1"},{"Host":"h2","Error":""},{"Error":"e3\u3000 "},'
      rb'{"Host":"h4","Response":"","Header":["a"],"Tabular":[["1"],[]],"Error":"e4",'
      rb'"Data":{"a":[1,2.5e-3,{"b":null}],"a":-0.0e999}}],"Rendered":"","Status":true}'],
     "", "Error (h1): e1\nError (): e3\u3000 \nError (h4): e4\n"),
    ([rb'{"Resp":[{"Host":"h","Error":"bad\n\u00a0"}],"Rendered":"out"}'],
     "out\n", "Error (h): bad\n"),
    ([b'{"Rendered":"r","Resp":[{"Data":' + b"7" * 5000 + b"}]}"], "r\n", ""),  # not read
    ([b'{"Rendered":"r","Resp":[{"Data":' + b"[" * 64 + b"]" * 64 + b"}]}"], "r\n", ""),
    ([b'{"Rendered":"s","Suggest":["pipe"]}'], "s\n", ""),
])
def test_e_reads_replies_as_minimegas_clients_do(
        base: Path, serve: Serve, minishell: list[str],
        lines: list[bytes], stdout: str, stderr: str) -> None:
    serve(replies_as_sent(*lines))
    done = run(minishell, "-base", str(base), "-e", "pipe")
    assert (done.stdout.decode(), done.stderr.decode()) == (stdout, stderr)
    assert done.returncode == (1 if stderr else 0)


@pytest.mark.parametrize(("line", "shown"), [
    (b"[1, 2]", "[1, 2]"),
    (b'{"Rendered":"unterminated', '{"Rendered":"unterminated'),
    (b'{"Rendered":"raw\tcontrol"}', '{"Rendered":"raw\tcontrol"}'),
    (b'{"More":tru}', '{"More":tru}'),
    (b'{"Resp":[{"Host":"h",}]}', '{"Resp":[{"Host":"h",}]}'),
    (("é".encode() + b"\xff") * 50, "é\ufffd" * 40),  # 80 characters
    (b"\x00", "\x00"),
    (b"x\x00yz", "x\x00yz"),
    # What Python's json would read but the reply format does not allow:
    (b'{"Rendered":"x","More":1}', '{"Rendered":"x","More":1}'),
    (b'{"Rendered":"a","More":null}', '{"Rendered":"a","More":null}'),
    (b'{"Rendered":5}', '{"Rendered":5}'),
    (b'{"Rendered":"first","Rendered":"second"}', '{"Rendered":"first","Rendered":"second"}'),
    (b'{"Rendered":"ok"} and then garbage', '{"Rendered":"ok"} and then garbage'),
    (b'{"Rendered":"ok","X":1}', '{"Rendered":"ok","X":1}'),
    (b'{"Resp":[5]}', '{"Resp":[5]}'),
    (b'{"Resp":[{"Error":0.0}]}', '{"Resp":[{"Error":0.0}]}'),
    (b'{"Resp":[{"Host":"h","Data":NaN}]}', '{"Resp":[{"Host":"h","Data":NaN}]}'),
    (b"\x0b{}", "\x0b{}"),  # not JSON's white space
    (b'{"Resp":[{"Data":' + b"[" * 65 + b"]" * 65 + b"}]}", '{"Resp":[{"Data":' + "[" * 63),
    (b'{"Resp":[{"Data":' + b"[" * 9000 + b"]" * 9000 + b"}]}", '{"Resp":[{"Data":' + "[" * 63),
])
def test_e_names_a_reply_it_cannot_read(
        base: Path, serve: Serve, minishell: list[str], line: bytes, shown: str) -> None:
    serve(replies_as_sent(line))
    done = run(minishell, "-base", str(base), "-e", "pipe")
    assert done.stderr.decode() == f"minishell: unexpected reply from {base}/minimega: {shown}\n"
    assert (done.returncode, done.stdout) == (1, b"")


TEXT = st.text(max_size=12)  # lone surrogates too: written as \ud800 and the like
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8)
STRINGS = st.lists(TEXT, max_size=3)
RESPONSES = st.lists(st.fixed_dictionaries({}, optional={
    "Host": TEXT, "Response": TEXT, "Error": TEXT, "Header": st.none() | STRINGS,
    "Tabular": st.none() | st.lists(STRINGS, max_size=2), "Data": JSON_VALUES}), max_size=3)
REPLIES = st.fixed_dictionaries({}, optional={
    "Rendered": TEXT, "Resp": st.none() | RESPONSES, "More": st.booleans(),
    "Status": st.booleans(), "Suggest": STRINGS})
# The same with anything in the fields, and fields of no reply.
ODD_REPLIES = st.fixed_dictionaries({}, optional={
    "Rendered": TEXT | JSON_VALUES, "Resp": RESPONSES | st.lists(JSON_VALUES) | JSON_VALUES,
    "More": JSON_VALUES, "Status": JSON_VALUES, "Suggest": JSON_VALUES, "Other": JSON_VALUES})


def as_sent(reply: dict[str, object], ascii_only: bool, edit: str) -> bytes:
    """A reply's line: as json writes it, with white space about it, with a key twice
    (if the reply has Status), or with something after it."""
    try:
        line = json.dumps(reply, ensure_ascii=ascii_only).encode()
    except UnicodeEncodeError:  # a lone surrogate, which only an escape can hold
        line = json.dumps(reply).encode()
    if edit == "spaced":
        return b" \t" + line + b"\r"
    if edit == "twice":
        return b'{"Status":false' + (b"}" if line == b"{}" else b"," + line[1:])
    return line + {"garbage": b" x", "two": b"{}"}.get(edit, b"")


@settings(max_examples=60, deadline=None)
@given(replies=st.lists(st.tuples(REPLIES | ODD_REPLIES, st.sampled_from(
    ["as it is", "spaced", "twice", "garbage", "two"])), min_size=1, max_size=3),
       ascii_only=st.booleans())
def test_both_front_ends_show_any_replies_alike(
        compiled_minishell: Path, replies: list[tuple[dict[str, object], str]],
        ascii_only: bool) -> None:
    replies[-1][0]["More"] = False  # the last one ends the command
    lines = [as_sent(reply, ascii_only, edit) for reply, edit in replies]
    folder = Path(tempfile.mkdtemp(prefix="mscl", dir="/tmp"))
    server = FakeServer(folder, replies_as_sent(*lines))
    try:
        outcomes = [run(minishell, "-base", str(folder), "-e", "pipe")
                    for minishell in (PYTHON_FRONT_END, [str(compiled_minishell)])]
    finally:
        server.close()
        shutil.rmtree(folder)
    python, compiled = ((done.returncode, done.stdout, done.stderr) for done in outcomes)
    assert python[0] in (0, 1), python
    assert compiled == python


def test_a_full_stdout_is_one_line(base: Path, serve: Serve, minishell: list[str]) -> None:
    serve(commands(echo_command))
    with open("/dev/full", "wb") as full:
        done = subprocess.run([*minishell, "-base", str(base), "-e", "pipe"], stdout=full,
                              stderr=subprocess.PIPE, timeout=TIMEOUT, check=False)
    assert (done.returncode, done.stderr) == (
        1, b"minishell: write stdout: no space left on device\n")


def test_ctrl_c_ends_a_client_with_status_130(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    server = serve(raw_echo)
    process = start_pipe(minishell, base)
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(b"up\n")
        process.stdin.flush()
        assert process.stdout.readline() == b"up\n"  # attached, and its thread runs
        process.send_signal(signal.SIGINT)
        status = process.wait(TIMEOUT)
    finally:
        process.kill()
        process.communicate()
    assert status == 130
    assert server.handled.wait(TIMEOUT)


def test_a_closed_stdout_ends_a_client_with_status_141(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    serve(commands(echo_command))
    serve(raw_echo, base / "raw")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader left, as `| head` does
    try:
        statuses = [
            subprocess.run([*minishell, "-base", str(folder), *args], input=b"x\n",
                           stdout=write_end, stderr=subprocess.PIPE, timeout=TIMEOUT,
                           check=False)
            for folder, args in ((base, ("-e", "pipe")), (base / "raw", ("-pipe", "foo")))]
    finally:
        os.close(write_end)
    assert [(done.returncode, done.stderr) for done in statuses] == [(141, b"")] * 2


def test_e_without_a_daemon(base: Path, minishell: list[str]) -> None:
    done = run(minishell, "-base", str(base), "-e", "pipe")
    assert done.stderr == (
        f"minishell: cannot connect to {base}/minimega: no such file or directory\n".encode())
    assert done.returncode == 1


def test_the_client_path_imports_nothing_heavy(
        base: Path, serve: Serve) -> None:
    """Nothing heavy, the protocol module included (test_protocol.py checks it alone)."""
    serve(commands(echo_command))
    serve(raw_echo, base / "raw")
    heavy = ("trio", "lark", "prompt_toolkit", "tabulate", "argparse", "logging", "json", "re",
             "enum", "inspect", "dataclasses", "collections", "socket", "threading", "typing",
             "minishell.session", "minishell.render")
    # Compared with what the interpreter had loaded before: site's .pth
    # files may have loaded some of these already.
    script = (
        "import sys; before = set(sys.modules); from minishell import cli\n"
        f"statuses = [cli.main(['-base', {str(base)!r}, '-e', 'pipe']),\n"
        f"            cli.main(['-base', {str(base / 'raw')!r}, '-pipe', 'foo'])]\n"
        f"loaded = sorted(m for m in set(sys.modules) - before\n"
        f"                if m in {heavy!r} or m.split('.')[0] in {heavy!r})\n"
        "print(statuses, loaded, 'minishell.protocol.control' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], input="hi\n", capture_output=True,
                          text=True, timeout=TIMEOUT, check=False)
    assert done.stdout.splitlines()[-1] == "[0, 0] [] True"


# -attach ------------------------------------------------------------------------


def test_attach_from_a_non_terminal_runs_lines_and_asks_before_quitting(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    server = serve(commands(echo_command))
    done = run(minishell, "-base", str(base), "-namespace", "lab", "-attach",
               stdin=b"pipe\n\n  echo hi  \nquit\npipe\nquit\nquit\nnever\n")
    assert server.requests == [
        {"Command": "namespace lab pipe"}, {"Command": "namespace lab echo hi"},
        {"Command": "namespace lab pipe"}, {"Command": "namespace lab quit"},
    ]
    assert done.stdout.decode().count("enter 'quit' again") == 2
    assert done.returncode == 0


def test_attach_disconnect_leaves_and_errors_make_status_1(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    server = serve(commands(lambda command: [reply("", "bad")]))
    done = run(minishell, "-base", str(base), "-attach", stdin=b"oops\ndisconnect\nnever\n")
    assert server.requests == [{"Command": "oops"}]
    assert (done.returncode, done.stderr) == (1, b"Error (vm): bad\n")


def test_attach_from_a_non_terminal_prints_in_the_order_of_its_lines(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    """Commands go ahead of their replies, and the output is still what one command
    at a time prints: replies, cautions and errors where their lines were."""
    def replies(command: str) -> list[dict[str, object]]:
        return [reply("", "bad")] if command == "fail" else echo_command(command)

    server = serve(commands(replies))
    script = b"echo a\nquit\necho b\nfail\n" + b"".join(b"echo %d\n" % n for n in range(3000))
    done = run(minishell, "-base", str(base), "-attach", stdin=script + b"quit\nquit\nnever\n")
    caution = client.QUIT_CAUTION.encode()
    assert done.stdout == (b"ran: echo a\n" + caution + b"ran: echo b\n"
                           + b"".join(b"ran: echo %d\n" % n for n in range(3000))
                           + caution + b"ran: quit\n")
    assert (done.returncode, done.stderr) == (1, b"Error (vm): bad\n")
    assert len(server.requests) == 3004
    assert server.requests[-1] == {"Command": "quit"}


def test_attach_sends_at_most_256_commands_ahead_of_their_replies(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    def hold_back(conn: socket.socket, server: FakeServer) -> None:
        """Take requests without answering while they come, then answer them all."""
        pending = bytearray()
        conn.settimeout(0.5)
        with contextlib.suppress(TimeoutError):
            while len(server.requests) < 1000 and server.read_request(conn, pending):
                pass
        server.ahead = len(server.requests)
        conn.settimeout(TIMEOUT)
        conn.sendall(b"".join(json.dumps(reply()).encode() + b"\n"
                              for _ in server.requests))
        commands(lambda command: [reply()])(conn, server)

    server = serve(hold_back)
    done = run(minishell, "-base", str(base), "-attach",
               stdin=b"".join(b"pipe foo %d\n" % n for n in range(1000)))
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    assert server.ahead == 256
    assert len(server.requests) == 1000


def test_attach_refuses_a_line_of_1_mib(base: Path, serve: Serve, minishell: list[str]) -> None:
    server = serve(commands(echo_command))
    done = run(minishell, "-base", str(base), "-attach",
               stdin=b"echo before\n" + b"x" * LINE_MAX + b"\necho after\n")
    assert done.stdout == b"ran: echo before\n"
    assert (done.returncode, done.stderr) == (1, b"minishell: line longer than 1 MiB on stdin\n")
    assert server.requests == [{"Command": "echo before"}]


def test_attach_reading_an_endless_line_stops_at_1_mib(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    """`minishell -attach < /dev/zero` grew to 4 GB in 6 s: with a limit on its
    memory, that is a MemoryError at once."""
    serve(commands(echo_command))

    def little_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 29, 1 << 29))

    with open("/dev/zero", "rb") as zero:
        done = subprocess.run([*minishell, "-base", str(base), "-attach"], stdin=zero,
                              capture_output=True, timeout=TIMEOUT, check=False,
                              preexec_fn=little_memory)
    assert (done.returncode, done.stderr) == (1, b"minishell: line longer than 1 MiB on stdin\n")


PROMPT_ENV = {**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}


def test_attach_prompt_completes_over_the_socket(
        base: Path, serve: Serve, minishell: list[str]) -> None:
    server = serve(commands(echo_command, {"pipe fo": ["foobar"]}))
    shell = pexpect.spawn(minishell[0], [*minishell[1:], "-base", str(base), "-attach"],
                          env=PROMPT_ENV, encoding="utf-8", timeout=10, dimensions=(24, 100))
    try:
        shell.expect(rf"minimega:{base}/minimega\$")
        shell.send("pipe fo\t")
        shell.expect("obar")  # what Tab added
        shell.send("\r")
        shell.expect("ran: pipe foobar")
        shell.send("half a line\x03")  # Ctrl-C drops the line
        shell.expect(r"minimega:\S+\$")
        shell.send("\x04")  # Ctrl-D leaves
        shell.expect(pexpect.EOF)
    finally:
        shell.close(force=True)
    assert shell.exitstatus == 0
    assert server.requests == [{"Suggest": "pipe fo"}, {"Command": "pipe foobar"}]


# quoteJoin and the command line ---------------------------------------------------


@pytest.mark.parametrize(("words", "joined"), [
    (["pipe", "foo", "a b"], 'pipe foo "a b"'),
    (["pipe", "foo", '""'], 'pipe foo ""'),
    (["tab\there", "new\nline", "cr\r"], '"tab\\there" "new\\nline" "cr\\r"'),
    (["nbsp\u00a0x", 'q"uote d'], '"nbsp\u00a0x" "q\\"uote d"'),
    (["sep\u001fx"], "sep\u001fx"),  # not whitespace in Go, though Python says so
    # Go's strconv.Quote writes \x01 and \u2028, which minicli's lexer refuses.
    (["a\x01 b", "\u2028"], '"a\x01 b" "\u2028"'),
    (["back\\slash #not 'a' comment"], '"back\\\\slash #not \'a\' comment"'),
])
def test_quote_join(words: list[str], joined: str) -> None:
    assert client.quote_join(words) == joined


PLAIN_WORDS = st.text(st.characters(exclude_characters=GO_SPACE + "\"'\\#"), min_size=1)
SPACED_WORDS = st.builds(lambda before, space, after: before + space + after,
                         st.text(), st.sampled_from(GO_SPACE), st.text())


@settings(max_examples=500)
@given(st.lists(SPACED_WORDS | PLAIN_WORDS, min_size=1, max_size=5))
def test_a_quoted_join_lexes_back_to_its_words(words: list[str]) -> None:
    """Words holding white space are quoted; the others, as minimega sends them as
    they are, hold nothing the lexer reads specially."""
    assert lex(client.quote_join(words)) == words
    assert lex(client.with_namespace(words[0], "x")) == ["namespace", words[0], "x"]


def test_namespace_prefix() -> None:
    assert client.with_namespace("", "pipe") == "pipe"
    assert client.with_namespace("lab", "pipe") == "namespace lab pipe"
    assert client.with_namespace("a b", "pipe") == 'namespace "a b" pipe'


def test_full_pipe_name() -> None:
    assert client.full_pipe_name("foo") == "minimega//foo"
    assert client.full_pipe_name("lab//foo") == "lab//foo"


def call(base: str = DEFAULT_BASE, namespace: str = "", pipe: str = "", e: bool = False,
         attach: bool = False, words: tuple[str, ...] = ()) -> tuple[object, ...]:
    return (base, namespace, pipe, e, attach, words)


def fields(found: ClientCall | None) -> tuple[object, ...] | None:
    if found is None:
        return None
    return (found.base, found.namespace, found.pipe, found.e, found.attach, tuple(found.words))


@pytest.mark.parametrize(("argv", "expected"), [
    (["-pipe", "foo"], call(pipe="foo")),
    (["--pipe=foo", "-base", "/b"], call(base="/b", pipe="foo")),
    (["-base=/b", "-namespace", "ns", "-e", "pipe", "-x"],
     call(base="/b", namespace="ns", e=True, words=("pipe", "-x"))),
    (["-e", "--", "-pipe"], call(e=True, words=("-pipe",))),
    (["-attach", "-namespace=ns"], call(namespace="ns", attach=True)),
    (["-e"], call(e=True)),
    (["-pipe", "foo", "extra"], None),  # argparse says what is wrong
    (["-pipe", ""], None),  # as in minimega: no -pipe at all, start an instance
    (["-pipe"], None),
    (["-level", "debug", "-pipe", "foo"], None),
    (["-e=true", "pipe"], None),
    (["script.mm"], None),
    ([], None),
    (["-nostdin"], None),
])
def test_the_fast_path_scan(argv: list[str], expected: tuple[object, ...] | None) -> None:
    assert fields(scan_client(argv)) == expected


@pytest.fixture(scope="module")
def launcher_with_recording_front_end(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled launcher beside a stand-in minishell-py that prints its arguments."""
    return install_launcher(tmp_path_factory.mktemp("recording"),
                            front_end="#!/bin/sh\nprintf 'front end got:'\nprintf ' %s' \"$@\"\n")


SCAN_CASES = [
    ["-pipe", "foo"], ["--pipe=foo"], ["-e", "pipe", "-x"], ["-e", "--", "-pipe"],
    ["-namespace", "ns", "-e"], ["-e", "-attach", "pipe"], ["-attach", "-pipe", "foo"],
    ["-attach"], ["-attach", "-namespace=ns"], ["-pipe", "foo", "extra"], ["-pipe", ""],
    ["-pipe"], ["-level", "debug", "-pipe", "foo"], ["-e=true", "pipe"], ["script.mm"], [],
    ["-nostdin"], ["-h"], ["-version"], ["---pipe", "foo"],
    ["-e", "pipe", "caf\u00e9"], ["-pipe", "tab\there"], ["-namespace", "\u00e9", "-e", "x"],
]


@pytest.mark.parametrize("argv", SCAN_CASES)
def test_the_compiled_launcher_hands_python_all_it_does_not_serve(
        launcher_with_recording_front_end: Path, base: Path, argv: list[str]) -> None:
    """It serves what scan_client finds, -pipe and -e in printable ASCII, and
    passes everything else on unchanged."""
    argv = ["-base", str(base / "none"), *argv]
    call = scan_client(argv)
    served = (call is not None and bool(call.pipe or call.e)
              and all(" " <= char <= "~" for char in "".join(argv)))
    done = subprocess.run([launcher_with_recording_front_end, *argv], capture_output=True,
                          timeout=TIMEOUT, check=False)
    if served:
        assert done.stderr.startswith(b"minishell: cannot connect to "), done
    else:
        assert done.stdout.decode() == "front end got:" + "".join(f" {arg}" for arg in argv)


def test_the_installed_command_is_the_compiled_launcher(compiled_minishell: Path) -> None:
    """The install compiles `minishell` where a compiler works (as it does for this
    run: compiled_minishell says so), with the Python front end beside it."""
    scripts = Path(sysconfig.get_path("scripts"))
    if not (scripts / "minishell").exists():
        pytest.skip(f"minishell is not installed in {scripts}")
    assert (scripts / "minishell").read_bytes()[:4] == b"\x7fELF"
    assert (scripts / "minishell-py").read_text().startswith("#!")


def test_help_lists_the_client_and_server_flags(minishell: list[str]) -> None:
    done = run(minishell, "-h")
    for flag in ("-pipe NAME", "-e", "-attach", "-namespace NS", "-nostdin", "-force"):
        assert flag.encode() in done.stdout
