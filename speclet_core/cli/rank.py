"""``python -m speclet_core rank FIT_ID [--lineage X | --contrast X | --biomarker] [--top-k K] [--out FILE]``,
and ``rank --atlas ATLAS_ID [--lineage X] [--allow-flagged] [--out FILE]`` (the cross-lineage comparison of an atlas).

Reads a stored fit, picks the variable from the model's declared roles and writes the
ranking (or lineage-contrast) table as CSV to a file, atomically, or to stdout; text cells that a
spreadsheet would read as a formula are neutralised (``analysis.escaping.csv_text``, as the pages' downloads).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from model_store.stats import HDI_PROB
from speclet_core.analysis.biomarker import BIOMARKER_VARIABLES, contrast_biomarker
from speclet_core.analysis.contrasts import contrast_lineage
from speclet_core.analysis.escaping import csv_text
from speclet_core.analysis.ranking import (
    DEFAULT_THRESHOLD,
    DEFAULT_TOP_K,
    default_top_k,
    rank_genes,
    ranking_options,
)
from speclet_core.cli.args import positive_int
from speclet_core.diagnostics.verdict import verdict_line, verdict_of
from speclet_core.errors import AnalysisError, SpecletError

# Enough digits for half-integer ranks of 100k genes and probabilities from 100k draws.
CSV_FLOAT_FORMAT = "%.8g"


def rank_stored_fit(
    fit: Any,
    *,
    lineage: str | None = None,
    contrast: str | None = None,
    versus: str | None = None,
    biomarker: bool = False,
    top_k: int = DEFAULT_TOP_K,
    threshold: float = DEFAULT_THRESHOLD,
    hdi_prob: float = HDI_PROB,
) -> pd.DataFrame:
    """The ranking table of a stored fit (``model_store.StoredFit``), using the model's roles.

    Without options: the gene-level effect; ``lineage``: the gene × lineage effect within one
    lineage; ``contrast``: lineage-selective dependencies of that lineage (``versus`` one other);
    ``biomarker``: genes by P(stronger dependency when marked) (a ``gene_biomarker`` fit).
    """
    if biomarker:
        if lineage is not None or contrast is not None:
            raise AnalysisError("give one of --lineage, --contrast or --biomarker")
        return rank_biomarker_fit(fit, top_k=top_k, threshold=threshold, hdi_prob=hdi_prob)
    if lineage is not None and contrast is not None:
        raise AnalysisError("give either --lineage or --contrast, not both")
    if versus is not None and contrast is None:
        raise AnalysisError("--versus only applies with --contrast LINEAGE")
    manifest = fit.manifest
    roles = manifest.roles
    where = f"fit {fit.fit_id[:12]} (model {manifest.model})"
    if lineage is None and contrast is None:
        var = roles.gene_effect
        if not var:
            raise AnalysisError(f"{where} declares no gene-level effect in its roles; the fit cannot be ranked")
        return rank_genes(fit.draws(var, load=False), top_k=top_k, threshold=threshold, hdi_prob=hdi_prob)
    var = roles.gene_lineage_effect
    if not var:
        flag = "--lineage" if lineage is not None else "--contrast"
        raise AnalysisError(
            f"{where} has no gene × lineage effect, so {flag} is not possible; rank the gene-level effect "
            "(leave out the option), or fit a model with a gene × lineage term"
        )
    # lazy: the ranking reads the file a block of genes at a time
    draws = fit.draws(var, load=False)
    if contrast is not None:
        return contrast_lineage(
            draws, contrast, versus=versus, top_k=top_k, threshold=threshold, hdi_prob=hdi_prob
        )
    return rank_genes(draws, lineage=lineage, top_k=top_k, threshold=threshold, hdi_prob=hdi_prob)


def rank_biomarker_fit(
    fit: Any, *, top_k: int = DEFAULT_TOP_K, threshold: float = DEFAULT_THRESHOLD, hdi_prob: float = HDI_PROB
) -> pd.DataFrame:
    """``contrast_biomarker`` of a stored ``gene_biomarker`` fit, named by the marker it was fitted with."""
    manifest = fit.manifest
    marker = manifest.request.options.get("biomarker")
    if not marker:
        raise AnalysisError(
            f"fit {fit.fit_id[:12]} (model {manifest.model}) has no biomarker: --biomarker ranks gene_biomarker fits "
            "(fit --model gene_biomarker --biomarker COLUMN)"
        )
    posterior = {v: fit.draws(v, load=False) for v in BIOMARKER_VARIABLES}
    return contrast_biomarker(posterior, biomarker=marker, top_k=top_k, threshold=threshold, hdi_prob=hdi_prob)


def write_csv(table: pd.DataFrame, out: Path | None) -> None:
    """CSV to ``out`` through a temporary file in the same folder (never half-written), or to stdout."""
    text = csv_text(table, float_format=CSV_FLOAT_FORMAT)
    if out is None:
        sys.stdout.write(text)
        return
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _check_out(text: str | None) -> Path | None:
    if text is None or text == "-":
        return None
    out = Path(text).expanduser()
    if out.is_dir():
        raise SpecletError(f"--out {out}: is a folder; give a file name such as ranking.csv")
    if not out.parent.is_dir():
        raise SpecletError(f"--out {out}: folder {out.parent} does not exist; create it first")
    if not os.access(out.parent, os.W_OK):
        raise SpecletError(f"--out {out}: folder {out.parent} is not writable")
    return out


def _cmd_rank(args: argparse.Namespace) -> int:
    from model_store import ModelStore
    from speclet_core.settings import Settings

    # every check that needs no posterior comes first, so bad input fails fast
    ranking_options(top_k=args.top_k or DEFAULT_TOP_K, threshold=args.threshold, hdi_prob=args.hdi_prob)
    if args.atlas is not None:
        return _cmd_rank_atlas(args)
    if args.fit_id is None:
        raise SpecletError("give a FIT_ID (see `store list`), or --atlas ATLAS_ID to compare an atlas's lineages")
    if args.allow_flagged or args.no_align:
        raise SpecletError("--allow-flagged and --no-align only apply with --atlas ATLAS_ID")
    if args.versus is not None and args.contrast is None:
        raise AnalysisError("--versus only applies with --contrast LINEAGE")
    if args.biomarker and args.threshold > 0:
        raise AnalysisError(f"--threshold must be 0 or below with --biomarker (a dependency is negative), got {args.threshold:g}")
    out = _check_out(args.out)
    store = ModelStore(Settings.from_env().fits_dir)
    fit = store.get(store.resolve(args.fit_id))
    top_k = args.top_k if args.top_k is not None else default_top_k(len(fit.manifest.genes))
    judged = verdict_of(fit.manifest)  # the CSV has the same shape either way: say it where a person reads it
    if judged.level != "converged" or judged.approximate:
        reasons = "; ".join(judged.reasons[:2])
        print(f"warning: fit {fit.manifest.fit_id[:12]} did not pass its diagnostics: {verdict_line(fit.manifest)}"
              f"{f' ({reasons})' if reasons else ''}; see `store show {fit.manifest.fit_id[:12]}`", file=sys.stderr)
    try:
        table = rank_stored_fit(
            fit, lineage=args.lineage, contrast=args.contrast, versus=args.versus, biomarker=args.biomarker,
            top_k=top_k, threshold=args.threshold, hdi_prob=args.hdi_prob,
        )
    finally:
        fit.close()
    write_csv(table, out)
    if out is not None:
        what = "lineage-selective dependencies" if args.contrast else "genes"
        what = "genes ranked by P(stronger dependency when marked)" if args.biomarker else what
        print(f"wrote {len(table):,} {what} to {out}")
    return 0


def _cmd_rank_atlas(args: argparse.Namespace) -> int:
    """``rank --atlas``: one row per gene and lineage (``analysis.atlas.compare_atlas``), verdicts on every row."""
    from model_store import ModelStore
    from speclet_core.analysis.atlas import compare_atlas, read_atlas
    from speclet_core.queue.jobs import JobQueue
    from speclet_core.settings import Settings

    if args.fit_id is not None:
        raise SpecletError(f"give either FIT_ID ({args.fit_id}) or --atlas {args.atlas}, not both")
    for flag, value in (("--contrast", args.contrast), ("--versus", args.versus), ("--biomarker", args.biomarker)):
        if value:
            raise SpecletError(f"{flag} does not apply with --atlas (every lineage is compared with the mean of the "
                               "others; pick one with --lineage X)")
    if args.threshold > 0:
        raise AnalysisError(f"--threshold must be 0 or below with --atlas (a dependency is negative), got {args.threshold:g}")
    out = _check_out(args.out)
    settings = Settings.from_env()
    record = read_atlas(settings.data_dir, args.atlas)
    store = ModelStore(settings.fits_dir)
    with contextlib.ExitStack() as stack:
        # the queue says whether a fit not in the store is still queued, running, or failed
        queue = stack.enter_context(JobQueue.from_settings(settings)) if settings.queue_dir.is_dir() else None
        result = compare_atlas(record, store, find_job=None if queue is None else queue.find, lineage=args.lineage,
                               allow_flagged=args.allow_flagged, align=not args.no_align, top_k=args.top_k,
                               threshold=args.threshold, hdi_prob=args.hdi_prob)
    for member in result.flagged:
        print(f"warning: {member.describe()}: every row carries its verdict (fit_verdict / atlas_verdict)",
              file=sys.stderr)
    if result.missing_genes:
        shown = ", ".join(f"{g} (not in {', '.join(lins)})" for g, lins in list(result.missing_genes.items())[:8])
        more = f" and {len(result.missing_genes) - 8} more" if len(result.missing_genes) > 8 else ""
        print(f"note: {len(result.missing_genes):,} genes are not in every lineage's fit and are left out: "
              f"{shown}{more}", file=sys.stderr)
    write_csv(result.table, out)
    if out is not None:
        n_lin = result.table["lineage"].nunique()
        print(f"wrote {len(result.table):,} rows ({result.table['gene'].nunique():,} genes × {n_lin} "
              f"lineage{'s' if n_lin != 1 else ''}) of atlas {record.atlas_id[:12]} to {out}")
    return 0


def register_cli(subparsers: argparse._SubParsersAction, commands: dict) -> None:
    """Add the ``rank`` command."""
    p = subparsers.add_parser(
        "rank",
        help="ranking table of a stored fit as CSV (expected rank, rank interval, P(top-k), HDI, P(effect < threshold), lfsr)",
        description=(
            "Rank genes within every posterior draw of a stored fit (rank 1 = strongest dependency, "
            "most negative effect) and write one CSV row per gene."
        ),
    )
    p.add_argument("fit_id", metavar="FIT_ID", nargs="?",
                   help="the fit's id, or its first characters (see `store list`); leave out with --atlas")
    p.add_argument(
        "--atlas", metavar="ATLAS_ID",
        help=("compare the lineages of an atlas (`atlas` prints its id): one row per gene and lineage with the "
              "effect in the lineage and its HDI, P(dependency in it), P(stronger there than the mean of the other "
              "lineages), P(strongest of all), their joint P(selective), lfsr, and each member fit's verdict"),
    )
    p.add_argument("--allow-flagged", action="store_true",
                   help="with --atlas: compare even if member fits are approximate or did not pass their diagnostics")
    p.add_argument("--no-align", action="store_true",
                   help=("with --atlas: keep each lineage's screen-wide shift (by default the lineage's median gene is "
                         "taken out in every draw, so a lineage whose guides all deplete more does not make every "
                         "gene look stronger there)"))
    which = p.add_mutually_exclusive_group()
    which.add_argument("--lineage", metavar="X",
                       help="rank within lineage X (needs a gene × lineage effect); with --atlas: only X's rows")
    which.add_argument(
        "--contrast", metavar="X",
        help=("rank lineage-selective dependencies of X: genes that are dependencies in X (effect < T) and stronger "
              "there than in the other lineages; columns include the effect in X, P(dependency in X), "
              "P(stronger in X), their joint P(selective), P(not selective) and lfsr"),
    )
    which.add_argument(
        "--biomarker", action="store_true",
        help=("a gene_biomarker fit: genes by P(stronger dependency when marked), i.e. a dependency in marked cell "
              "lines (effect < T) and more negative there than in unmarked ones of the same lineage; columns include "
              "the marked-minus-unmarked difference with its HDI and that probability"),
    )
    p.add_argument("--versus", metavar="Y", help="with --contrast: compare X against lineage Y only")
    p.add_argument(
        "--top-k", type=positive_int, default=None, metavar="K",
        help=f"P(top-k) column: share of draws ranking K or better (default: a quarter of the genes, at most "
             f"{DEFAULT_TOP_K}, as on the Rankings page)",
    )
    p.add_argument(
        "--threshold", type=float, default=DEFAULT_THRESHOLD, metavar="T",
        help=f"the dependency threshold: P(effect < T) column; with --contrast, a dependency in X is an effect < T "
             f"(T ≤ 0; default {DEFAULT_THRESHOLD})",
    )
    p.add_argument(
        "--hdi-prob", type=float, default=HDI_PROB, metavar="P",
        help=f"mass of the HDI and rank intervals (default {HDI_PROB})",
    )
    p.add_argument("--out", metavar="FILE", help="CSV file to write (default: stdout)")
    commands["rank"] = _cmd_rank
