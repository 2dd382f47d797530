"""minicli's dot-builtins (pkg/minicli/builtins.go): output flags, `.columns`,
`.filter`, `.alias`, `.unalias`, `.env`."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, cast

from minishell import tabular
from minishell.commands.registry import (
    Command,
    Context,
    Handler,
    PlainWrapper,
    WrapperFactory,
    recorded,
)
from minishell.errors import CommandError
from minishell.language import parse_alias
from minishell.reply import MODE_CSV, MODE_DEFAULT, MODE_JSON, Flags, Reply, Response

# -- output flags ---------------------------------------------------------------------------------


def with_flag(flags: Flags, flag: str, value: bool) -> Flags:
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


def flag_value(flags: Flags, flag: str) -> bool:
    if flag == "json":
        return flags.mode == MODE_JSON
    if flag == "csv":
        return flags.mode == MODE_CSV
    value: bool = getattr(flags, flag)
    return value


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _flag_command(flag: str) -> Any:
    async def query_or_set(ctx: Context, command: Command) -> Response | None:
        session = ctx.session
        if not command.bools:
            return ctx.text(_bool_text(flag_value(session.flags, flag)))
        value = "true" in command.bools
        if flag in ("json", "csv") and not value and not flag_value(session.flags, flag):
            # `.json false` outside JSON mode is a query (builtins.go:451-489)
            return ctx.text("false")
        session.flags = with_flag(session.flags, flag, value)
        return None  # rendered with the new flags, as minicli does

    return query_or_set


def _flag_wrapper(flag: str) -> WrapperFactory:
    class OneCommand(PlainWrapper):
        """`.<flag> <true,false> (command)`: the flag applies to that command's replies."""

        def transform(self, reply: Reply) -> Reply:
            reply.flags = with_flag(reply.flags, flag, "true" in self.command.bools)
            return reply

        def preprocess(self, enabled: bool) -> bool:
            return "true" in self.command.bools if flag == "preprocess" else enabled

    return OneCommand


def _record_wrapped(command: Command, recording: bool) -> bool:
    """`.record <bool> (command)` is recorded as it says; bare `.record` never."""
    return command.subcommand is not None and "true" in command.bools


_FLAG_HELP = {
    "annotate": (
        "enable or disable hostname annotation",
        "Enable or disable hostname annotation for responses.",
    ),
    "compress": (
        "enable or disable output compression",
        (
            "Enable or disable output compression of like output from multiple responses.\n"
            "For example, if you executed a command using mesh, such as:\n"
            "\n"
            "\tmesh send node[0-9] version\n"
            "\n"
            "You would expect to get the same minimega version for all 10 nodes. Rather than\n"
            "print out the same version 10 times, minicli with compression enabled would "
            "print:\n"
            "\n"
            "\tnode[0-9]: minimega <version>\n"
            "\n"
            "Assuming that all the minimega instances are running the same version. If one "
            "node was running\n"
            "a different version or has an error, compression is still useful:\n"
            "\n"
            "\tnode[0-4,6-9]: minimega <version>\n"
            "\tnode5: minimega <version>\n"
            "\n"
            "Or,\n"
            "\n"
            "\tnode[0-3,9]: minimega <version>\n"
            "\tnode[4-8]: Error: <error>\n"
            "\n"
            "Compression is not applied when the output mode is JSON."
        ),
    ),
    "csv": (
        "enable or disable CSV mode",
        "Enable or disable CSV mode. Enabling CSV mode disables JSON mode, if enabled.",
    ),
    "headers": (
        "enable or disable headers for tabular data",
        "Enable or disable headers for tabular data.",
    ),
    "json": (
        "enable or disable JSON mode",
        "Enable or disable JSON mode. Enabling JSON mode disables CSV mode, if enabled.",
    ),
    "preprocess": (
        "enable or disable preprocessor",
        "Enable or disable the command preprocessor.",
    ),
    "record": (
        "enable or disable history recording",
        "Enable or disable the recording of a given command in the command history.",
    ),
    "sort": (
        "enable or disable sorting of tabular data",
        (
            "Enable or disable sorting of tabular data based on the value in the first\n"
            "column. Sorting is based on string comparison."
        ),
    ),
}

_FLAG_HANDLERS = tuple(
    Handler(
        patterns=(f".{flag} [true,false]", f".{flag} <true,false> (command)"),
        short=short,
        long=long,
        call=_flag_command(flag),
        wrapper=_flag_wrapper(flag),
        record=_record_wrapped if flag == "record" else recorded,
    )
    for flag, (short, long) in _FLAG_HELP.items()
)

# -- .columns and .filter --------------------------------------------------------------------------


class Columns(PlainWrapper):
    def transform(self, reply: Reply) -> Reply:
        for response in reply.responses:
            tabular.select_columns(response, self.command.string("columns"))
        return reply


class Filter(PlainWrapper):
    def enter(self) -> None:
        # minicli parses the filter first: a bad one runs nothing.
        self._filter = tabular.parse_filter(self.command.string("filter"))

    def transform(self, reply: Reply) -> Reply:
        kept = (tabular.filter_rows(response, self._filter) for response in reply.responses)
        reply.responses = [response for response in kept if response is not None]
        return reply


# -- .alias, .unalias, .env ---------------------------------------------------------------------


async def alias(ctx: Context, command: Command) -> Response | None:
    aliases = ctx.session.aliases
    text = " ".join(command.words("alias"))
    if not text:  # `.alias ""` lists, as in minicli
        return ctx.table(["alias", "expansion"], [[key, value] for key, value in aliases.items()])
    key, expansion = parse_alias(text)
    aliases[key] = expansion
    return None


async def unalias(ctx: Context, command: Command) -> Response | None:
    ctx.session.aliases.pop(command.string("alias"), None)
    return None


async def env(ctx: Context, command: Command) -> Response | None:
    name = command.optional("name") or ""
    value = command.optional("value")
    if value is None:
        if not name:  # minicli lists for an empty name too
            return ctx.table(["key", "value"], [[key, each] for key, each in os.environ.items()])
        return ctx.text(os.environ.get(name, ""))
    try:
        if value:
            os.environ[name] = value
        else:
            os.environ.pop(name, None)
    except (OSError, ValueError):  # `=` or NUL in the name, NUL in the value
        raise CommandError("setenv: invalid argument") from None
    return None


HANDLERS = (
    *_FLAG_HANDLERS,
    Handler(
        patterns=(".columns <columns as csv> (command)",),
        short="show certain columns from tabular data",
        long=(
            "Filter tabular data using particular column names. For example, to display\n"
            "only the vm name and state:\n"
            "\n"
            "\t.columns name,state vm info\n"
            "\n"
            "Column names are comma-seperated. .columns can be used in conjunction with\n"
            ".filter to slice a subset of the rows and columns from a command, however,\n"
            "these commands are not always interchangeable. For example, the following is\n"
            "acceptable:\n"
            "\n"
            "\t.columns name,state .filter vcpus=4 vm info\n"
            "\n"
            "While the following is not:\n"
            "\n"
            "\t.filter vcpus=4 .columns name,state vm info\n"
            "\n"
            "This is because .columns strips all columns except for name and state from the\n"
            "tabular data.\n"
            "\n"
            "Note: the annotate flag controls the presence of the host column."
        ),
        wrapper=Columns,
    ),
    Handler(
        patterns=(".filter <filter> (command)",),
        short="filter tabular data by column value",
        long=(
            "Filters tabular data based on the value in a particular column. For example, to\n"
            "search for vms in a particular state:\n"
            "\n"
            "\t.filter state=running vm info\n"
            "\n"
            "Filters can also be inverted:\n"
            "\n"
            "\t.filter state!=running vm info\n"
            "\n"
            "Filters are case insensitive and may be stacked:\n"
            "\n"
            "\t.filter state=RUNNING .filter vcpus=4 vm info\n"
            "\n"
            'If the column value is a list or an object (i.e. "[...]", "{...}"), then\n'
            ".filter implicitly uses substring matching.\n"
            "\n"
            "Substring matching can be specified explicity:\n"
            "\n"
            "\t.filter state~run vm info\n"
            "\t.filter state!~run vm info"
        ),
        wrapper=Filter,
    ),
    Handler(
        patterns=(".alias", ".alias <alias>..."),
        short="create an alias",
        long=(
            "Create a new alias similar to bash aliases. Aliases can be used as a shortcut\n"
            "to avoid typing out a long command. Only one alias is applied per command and\n"
            "only to the beginning of a command. For example:\n"
            "\n"
            " .alias vmr=.filter state=running vm info\n"
            "\n"
            'The alias is interpreted as the text up to the first "=". Runing .alias without\n'
            "any argument will list the existing aliases.\n"
            "\n"
            'This alias allows the user to type "vmr" rather than the using a filter to list\n'
            "the running VMs.\n"
            "\n"
            " .unalias removes a previously set alias.\n"
            "\n"
            "Note: we *strongly* recommend that you avoid aliases, unless you are using the\n"
            "shell interactively. Aliases save typing which should not be necessary if you\n"
            "are writing a script."
        ),
        call=alias,
    ),
    Handler(
        patterns=(".unalias <alias>",),
        short="remove an alias",
        long="Removes an alias by name. See .alias for a listing of aliases.",
        call=unalias,
        suggest={"alias": lambda session: session.aliases},
    ),
    Handler(
        patterns=(".env [name]", ".env <name> <value>"),
        short="print or set env variables",
        long=(
            "Print or update env variables. To unset an env variables, use:\n"
            "\n"
            '\t.env <name> ""'
        ),
        call=env,
    ),
)
