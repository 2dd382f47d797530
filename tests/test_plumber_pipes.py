"""Pipes without pipelines: writes, counters, modes, backpressure, readers coming and going."""

from __future__ import annotations

import logging
import random

import pytest
import trio
import trio.testing
from plumbing import collect, info, receive_messages, settled

from minishell.plumber import PipeInfo, Plumber, PlumberError
from minishell.plumber.outbox import OUTBOX_LIMIT, SEND_DIRECTLY_MAX, Chunk


async def test_writes_without_readers_are_counted(plumber: Plumber) -> None:
    for data in ("first", "second", "third"):
        await plumber.write("minimega//alpha", data)
    await plumber.write("minimega//beta", "only")
    assert plumber.pipes() == [
        PipeInfo("minimega//alpha", "all", 0, 0, 3, (), "third"),
        PipeInfo("minimega//beta", "all", 0, 0, 1, (), "only"),
    ]


async def test_a_write_is_settled_when_it_returns(plumber: Plumber) -> None:
    async with plumber.open_reader("minimega//p") as reader:
        await plumber.write("minimega//p", "here")
        assert info(plumber, "minimega//p") == PipeInfo("minimega//p", "all", 1, 0, 1, (), "here")
        assert await receive_messages(reader, 1) == [b"here\n"]


async def test_newline_rules_and_multi_line_messages(plumber: Plumber) -> None:
    async with plumber.open_reader("minimega//n") as reader:
        await plumber.write("minimega//n", "x")
        await plumber.write("minimega//n", "x\n\n")
        await plumber.write("minimega//n", "")
        await plumber.write("minimega//n", "a\nb")
        assert await receive_messages(reader, 4) == [b"x\n", b"x\n\n", b"\n", b"a\nb\n"]
    assert info(plumber, "minimega//n").count == 4
    assert info(plumber, "minimega//n").previous == "a\nb"


async def test_previous_is_trimmed_the_go_way(plumber: Plumber) -> None:
    await plumber.write("minimega//t", "  padded  ")
    assert info(plumber, "minimega//t").previous == "padded"
    await plumber.write("minimega//t", "\x1cgo keeps these\x1f")
    assert info(plumber, "minimega//t").previous == "\x1cgo keeps these\x1f"


async def test_mode_all_gives_every_reader_everything(plumber: Plumber,
                                                      nursery: trio.Nursery) -> None:
    got: list[list[bytes]] = [[], []]
    for into in got:
        await nursery.start(collect, plumber, "minimega//all", into)
    await plumber.write("minimega//all", "m1")
    async with plumber.open_writer("minimega//all") as writer:
        await writer.write_lines(b"m2\nm3\n")
    await trio.testing.wait_all_tasks_blocked()
    assert got == [[b"m1\n", b"m2\n", b"m3\n"]] * 2
    assert info(plumber, "minimega//all").count == 3


async def test_round_robin_follows_registration_order(plumber: Plumber,
                                                      nursery: trio.Nursery) -> None:
    plumber.set_mode("minimega//rr", "round-robin")
    got: list[list[bytes]] = [[], [], []]
    for into in got:
        await nursery.start(collect, plumber, "minimega//rr", into)
    for index in range(1, 5):
        await plumber.write("minimega//rr", f"m{index}")
    async with plumber.open_writer("minimega//rr") as writer:
        await writer.write_lines(b"m5\nm6\nm7\nm8\nm9\n")
    await trio.testing.wait_all_tasks_blocked()
    assert got == [[b"m1\n", b"m4\n", b"m7\n"], [b"m2\n", b"m5\n", b"m8\n"],
                   [b"m3\n", b"m6\n", b"m9\n"]]
    assert info(plumber, "minimega//rr") == PipeInfo("minimega//rr", "round-robin", 3, 0, 9,
                                                     (), "m9")


async def test_random_mode_uses_the_injected_generator(nursery: trio.Nursery) -> None:
    async def split(seed: int) -> list[list[bytes]]:
        plumber = Plumber(nursery, rng=random.Random(seed))
        plumber.set_mode("minimega//rnd", "random")
        got: list[list[bytes]] = [[], []]
        for into in got:
            await nursery.start(collect, plumber, "minimega//rnd", into)
        for index in range(20):
            await plumber.write("minimega//rnd", f"x{index}")
        async with plumber.open_writer("minimega//rnd") as writer:
            await writer.write_lines(b"".join(b"y%d\n" % index for index in range(20)))
        await trio.testing.wait_all_tasks_blocked()
        assert info(plumber, "minimega//rnd").count == 40
        assert info(plumber, "minimega//rnd").previous == "y19"
        await plumber.aclose()
        return got

    first, again = await split(3), await split(3)
    assert first == again
    assert sorted(first[0] + first[1]) == sorted(
        [b"x%d\n" % index for index in range(20)] + [b"y%d\n" % index for index in range(20)])
    assert first[0] and first[1]


async def test_a_full_outbox_makes_the_writer_wait_and_nothing_is_lost(
        plumber: Plumber, nursery: trio.Nursery) -> None:
    total = 3000  # 3000 * 100 bytes: beyond one outbox, so the writer must wait
    sent = trio.Event()

    async def write_all() -> None:
        async with plumber.open_writer("minimega//slow") as writer:
            for index in range(total):
                await writer.write_lines(b"%099d\n" % index)
        sent.set()

    async with plumber.open_reader("minimega//slow") as reader:
        nursery.start_soon(write_all)
        await trio.testing.wait_all_tasks_blocked()
        assert not sent.is_set()
        assert 0 < info(plumber, "minimega//slow").count < total
        got = await receive_messages(reader, total)
    assert got == [b"%099d\n" % index for index in range(total)]
    with trio.fail_after(5):
        await sent.wait()


async def test_a_reader_that_goes_away_is_dropped_and_the_others_go_on(
        plumber: Plumber, nursery: trio.Nursery) -> None:
    total = 3000
    kept: list[bytes] = []
    await nursery.start(collect, plumber, "minimega//p", kept)

    async def write_all() -> None:
        async with plumber.open_writer("minimega//p") as writer:
            for index in range(total):
                await writer.write_lines(b"%099d\n" % index)

    async with plumber.open_reader("minimega//p") as leaving:
        nursery.start_soon(write_all)
        await trio.testing.wait_all_tasks_blocked()  # the writer waits on `leaving`
        assert len(await receive_messages(leaving, 10)) >= 10
    with trio.fail_after(5):
        while len(kept) < total:
            await trio.testing.wait_all_tasks_blocked()
    assert kept == [b"%099d\n" % index for index in range(total)]
    assert info(plumber, "minimega//p").readers == 1


async def test_each_writer_keeps_its_order(plumber: Plumber, nursery: trio.Nursery) -> None:
    got: list[bytes] = []
    await nursery.start(collect, plumber, "minimega//o", got)

    async def write_some(tag: bytes) -> None:
        async with plumber.open_writer("minimega//o") as writer:
            for index in range(500):
                await writer.write_lines(b"%s%d\n" % (tag, index))

    async with trio.open_nursery() as writers:
        writers.start_soon(write_some, b"a")
        writers.start_soon(write_some, b"b")
    await trio.testing.wait_all_tasks_blocked()
    for tag in (b"a", b"b"):
        assert [line for line in got if line.startswith(tag)] == [
            b"%s%d\n" % (tag, index) for index in range(500)]


async def test_readers_get_eof_when_the_pipe_is_deleted(plumber: Plumber) -> None:
    async with plumber.open_reader("minimega//gone") as reader:
        await plumber.write("minimega//gone", "last words")
        await plumber.delete_pipe("minimega//gone")
        assert await receive_messages(reader, 1) == [b"last words\n"]
        with pytest.raises(trio.EndOfChannel):
            await reader.receive()
    assert plumber.pipes() == []


async def test_readers_get_eof_when_the_plumber_closes(plumber: Plumber) -> None:
    async with plumber.open_reader("minimega//p") as reader:
        await plumber.aclose()
        assert [chunk async for chunk in reader] == []


async def test_writers_count_while_open(plumber: Plumber) -> None:
    async with plumber.open_writer("minimega//w") as writer:
        assert info(plumber, "minimega//w").writers == 1
        with pytest.raises(PlumberError, match=r"^cannot delete named pipe with open writers$"):
            await plumber.delete_pipe("minimega//w")
        with pytest.raises(ValueError, match="complete lines"):
            await writer.write_lines(b"no newline")
    assert info(plumber, "minimega//w").writers == 0


async def test_settings_create_pipes_and_listing_is_byte_ordered(plumber: Plumber) -> None:
    plumber.set_mode("minimega//k1", "random")
    plumber.set_via("minimega//k1", ("tr", "a-z", "A-Z"))
    plumber.set_log("minimega//ghost", True)
    plumber.set_via("minimega//Upper", ())
    plumber.set_mode("minimega//\u00e9", "all")
    assert [(pipe.name, pipe.mode, pipe.via) for pipe in plumber.pipes()] == [
        ("minimega//Upper", "all", ()),
        ("minimega//ghost", "all", ()),
        ("minimega//k1", "random", ("tr", "a-z", "A-Z")),
        ("minimega//\u00e9", "all", ()),
    ]
    assert sorted(plumber.names()) == ["minimega//Upper", "minimega//ghost", "minimega//k1",
                                       "minimega//\u00e9"]


async def test_delete_pipe_errors(plumber: Plumber) -> None:
    plumber.set_mode("minimega//k1", "all")
    await plumber.delete_pipe("minimega//k1")
    with pytest.raises(PlumberError, match=r"^no such pipe: minimega//k1$"):
        await plumber.delete_pipe("minimega//k1")


async def test_delete_all_deletes_what_it_can_then_reports(plumber: Plumber) -> None:
    for name in ("minimega//a", "minimega//c", "other//b"):
        plumber.set_log(name, False)
    async with plumber.open_writer("minimega//busy"):
        with pytest.raises(PlumberError, match=r"^cannot delete named pipe with open writers$"):
            await plumber.delete_all_pipes()
        assert [pipe.name for pipe in plumber.pipes()] == ["minimega//busy"]
    await plumber.delete_all_pipes()
    assert plumber.pipes() == []


async def test_log_flag_logs_each_message(plumber: Plumber,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="minishell.plumber")
    plumber.set_log("minimega//lg", True)
    await plumber.write("minimega//lg", "  hello  ")
    async with plumber.open_writer("minimega//lg") as writer:
        await writer.write_lines(b"one\ntwo\n")
    plumber.set_log("minimega//lg", False)
    await plumber.write("minimega//lg", "quiet")
    assert [record.getMessage() for record in caplog.records] == [
        "pipe minimega//lg: hello", "pipe minimega//lg: one", "pipe minimega//lg: two"]


class Socketlike:
    """A `send_directly` target with room for `room` bytes, like a socket's buffer."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.received = bytearray()

    def send_now(self, data: bytes) -> int:
        taken = data[:self.room]
        self.room -= len(taken)
        self.received += taken
        return len(taken)


async def test_a_waiting_reader_takes_small_chunks_directly_in_order(
        plumber: Plumber, nursery: trio.Nursery) -> None:
    sink = Socketlike(room=25)
    by_receive = bytearray()
    async with plumber.open_reader("minimega//d") as reader, \
            plumber.open_writer("minimega//d") as writer:
        reader.send_directly(sink.send_now)
        await writer.write_lines(b"before the reader waits\n")  # nobody waits yet: queued

        async def receive_all() -> None:
            async for chunk in reader:
                by_receive.extend(chunk.data)

        nursery.start_soon(receive_all)
        await trio.testing.wait_all_tasks_blocked()
        assert bytes(by_receive) == b"before the reader waits\n"
        await writer.write_lines(b"one\ntwo\n")
        await writer.write_lines(b"three\n")
        assert sink.received == b"one\ntwo\nthree\n"  # no task woke for these
        await writer.write_lines(b"four is cut in two\n")  # 11 bytes of room left
        await writer.write_lines(b"five\n")  # behind the rest of four
        await trio.testing.wait_all_tasks_blocked()
        assert sink.received == b"one\ntwo\nthree\nfour is cut"
        assert bytes(by_receive) == b"before the reader waits\n in two\nfive\n"
        bulk = b"x" * SEND_DIRECTLY_MAX + b"\n"  # for the reader's own task, room or not
        sink.room = len(bulk)
        await writer.write_lines(bulk)
        await trio.testing.wait_all_tasks_blocked()
        assert sink.received == b"one\ntwo\nthree\nfour is cut"
        assert bytes(by_receive).endswith(b"five\n" + bulk)
        reader.close()
    assert info(plumber, "minimega//d").count == 7


async def test_a_reader_no_longer_waiting_takes_nothing_directly(plumber: Plumber) -> None:
    sink = Socketlike(room=1000)
    async with plumber.open_reader("minimega//c") as reader, \
            plumber.open_writer("minimega//c") as writer:
        reader.send_directly(sink.send_now)
        with trio.move_on_after(0.01):
            await reader.receive()  # waits, then is cancelled
        await writer.write_lines(b"after\n")
        assert sink.received == b""
        assert await receive_messages(reader, 1) == [b"after\n"]


async def test_a_waiting_reader_takes_whole_chunks_directly_or_none(
        plumber: Plumber, nursery: trio.Nursery) -> None:
    """take_directly (a stream to another node): a chunk is taken whole, boundaries and
    all, or left to the reader's task, behind which the next ones queue."""
    taken: list[Chunk] = []
    room = [2]

    def take_now(chunk: Chunk) -> bool:
        if not room[0]:
            return False
        room[0] -= 1
        taken.append(chunk)
        return True

    by_receive: list[Chunk] = []
    async with plumber.open_reader("minimega//t") as reader, \
            plumber.open_writer("minimega//t") as writer:
        reader.take_directly(take_now)

        async def receive_all() -> None:
            async for chunk in reader:
                by_receive.append(chunk)

        nursery.start_soon(receive_all)
        await trio.testing.wait_all_tasks_blocked()
        await writer.write_lines(b"one\ntwo\n")
        await writer.write_message(b"three\nlines\n")
        await writer.write_lines(b"four\n")  # no room: the task's
        await writer.write_lines(b"five\n")  # behind four
        await trio.testing.wait_all_tasks_blocked()
        assert taken == [Chunk(b"one\ntwo\n"), Chunk(b"three\nlines\n", True)]
        assert b"".join(chunk.data for chunk in by_receive) == b"four\nfive\n"
        reader.close()
    assert info(plumber, "minimega//t").count == 5


async def test_deliver_now_delivers_unless_it_would_wait(plumber: Plumber) -> None:
    async with plumber.open_reader("minimega//n") as reader:
        assert plumber.deliver_now("minimega//n", Chunk(b"a\nb\n")) is True
        assert plumber.deliver_now("minimega//n", Chunk(b"c\n"), reader_id=12345) is False
        assert plumber.deliver_now("minimega//n", Chunk(b"x" * OUTBOX_LIMIT + b"\n")) is True
        assert plumber.deliver_now("minimega//n", Chunk(b"late\n")) is None  # full
        assert await receive_messages(reader, 3) == [b"a\n", b"b\n", b"x" * OUTBOX_LIMIT + b"\n"]
        assert plumber.deliver_now("minimega//n", Chunk(b"late\n")) is True
        assert await receive_messages(reader, 1) == [b"late\n"]
    assert info(plumber, "minimega//n").count == 4


async def test_what_an_upstream_gives_back_goes_first(plumber: Plumber,
                                                       nursery: trio.Nursery) -> None:
    """An upstream reader (the pipe is scheduled on another node) full, a writer waiting
    for it; what it held is given back when it goes (that node died): the pipe routes it
    here, ahead of the waiting write, each message once and counted once."""
    name = "minimega//up"
    plumber.set_mode(name, "round-robin")
    got: list[list[bytes]] = [[], []]
    for into in got:
        await nursery.start(collect, plumber, name, into)
    upstream = plumber.attach_reader(name, upstream=True)
    block = b"".join(b"m%d\n" % number for number in range(OUTBOX_LIMIT // 4))
    done = trio.Event()

    async def write() -> None:
        async with plumber.open_writer(name) as writer:
            await writer.write_lines(block)
            await writer.write_lines(b"late\n")  # the upstream is full: this waits
        done.set()

    nursery.start_soon(write)
    await trio.testing.wait_all_tasks_blocked()
    assert not done.is_set() and got == [[], []]
    plumber.give_back(name, upstream.withdraw())
    with trio.fail_after(5):
        await done.wait()
    await settled(lambda: sum(map(len, got)) == block.count(b"\n") + 1)
    written = [*block.splitlines(keepends=True), b"late\n"]
    order = {message: index for index, message in enumerate(written)}
    assert sorted(got[0] + got[1], key=order.__getitem__) == written
    for share in got:
        assert share == sorted(share, key=order.__getitem__)
    assert got[0][-1:] == [b"late\n"] or got[1][-1:] == [b"late\n"]
    assert info(plumber, name).count == len(written)


async def test_what_an_upstream_gives_back_goes_through_the_via(plumber: Plumber,
                                                                nursery: trio.Nursery) -> None:
    """This node schedules the pipe now: the via applies to what is given back."""
    name = "minimega//upvia"
    plumber.set_mode(name, "round-robin")
    got: list[bytes] = []
    await nursery.start(collect, plumber, name, got)
    upstream = plumber.attach_reader(name, upstream=True)
    async with plumber.open_writer(name) as writer:
        await writer.write_lines(b"a\nb\n")
    plumber.set_via(name, ("sed", "-u", "s/^/>/"))
    plumber.give_back(name, upstream.withdraw())
    async with plumber.open_writer(name) as writer:
        await writer.write_lines(b"c\n")
    await settled(lambda: len(got) == 3)
    assert got == [b">a\n", b">b\n", b">c\n"]
    assert info(plumber, name).count == 3
