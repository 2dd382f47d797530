"""Vias: a program run once per (message, reader), its whole stdout being what that reader gets."""

from __future__ import annotations

import logging

import trio

from minishell.gostr import exit_text
from minishell.plumber.fields import fields_quote_escape, has_space
from minishell.plumber.programs import ProgramFinder, terminate_group

logger = logging.getLogger("minishell.plumber")

# Runs of via programs at once, over all pipes: a burst of messages to many readers
# must not fork hundreds of processes together.
VIA_CONCURRENCY = 16


def via_command(argv: tuple[str, ...], programs: ProgramFinder) -> tuple[str, ...]:
    """The argv a via really runs, given the words `pipe <p> via ...` stored.

    minimega 2.9 never re-splits a via's words (spec §9.6, §16.17), so the
    quoted form its own help and article show, `pipe foo via "normal -stddev
    5.0"`, is ONE word whose lookup fails, and every message is dropped. The
    compromise: a single word with whitespace in it, which is not a program
    itself, is split like a plumb stage, but ONLY when the split's first word
    is one of minimega's helper programs (normal, count, delay, execf) found in
    the helper folder. The documented example then works, while every other
    quoted via (`"sed -u s/x/y/"`, pinned by the via_failure transcript) still
    fails exactly as in 2.9.
    """
    if len(argv) != 1 or not has_space(argv[0]) or programs.lookup(argv[0]) is not None:
        return argv
    split = fields_quote_escape(argv[0])
    if split and programs.is_helper(split[0]):
        return tuple(split)
    return argv


class Vias:
    """Runs vias, bounded by one limiter for the whole plumber."""

    def __init__(self, programs: ProgramFinder) -> None:
        self._programs = programs
        self._limiter = trio.CapacityLimiter(VIA_CONCURRENCY)

    async def run(self, argv: tuple[str, ...], message: bytes) -> bytes | None:
        """The via's stdout for this message, or None (logged at ERROR) if it failed."""
        command = via_command(argv, self._programs)
        path = self._programs.lookup(command[0])
        if path is None:
            logger.error('exec: "%s": executable file not found in $PATH', command[0])
            return None
        async with self._limiter:
            try:
                result = await trio.run_process(
                    list(command), executable=path, stdin=message, capture_stdout=True,
                    capture_stderr=True, check=False, start_new_session=True,
                    env=self._programs.child_env(), deliver_cancel=terminate_group)
            except (OSError, ValueError) as error:  # ValueError: a NUL in an argument
                logger.error("fork/exec %s: %s", path, error)
                return None
        if result.returncode != 0:
            logger.error("%s: %s", exit_text(result.returncode),
                         result.stderr.decode("utf-8", "replace"))
            return None
        return result.stdout

    async def run_each(self, argv: tuple[str, ...], message: bytes, readers: int,
                       ) -> list[bytes | None]:
        """One run per reader, concurrently; results in reader order."""
        outputs: list[bytes | None] = [None] * readers

        async def run_one(index: int) -> None:
            outputs[index] = await self.run(argv, message)

        async with trio.open_nursery() as nursery:
            for index in range(readers):
                nursery.start_soon(run_one, index)
        return outputs
