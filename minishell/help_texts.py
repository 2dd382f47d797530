"""The help texts of minimega 2.9's plumbing commands, word for word.

Taken from the real binary's `help` output (shared/spec/help_texts.md and
help_all.txt). Each entry is one minicli handler: its patterns in
registration order (the order `help X` prints them), its short help (the
bare `help` listing) and its long help. minimega registers `pipe` and
`plumb` as two handlers each, and that split is what makes `help pipe`
show all five patterns under one text, so it is kept.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HelpEntry:
    patterns: tuple[str, ...]
    short: str
    long: str = ""


ENTRIES: tuple[HelpEntry, ...] = (
    HelpEntry(
        patterns=('pipe', 'pipe <pipe> <mode,> <all,round-robin,random>', 'pipe <pipe> <log,> <true,false>'),
        short='write to and modify named pipes',
        long=(
            'Interact with named pipes. To write to a pipe, simply invoke the pipe API with\n'
            'the pipe name and value:\n'
            '\n'
            '\tpipe foo Hello pipes!\n'
            '\n'
            'Pipes have several message delivery modes. Based on the mode, messages written\n'
            'to a pipe will be delivered to one or more readers. Mode "all" copies messages\n'
            'to all readers, "round-robin" chooses a single reader, in-order, and "random"\n'
            'selects a random reader.\n'
            '\n'
            'Pipes can also have "vias", programs through which all written data is passed\n'
            'before being sent to readers. Unlike pipelines, vias are run for every reader.\n'
            'This allows for mutating data on a per-reader basis with a single write. For\n'
            'example, to send a unique floating-point value on a normal distribution with a\n'
            'written mean to all readers:\n'
            '\n'
            '\tpipe foo via normal -stddev 5.0\n'
            '\tpipe foo 1.5\n'
            '\n'
            'Pipes in other namespaces can be referenced with the syntax <namespace>//<pipe>.'
        ),
    ),
    HelpEntry(
        patterns=('pipe <pipe> <data>', 'pipe <pipe> <via,> <command>...'),
        short='',
    ),
    HelpEntry(
        patterns=('plumb',),
        short='',
    ),
    HelpEntry(
        patterns=('plumb <src> <dst>...',),
        short='plumb I/O between minimega, VMs, and external programs',
        long=(
            'Create pipelines composed of named pipes and external programs. Pipelines pass\n'
            'data on standard I/O, with messages split on newlines. Pipelines are\n'
            'constructed similar to that of UNIX pipelines. For example, to pipeline named\n'
            'pipe "foo" through "sed" and into another pipe "bar":\n'
            '\n'
            '\tplumb foo "sed -u s/foo/moo/" bar\n'
            '\n'
            'When specifying pipelines, strings that are not found in $PATH are considered\n'
            'named pipes.\n'
            '\n'
            'Pipelines can be composed into larger, nonlinear pipelines. For example, to\n'
            'create a simple tree rooted at A with leaves B and C, simply specify multiple\n'
            'pipelines:\n'
            '\n'
            '\tplumb a b\n'
            '\tplumb a c'
        ),
    ),
    HelpEntry(
        patterns=('clear pipe [pipe]', 'clear pipe <pipe> <mode,>', 'clear pipe <pipe> <log,>', 'clear pipe <pipe> <via,>'),
        short='reset pipe state',
    ),
    HelpEntry(
        patterns=('clear plumb [pipeline]...',),
        short='reset plumber state',
    ),
    HelpEntry(
        patterns=('echo [args]...',),
        short='display input text after comment removal',
    ),
    HelpEntry(
        patterns=('shell <command>...',),
        short='execute a command',
        long=(
            'Execute a command under the credentials of the running user.\n'
            '\n'
            'Commands run until they complete or error, so take care not to execute a command\n'
            'that does not return.'
        ),
    ),
    HelpEntry(
        patterns=('help [command]...',),
        short='show command help',
        long=(
            'Show help on a command. If called with no arguments, show a summary of all\n'
            'commands.'
        ),
    ),
    HelpEntry(
        patterns=('history',),
        short='show command history',
        long=(
            'history displays a list of all the commands that have been invoked since\n'
            'minimega started on this host, or since the last time the history was cleared.\n'
            'History includes only valid commands and comments. Invalid lines and blank\n'
            'lines are not recorded. There are some commands that interact differently with\n'
            'history, namely read. Instead of recording the "read" command in the history,\n'
            'minimega records all the valid commands executed from the read file in the\n'
            'history. This allows the full execution history to be listed using history.'
        ),
    ),
    HelpEntry(
        patterns=('clear history',),
        short='reset history',
        long=(
            'Reset the command history. See "help history" for more information.'
        ),
    ),
    HelpEntry(
        patterns=('read <file> [check,]',),
        short='read and execute a command file',
        long=(
            'Read a command file and execute it. This has the same behavior as if you typed\n'
            'the file in manually. read stops if it reads an invalid command. read does not\n'
            'stop if a command returns an error. Nested reads are not permitted.\n'
            '\n'
            'To prevent issues with another script changing the namespace and commands being\n'
            'run in a different namespace than originally intended, read records the active\n'
            'namespace when it starts and prepends that namespace to all commands that it\n'
            'reads from the file. If it reads a command that would change the active\n'
            'namespace, read updates its state so that the new namespace is prepended\n'
            'instead.\n'
            '\n'
            "If the optional argument check is specified then read doesn't execute any of\n"
            'the commands in the file. Instead, it checks that all the commands are\n'
            'syntactically valid. This can identify mistyped commands in scripts before you\n'
            'read them. It cannot check for semantic errors (e.g. killing a non-existent\n'
            'VM). The check stops at the first invalid command.'
        ),
    ),
    HelpEntry(
        patterns=('namespace [name]', 'namespace <name> (command)'),
        short='display or change namespace',
        long=(
            'With no arguments, "namespace" prints summary info about namespaces:\n'
            '\n'
            '- name   : name of the namespace\n'
            '- vlans  : range of VLANs, empty if not set\n'
            '- active : active or not\n'
            '\n'
            'When a namespace is specified, it changes the active namespace or runs a single\n'
            'command in the different namespace.'
        ),
    ),
    HelpEntry(
        patterns=('ns <hosts,>', 'ns <run,> (command)'),
        short='tinker with active namespace',
        long=(
            'Display or modify the active namespace. minishell has one host, so of\n'
            "minimega's subcommands only these two apply:\n"
            '\n'
            '- hosts     : list hosts\n'
            '- run       : run a command on all nodes in the namespace'
        ),
    ),
    HelpEntry(
        patterns=('clear namespace [name]',),
        short='unset or delete namespace',
        long=(
            'Without an argument, "clear namespace" will reset the namespace to the default\n'
            'namespace, minimega.\n'
            '\n'
            'With an argument, "clear namespace <name>" will destroy the specified\n'
            'namespace, cleaning up all state associated with it. You may use "all" to\n'
            'destroy all namespaces. This command is broadcast to the cluster to clean up\n'
            'any remote state as well.'
        ),
    ),
    HelpEntry(
        patterns=('clear all',),
        short='reset all resettable',
        long=(
            'Runs all the "clear ..." handlers on the local instance -- as close to nuke as\n'
            'you can get without restarting minimega. Restarting minimega is preferable.'
        ),
    ),
    HelpEntry(
        patterns=('background <command>...',),
        short='execute a command in the background',
        long=(
            'Execute a command under the credentials of the running user.\n'
            '\n'
            'Commands run in the background and control returns immediately. Any output is\n'
            'logged at the "info" level.'
        ),
    ),
    HelpEntry(
        patterns=('.columns <columns as csv> (command)',),
        short='show certain columns from tabular data',
        long=(
            'Filter tabular data using particular column names. For example, to display\n'
            'only the vm name and state:\n'
            '\n'
            '\t.columns name,state vm info\n'
            '\n'
            'Column names are comma-seperated. .columns can be used in conjunction with\n'
            '.filter to slice a subset of the rows and columns from a command, however,\n'
            'these commands are not always interchangeable. For example, the following is\n'
            'acceptable:\n'
            '\n'
            '\t.columns name,state .filter vcpus=4 vm info\n'
            '\n'
            'While the following is not:\n'
            '\n'
            '\t.filter vcpus=4 .columns name,state vm info\n'
            '\n'
            'This is because .columns strips all columns except for name and state from the\n'
            'tabular data.\n'
            '\n'
            'Note: the annotate flag controls the presence of the host column.'
        ),
    ),
    HelpEntry(
        patterns=('.filter <filter> (command)',),
        short='filter tabular data by column value',
        long=(
            'Filters tabular data based on the value in a particular column. For example, to\n'
            'search for vms in a particular state:\n'
            '\n'
            '\t.filter state=running vm info\n'
            '\n'
            'Filters can also be inverted:\n'
            '\n'
            '\t.filter state!=running vm info\n'
            '\n'
            'Filters are case insensitive and may be stacked:\n'
            '\n'
            '\t.filter state=RUNNING .filter vcpus=4 vm info\n'
            '\n'
            'If the column value is a list or an object (i.e. "[...]", "{...}"), then\n'
            '.filter implicitly uses substring matching.\n'
            '\n'
            'Substring matching can be specified explicity:\n'
            '\n'
            '\t.filter state~run vm info\n'
            '\t.filter state!~run vm info'
        ),
    ),
    HelpEntry(
        patterns=('.json [true,false]', '.json <true,false> (command)'),
        short='enable or disable JSON mode',
        long=(
            'Enable or disable JSON mode. Enabling JSON mode disables CSV mode, if enabled.'
        ),
    ),
    HelpEntry(
        patterns=('.csv [true,false]', '.csv <true,false> (command)'),
        short='enable or disable CSV mode',
        long=(
            'Enable or disable CSV mode. Enabling CSV mode disables JSON mode, if enabled.'
        ),
    ),
    HelpEntry(
        patterns=('.headers [true,false]', '.headers <true,false> (command)'),
        short='enable or disable headers for tabular data',
        long=(
            'Enable or disable headers for tabular data.'
        ),
    ),
    HelpEntry(
        patterns=('.annotate [true,false]', '.annotate <true,false> (command)'),
        short='enable or disable hostname annotation',
        long=(
            'Enable or disable hostname annotation for responses.'
        ),
    ),
    HelpEntry(
        patterns=('.sort [true,false]', '.sort <true,false> (command)'),
        short='enable or disable sorting of tabular data',
        long=(
            'Enable or disable sorting of tabular data based on the value in the first\n'
            'column. Sorting is based on string comparison.'
        ),
    ),
    HelpEntry(
        patterns=('.compress [true,false]', '.compress <true,false> (command)'),
        short='enable or disable output compression',
        long=(
            'Enable or disable output compression of like output from multiple responses.\n'
            'For example, if you executed a command using mesh, such as:\n'
            '\n'
            '\tmesh send node[0-9] version\n'
            '\n'
            'You would expect to get the same minimega version for all 10 nodes. Rather than\n'
            'print out the same version 10 times, minicli with compression enabled would print:\n'
            '\n'
            '\tnode[0-9]: minimega <version>\n'
            '\n'
            'Assuming that all the minimega instances are running the same version. If one node was running\n'
            'a different version or has an error, compression is still useful:\n'
            '\n'
            '\tnode[0-4,6-9]: minimega <version>\n'
            '\tnode5: minimega <version>\n'
            '\n'
            'Or,\n'
            '\n'
            '\tnode[0-3,9]: minimega <version>\n'
            '\tnode[4-8]: Error: <error>\n'
            '\n'
            'Compression is not applied when the output mode is JSON.'
        ),
    ),
    HelpEntry(
        patterns=('.record [true,false]', '.record <true,false> (command)'),
        short='enable or disable history recording',
        long=(
            'Enable or disable the recording of a given command in the command history.'
        ),
    ),
    HelpEntry(
        patterns=('.preprocess [true,false]', '.preprocess <true,false> (command)'),
        short='enable or disable preprocessor',
        long=(
            'Enable or disable the command preprocessor.'
        ),
    ),
    HelpEntry(
        patterns=('.alias', '.alias <alias>...'),
        short='create an alias',
        long=(
            'Create a new alias similar to bash aliases. Aliases can be used as a shortcut\n'
            'to avoid typing out a long command. Only one alias is applied per command and\n'
            'only to the beginning of a command. For example:\n'
            '\n'
            ' .alias vmr=.filter state=running vm info\n'
            '\n'
            'The alias is interpreted as the text up to the first "=". Runing .alias without\n'
            'any argument will list the existing aliases.\n'
            '\n'
            'This alias allows the user to type "vmr" rather than the using a filter to list\n'
            'the running VMs.\n'
            '\n'
            ' .unalias removes a previously set alias.\n'
            '\n'
            'Note: we *strongly* recommend that you avoid aliases, unless you are using the\n'
            'shell interactively. Aliases save typing which should not be necessary if you\n'
            'are writing a script.'
        ),
    ),
    HelpEntry(
        patterns=('.unalias <alias>',),
        short='remove an alias',
        long=(
            'Removes an alias by name. See .alias for a listing of aliases.'
        ),
    ),
    HelpEntry(
        patterns=('.env [name]', '.env <name> <value>'),
        short='print or set env variables',
        long=(
            'Print or update env variables. To unset an env variables, use:\n'
            '\n'
            '\t.env <name> ""'
        ),
    ),
    HelpEntry(
        patterns=("quit",),
        short="quit minishell",
        long=(
            "Quit minishell: every pipeline is torn down, every program it started is\n"
            "stopped, and the prompt ends. minishell also accepts the word exit."
        ),
    ),
    HelpEntry(
        patterns=("version",),
        short="display the minishell version",
    ),
)
