"""Command line: ``python -m speclet_core <command>`` (the words are a contract, see the README).

Every command turns a ``SpecletError`` into ``error: …`` lines on stderr and exit status 2,
never a traceback. Each ``_cmd_*`` function imports what it needs, so ``--help`` and
light commands start fast. The command groups are listed here, explicitly.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from speclet_core.cli import atlas, data, depmap, jobs, rank, serve, store
from speclet_core.cli.args import EXIT_BAD_INPUT, Parser, report_error
from speclet_core.errors import SpecletError

Command = Callable[[argparse.Namespace], int]
# Each group adds its sub-commands to the parser and its handlers to the command table.
COMMAND_GROUPS = (data, depmap, jobs, atlas, store, rank, serve)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    """The ``python -m speclet_core`` parser and the handler of each command word."""
    parser = Parser(prog="python -m speclet_core", description="speclet: Bayesian CRISPR screen dashboard")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    commands: dict[str, Command] = {}
    for group in COMMAND_GROUPS:
        group.register_cli(sub, commands)
    return parser, commands


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    try:
        return commands[args.command](args)
    except SpecletError as exc:
        report_error(exc)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # last resort: no traceback for a person, full one on request
        if os.environ.get("SPECLET_DEBUG"):
            traceback.print_exc()
        print(
            f"error: unexpected failure ({type(exc).__name__}: {exc}); "
            "please report it; set SPECLET_DEBUG=1 to see the traceback",
            file=sys.stderr,
        )
        return 1
