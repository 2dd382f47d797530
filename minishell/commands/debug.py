"""`debug`, `debug memory <file>` and `debug goroutine <file>` (cmd/minimega/misc_cli.go).

minimega shows Go's runtime figures; minishell shows Python's in the same
columns (FIGURES), and writes Python's equivalents of Go's profiles as text.
`debug cpu` is left to the commands minishell does not implement.
"""

from __future__ import annotations

import collections
import gc
import os
import platform
import sys
import threading
import traceback
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from typing import Final

import trio

from minishell import osfiles
from minishell.commands.registry import Command, Context, Handler
from minishell.reply import Response

TYPES_SHOWN: Final = 50
ALLOCATION_SITES_SHOWN: Final = 25


def python_version() -> str:
    """Where Go says `go1.19.8`: `cpython3.11.7`."""
    return f"{sys.implementation.name}{platform.python_version()}"


def _tasks(task: trio.lowlevel.Task) -> Iterator[trio.lowlevel.Task]:
    """`task` and every task below it, depth first (an explicit stack: trees can be deep)."""
    pending = [task]
    while pending:
        current = pending.pop()
        yield current
        for nursery in current.child_nurseries:
            pending.extend(nursery.child_tasks)


def _all_tasks() -> Iterator[trio.lowlevel.Task]:
    root = trio.lowlevel.current_root_task()
    return iter(()) if root is None else _tasks(root)


def task_count() -> int:
    """The trio tasks alive, the root task included: Go's goroutines."""
    return sum(1 for _ in _all_tasks())


def child_process_count() -> int:
    """This process's children, zombies included (blocking: call it in a thread).

    Linux lists each thread's children in /proc/self/task/*/children; without
    that file (a kernel built without it) every process's parent is looked at.
    """
    try:
        threads = os.listdir("/proc/self/task")
        children: set[str] = set()
        for thread in threads:
            with open(f"/proc/self/task/{thread}/children", encoding="ascii") as listing:
                children.update(listing.read().split())
        return len(children)
    except FileNotFoundError:
        return _child_count_by_parent()


def _child_count_by_parent() -> int:
    me = os.getpid()
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                # the parent is the second field after the parenthesised command name
                parent = stat.read().rsplit(")", 1)[1].split()[1]
        except (OSError, IndexError):
            continue
        if parent == str(me):
            count += 1
    return count


async def _python_version(ctx: Context) -> str:
    return python_version()


async def _tasks_alive(ctx: Context) -> str:
    return str(task_count())


async def _children(ctx: Context) -> str:
    return str(await trio.to_thread.run_sync(child_process_count))


async def _dropped_readers(ctx: Context) -> str:
    return str(ctx.plumber.dropped_readers)


# minimega's columns, each with the Python figure shown in it, then minishell's
# own: the readers the plumber dropped for taking nothing with their queue full.
FIGURES: Final[tuple[tuple[str, Callable[[Context], Awaitable[str]]], ...]] = (
    ("goversion", _python_version),
    ("goroutines", _tasks_alive),
    ("cgocalls", _children),
    ("dropped", _dropped_readers),
)


# -- the files -------------------------------------------------------------------------------------


def _proc_status_kib(field: str) -> str:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return line.split()[1]
    except OSError:
        pass
    return "?"


def memory_summary() -> str:
    """Python's side of Go's heap profile, as text (blocking: call it in a thread):
    the process's memory, the garbage collector's figures, the most common
    object types, and the biggest allocation sites when tracemalloc traces."""
    by_type = collections.Counter(type(thing).__qualname__ for thing in gc.get_objects())
    lines = [
        f"# minishell {python_version()}, pid {os.getpid()}",
        f"rss_kib {_proc_status_kib('VmRSS')}",
        f"peak_rss_kib {_proc_status_kib('VmHWM')}",
        f"gc_counts {' '.join(map(str, gc.get_count()))}",
        f"gc_tracked_objects {by_type.total()}",
        f"# the {TYPES_SHOWN} most common types of objects the collector tracks: count type",
        *(f"{count} {name}" for name, count in by_type.most_common(TYPES_SHOWN)),
    ]
    if tracemalloc.is_tracing():
        lines.append(f"# the {ALLOCATION_SITES_SHOWN} biggest allocation sites (tracemalloc)")
        statistics = tracemalloc.take_snapshot().statistics("lineno")
        lines.extend(str(entry) for entry in statistics[:ALLOCATION_SITES_SHOWN])
    else:
        lines.append("# allocation sites: start minishell with PYTHONTRACEMALLOC=1 to see them")
    return "\n".join(lines) + "\n"


def task_stacks() -> str:
    """Python's side of Go's goroutine dump: every trio task where it waits, then
    every thread where it runs (call it on the event loop, which owns the tasks)."""
    lines = []
    for task in _all_tasks():
        lines.append(f"task {task.name}:")
        frames = traceback.StackSummary.extract(task.iter_await_frames())
        lines.extend(line.rstrip("\n") for line in frames.format())
        lines.append("")
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        lines.append(f"thread {names.get(ident, ident)}:")
        lines.extend(line.rstrip("\n") for line in traceback.format_stack(frame))
        lines.append("")
    return "\n".join(lines)


async def debug(ctx: Context, command: Command) -> Response | None:
    name = command.optional("file")
    if name is None:
        header = [column for column, _ in FIGURES]
        return ctx.table(header, [[await figure(ctx) for _, figure in FIGURES]])
    path = name
    if not os.path.isabs(path):  # minimega's: relative to the files folder
        await trio.to_thread.run_sync(osfiles.mkdir_all, ctx.session.files_dir, 0o755)
        path = os.path.join(ctx.session.files_dir, path)
    if "memory" in command.bools:
        text = await trio.to_thread.run_sync(memory_summary)
    else:
        text = task_stacks()
    await osfiles.create(path, text.encode("utf-8", "backslashreplace"))
    return None


HANDLERS = (
    Handler(
        patterns=("debug", "debug <memory,> <file>", "debug <goroutine,> <file>"),
        short="display internal debug information",
        long=(
            "debug can help find and resolve issues with minishell. Without arguments,\n"
            "debug prints, in minimega's columns, Python's figures: goversion is the Python\n"
            "version, goroutines the number of trio tasks, and cgocalls the number of child\n"
            "processes.\n"
            "\n"
            "With arguments, debug writes text files (a relative path is in the files\n"
            "folder):\n"
            "\n"
            "- memory: the process's memory, the garbage collector's counts and the most\n"
            "  common object types (and allocation sites, if tracemalloc traces)\n"
            "- goroutine: the stack of every trio task and every thread"
        ),
        call=debug,
    ),
)
