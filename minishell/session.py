"""A minimega session: one line in, minicli Responses out.

`Session.run_line` is the single entry point of every front end (prompt,
scripts, replay, later the socket). It follows minimega's command path
(spec §1): alias expansion, compile, preprocess, execute, history. The
session owns what minimega keeps process-wide besides the plumber: output
flags, aliases, namespaces and history.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from typing import Any, TypeAlias, cast

import trio

from minishell import __version__, tabular
from minishell.errors import CommandError
from minishell.gostr import exit_text, quote, trim_space
from minishell.help import help_text
from minishell.language import commands as c
from minishell.language import expand_alias, parse, parse_alias, preprocess
from minishell.plumber import Plumber, PlumberError
from minishell.plumber.programs import terminate_group
from minishell.response import MODE_CSV, MODE_DEFAULT, MODE_JSON, Flags, Response

log = logging.getLogger("minishell.session")

DEFAULT_NAMESPACE = "minimega"
_NAMESPACE_NAME = re.compile(r"^[a-zA-Z0-9-_.]+$")
_INVALID_NAMESPACE = "invalid name; must only include letters, numbers, hyphens and underscores"
_PIPE_HEADER = ["name", "mode", "readers", "writers", "count", "via", "previous"]
# bufio.Scanner's default limit, which `read` inherits (spec §15).
_READ_LINE_MAX = 64 * 1024
_READ_YIELD_EVERY = 64


# Commands that wrap another command and act before or after it.
_Layer: TypeAlias = c.FlagWrap | c.Columns | c.Filter | c.NamespaceRun | c.NsRun
_LAYER_TYPES = (c.FlagWrap, c.Columns, c.Filter, c.NamespaceRun, c.NsRun)


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _with_flag(flags: Flags, flag: c.FlagName, value: bool) -> Flags:
    """One flag builtin applied to a copy of the flags (builtins.go:472-524).

    `json` and `csv` share one mode: setting one clears the other, and
    `.json false` only resets the mode when the mode is JSON.
    """
    if flag in ("json", "csv"):
        mode = MODE_JSON if flag == "json" else MODE_CSV
        if value:
            return replace(flags, mode=mode)
        return replace(flags, mode=MODE_DEFAULT) if flags.mode == mode else flags
    return replace(flags, **cast("dict[str, Any]", {flag: value}))


def _flag_value(flags: Flags, flag: c.FlagName) -> bool:
    if flag == "json":
        return flags.mode == MODE_JSON
    if flag == "csv":
        return flags.mode == MODE_CSV
    value: bool = getattr(flags, flag)
    return value


def _records(cmd: c.Command, recording: bool) -> bool:
    """Whether minicli puts this command in the history (spec §12.4)."""
    match cmd:
        case c.FlagSet(flag="record") | c.FlagQuery(flag="record"):
            return False
        case c.FlagWrap(flag="record", value=value):
            return value
        case c.ClearHistory() | c.Read():
            return False
    return recording


class Session:
    """Flags, aliases, namespaces and history around one Plumber."""

    def __init__(
        self,
        plumber: Plumber,
        nursery: trio.Nursery,
        *,
        hostname: str,
        files_dir: str,
    ) -> None:
        self.plumber = plumber
        self.hostname = hostname
        self.flags = Flags()
        self.namespace = DEFAULT_NAMESPACE
        self.namespaces: set[str] = {DEFAULT_NAMESPACE}
        self.aliases: dict[str, str] = {}
        self.history: list[str] = []
        self.quitting = trio.Event()
        # Commands from the prompt and from socket clients run one at a time,
        # as minimega's cmdLock makes them.
        self._command_lock = trio.Lock()
        self._nursery = nursery  # owns `background` programs
        self._files_dir = files_dir

    # -- the entry point -------------------------------------------------
    async def run_line(self, line: str) -> list[Response]:
        """Run one line as the socket and the prompt do: aliases apply."""
        async with self._command_lock:
            return await self._run_line(line)

    async def _run_line(self, line: str) -> list[Response]:
        expanded = expand_alias(line, self.aliases)
        try:
            cmd = parse(expanded)
        except CommandError as error:
            return [self._error(str(error), self.flags)]
        if cmd is None:
            return []
        return await self._run_compiled(cmd, trim_space(expanded))

    async def read_script(self, path: str) -> list[Response]:
        """`read <path>`: how the script files named on the command line run."""
        return await self._read(path, check=False)

    async def _run_compiled(self, cmd: c.Command, original: str) -> list[Response]:
        record = _records(cmd, self.flags.record)
        # Always walked: a `.preprocess true` inside may enable what the
        # global flag disables.
        cmd = preprocess(cmd, enabled=self.flags.preprocess, files_dir=self._files_dir)
        responses = await self._execute(cmd)
        if record:
            self.history.append(original)
        return responses

    def _response(self, flags: Flags, text: str = "") -> Response:
        return Response(self.hostname, response=text, flags=flags)

    def _error(self, text: str, flags: Flags) -> Response:
        return Response(self.hostname, error=text, flags=flags)

    def _table(self, flags: Flags, header: list[str], rows: list[list[str]]) -> Response:
        return Response(self.hostname, header=header, tabular=rows, flags=flags)

    def typeable_pipe_names(self) -> list[str]:
        """Pipe names as a user may type them, for completion: every pipe by its
        full name, and the active namespace's also without it."""
        local = f"{self.namespace}//"
        full = self.plumber.names()
        return [*full, *(name.removeprefix(local) for name in full if name.startswith(local))]

    def full_name(self, pipe: str) -> str:
        """fqnsPipe: a name without `//` lives in the active namespace."""
        return pipe if "//" in pipe else f"{self.namespace}//{pipe}"

    # -- execution -------------------------------------------------------
    async def _execute(self, cmd: c.Command) -> list[Response]:
        """Run a command and the builtins wrapped around it.

        `.json true .columns name pipe` nests; the layers are peeled in a loop,
        not by recursion, so a line nesting a thousand builtins runs too. Each
        layer sees what the layers inside it produced, errors included, as in
        minicli where an inner error is just a response with Error set.
        """
        if not isinstance(cmd, _LAYER_TYPES):  # the common case, kept short
            try:
                return await self._execute_leaf(cmd)
            except (CommandError, PlumberError) as error:
                return [self._error(str(error), self.flags)]
        layers: list[_Layer] = []
        while isinstance(cmd, _LAYER_TYPES):
            layers.append(cmd)
            cmd = cmd.command
        row_filters: dict[int, tabular.RowFilter] = {}
        with ExitStack() as namespaces:
            ran = len(layers)  # how many layers the command ran inside
            try:
                for index, layer in enumerate(layers):
                    ran = index
                    match layer:
                        case c.NamespaceRun(name=name):
                            self._check_namespace_name(name)
                            namespaces.enter_context(self._switched_to(name))
                        case c.Filter(filter=text):
                            # minicli parses the filter first: a bad one runs nothing.
                            row_filters[index] = tabular.parse_filter(text)
                ran = len(layers)
                responses = await self._execute_leaf(cmd)
            except (CommandError, PlumberError) as error:
                responses = [self._error(str(error), self.flags)]
        for index in reversed(range(ran)):
            try:
                responses = self._apply_layer(layers[index], row_filters.get(index), responses)
            except CommandError as error:
                responses = [self._error(str(error), self.flags)]
        return responses

    @staticmethod
    def _apply_layer(
        layer: _Layer, row_filter: tabular.RowFilter | None, responses: list[Response]
    ) -> list[Response]:
        match layer:
            case c.FlagWrap(flag=flag, value=value):
                for response in responses:
                    response.flags = _with_flag(response.flags, flag, value)
            case c.Columns(columns=columns):
                for response in responses:
                    tabular.select_columns(response, columns)
            case c.Filter():
                assert row_filter is not None
                kept = (tabular.filter_rows(response, row_filter) for response in responses)
                return [response for response in kept if response is not None]
        return responses

    @contextmanager
    def _switched_to(self, name: str) -> Iterator[None]:
        """`namespace <name> (command)`: creates the namespace, then switches back."""
        previous = self.namespace
        self.namespaces.add(name)
        self.namespace = name
        try:
            yield
        finally:
            # minimega reverts only if the command left the namespace alone.
            if self.namespace == name:
                self.namespace = previous

    async def _execute_leaf(self, cmd: c.Command) -> list[Response]:
        if isinstance(cmd, c.Read):
            return await self._read(cmd.path, cmd.check)
        return [await self._execute_simple(cmd, self.flags)]

    async def _execute_simple(self, cmd: c.Command, flags: Flags) -> Response:
        """Commands that answer with exactly one response."""
        plumber = self.plumber
        match cmd:
            case c.PipeList():
                return self._table(flags, list(_PIPE_HEADER), self._pipe_rows())
            case c.PipeWrite(pipe=pipe, data=data):
                await plumber.write(self.full_name(pipe), data)
            case c.PipeSetMode(pipe=pipe, mode=mode):
                plumber.set_mode(self.full_name(pipe), mode)
            case c.PipeSetLog(pipe=pipe, enabled=enabled):
                plumber.set_log(self.full_name(pipe), enabled)
            case c.PipeSetVia(pipe=pipe, command=argv):
                plumber.set_via(self.full_name(pipe), argv)
            case c.ClearPipe(pipe=None):
                await plumber.delete_all_pipes()
            case c.ClearPipe(pipe=str(pipe)):
                await plumber.delete_pipe(self.full_name(pipe))
            case c.ClearPipeAttr(pipe=pipe, attr=attr):
                name = self.full_name(pipe)
                if attr == "mode":
                    plumber.set_mode(name, "all")
                elif attr == "log":
                    plumber.set_log(name, False)
                else:
                    plumber.set_via(name, ())
            case c.PlumbList():
                visible = f"{self.namespace}//"
                rows = [[name] for name in plumber.pipelines() if visible in name]
                return self._table(flags, ["pipeline"], rows)
            case c.Plumb(stages=stages):
                await plumber.plumb(stages, self.namespace)
            case c.ClearPlumb(pipeline=words):
                await plumber.clear_plumb(words)
            case c.NamespaceList():
                rows = [
                    [name, "101-4096" if name == DEFAULT_NAMESPACE else "",
                     _bool_text(name == self.namespace)]
                    for name in sorted(self.namespaces)
                ]
                return self._table(flags, ["namespace", "vlans", "active"], rows)
            case c.NamespaceSwitch(name=name):
                self._check_namespace_name(name)
                if name == self.namespace:
                    raise CommandError(f"already in namespace: {name}")
                self.namespaces.add(name)
                self.namespace = name
            case c.ClearNamespace(name=None):
                if self.namespace == DEFAULT_NAMESPACE:
                    raise CommandError(f"already in namespace: {DEFAULT_NAMESPACE}")
                self.namespace = DEFAULT_NAMESPACE
            case c.ClearNamespace(name=str(name)):
                self._destroy_namespace(name)
            case c.NsHosts():
                return self._response(flags, self.hostname)
            case c.Echo(args=args):
                return self._response(flags, " ".join(args))
            case c.Shell(argv=argv):
                return await self._shell(argv, flags)
            case c.Background(argv=argv):
                self._lookup(argv[0])
                self._nursery.start_soon(self._background, argv)
            case c.Help(words=words):
                return self._response(flags, help_text(words))
            case c.History():
                return self._response(flags, "\n".join(self.history))
            case c.ClearHistory():
                self.history.clear()
            case c.ClearAll():
                await self._clear_all()
            case c.Quit():
                self.quitting.set()
            case c.Version():
                return self._response(flags, f"minishell {__version__}")
            case c.Unsupported(word=word):
                raise CommandError(f"minishell does not implement `{word}`")
            case c.FlagQuery(flag=flag):
                return self._response(flags, _bool_text(_flag_value(flags, flag)))
            case c.FlagSet(flag=flag, value=value):
                if flag in ("json", "csv") and not value and not _flag_value(flags, flag):
                    # `.json false` outside JSON mode is a query (builtins.go:451-489)
                    return self._response(flags, "false")
                self.flags = _with_flag(flags, flag, value)
                return self._response(self.flags)
            case c.AliasList() | c.AliasSet(text=""):  # `.alias ""` lists, as in minicli
                rows = [[key, value] for key, value in self.aliases.items()]
                return self._table(flags, ["alias", "expansion"], rows)
            case c.AliasSet(text=text):
                key, expansion = parse_alias(text)
                self.aliases[key] = expansion
            case c.Unalias(name=name):
                self.aliases.pop(name, None)
            case c.EnvList() | c.EnvGet(name=""):
                rows = [[key, value] for key, value in os.environ.items()]
                return self._table(flags, ["key", "value"], rows)
            case c.EnvGet(name=name):
                return self._response(flags, os.environ.get(name, ""))
            case c.EnvSet(name=name, value=value):
                try:
                    if value:
                        os.environ[name] = value
                    else:
                        os.environ.pop(name, None)
                except (OSError, ValueError):  # `=` or NUL in the name, NUL in the value
                    raise CommandError("setenv: invalid argument") from None
            case _:
                raise AssertionError(f"unhandled command {cmd!r}")
        return self._response(flags)

    def _pipe_rows(self) -> list[list[str]]:
        # A substring test, not a prefix test: minimega 2.9 does it this way
        # and the conformance transcript ns_substring pins it (spec §11).
        visible = f"{self.namespace}//"
        return [
            [p.name, p.mode, str(p.readers), str(p.writers), str(p.count), " ".join(p.via),
             p.previous]
            for p in self.plumber.pipes()
            if visible in p.name
        ]

    @staticmethod
    def _check_namespace_name(name: str) -> None:
        if not _NAMESPACE_NAME.match(name):
            raise CommandError(_INVALID_NAMESPACE)

    def _destroy_namespace(self, name: str) -> None:
        """`clear namespace <name>`: pipes and pipelines stay (spec §11)."""
        doomed = set(self.namespaces) if name == "all" else {name}
        self.namespaces -= doomed
        self.namespaces.add(DEFAULT_NAMESPACE)
        if self.namespace in doomed:
            self.namespace = DEFAULT_NAMESPACE

    async def _clear_all(self) -> None:
        """`clear all`: every clear handler runs; the first error is reported.

        Pipelines are torn down before pipes are deleted, and both happen
        synchronously, so unlike 2.9 this does not fail right after live
        pipelines (spec §12.6).
        """
        self._destroy_namespace("all")
        errors: list[PlumberError] = []
        try:
            await self.plumber.clear_plumb(())
        except PlumberError as error:
            errors.append(error)
        try:
            await self.plumber.delete_all_pipes()
        except PlumberError as error:
            errors.append(error)
        self.history.clear()
        if errors:
            raise errors[0]

    # -- programs ----------------------------------------------------------
    def _lookup(self, program: str) -> str:
        """exec.LookPath, with minimega's plumbing helpers after the user's PATH
        (the plumber's own lookup, so `shell` finds what `plumb` finds)."""
        if "/" not in program:
            found = self.plumber.programs.lookup(program)
            if found is None:
                raise CommandError(f"exec: {quote(program)}: executable file not found in $PATH")
            return found
        try:
            mode = os.stat(program).st_mode
        except (OSError, ValueError) as error:
            reason = _reason(error)
            raise CommandError(f"exec: {quote(program)}: stat {program}: {reason}") from None
        if stat.S_ISDIR(mode) or not mode & 0o111:
            raise CommandError(f"exec: {quote(program)}: permission denied")
        return program

    async def _run_program(self, argv: tuple[str, ...]) -> subprocess.CompletedProcess[bytes]:
        """Run a `shell` or `background` program to its end, output captured.

        It leads its own process group (Ctrl-C at the terminal is not for it),
        and cancelling stops the whole group, so nothing it started outlives it.
        """
        program = self._lookup(argv[0])
        try:
            return await trio.run_process(
                [program, *argv[1:]], stdin=subprocess.DEVNULL, capture_stdout=True,
                capture_stderr=True, check=False, start_new_session=True,
                env=self.plumber.programs.child_env(), deliver_cancel=terminate_group,
            )
        except (OSError, ValueError) as error:  # ValueError: a NUL in an argument
            raise CommandError(f"fork/exec {program}: {_reason(error)}") from None

    async def _shell(self, argv: tuple[str, ...], flags: Flags) -> Response:
        """`shell`: stdout is the response, stderr the error (spec §12.2)."""
        done = await self._run_program(argv)
        if done.returncode != 0:
            raise CommandError(exit_text(done.returncode))
        stdout = done.stdout.decode(errors="replace")
        stderr = done.stderr.decode(errors="replace")
        return Response(self.hostname, response=stdout, error=stderr, flags=flags)

    async def _background(self, argv: tuple[str, ...]) -> None:
        """`background`: output is logged at info, as minimega does."""
        try:
            done = await self._run_program(argv)
        except CommandError as error:
            log.error("background %s: %s", " ".join(argv), error)
            return
        log.info("background %s exited %d: %s%s", " ".join(argv), done.returncode,
                 done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))

    # -- read ----------------------------------------------------------------
    async def _read(self, path: str, check: bool) -> list[Response]:
        """`read <file> [check]` (spec §12.5): stops at the first invalid line."""
        responses: list[Response] = []
        base = os.path.basename(path)
        namespace = self.namespace
        history_prefix = f"namespace {quote(namespace)} "
        try:
            lines = _script_lines(path)
            for number, line in enumerate(lines, start=1):
                if number % _READ_YIELD_EVERY == 0:
                    # Commands rarely yield; a long script must still let
                    # pipelines run and Ctrl-C cancel it.
                    await trio.lowlevel.checkpoint()
                try:
                    cmd = parse(line)
                except CommandError as error:
                    raise CommandError(f"{base}:{number} {error}") from None
                if cmd is None:
                    continue
                if _contains_read(cmd):
                    raise CommandError(f"{base}:{number} cannot run nested `read` commands")
                if check:
                    continue
                original = history_prefix + trim_space(line)
                if isinstance(cmd, c.NamespaceSwitch):
                    responses += await self._run_compiled(cmd, original)
                    namespace = self.namespace
                    history_prefix = f"namespace {quote(namespace)} "
                elif namespace == self.namespace:  # what `namespace X (cmd)` would do anyway
                    responses += await self._run_compiled(cmd, original)
                else:
                    wrapped = c.NamespaceRun(namespace, cmd)
                    responses += await self._run_compiled(wrapped, original)
        except CommandError as error:
            responses.append(self._error(str(error), self.flags))
        return responses


def _contains_read(cmd: c.Command) -> bool:
    while isinstance(cmd, _LAYER_TYPES):
        cmd = cmd.command
    return isinstance(cmd, c.Read)


def _script_lines(path: str) -> Iterator[str]:
    """The lines of a `read` script, with Go's error texts for what can go wrong."""
    try:
        with open(path, "rb") as script:
            data = script.read()
    except FileNotFoundError:
        raise CommandError(f"open {path}: no such file or directory") from None
    except IsADirectoryError:
        raise CommandError(f"read {path}: is a directory") from None
    except (OSError, ValueError) as error:  # ValueError: a NUL in the path
        raise CommandError(f"open {path}: {_reason(error)}") from None
    for raw in data.split(b"\n"):
        if len(raw) >= _READ_LINE_MAX:
            raise CommandError("bufio.Scanner: token too long")
        yield raw.removesuffix(b"\r").decode(errors="replace")


def _reason(error: OSError | ValueError) -> str:
    """Go's lower-case errno text; a NUL in a path or argument is Go's EINVAL."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return "invalid argument"
