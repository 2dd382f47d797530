"""ron's codec against real bytes of minimega 2.9 and miniccc 2.9.

Three sources:
- the captures in ../shared/cc/captures, beside the repository (tests that need them
  skip without them): three miniccc clients and minimega, both directions;
- Go-written vectors: Go 1.19's encoding/gob encoding structs with ron's field names and
  types, one fresh process each (a scratch program, not in this repository);
- frames recorded from a real miniccc 2.9 served by this codec over a unix socket (a
  scratch server, not in this repository): its file request, a file's last part, a
  heartbeat with a process and non-UTF-8 output, and its hello after a reconnect.
"""

from __future__ import annotations

import functools

import pytest
from captures import needs_captures, stream
from hypothesis import given, settings
from hypothesis import strategies as st

from minishell.protocol.gob import Decoder, GobError
from minishell.protocol.ron import (
    GO_MESSAGE,
    MAGIC,
    TUNNEL_CHUNK_SIZE,
    Client,
    Command,
    ConnTest,
    File,
    Filter,
    HandshakeError,
    HandshakeScanner,
    Message,
    MessageType,
    PipeLines,
    PipeMode,
    Process,
    Response,
    RonCodec,
    TunnelCodec,
    TunnelMessage,
)

STREAMS = [f"{vm} {direction}" for vm in ("vmA", "vmB", "vmC") for direction in ("host", "guest")]

# ron.md: the 13 descriptors each side sends before its first value, in this order
RON_DESCRIPTORS = [
    (65, "Message"), (71, "map[int]*ron.Command"), (66, ""), (67, "[]string"),
    (68, "ConnTest"), (69, "Filter"), (70, "map[string]string"), (72, "Client"),
    (74, "map[int]*ron.Process"), (73, ""), (76, "[]*ron.Response"), (75, ""), (77, "File"),
]


def hexbytes(*lines: str) -> bytes:
    return bytes.fromhex("".join(lines))


# The 13 descriptors as Go sends them (the same bytes from minimega, miniccc and Go 1.19).
GO_DESCRIPTORS = hexbytes(
    "ff9bff81030101074d65737361676501ff8200010c010454797065010400010455554944010c000105457272",
    "6f72010c000108436f6d6d616e647301ff8e000106436c69656e7401ff9000010446696c6501ff9a00010654",
    "756e6e656c010a00010450697065010c000108506970654d6f646501040001085069706544617461010c0001",
    "075566734d6f6465010400010756657273696f6e010c00000025ff8d040101146d61705b696e745d2a726f6e",
    "2e436f6d6d616e6401ff8e00010401ff840000ffd1ff83030102ff8400011101024944010400010a4261636b",
    "67726f756e640102000107436f6d6d616e6401ff8600010946696c657353656e6401ff8600010946696c6573",
    "5265637601ff86000108436f6e6e5465737401ff8800010350494401040001074b696c6c416c6c010c000105",
    "4c6576656c010400010646696c74657201ff8a000109436865636b6564496e01ff8600010650726566697801",
    "0c0001044f6e6365010200010453656e740102000105537464696e010c0001065374646f7574010c00010653",
    "7464657272010c00000016ff85020101085b5d737472696e6701ff8600010c000037ff8703010108436f6e6e",
    "5465737401ff880001030108456e64706f696e74010c0001045761697401040001065061636b6574010a0000",
    "0053ff890301010646696c74657201ff8a000107010455554944010c000108486f73746e616d65010c000104",
    "41726368010c0001024f53010c0001034d4143010c0001024950010c0001045461677301ff8c00000021ff8b",
    "040101116d61705b737472696e675d737472696e6701ff8c00010c010c0000ff93ff8f03010106436c69656e",
    "7401ff9000010b010455554944010c00010441726368010c0001024f53010c00010756657273696f6e010c00",
    "0108486f73746e616d65010c00010349507301ff860001044d41437301ff8600010950726f63657373657301",
    "ff940001045461677301ff8c000109526573706f6e73657301ff9800010d4c617374436f6d6d616e64494401",
    "0400000025ff93040101146d61705b696e745d2a726f6e2e50726f6365737301ff9400010401ff92000021ff",
    "91030102ff9200010201035049440104000107436f6d6d616e6401ff860000001eff970201010f5b5d2a726f",
    "6e2e526573706f6e736501ff980001ff96000049ff95030102ff960001050102494401040001065374646f75",
    "74010c000106537464657272010c00010845786974436f6465010400010e5265636f726445786974436f6465",
    "010200000047ff990301010446696c6501ff9a0001060102494401040001044e616d65010c0001045065726d",
    "010600010444617461010a0001064f66667365740104000103454f460102000000",
)

LIVE_UUID = "44444444-4444-4444-4444-444444444444"


def live_client(**fields: object) -> Client:
    """The recorded miniccc's identity (a network namespace of its own)."""
    return Client(uuid=LIVE_UUID, arch="amd64", os="linux", version="1a428a9c", hostname="vm",
                  ips=["192.0.2.2", "fd00::2", "fe80::fc:ff:fe00:1"],
                  macs=["26:22:c1:56:3b:d0", "6a:c5:3a:3d:87:44", "02:fc:00:00:00:01"],
                  **fields)  # type: ignore[arg-type]


BIG_DATA = bytes(at % 251 for at in range(100 * 1024))

# (values after GO_DESCRIPTORS, the messages they hold)
VECTORS = {
    "Go: a file part": (hexbytes(
        "2bff82010601017504010e01096469722f782e62696e01fe01a40104000102ff01fa02000000000001010000",
    ), [Message(type=3, uuid="u", file=File(id=7, name="dir/x.bin", perm=0o644,
                                            data=b"\x00\x01\x02\xff", offset=1 << 40, eof=True))]),
    "Go: a 100 KiB file part": (
        hexbytes("fd01901eff8201060501060105746d702f7801fe01a401fd019000") + BIG_DATA
        + hexbytes("01fd0320000000"),
        [Message(type=3, file=File(id=3, name="tmp/x", perm=0o644, data=BIG_DATA,
                                   offset=100 * 1024))]),
    "Go: every Command field, UFS, non-UTF-8 pipe data, responses": (hexbytes(
        "ff8fff820304626f6f6d01010a010a0101010201610162010102663101010272310101107463703a2f2f312e",
        "322e332e343a383001fb02540be400010268690001010105736c6565700104010101750101680105616d6436",
        "3401056c696e757801016d010b31302e302e302e302f32340101016b01760001010178010170010101010101",
        "6901016f0101650008027631000fff82010a01017505030908070404000fff82010807017001080103fffe0a",
        "0021ff820102010175030101750902010201046f75740a020101010001040001040000",
    ), [
        Message(type=0, error="boom", version="v1", commands={5: Command(
            id=5, background=True, command=["a", "b"], files_send=["f1"], files_recv=["r1"],
            conn_test=ConnTest(endpoint="tcp://1.2.3.4:80", wait=5_000_000_000, packet=b"hi"),
            pid=-1, kill_all="sleep", level=2,
            filter=Filter(uuid="u", hostname="h", arch="amd64", os="linux", mac="m",
                          ip="10.0.0.0/24", tags={"k": "v"}),
            checked_in=["x"], prefix="p", once=True, sent=True, stdin="i", stdout="o",
            stderr="e")}),
        Message(type=5, uuid="u", tunnel=b"\x09\x08\x07", ufs_mode=2),
        Message(type=4, pipe="p", pipe_mode=4, pipe_data=b"\xff\xfe\n"),
        Message(type=1, uuid="u", client=Client(uuid="u", responses=[
            Response(id=1, stdout="out\n", exit_code=-1, record_exit_code=True), Response(id=2),
        ], last_command_id=2)),
    ]),
    "Go: extreme integers": (hexbytes(
        "2bff8201f8fffffffffffffffe0503fcffffffff02f8ffffffffffffffff0003f8ffffffffffffffff020100",
    ), [Message(type=2**63 - 1, pipe_mode=-(2**63), ufs_mode=-1,
                file=File(perm=2**32 - 1, offset=-(2**63)))]),
    "miniccc: a file request": (hexbytes(
        "36ff820106012434343434343434342d343434342d343434342d343434342d34343434343434343434343404",
        "02076269672e62696e0000",
    ), [Message(type=3, uuid=LIVE_UUID, file=File(name="big.bin"))]),
    "miniccc: the last, empty part of a file": (hexbytes(
        "29ff8201060501060113746d702f726f6e6c6976652f7372632e62696e01fe01a402fd07d00001010000",
    ), [Message(type=3, file=File(id=3, name="tmp/ronlive/src.bin", perm=0o644, offset=256000,
                                  eof=True))]),
    "miniccc: a heartbeat with a process and non-UTF-8 output": (hexbytes(
        "fffcff820102012434343434343434342d343434342d343434342d343434342d343434343434343434343434",
        "03012434343434343434342d343434342d343434342d343434342d3434343434343434343434340105616d64",
        "363401056c696e7578010831613432386139630102766d0103093139322e302e322e3207666430303a3a3212",
        "666538303a3a66633a66663a666530303a3101031132363a32323a63313a35363a33623a64301136613a6335",
        "3a33613a33643a38373a34341130323a66633a30303a30303a30303a30310101febca201febca2010205736c",
        "656570033330300001000102010a0104fffe6f6b030100010c00010c000702763100",
    ), [Message(type=1, uuid=LIVE_UUID, version="v1", client=live_client(
        processes={24145: Process(pid=24145, command=["sleep", "300"])}, tags={},
        responses=[Response(id=5, stdout=b"\xff\xfeok".decode("utf-8", "surrogateescape"),
                            record_exit_code=True), Response(id=6)],
        last_command_id=6))]),
    # unlike a first hello (ron.md), a hello after a reconnect carries Tags and LastCommandID
    "miniccc: its hello after a reconnect": (hexbytes(
        "ffd8ff820102012434343434343434342d343434342d343434342d343434342d343434343434343434343434",
        "03012434343434343434342d343434342d343434342d343434342d3434343434343434343434340105616d64",
        "363401056c696e7578010831613432386139630102766d0103093139322e302e322e3207666430303a3a3212",
        "666538303a3a66633a66663a666530303a3101031132363a32323a63313a35363a33623a64301136613a6335",
        "3a33613a33643a38373a34341130323a66633a30303a30303a30303a3031010001000210000702763100",
    ), [Message(type=1, uuid=LIVE_UUID, version="v1",
                client=live_client(processes={}, tags={}, last_command_id=8))]),
}


def capture(name: str) -> bytes:
    """One direction of a capture ("vmA host"), its chunks joined."""
    return stream(*name.split())


def frame_ends(stream: bytes) -> list[int]:
    """Where each gob message of a stream ends, by a walk of the framing alone."""
    ends = []
    at = len(MAGIC)
    while at < len(stream):
        first = stream[at]
        width = 0 if first < 0x80 else 256 - first
        size = first if not width else int.from_bytes(stream[at + 1:at + 1 + width], "big")
        at += 1 + width + size
        ends.append(at)
    assert at == len(stream)
    return ends


@functools.cache
def decoded(name: str) -> list[Message]:
    codec = RonCodec()
    messages = codec.feed(capture(name))
    codec.end_of_stream()
    return messages


def reencoded(messages: list[Message]) -> bytes:
    codec = RonCodec()
    return MAGIC + b"".join(codec.encode(message) for message in messages)


# --- the captures ----------------------------------------------------------------------


@needs_captures
@pytest.mark.parametrize("name", STREAMS)
def test_every_message_of_a_capture_decodes_to_the_last_byte(name: str) -> None:
    messages = decoded(name)
    # every gob message after the 13 descriptors is one ron.Message
    assert len(messages) == len(frame_ends(capture(name))) - len(RON_DESCRIPTORS)
    assert messages[0].type == MessageType.CLIENT


@needs_captures
@pytest.mark.parametrize("name", STREAMS)
def test_both_sides_send_the_13_descriptors_of_ron_md(name: str) -> None:
    decoder = Decoder(GO_MESSAGE)
    decoder.feed(capture(name)[len(MAGIC):])
    list(decoder)
    assert [(type_id, wire.common.name)
            for type_id, wire in decoder.wire_types.items()] == RON_DESCRIPTORS


@needs_captures
@pytest.mark.parametrize("name", STREAMS)
def test_reencoding_a_capture_reproduces_it_byte_for_byte(name: str) -> None:
    # decoding keeps each map's wire order, so even maps of 2+ entries come back the same
    assert reencoded(decoded(name)) == capture(name)


@needs_captures
@pytest.mark.parametrize("name", STREAMS)
def test_our_output_decodes_back(name: str) -> None:
    codec = RonCodec()
    assert codec.feed(reencoded(decoded(name))) == decoded(name)
    codec.end_of_stream()


@needs_captures
@pytest.mark.parametrize("vm", ["vmA", "vmB", "vmC"])
def test_the_acknowledgement_is_the_hello_itself(vm: str) -> None:
    hello = decoded(f"{vm} guest")[0]
    assert decoded(f"{vm} host")[0] == hello
    assert hello.version == "v1"
    assert hello.client is not None
    assert hello.client.uuid == hello.uuid
    client = hello.client
    assert (client.processes, client.tags, client.last_command_id) == ({}, None, 0)


@needs_captures
@pytest.mark.parametrize("vm", ["vmA", "vmB", "vmC"])
def test_the_tunnel_handshake_rides_in_two_messages_each_way(vm: str) -> None:
    for direction, reply in [("host", TunnelMessage()), ("guest", TunnelMessage(ack=True))]:
        carriers = decoded(f"{vm} {direction}")[1:3]
        assert [message.type for message in carriers] == [MessageType.TUNNEL] * 2
        tunnel = TunnelCodec()
        assert [tunnel.feed(message.tunnel) for message in carriers] == [[], [reply]]
        # one payload per gob message, as minitunnel's pipe delivers them
        assert RonCodec().tunnel.encode(reply) == [message.tunnel for message in carriers]


@needs_captures
def test_host_heartbeats_are_exactly_type_and_version() -> None:
    beats = [message for name in STREAMS[::2] for message in decoded(name)
             if message.type == MessageType.HEARTBEAT]
    assert beats
    assert set(map(repr, beats)) == {repr(Message(type=6, version="v1"))}


@needs_captures
def test_a_map_of_two_entries_compares_by_value_not_order() -> None:
    beats = [message for name in STREAMS[1::2] for message in decoded(name)
             if message.client is not None and len(message.client.processes or {}) >= 2]
    assert beats
    beat = beats[0]
    assert beat.client is not None and beat.client.processes is not None
    turned = Message(type=beat.type, uuid=beat.uuid, version=beat.version, client=Client(
        **{**{field: getattr(beat.client, field) for field in beat.client.__dataclass_fields__},
           "processes": dict(reversed(beat.client.processes.items()))}))
    assert turned == beat
    assert RonCodec().encode(turned) != RonCodec().encode(beat)


@needs_captures
def test_responses_take_the_shapes_ron_md_lists() -> None:
    def shape(response: Response) -> tuple[str, ...]:
        return tuple(field for field in response.__dataclass_fields__
                     if getattr(response, field) != getattr(Response(), field))

    shapes = {shape(response) for name in STREAMS[1::2] for message in decoded(name)
              if message.client is not None for response in message.client.responses}
    assert {("id",), ("id", "stdout", "record_exit_code"),
            ("id", "stderr", "exit_code", "record_exit_code"),
            ("id", "exit_code", "record_exit_code")} <= shapes
    exit_codes = {response.exit_code for name in STREAMS[1::2] for message in decoded(name)
                  if message.client is not None for response in message.client.responses}
    assert {-1, 3} <= exit_codes


@needs_captures
@pytest.mark.parametrize("name", STREAMS)
def test_a_capture_cut_at_any_byte_waits_or_ends_short(name: str) -> None:
    stream = capture(name)
    value_ends = frame_ends(stream)[len(RON_DESCRIPTORS):]
    clean_ends = {len(MAGIC), *value_ends}  # after RON alone, or after a value
    codec = RonCodec()
    received = 0
    for at in range(1, len(stream) + 1):
        received += len(codec.feed(stream[at - 1:at]))
        assert received == sum(1 for end in value_ends if end <= at)
        if at in clean_ends:
            codec.end_of_stream()
        else:
            with pytest.raises(GobError):
                codec.end_of_stream()


@needs_captures
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_a_capture_message_cut_short_is_an_error(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(STREAMS))
    stream = capture(name)
    ends = [len(MAGIC), *frame_ends(stream)]
    index = data.draw(st.integers(1, len(ends) - 1))
    message = stream[ends[index - 1]:ends[index]]
    width = 0 if message[0] < 0x80 else 256 - message[0]
    cut = data.draw(st.integers(1, len(message) - 2 - width))
    body = message[1 + width:1 + width + cut]
    codec = RonCodec()
    codec.feed(stream[:ends[index - 1]])
    with pytest.raises(GobError):
        codec.feed(bytes([len(body)]) + body if len(body) < 0x80 else
                   bytes([0xFE]) + len(body).to_bytes(2, "big") + body)


@needs_captures
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_split_of_a_capture_decodes_the_same(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(STREAMS))
    stream = capture(name)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=30)))
    codec = RonCodec()
    received = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        received.extend(codec.feed(stream[start:end]))
    assert received == decoded(name)


@needs_captures
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_mutated_captures_give_only_gob_errors(data: st.DataObject) -> None:
    stream = bytearray(capture(data.draw(st.sampled_from(STREAMS))))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(stream) - 1))
        if data.draw(st.booleans()):
            stream[at] = data.draw(st.integers(0, 255))
        else:
            stream[at:at + data.draw(st.integers(0, 3))] = data.draw(st.binary(max_size=3))
    only_gob_errors(bytes(stream))


# --- Go's and miniccc's bytes, without the captures -------------------------------------


@pytest.mark.parametrize("name", list(VECTORS))
def test_go_written_messages_decode_and_reencode_byte_for_byte(name: str) -> None:
    values, expected = VECTORS[name]
    codec = RonCodec()
    assert codec.feed(MAGIC + GO_DESCRIPTORS + values) == expected
    codec.end_of_stream()
    assert reencoded(expected) == MAGIC + GO_DESCRIPTORS + values


def test_our_descriptors_are_ron_mds_13_in_order() -> None:
    decoder = Decoder(GO_MESSAGE)
    decoder.feed(RonCodec().encode(Message()))
    assert list(decoder) == [Message()]
    assert [(type_id, wire.common.name)
            for type_id, wire in decoder.wire_types.items()] == RON_DESCRIPTORS


def test_a_heartbeat_after_the_hello_is_ten_bytes() -> None:
    codec = RonCodec()
    codec.encode(Message(type=MessageType.CLIENT, client=Client()))
    assert codec.encode(Message(type=MessageType.HEARTBEAT, version="v1")) == bytes.fromhex(
        "09ff82010c0b02763100")


def test_tunnel_messages_are_split_as_minitunnel_reads_them() -> None:
    message = TunnelMessage(type=3, tid=12, data=bytes(range(256)) * 300)
    payloads = RonCodec().tunnel.encode(message)
    # the descriptor, then the value in reads of 32 KiB
    assert [len(payload) for payload in payloads[1:-1]] == [TUNNEL_CHUNK_SIZE] * 2
    assert 0 < len(payloads[-1]) < TUNNEL_CHUNK_SIZE
    receiver = TunnelCodec()
    assert [item for payload in payloads for item in receiver.feed(payload)] == [message]


text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=6)
ints = st.integers(-(2**63), 2**63 - 1)
words = st.lists(text, max_size=2)
tags = st.none() | st.dictionaries(text, text, max_size=2)
responses = st.builds(Response, id=ints, stdout=text, stderr=text, exit_code=ints,
                      record_exit_code=st.booleans())
commands = st.builds(
    Command, id=ints, background=st.booleans(), command=words, files_send=words,
    files_recv=words, conn_test=st.none() | st.builds(
        ConnTest, endpoint=text, wait=ints, packet=st.binary(max_size=4)),
    pid=ints, kill_all=text, level=st.none() | st.integers(1, 5),
    filter=st.none() | st.builds(Filter, uuid=text, hostname=text, arch=text, os=text,
                                 mac=text, ip=text, tags=tags),
    checked_in=words, prefix=text, once=st.booleans(), sent=st.booleans(), stdin=text,
    stdout=text, stderr=text)
clients = st.builds(
    Client, uuid=text, arch=text, os=text, version=text, hostname=text, ips=words, macs=words,
    processes=st.none() | st.dictionaries(ints, st.builds(Process, pid=ints, command=words),
                                          max_size=2),
    tags=tags, responses=st.lists(responses, max_size=2), last_command_id=ints)
messages = st.builds(
    Message, type=st.sampled_from(list(MessageType)) | ints, uuid=text, error=text,
    commands=st.none() | st.dictionaries(ints, commands, max_size=2),
    client=st.none() | clients,
    file=st.none() | st.builds(File, id=ints, name=text, perm=st.integers(0, 2**32 - 1),
                               data=st.binary(max_size=8), offset=ints, eof=st.booleans()),
    tunnel=st.binary(max_size=8), pipe=text, pipe_mode=st.sampled_from(list(PipeMode)) | ints,
    pipe_data=st.binary(max_size=8), ufs_mode=ints, version=text)


@settings(max_examples=50, deadline=None)
@given(sent=st.lists(messages, min_size=1, max_size=3))
def test_any_message_round_trips(sent: list[Message]) -> None:
    codec = RonCodec()
    assert codec.feed(reencoded(sent)) == sent


def only_gob_errors(stream: bytes) -> None:
    codec = RonCodec()
    try:
        codec.feed(stream)
        codec.end_of_stream()
    except GobError:
        pass


@settings(max_examples=200, deadline=None)
@given(garbage=st.binary(max_size=200))
def test_arbitrary_bytes_give_only_gob_errors(garbage: bytes) -> None:
    only_gob_errors(MAGIC + garbage)
    only_gob_errors(MAGIC + GO_DESCRIPTORS + garbage)


# --- the RON handshake -----------------------------------------------------------------


@pytest.mark.parametrize(("chunks", "skipped", "rest"), [
    ([b"RON\x05"], 0, b"\x05"),
    ([b"\x00\xffjunkRON", b"gob"], 6, b""),
    ([b"R", b"O", b"N"], 0, b""),
    ([b"RRON"], 1, b""),
    ([b"RORON!"], 2, b"!"),
    ([b"RO", b"RON"], 2, b""),
    ([b"RONRON"], 0, b"RON"),  # a second RON is already the peer's data
])
def test_the_scanner_skips_to_the_first_ron(chunks: list[bytes], skipped: int,
                                            rest: bytes) -> None:
    scanner = HandshakeScanner()
    answers = [scanner.feed(chunk) for chunk in chunks]
    first = next(at for at, answer in enumerate(answers) if answer is not None)
    assert answers[first] == rest
    assert answers[:first] == [None] * first
    assert (scanner.done, scanner.skipped) == (True, skipped)


def test_the_scanner_passes_bytes_through_once_done() -> None:
    scanner = HandshakeScanner()
    assert scanner.feed(b"RON") == b""
    assert scanner.feed(b"RON") == b"RON"


@pytest.mark.parametrize("chunks", [[b"12345RON"], [b"12345R", b"ON"]])
def test_the_scanner_skips_up_to_its_bound(chunks: list[bytes]) -> None:
    scanner = HandshakeScanner(max_skipped=5)
    assert [scanner.feed(chunk) for chunk in chunks][-1] == b""


@pytest.mark.parametrize("chunks", [
    [b"123456RON"],
    [b"123456"],  # known before any RON arrives
    [b"12345R", b"X"],
])
def test_the_scanner_fails_past_its_bound(chunks: list[bytes]) -> None:
    scanner = HandshakeScanner(max_skipped=5)
    for chunk in chunks[:-1]:
        assert scanner.feed(chunk) is None
    with pytest.raises(HandshakeError, match="no RON within the first 5 bytes"):
        scanner.feed(chunks[-1])
    with pytest.raises(HandshakeError):
        scanner.feed(b"RON")


def test_a_connection_waits_for_ron_then_decodes() -> None:
    hello = Message(type=MessageType.CLIENT, uuid="u", client=Client(uuid="u"), version="v1")
    stream = b"stale\nRON" + RonCodec().encode(hello)
    codec = RonCodec(max_skipped=6)
    assert codec.feed(stream[:7]) == []
    assert not codec.handshake_done
    assert codec.feed(stream[7:]) == [hello]
    assert codec.handshake_done


def test_a_stream_that_ends_before_ron_is_a_handshake_error() -> None:
    codec = RonCodec()
    codec.feed(b"RO")
    with pytest.raises(HandshakeError, match="before RON"):
        codec.end_of_stream()
    assert issubclass(HandshakeError, GobError)


# --- pipe lines: the shortcut both ways ---------------------------------------------------


def pipe_data(pipe: str, data: bytes) -> Message:
    return Message(type=MessageType.PIPE, pipe=pipe, pipe_mode=PipeMode.DATA, pipe_data=data)


pipe_names = st.text(max_size=200) | st.sampled_from(["foo", "ns//bar"])
lines = st.lists(st.binary(max_size=300).map(lambda line: line.replace(b"\n", b"")),
                 max_size=20)


@settings(max_examples=150, deadline=None)
@given(pipe=pipe_names, block_lines=lines, before=st.booleans())
def test_pipe_lines_encode_as_their_messages_one_by_one(pipe: str, block_lines: list[bytes],
                                                        before: bool) -> None:
    shortcut, general = RonCodec(), RonCodec()
    if before:  # descriptors already sent, or sent with the first line
        assert shortcut.encode(Message()) == general.encode(Message())
    block = b"".join(line + b"\n" for line in block_lines)
    assert shortcut.encode_pipe_lines(pipe, block) == b"".join(
        general.encode(pipe_data(pipe, line + b"\n")) for line in block_lines)


def test_pipe_lines_need_complete_lines() -> None:
    with pytest.raises(ValueError, match="complete lines"):
        RonCodec().encode_pipe_lines("foo", b"a\nb")
    assert RonCodec().encode_pipe_lines("foo", b"") == b""


# data of every shape: lines (the shortcut's), and what it must leave to the general path
shaped_data = st.sampled_from([b"", b"x", b"a\nb\n", b"\n", b"\n\n"]) | st.binary(
    max_size=300).map(lambda line: line.replace(b"\n", b"") + b"\n")
mixed = st.lists(st.builds(pipe_data, st.sampled_from(["foo", "bar", "é"]), shaped_data)
                 | messages, max_size=30)


@settings(max_examples=150, deadline=None)
@given(sent=mixed, data=st.data())
def test_runs_decode_to_what_the_general_decoder_gives(sent: list[Message],
                                                       data: st.DataObject) -> None:
    stream = reencoded([Message(type=MessageType.CLIENT, client=Client()), *sent])
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    codec = RonCodec()
    received = [item for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True)
                for item in codec.feed_runs(stream[start:end])]
    codec.end_of_stream()
    expanded = [message for item in received
                for message in (item.messages() if isinstance(item, PipeLines) else [item])]
    assert expanded[1:] == sent
    for item in received:  # a run is never empty, and never split for nothing
        assert not isinstance(item, PipeLines) or item.block.endswith(b"\n")


def test_lines_in_a_row_come_as_one_run() -> None:
    sender = RonCodec()
    block = b"".join(b"%d\n" % n for n in range(10000)) + b"x" * 200 + b"\n"
    stream = (MAGIC + sender.encode(Message(type=MessageType.CLIENT, client=Client()))
              + sender.encode_pipe_lines("foo", block) + sender.encode_pipe_lines("bar", b"1\n"))
    received = RonCodec().feed_runs(stream)
    assert received[1:] == [PipeLines("foo", block), PipeLines("bar", b"1\n")]


@settings(max_examples=200, deadline=None)
@given(garbage=st.binary(max_size=200), cut=st.integers(0, 60))
def test_garbage_among_pipe_lines_gives_only_gob_errors(garbage: bytes, cut: int) -> None:
    sender = RonCodec()
    lines_sent = sender.encode_pipe_lines("foo", b"one\ntwo\n")
    only_gob_errors(MAGIC + sender.encode(Message(type=MessageType.CLIENT, client=Client()))
                    + lines_sent[:cut] + garbage + lines_sent)
