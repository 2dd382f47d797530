"""ron.SerialSplitter: one serial line, the agent connections on it.

The line's input is made here with the codec (an agent's hello, heartbeats, pipe
lines that contain RON themselves), and split at arbitrary points, as reads of a
pty or a socket split it.
"""

from __future__ import annotations

import itertools

import pytest
from captures import chunks, needs_captures
from hypothesis import given, settings
from hypothesis import strategies as st

from minishell.protocol.ron import (
    MAGIC,
    Client,
    HandshakeError,
    Message,
    MessageType,
    PipeMode,
    RonCodec,
    SerialSplitter,
)


def agent_stream(lines: list[bytes], uuid: str = "1111") -> bytes:
    """What an agent writes on one connection: RON, its hello, a pipe line each."""
    codec = RonCodec()
    hello = Message(type=MessageType.CLIENT, uuid=uuid, version="v1",
                    client=Client(uuid=uuid, hostname="vmA", processes={}))
    data = bytearray(MAGIC + codec.encode(hello))
    for line in lines:
        data += codec.encode(Message(type=MessageType.PIPE, pipe="p",
                                     pipe_mode=PipeMode.DATA, pipe_data=line))
    return bytes(data)


def decoded(data: bytes) -> list[Message]:
    codec = RonCodec()
    messages = codec.feed(data)
    codec.end_of_stream()
    return messages


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """The line's reads: data cut at these offsets."""
    edges = [0, *sorted({cut % (len(data) + 1) for cut in cuts}), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(edges)]


def connections(reads: list[bytes], *, max_skipped: int = 1 << 20) -> list[bytes]:
    """Every connection's bytes, as a host reading the line in these reads sees them."""
    splitter = SerialSplitter(max_skipped)
    found = [bytearray()]
    for read in reads:
        splitter.feed(read)
        while True:
            found[-1] += splitter.take()
            if not splitter.ended:
                break
            splitter.next_connection()
            found.append(bytearray())
    return [bytes(each) for each in found]


LINES = st.lists(st.binary(max_size=300).map(lambda b: b + b"\n") | st.sampled_from(
    [b"RON\n", b"RONRON\n", b"R\n", b"RO", b"x" * 81 + b"RON"]), max_size=12)


@settings(max_examples=200, deadline=None)
@given(lines=LINES, cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_one_connection_passes_whole_however_it_is_read(lines: list[bytes],
                                                         cuts: list[int]) -> None:
    stream = agent_stream(lines)
    (whole,) = connections(split(stream, cuts))
    assert whole == stream
    assert [m.pipe_data for m in decoded(whole)[1:]] == lines


@settings(max_examples=200, deadline=None)
@given(before=LINES, after=LINES, stale=st.binary(max_size=200).filter(lambda b: MAGIC not in b),
       cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_a_restart_at_a_boundary_begins_a_new_connection(
        before: list[bytes], after: list[bytes], stale: bytes, cuts: list[int]) -> None:
    """Stale bytes of a previous boot, a connection, then the agent starts again."""
    first, second = agent_stream(before), agent_stream(after, uuid="1111")
    found = connections(split(stale + first + second, cuts))
    assert found == [first, second]


def test_a_ron_at_a_boundary_ends_the_connection_even_alone() -> None:
    """The new agent writes RON and waits for the host's: nothing follows it."""
    first = agent_stream([b"one\n"])
    splitter = SerialSplitter()
    splitter.feed(first + b"R")
    assert splitter.take() == first  # the R is held until the next byte says what it is
    splitter.feed(b"O")
    assert splitter.take() == b"" and not splitter.ended
    splitter.feed(b"N")
    assert splitter.take() == b"" and splitter.ended
    splitter.next_connection()
    assert splitter.take() == MAGIC and splitter.started


def test_a_ron_ending_an_unfinished_message_is_cut_when_the_caller_says() -> None:
    """An agent killed in the middle of a message, and a new one: its RON is inside
    what the old message's length still claims."""
    whole = agent_stream([b"a line that the old agent did not finish writing\n"])
    torn = whole[:-20]
    splitter = SerialSplitter()
    splitter.feed(torn)
    assert splitter.take() == torn and not splitter.may_cut
    splitter.feed(MAGIC)
    assert splitter.take() == MAGIC and splitter.may_cut  # given to the old connection
    splitter.cut()
    assert splitter.ended and splitter.take() == b""
    splitter.next_connection()
    splitter.feed(b"more")
    assert splitter.take() == MAGIC + b"more"


def test_a_ron_inside_a_message_followed_by_more_is_data() -> None:
    stream = agent_stream([b"CRONTAB\n"])
    splitter = SerialSplitter()
    at = stream.index(b"RONTAB") + 3
    splitter.feed(stream[:at])
    assert splitter.take() == stream[:at] and splitter.may_cut  # silence would cut here
    splitter.feed(stream[at:])
    assert splitter.take() == stream[at:] and not splitter.may_cut


def test_stale_bytes_are_skipped_up_to_the_bound() -> None:
    stream = agent_stream([])
    assert connections([b"x" * 100, stream], max_skipped=100) == [stream]
    splitter = SerialSplitter(max_skipped=100)
    splitter.feed(b"x" * 101)
    with pytest.raises(HandshakeError, match="no RON within the first 100 bytes"):
        splitter.take()


def test_a_length_that_makes_no_sense_is_passed_on_for_the_decoder_to_refuse() -> None:
    splitter = SerialSplitter()
    splitter.feed(MAGIC + b"\xf0garbage RON more")
    assert splitter.take() == MAGIC + b"\xf0garbage RON more" and not splitter.ended


@needs_captures
@pytest.mark.parametrize("vm", ["vmA", "vmB", "vmC"])
def test_real_miniccc_streams_are_one_connection_each(vm: str) -> None:
    """What a real miniccc 2.9 sent over its serial line, read in its real chunks."""
    sent = list(chunks(vm, "guest"))
    assert connections(sent) == [b"".join(sent)]
