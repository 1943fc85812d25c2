"""``python -m speclet_core import-depmap``: DepMap release files → screen table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from speclet_core.errors import DataReadError, SelectionError

HELP = "DepMap release files → screen table (streams the log-fold-change matrix)"


def register_cli(subparsers: argparse._SubParsersAction, commands: dict) -> None:
    from speclet_core.depmap.omics import CopyNumberScale
    from speclet_core.depmap.release import Library

    p = subparsers.add_parser("import-depmap", help=HELP, description=HELP)
    p.add_argument("--release-dir", required=True, help="folder with the release's CSV files (22Q2+ or 20Q–21Q)")
    p.add_argument("--genes", default="", help="gene symbols, comma-separated (e.g. KRAS,BRAF)")
    p.add_argument("--gene-list", help="file of gene symbols (one per line or comma-separated; # comments)")
    p.add_argument(
        "--lineages", default="all", help="lineages as written in Model.csv (e.g. Bowel,Skin; any case) or 'all'"
    )
    p.add_argument("--out", required=True, help="output table (.parquet, .csv, .csv.gz, .tsv or .tsv.gz)")
    p.add_argument("--library", choices=[m.value for m in Library], default=Library.AVANA.value)
    p.add_argument(
        "--cache",
        action="store_true",
        help="build (once) and use a columnar copy of the log-fold-change matrix: later imports take seconds",
    )
    p.add_argument(
        "--cn-scale",
        choices=[s.value for s in CopyNumberScale],
        default=CopyNumberScale.LOG2_RELATIVE_PLUS_1.value,
        help="scale of the release's copy-number file (DepMap: log2(relative CN + 1))",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    commands["import-depmap"] = _cmd_import_depmap


def _genes_from(args: argparse.Namespace) -> list[str]:
    from speclet_core.depmap.selection import parse_gene_list

    genes = parse_gene_list(args.genes or "")
    if args.gene_list:
        path = Path(args.gene_list).expanduser()
        try:
            genes += parse_gene_list(path.read_text(encoding="utf-8-sig"))
        except FileNotFoundError:
            raise DataReadError(f"--gene-list {path}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DataReadError(f"--gene-list {path}: could not be read ({exc})") from None
    genes = list(dict.fromkeys(genes))
    if not genes:
        raise SelectionError("no genes: give genes with --genes or --gene-list (e.g. --genes KRAS,BRAF)")
    return genes


def _cmd_import_depmap(args: argparse.Namespace) -> int:
    from speclet_core.depmap.importer import import_depmap
    from speclet_core.depmap.output import metadata_path_for, write_screen
    from speclet_core.depmap.progress import TerminalProgress
    from speclet_core.settings import Settings

    out = Path(args.out).expanduser()
    metadata_path_for(out)  # a bad output name fails now, not after a long import
    genes = _genes_from(args)
    bar = TerminalProgress(sys.stderr, force=False) if not args.no_progress else None
    try:
        result = import_depmap(
            args.release_dir, genes, args.lineages, library=args.library, cache=args.cache,
            progress=bar, cn_scale=args.cn_scale, settings=Settings.from_env(),
        )
    finally:
        if bar is not None:
            bar.close()
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    table, meta = write_screen(result, out)
    c = result.metadata["counts"]
    print(
        f"wrote {c['rows']:,} readings ({c['genes']} genes, {c['sgrnas']} sgRNAs, {c['cell_lines']} cell lines, "
        f"{c['lineages']} lineages) to {table}"
    )
    print(f"wrote the import metadata to {meta}")
    return 0
