"""argv -> front end -> exit status. Parses minimega's flags; no logic of its own.

Heavy modules (trio, lark, prompt_toolkit) are imported only by the front end
that needs them, so the socket clients to come stay fast to start.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from minishell import __version__

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "error": logging.ERROR, "fatal": logging.CRITICAL}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minishell",
        description="minimega's plumber, driven by minimega's command language. "
        "With no FILE, a terminal gets the minimega$ prompt and any other stdin is "
        "run as a script.",
        allow_abbrev=False,
    )

    def flag(name: str, **options: object) -> None:
        # minimega spells its flags with one dash; both spellings work here.
        parser.add_argument(f"-{name}", f"--{name}", **options)  # type: ignore[arg-type]

    flag("base", default="/tmp/minishell", metavar="DIR",
         help="base folder; file: arguments resolve to DIR/files (default %(default)s)")
    flag("hostname", metavar="NAME",
         help="host name shown in tables and errors (default: this machine's)")
    flag("level", default="warn", choices=sorted(LEVELS), help="log level (default %(default)s)")
    flag("history-file", metavar="FILE", dest="history_file",
         help="prompt history (default $MINISHELL_HISTFILE or "
         "$XDG_STATE_HOME/minishell/history)")
    flag("replay", action="store_true",
         help="replay transcripts like minitest: FILEs are scripts or folders of scripts "
         "with NAME.want beside them")
    flag("version", action="store_true", help="print the version and exit")
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="scripts to run at start (with -replay: transcripts)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    if options.version:
        print(f"minishell {__version__}")
        return 0
    logging.basicConfig(
        level=LEVELS[options.level], stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%Y/%m/%d %H:%M:%S",
    )
    from minishell import app

    try:
        return app.run(options)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `minishell script | head`: the reader left; say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
