"""External programs: finding them on PATH + the helper folder, and stopping them.

Every child runs in its own session (`start_new_session=True`), so a Ctrl-C
typed at the terminal never reaches it, and it is its own process group, so
stopping it also stops whatever it started.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Sequence

import trio

GRACE_SECONDS = 1.0
HELPER_PROGRAMS = frozenset({"normal", "count", "delay", "execf"})


class ProgramFinder:
    """minimega's exec.LookPath over the user's PATH with the helper folder appended.

    The helper folder is appended for lookups and for the children's PATH only;
    os.environ is never touched.
    """

    def __init__(self, helper_dir: str | None) -> None:
        self._helper_dir = helper_dir

    def search_path(self) -> str:
        path = os.environ.get("PATH", os.defpath)
        if self._helper_dir is None:
            return path
        return f"{path}{os.pathsep}{self._helper_dir}" if path else self._helper_dir

    def lookup(self, name: str) -> str | None:
        """The program's path, or None: then a plumb stage is a pipe and a via fails."""
        if not name:
            return None
        return shutil.which(name, path=self.search_path())

    def is_helper(self, name: str) -> bool:
        """True for minimega's own helper programs when the helper folder holds them."""
        if self._helper_dir is None or name not in HELPER_PROGRAMS:
            return False
        return os.access(os.path.join(self._helper_dir, name), os.X_OK)

    def child_env(self) -> dict[str, str] | None:
        if self._helper_dir is None:
            return None
        return {**os.environ, "PATH": self.search_path()}


def signal_group(process: trio.Process, signum: signal.Signals) -> None:
    """Signal the child's whole process group (its pid, as it leads its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


async def terminate_group(process: trio.Process) -> None:
    """run_process's deliver_cancel: SIGTERM, then SIGKILL after a short grace."""
    signal_group(process, signal.SIGTERM)
    await trio.sleep(GRACE_SECONDS)
    signal_group(process, signal.SIGKILL)


async def stop_processes(processes: Sequence[trio.Process]) -> None:
    """Stop, reap and close every process; all get their grace at once, not one after another."""
    with trio.CancelScope(shield=True):
        for process in processes:
            signal_group(process, signal.SIGTERM)
        with trio.move_on_after(GRACE_SECONDS):
            for process in processes:
                await process.wait()
        for process in processes:
            # Also when the leader is gone: a grandchild may still hold the group.
            signal_group(process, signal.SIGKILL)
        for process in processes:
            await process.wait()
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    await stream.aclose()
