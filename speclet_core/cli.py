"""Command line: ``python -m speclet_core <command>`` (the words are a contract, see the README).

Every command turns a ``SpecletError`` into ``error: …`` lines on stderr and exit status 2,
never a traceback. Each ``_cmd_*`` function imports what it needs, so ``--help`` and
light commands start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from speclet_core.errors import DataValidationError, SpecletError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def positive_int(text: str) -> int:
    """argparse type: a whole number ≥ 1 (shared by every command)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# --------------------------------------------------------------------------- commands


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from speclet_core.demo import write_synthetic
    from speclet_core.synthetic import simulate_screen

    out = Path(args.out)
    if out.exists() and out.is_dir():
        raise SpecletError(f"--out {out}: is a folder; give a file name such as demo.csv or demo.parquet")
    if not out.name.lower().endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet")):
        raise SpecletError(f"--out {out}: unknown format; end the name in .csv, .tsv, .csv.gz, .tsv.gz or .parquet")
    try:
        screen = simulate_screen(args.genes, args.cell_lines, args.lineages, seed=args.seed)
    except ValueError as exc:
        raise SpecletError(str(exc)) from None
    table, truth = write_synthetic(screen, out)
    print(f"wrote {len(screen.data):,} readings to {table}")
    print(f"wrote the true parameter values to {truth}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from speclet_core.data import load_screen

    screen = load_screen(args.file)
    s = screen.summarise()
    print(f"{args.file}: valid screen table")
    print(f"  rows (readings) {s['rows']:>10,}")
    print(f"  genes           {s['genes']:>10,}")
    print(f"  sgRNAs          {s['sgrnas']:>10,}")
    print(f"  cell lines      {s['cell_lines']:>10,}")
    print(f"  lineages        {s['lineages']:>10,}")
    print(f"  dropped (missing lfc) {s['dropped_missing_lfc']:>4,}")
    print(f"  covariates      {', '.join(s['covariates']) or '(none)'}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m speclet_core", description="speclet: Bayesian CRISPR screen dashboard")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("demo-data", help="write a synthetic screen and its truth table")
    p.add_argument("--out", required=True, help="output file (.csv, .tsv, .csv.gz, .tsv.gz or .parquet)")
    p.add_argument("--genes", type=positive_int, default=30)
    p.add_argument("--cell-lines", type=positive_int, default=120)
    p.add_argument("--lineages", type=positive_int, default=6)
    p.add_argument("--seed", type=int, default=0)
    COMMANDS["demo-data"] = _cmd_demo_data

    p = sub.add_parser("validate", help="summarise a screen table, or list every problem in it")
    p.add_argument("file")
    COMMANDS["validate"] = _cmd_validate

    for register in _EXTRA_COMMANDS:
        register(sub, COMMANDS)
    return parser


# Other modules add their commands here (name → parser setup); see e.g. speclet_core.store_cli.
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction, dict], None]] = []


def _load_extra_commands() -> None:
    import importlib

    for module in ("speclet_core.store_cli", "speclet_core.jobs_cli", "speclet_core.ranking_cli",
                   "speclet_core.depmap_cli", "speclet_core.serve"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            raise
        _EXTRA_COMMANDS.append(mod.register_cli)


def report_error(exc: SpecletError) -> None:
    """``error: …`` lines on stderr: one per problem for a validation error."""
    if isinstance(exc, DataValidationError):
        n = len(exc.problems)
        print(f"error: {exc.source}: {n} problem{'s' if n != 1 else ''} found", file=sys.stderr)
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
    else:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"error: {line}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    _EXTRA_COMMANDS.clear()
    _load_extra_commands()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
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
