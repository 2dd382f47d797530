"""Vias: a program run once per (message, reader), its whole stdout being what that reader gets."""

from __future__ import annotations

import logging

import trio

from minishell.gostr import exit_text
from minishell.plumber.fields import fields_quote_escape, has_space
from minishell.plumber.programs import (
    GRACE_SECONDS,
    KillSwitch,
    ProgramFinder,
    ProgramResult,
    run_program,
)

logger = logging.getLogger("minishell.plumber")

# Runs of via programs at once, over all pipes: a burst of messages to many readers
# must not fork hundreds of processes together.
VIA_CONCURRENCY = 16
VIA_DEADLINE = 10.0
# A via's output is one message, so it has the limit of one: miniplumber's
# TOKEN_MAX (2.9 itself buffers a via's output without limit).
VIA_OUTPUT_MAX = 1024 * 1024


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
    if (len(argv) != 1 or not has_space(argv[0])
            or programs.lookup_cached(argv[0]) is not None):
        return argv
    split = fields_quote_escape(argv[0])
    if split and programs.is_helper(split[0]):
        return tuple(split)
    return argv


class Vias:
    """Runs vias, bounded by one limiter for the whole plumber.

    A via is run_program with the message on stdin: it fails (logged at
    ERROR, None for that reader) when it cannot start, exits non-zero, prints
    more than VIA_OUTPUT_MAX bytes, or is still running at its deadline; in
    every case its process group is gone when run() returns.
    """

    def __init__(self, programs: ProgramFinder, *, deadline: float = VIA_DEADLINE,
                 grace: float = GRACE_SECONDS, concurrency: int = VIA_CONCURRENCY) -> None:
        self._programs = programs
        self._deadline = deadline
        self._grace = grace
        self._limiter = trio.CapacityLimiter(concurrency)

    async def run(self, pipe_name: str, argv: tuple[str, ...], message: bytes,
                  kill_switch: KillSwitch) -> bytes | None:
        """The via's stdout for this message, or None (logged at ERROR) if it failed;
        None too, silently, once `kill_switch` is thrown (its owner logs that)."""
        command = via_command(argv, self._programs)
        async with self._limiter:
            if kill_switch.killed:
                return None
            result = await self._start(command, message, kill_switch)
        if result is None or kill_switch.killed:
            return None
        failure = None
        if result.timed_out:
            failure = f"still running after {self._deadline:g}s"
        elif result.over_limit:
            failure = f"output over {VIA_OUTPUT_MAX} bytes"
        if failure is not None:
            logger.error("pipe %s: via %s: %s: killed, the message is dropped for a reader",
                         pipe_name, " ".join(argv), failure)
            return None
        if result.returncode != 0:
            logger.error("%s: %s", exit_text(result.returncode),
                         result.stderr.decode("utf-8", "replace"))
            return None
        return result.stdout

    async def _start(self, command: tuple[str, ...], message: bytes,
                     kill_switch: KillSwitch) -> ProgramResult | None:
        """run_program, or None when it cannot start (logged as minimega does).

        The lookup is cached, so a program removed since its last run fails
        to start: then it is looked up afresh, and run again if found elsewhere.
        """
        name = command[0]
        path = self._programs.lookup_cached(name)
        while path is not None:
            try:
                return await run_program(
                    path, command, stdin=message, env=self._programs.spawn_env(),
                    stdout_limit=VIA_OUTPUT_MAX, stderr_limit=VIA_OUTPUT_MAX,
                    deadline=trio.current_time() + self._deadline, grace=self._grace,
                    kill_switch=kill_switch)
            except FileNotFoundError as error:
                self._programs.forget(name)
                found = self._programs.lookup_cached(name)
                if found == path:  # still there: the file exists but will not run
                    logger.error("fork/exec %s: %s", path, error)
                    return None
                path = found
            except (OSError, ValueError) as error:  # ValueError: a NUL in an argument
                logger.error("fork/exec %s: %s", path, error)
                return None
        logger.error('exec: "%s": executable file not found in $PATH', name)
        return None
