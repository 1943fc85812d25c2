"""``demo-data`` and ``validate``: synthetic screens and checking a screen table."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from speclet_core.cli.args import positive_int
from speclet_core.errors import SpecletError


def register_cli(subparsers: argparse._SubParsersAction, commands: dict[str, Callable[[argparse.Namespace], int]]) -> None:
    """Add ``demo-data`` and ``validate`` to the ``python -m speclet_core`` parser."""
    p = subparsers.add_parser("demo-data", help="write a synthetic screen and its truth table")
    p.add_argument("--out", required=True, help="output file (.csv, .tsv, .csv.gz, .tsv.gz or .parquet)")
    p.add_argument("--genes", type=positive_int, default=30)
    p.add_argument("--cell-lines", type=positive_int, default=120)
    p.add_argument("--lineages", type=positive_int, default=6)
    p.add_argument("--seed", type=int, default=0)
    commands["demo-data"] = _cmd_demo_data

    p = subparsers.add_parser("validate", help="summarise a screen table, or list every problem in it")
    p.add_argument("file")
    commands["validate"] = _cmd_validate


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from speclet_core.data.demo import write_synthetic
    from speclet_core.data.synthetic import simulate_screen

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
    from speclet_core.data.bounded import load_screen_bounded
    from speclet_core.settings import Settings

    # the same bounded child as the server's: a file that expands to gigabytes is refused, not parsed
    screen = load_screen_bounded(args.file, Settings.from_env(), name=args.file)
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
