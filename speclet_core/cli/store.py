"""``python -m speclet_core store list | show FIT_ID | verify | delete FIT_ID``.

Fit ids may be shortened to a unique prefix (at least 4 characters), as ``store list`` prints them whole.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from speclet_core.settings import Settings

if TYPE_CHECKING:
    from model_store import ModelStore

EXIT_DAMAGED = 1


def _store() -> ModelStore:
    from model_store import ModelStore

    return ModelStore(Settings.from_env().fits_dir)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _cmd_list(args: argparse.Namespace) -> int:
    manifests = _store().list(model=args.model, gene=args.gene, lineage=args.lineage, status=args.status)
    if args.json:
        print(json.dumps([m.to_dict() for m in manifests], indent=1))
        return 0
    if not manifests:
        print("no stored fits" + (" match the filters" if any((args.model, args.gene, args.lineage, args.status))
                                  else ""), file=sys.stderr)
        return 0
    if args.costs:
        return _print_costs(manifests)
    header = f"{'FIT_ID':<64}  {'CREATED (UTC)':<19}  {'MODEL':<20} {'VERSION':<8} {'STATUS':<7} " \
             f"{'GENES':>6} {'LINEAGES':>8} {'CELL_LINES':>10} {'SIZE':>10}"
    print(header)
    for m in manifests:
        created = m.created_utc[:19].replace("T", " ")
        print(f"{m.fit_id:<64}  {created:<19}  {m.model:<20} {m.model_version:<8} "
              f"{m.status.value:<7} {len(m.genes):>6} {len(m.lineages):>8} "
              f"{len(m.cell_lines):>10} {_size(m.total_bytes):>10}")
    return 0


def _print_costs(manifests: list) -> int:
    """Predicted vs actual seconds and peak RSS per fit (ratio = actual / predicted), tab-separated."""
    from speclet_core.analysis.fitview import cost_table

    table = cost_table(manifests)
    table["fit_id"] = table["fit_id"].str[:12]
    # tab-separated text for a terminal (not a CSV export: no cell here is user text)
    print("\t".join(table.columns))
    for row in table.itertuples(index=False):
        print("\t".join("-" if v is None or v != v else str(v) for v in row))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    store = _store()
    fit_id = store.resolve(args.fit_id)
    print(store.manifest(fit_id).to_json())
    problems = store.problems(fit_id)
    for p in problems:
        print(f"error: {p.message}", file=sys.stderr)
    return EXIT_DAMAGED if problems else 0


def _cmd_verify(args: argparse.Namespace) -> int:
    store = _store()
    problems = store.verify()
    n_fits = len(store.fit_ids())
    if not problems:
        print(f"ok: {n_fits} stored fit{'s' if n_fits != 1 else ''} verified (sizes and sha256 checksums)")
        return 0
    damaged = sorted({p.fit_id for p in problems})
    for p in problems:
        print(f"damaged: {p.fit_id}: {p.kind.value}: {p.message}")
    print(f"error: {len(damaged)} of {n_fits} stored fits damaged: {', '.join(damaged)}", file=sys.stderr)
    return EXIT_DAMAGED


def _cmd_delete(args: argparse.Namespace) -> int:
    store = _store()
    fit_id = store.resolve(args.fit_id)
    store.delete(fit_id)
    print(f"deleted fit {fit_id}")
    return 0


def register_cli(subparsers: argparse._SubParsersAction, commands: dict[str, Callable[[argparse.Namespace], int]]) -> None:
    """Add ``store`` with its sub-commands list, show, verify and delete."""
    p = subparsers.add_parser("store", help="list, show, verify or delete stored fits")
    sub = p.add_subparsers(dest="store_command", required=True, parser_class=type(p))

    q = sub.add_parser("list", help="stored fits, newest first")
    q.add_argument("--model", help="only fits of this model")
    q.add_argument("--gene", help="only fits that include this gene")
    q.add_argument("--lineage", help="only fits that include this lineage")
    q.add_argument("--status", choices=["ok", "flagged"], help="only fits whose diagnostics were ok / flagged")
    q.add_argument("--json", action="store_true", help="print the manifests as JSON")
    q.add_argument("--costs", action="store_true",
                   help="predicted vs actual compile, sampling, post-processing and total seconds and peak RSS "
                        "(tab-separated), to check the cost model's constants")

    q = sub.add_parser("show", help="print a fit's manifest as JSON (includes posterior_path)")
    q.add_argument("fit_id", help="fit id (or a unique prefix of at least 4 characters)")

    sub.add_parser("verify", help="check every stored fit's files; exits 1 and names each damaged fit")

    q = sub.add_parser("delete", help="delete a stored fit")
    q.add_argument("fit_id", help="fit id (or a unique prefix of at least 4 characters)")

    handlers = {"list": _cmd_list, "show": _cmd_show, "verify": _cmd_verify, "delete": _cmd_delete}
    commands["store"] = lambda args: handlers[args.store_command](args)
