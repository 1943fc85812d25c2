"""Import a DepMap public release (guide-level log-fold changes + maps + omics) as a screen table.

``import_depmap(release_dir, genes, lineages, settings=...)`` reads the small tables (guide map,
screen/replicate map, cell-line metadata; ``release``), keeps the guides and sequences the release
itself trusts (``selection``), streams the log-fold-change matrix keeping only the selected guides'
rows and the selected lineages' QC-passing columns and turns it long (``readings``), then joins
expression and copy number (``omics``). ``output.write_screen`` writes the result atomically. The
table passes ``speclet_core.data.validation``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from speclet_core.data.validation import validate_screen
from speclet_core.depmap.matrix import (
    MatrixSpec,
    cache_dir_candidates,
    cache_file_for,
    cache_is_fresh,
    choose_cache_dir,
)
from speclet_core.depmap.omics import CopyNumberScale, join_omics
from speclet_core.depmap.output import IMPORT_FORMAT, IMPORT_FORMAT_VERSION, ImportResult
from speclet_core.depmap.progress import ImportPhase, Progress, ProgressCallback
from speclet_core.depmap.readings import long_readings
from speclet_core.depmap.release import (
    SCREEN_OF_LIBRARY,
    DepMapImportError,
    Library,
    ReleaseFiles,
    ReleaseLayout,
    ReleaseTables,
    find_release_files,
    read_tables,
    sequence_table,
)
from speclet_core.depmap.run import ImportRun
from speclet_core.depmap.selection import guide_status, match_request, parse_genes, select_guides, select_sequences
from speclet_core.errors import DataValidationError, SelectionError
from speclet_core.labels import ALL, parse_labels
from speclet_core.settings import Settings


@dataclass(frozen=True)
class ReleaseInfo:
    """What a release folder offers, for choosing genes and lineages before importing."""

    root: Path
    layout: ReleaseLayout
    library: Library
    files: dict[str, str | None]
    lineages: dict[str, int]  # lineage → cell lines with at least one QC-passing sequence
    genes: tuple[str, ...]  # genes with at least one usable guide
    n_sequences: int
    n_guides: int
    cache_ready: bool


def import_depmap(
    release_dir: str | Path,
    genes: str | Sequence[str],
    lineages: str | Sequence[str] | None = ALL,
    *,
    library: Library | str = Library.AVANA,
    cache: bool = False,
    progress: ProgressCallback | None = None,
    cn_scale: CopyNumberScale | str = CopyNumberScale.LOG2_RELATIVE_PLUS_1,
    settings: Settings,
) -> ImportResult:
    """Import the given genes and lineages from a DepMap release folder as a screen table.

    Parameters
    ----------
    release_dir
        Folder holding the release CSV files (current 22Q2+ or legacy 20Q–21Q layout, detected).
    genes
        Gene symbols (list, or text separated by commas, semicolons or spaces); matched exactly,
        else ignoring case.
    lineages
        Lineage names as written in ``Model.csv`` / ``sample_info.csv`` (a list or comma-separated
        text, matched ignoring case and ``_``/``-``/spaces), or ``"all"``.
    library
        ``"avana"`` (default) or ``"ky"`` (current layout only).
    cache
        Use a columnar (Parquet) copy of the log-fold-change matrix, building it on first use: slower
        once, then seconds for any genes. ``False`` streams the CSV. Omics matrices always stream.
    progress
        Called as ``progress(phase, fraction, message)``, fraction 0–1 overall, a few times a second.
    cn_scale
        Scale of the release's copy-number matrix; the output ``gene_cn`` is relative copy number.
    settings
        Where the cache goes when the release folder is read-only (``Settings.data_dir``).
    """
    t0 = time.perf_counter()
    try:
        scale = CopyNumberScale(str(cn_scale))
    except ValueError:
        raise DepMapImportError(
            f"unknown copy-number scale {cn_scale!r}; expected one of {', '.join(s.value for s in CopyNumberScale)}"
        ) from None
    gene_list = parse_genes(genes)
    if not gene_list:
        raise SelectionError(
            "no genes given; name the genes to import (e.g. KRAS,BRAF); importing every gene of a release "
            "is not supported (tens of millions of readings)"
        )
    lineage_list = parse_labels(lineages)

    files = find_release_files(release_dir, library)
    prog = Progress(progress)
    prog.emit(ImportPhase.MAPS, 0.0, f"reading {files.guide_map.name}, {files.sequence_map.name}, {files.models.name}", force=True)
    t = read_tables(files)
    seqs = sequence_table(t)
    matched_genes, matched_lineages = match_request(t, gene_list, lineage_list, seqs)
    run = ImportRun(files, prog, choose_cache_dir(files.root, [files.lfc], settings.data_dir) if cache else None)
    guides = select_guides(run, t, matched_genes)
    kept_seqs = select_sequences(run, seqs, matched_lineages, all_lineages=lineage_list is None)
    t1 = time.perf_counter()
    out = long_readings(run, t, guides, kept_seqs)
    t2 = time.perf_counter()
    omics = join_omics(run, out, scale)
    t3 = time.perf_counter()
    out = _tidy(out, files)
    prog.emit(ImportPhase.DONE, 1.0, f"imported {len(out):,} readings", force=True)

    request = {"genes_requested": gene_list, "lineages_requested": lineage_list if lineage_list is not None else ALL}
    timings = {
        "maps_s": round(t1 - t0, 3),
        "lfc_s": round(t2 - t1, 3),  # includes building the cache when it was built
        "omics_s": round(t3 - t2, 3),
        "total_s": round(time.perf_counter() - t0, 3),
    }
    metadata = _describe(out, t, run, request, omics, cache=cache, timings=timings)
    return ImportResult(data=out, metadata=metadata, warnings=tuple(run.warnings))


def _tidy(out: pd.DataFrame, files: ReleaseFiles) -> pd.DataFrame:
    """Readings in a stable order, names as text, checked by the screen-table rules."""
    out = out.sort_values(["hugo_symbol", "sgrna", "depmap_id", "replicate_id"], kind="mergesort").reset_index(drop=True)
    for col in out.columns:
        if col not in ("lfc", "rna_expr", "gene_cn"):
            out[col] = out[col].astype("str")  # missing stays missing (NaN)
    _, report = validate_screen(out.copy(), f"import of {files.root}")
    if not report.ok:  # the importer's own guarantee; a failure here is a bug or a very odd release
        raise DataValidationError(f"import of {files.root}", list(report.problems))
    return out


def _describe(
    out: pd.DataFrame,
    t: ReleaseTables,
    run: ImportRun,
    request: dict[str, Any],
    omics: dict[str, Any],
    *,
    cache: bool,
    timings: dict[str, float],
) -> dict[str, Any]:
    """The import's metadata: where the readings came from, what was kept and dropped, and why."""
    files = run.files
    used_rule = t.guides.attrs.get("used_rule", "used")
    return {
        "format": IMPORT_FORMAT,
        "format_version": IMPORT_FORMAT_VERSION,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "release_dir": str(files.root.resolve()),
        "layout": files.layout.value,
        "library": files.library.value,
        "screen": SCREEN_OF_LIBRARY[files.library],
        "files": files.as_dict(),
        **request,
        "genes": sorted(out["hugo_symbol"].unique()),
        "lineages": sorted(out["lineage"].unique()),
        "counts": {
            "rows": len(out),
            "genes": int(out["hugo_symbol"].nunique()),
            "sgrnas": int(out["sgrna"].nunique()),
            "cell_lines": int(out["depmap_id"].nunique()),
            "lineages": int(out["lineage"].nunique()),
            "sequences": int(out["replicate_id"].nunique()),
        },
        "guide_rule": (
            f"guides kept when {used_rule}, aligned to exactly one gene and only once to it; "
            "gene symbols without Entrez ids"
        ),
        "sequence_rule": "sequences kept when they pass QC and their cell line has a lineage",
        "dropped": run.dropped,
        "expression": omics["expression"],
        "copy_number": omics["copy_number"],
        "cache": {
            "requested": cache,
            "dir": str(run.cache_dir) if run.cache_dir else None,
            "built": run.cache_built,
            "used": run.cache_used,
        },
        "timings": timings,
        "warnings": list(run.warnings),
    }


def inspect_release(release_dir: str | Path, library: Library | str = Library.AVANA, *, settings: Settings) -> ReleaseInfo:
    """The layout, lineages (with screened cell-line counts) and genes of a release, from its small tables."""
    files = find_release_files(release_dir, library)
    t = read_tables(files)
    status, gene = guide_status(t.guides)
    seqs = sequence_table(t)
    ok = seqs["in_map"].eq("both") & seqs["in_models"].eq("both") & seqs["lineage"].notna()
    if "passes_qc" in seqs.columns:
        ok &= seqs["passes_qc"].eq(True)
    lineages = seqs.loc[ok].groupby("lineage")["model_id"].nunique().sort_index()
    spec = MatrixSpec(files.lfc, tuple(t.lfc_header))
    candidates = cache_dir_candidates(files.root, [files.lfc], settings.data_dir)
    return ReleaseInfo(
        root=files.root,
        layout=files.layout,
        library=files.library,
        files=files.as_dict(),
        lineages={str(k): int(v) for k, v in lineages.items()},
        genes=tuple(sorted(gene[status.eq("kept")].dropna().unique())),
        n_sequences=len(t.lfc_header) - 1,
        n_guides=int(status.size),
        cache_ready=any(cache_is_fresh(spec, cache_file_for(d, files.lfc)) for d in candidates),
    )
