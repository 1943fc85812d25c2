"""Import a DepMap public release (guide-level log-fold changes + maps + omics) as a screen table.

``import_depmap(release_dir, genes, lineages)`` reads the small tables (guide map, screen/replicate
map, cell-line metadata), keeps the guides the release itself trusts, streams the log-fold-change
matrix keeping only the selected guides' rows and the selected lineages' QC-passing columns, turns
it long and joins lineage, expression and copy number. ``write_screen`` writes the result
atomically. The table passes ``speclet_core.data.screen`` validation.

Guides kept: used by Chronos (current layout; legacy: not in ``Achilles_dropped_guides.csv``),
aligned to exactly one gene, and only once to it. Sequences / replicates kept: passing QC, with a
cell line whose lineage is known. Readings with a missing LFC are dropped and counted.

Copy number: DepMap's gene-level copy number (``OmicsCNGene``, ``CCLE_gene_cn``) is
log2(relative copy number + 1); the screen table's ``gene_cn`` is relative copy number
(1 = the cell line's genome-wide average), so it is converted back as ``2**x - 1``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from speclet_core.data.screen import validate_screen
from speclet_core.depmap.matrix import (
    MatrixSpec,
    Tick,
    build_cache,
    cache_dir_candidates,
    cache_file_for,
    cache_is_fresh,
    choose_cache_dir,
    column_name,
    read_rows_cached,
    read_rows_csv,
)
from speclet_core.depmap.release import (
    OMICS_DEFAULT_ENTRY,
    OMICS_ID_COLUMNS,
    SCREEN_OF_LIBRARY,
    DepMapImportError,
    Library,
    ReleaseFiles,
    ReleaseLayout,
    _norm,
    find_release_files,
    match_names,
    parse_bool,
    read_guide_map,
    read_header,
    read_models,
    read_sequence_map,
    split_symbol,
)
from speclet_core.errors import DataReadError, DataValidationError, SelectionError, SpecletError
from speclet_core.settings import Settings

__all__ = [
    "CopyNumberScale",
    "DepMapImportError",
    "ImportPhase",
    "ImportResult",
    "Library",
    "ReleaseInfo",
    "ReleaseLayout",
    "TerminalProgress",
    "import_depmap",
    "inspect_release",
    "metadata_path_for",
    "parse_gene_list",
    "read_import_metadata",
    "write_screen",
]

ProgressCallback = Callable[[str, float, str], None]  # (phase, overall fraction 0–1, message)
IMPORT_FORMAT = "speclet-depmap-import"
IMPORT_FORMAT_VERSION = 1
PARQUET_METADATA_KEY = b"speclet.import"
TABLE_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".tsv", ".tsv.gz")
MAX_SHOWN = 5
# Columns of an omics matrix that identify its row (never a gene), compared after _norm.
OMICS_ID_NORMS = frozenset(
    _norm(c)
    for c in (
        "", "ModelID", "DepMap_ID", "SequencingID", "SequenceID", "ProfileID", "ModelConditionID",
        "IsDefaultEntryForModel", "IsDefaultEntryForMC", "Unnamed: 0", "cell_line", "CellLineName",
    )
)


class ImportPhase(StrEnum):
    MAPS = "maps"  # guide map, screen map, cell lines
    CACHE = "cache"  # building the columnar cache (first cached import only)
    LFC = "lfc"  # streaming the log-fold-change matrix
    EXPRESSION = "expression"
    COPY_NUMBER = "copy_number"
    DONE = "done"


class CopyNumberScale(StrEnum):
    """How the release's copy-number matrix is scaled (the output is always relative copy number)."""

    LOG2_RELATIVE_PLUS_1 = "log2_relative_plus_1"  # DepMap OmicsCNGene / CCLE_gene_cn: log2(CN ratio + 1)
    RELATIVE = "relative"  # already relative copy number: kept as is


CN_SCALE_TEXT = {
    CopyNumberScale.LOG2_RELATIVE_PLUS_1: "log2(relative copy number + 1)",
    CopyNumberScale.RELATIVE: "relative copy number",
}


@dataclass(frozen=True)
class ImportResult:
    """An imported screen table, what was done to make it, and what the user should know."""

    data: pd.DataFrame = field(repr=False)
    metadata: dict[str, Any]
    warnings: tuple[str, ...] = ()

    def summarise(self) -> dict[str, int]:
        return dict(self.metadata["counts"])


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


# --------------------------------------------------------------------------- progress


class _Progress:
    """Maps step fractions onto one overall 0–1 scale; at most ~5 calls a second, never backwards."""

    def __init__(self, callback: ProgressCallback | None, min_interval_s: float = 0.2) -> None:
        self.callback = callback
        self.min_interval_s = min_interval_s
        self.last_emit = 0.0
        self.fraction = 0.0

    def emit(self, phase: ImportPhase, fraction: float, message: str, *, force: bool = False) -> None:
        if self.callback is None:
            return
        self.fraction = max(self.fraction, min(max(fraction, 0.0), 1.0))
        now = time.monotonic()
        if force or now - self.last_emit >= self.min_interval_s:
            self.last_emit = now
            self.callback(phase.value, self.fraction, message)

    def span(self, phase: ImportPhase, start: float, end: float) -> Tick:
        def tick(done: float, message: str) -> None:
            self.emit(phase, start + (end - start) * done, message, force=done >= 1.0)

        return tick


class TerminalProgress:
    """A one-line progress bar on a terminal (stderr); silent when the stream is not a terminal."""

    def __init__(self, stream: IO[str] | None = None, *, width: int = 28, force: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.enabled = force or bool(getattr(self.stream, "isatty", lambda: False)())
        self.drawn = False

    def __call__(self, phase: str, fraction: float, message: str) -> None:
        if not self.enabled:
            return
        filled = int(round(fraction * self.width))
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {fraction * 100:3.0f}% {message}"
        self.stream.write("\r" + line[:110].ljust(110))
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


# --------------------------------------------------------------------------- inputs


def parse_gene_list(text: str) -> list[str]:
    """Gene symbols from text: separated by commas, semicolons or whitespace; ``#`` starts a comment."""
    out: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        out.extend(t for t in re.split(r"[,;\s]+", line) if t)
    return list(dict.fromkeys(out))


def _requested(value: str | Sequence[str] | None) -> list[str] | None:
    """A list of names, or ``None`` for "all"."""
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() in {"", "all", "*"}:
            return None
        return parse_gene_list(value)
    items = [str(v).strip() for v in value if str(v).strip()]
    if len(items) == 1 and items[0].lower() in {"all", "*"}:
        return None
    return list(dict.fromkeys(items))


# --------------------------------------------------------------------------- guides and sequences


def _guide_status(guides: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per guide: why it is dropped (or ``"kept"``), and its one gene."""
    used = guides.groupby("sgrna", sort=True)["used"].all()
    with_gene = guides.dropna(subset=["symbol"])
    n_genes = with_gene.groupby("sgrna")["symbol"].nunique().reindex(used.index, fill_value=0)
    most = with_gene.groupby(["sgrna", "symbol"]).size().groupby(level=0).max().reindex(used.index, fill_value=0)
    status = np.select(
        [~used.to_numpy(dtype=bool), n_genes.to_numpy() == 0, n_genes.to_numpy() > 1, most.to_numpy() > 1],
        ["not_used", "no_gene", "several_genes", "several_alignments"],
        default="kept",
    )
    gene = with_gene.drop_duplicates("sgrna").set_index("sgrna")["symbol"].reindex(used.index)
    return pd.Series(status, index=used.index), gene


def _label_list(values: Sequence[str], n: int = MAX_SHOWN) -> str:
    shown = ", ".join(str(v) for v in list(values)[:n])
    return shown + (f" and {len(values) - n} more" if len(values) > n else "")


@dataclass
class _Tables:
    files: ReleaseFiles
    guides: pd.DataFrame
    sequences: pd.DataFrame
    models: pd.DataFrame
    lfc_header: list[str]


def _read_tables(files: ReleaseFiles) -> _Tables:
    header = read_header(files.lfc)
    seq_ids = [h.strip() for h in header[1:]]
    dups = sorted(s for s, n in Counter(seq_ids).items() if n > 1)
    if dups:
        raise DataValidationError(
            str(files.lfc), [f"repeated column name{'s' if len(dups) > 1 else ''} {_label_list(dups)} in the header"]
        )
    if not seq_ids:
        raise DataValidationError(str(files.lfc), ["no sequence columns after the guide column; download it again"])
    return _Tables(files, read_guide_map(files), read_sequence_map(files), read_models(files), header)


def _sequence_table(t: _Tables) -> pd.DataFrame:
    """The LFC matrix's columns joined to their screen map row and cell line."""
    cols = pd.DataFrame({"position": np.arange(1, len(t.lfc_header)), "sequence_id": [h.strip() for h in t.lfc_header[1:]]})
    cols = cols.merge(t.sequences, on="sequence_id", how="left", indicator="in_map")
    return cols.merge(t.models, on="model_id", how="left", indicator="in_models")


# --------------------------------------------------------------------------- the import


@dataclass
class _Run:
    """What one import has learnt so far: warnings, dropped counts, cache use, progress."""

    files: ReleaseFiles
    progress: _Progress
    cache_dir: Path | None
    warnings: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    cache_built: list[str] = field(default_factory=list)
    cache_used: list[str] = field(default_factory=list)

    def read_matrix(
        self,
        spec: MatrixSpec,
        keys: set[str] | None,
        value_cols: Sequence[int],
        text_cols: Sequence[int],
        phase: ImportPhase,
        span: tuple[float, float],
        *,
        cacheable: bool = True,
    ) -> Any:
        """Wanted rows × columns of a big matrix: from the cache when asked for (built if stale), else the CSV."""
        start, end = span
        if self.cache_dir is not None and cacheable:
            cache_file = cache_file_for(self.cache_dir, spec.path)
            split = start + 0.85 * (end - start)  # building dominates reading
            try:
                if not cache_is_fresh(spec, cache_file):
                    build_cache(spec, cache_file, tick=self.progress.span(ImportPhase.CACHE, start, split))
                    self.cache_built.append(spec.path.name)
                table = read_rows_cached(
                    spec, cache_file, keys, value_cols, text_cols, tick=self.progress.span(phase, split, end)
                )
                self.cache_used.append(spec.path.name)
                return table
            except DataReadError:
                raise
            except OSError as exc:  # e.g. a full disk: the import still works without the cache
                self.warnings.append(
                    f"could not write the columnar cache in {self.cache_dir} ({exc.strerror or exc}); "
                    f"read {spec.path.name} directly"
                )
        return read_rows_csv(spec, keys, value_cols, text_cols, tick=self.progress.span(phase, start, end))


def _match_request(
    t: _Tables, gene_list: list[str], lineage_list: list[str] | None, seqs: pd.DataFrame
) -> tuple[list[str], list[str]]:
    """Requested genes and lineages as the release spells them; every unknown name reported at once."""
    symbols = sorted(t.guides["symbol"].dropna().unique())
    genes, gene_problems = match_names(gene_list, symbols, "gene", fold=False)
    problems = [f"{t.files.guide_map.name}: {p}" for p in gene_problems]
    if lineage_list is None:
        lineages = sorted(seqs["lineage"].dropna().unique())
    else:
        available = sorted(t.models["lineage"].dropna().unique())
        lineages, lineage_problems = match_names(lineage_list, available, "lineage", fold=True)
        problems.extend(f"{t.files.models.name}: {p}" for p in lineage_problems)
    if problems:
        raise SelectionError(
            f"{t.files.root}: {len(problems)} requested name{'s' if len(problems) > 1 else ''} not in the release; "
            "check the spelling (lineages as written in the release)\n" + "\n".join(problems)
        )
    return genes, lineages


def _select_guides(run: _Run, t: _Tables, genes: list[str]) -> pd.Series:
    """Kept guides of the requested genes → their gene; counts the dropped ones."""
    status, guide_gene = _guide_status(t.guides)
    relevant = status.reindex(t.guides.loc[t.guides["symbol"].isin(genes), "sgrna"].unique())
    run.dropped.update(
        guides_not_used=int(relevant.eq("not_used").sum()),
        guides_on_several_genes=int(relevant.eq("several_genes").sum()),
        guides_aligned_several_times=int(relevant.eq("several_alignments").sum()),
    )
    kept = guide_gene.reindex(relevant.index[relevant.eq("kept")])
    without = [g for g in genes if g not in set(kept)]
    if len(without) == len(genes):
        raise SelectionError(
            f"{t.files.guide_map.name}: no usable guide for {_label_list(without)} "
            f"(guides must be {t.guides.attrs.get('used_rule', 'used')}, on one gene, aligned once); "
            f"choose other genes"
        )
    if without:
        run.warnings.append(
            f"no usable guide for {len(without)} gene(s) ({_label_list(without)}); they are not in the table"
        )
    return kept


def _select_sequences(run: _Run, seqs: pd.DataFrame, lineages: list[str], all_lineages: bool) -> pd.DataFrame:
    """QC-passing sequences of the chosen lineages (LFC column position, cell line, batch, …)."""
    f = run.files
    in_map = seqs["in_map"].eq("both").to_numpy()
    has_model = seqs["in_models"].eq("both").to_numpy()
    has_lineage = seqs["lineage"].notna().to_numpy()
    chosen = seqs["lineage"].isin(lineages).to_numpy()
    if "passes_qc" in seqs.columns:
        passes = seqs["passes_qc"].eq(True).to_numpy()
    else:
        passes = np.ones(len(seqs), dtype=bool)
        run.warnings.append(f"{f.sequence_map.name}: no QC column; every sequence was kept")
    run.dropped.update(
        sequences_not_in_map=int((~in_map).sum()),
        sequences_without_cell_line=int((in_map & ~has_model).sum()),
        sequences_without_lineage=int((in_map & has_model & ~has_lineage).sum()) if all_lineages else 0,
        sequences_failing_qc=int((in_map & has_model & chosen & ~passes).sum()),
    )
    if not in_map.all():
        run.warnings.append(
            f"{int((~in_map).sum())} column(s) of {f.lfc.name} are not in {f.sequence_map.name} "
            f"({_label_list(seqs.loc[~in_map, 'sequence_id'].tolist())}); skipped"
        )
    if run.dropped["sequences_without_cell_line"]:
        run.warnings.append(
            f"{run.dropped['sequences_without_cell_line']} sequence(s) name a cell line not in {f.models.name}; skipped"
        )
    kept = seqs.loc[in_map & has_model & has_lineage & chosen & passes].reset_index(drop=True)
    if kept.empty:
        screened = sorted(seqs.loc[in_map & has_model & has_lineage, "lineage"].unique())
        raise SelectionError(
            f"{f.lfc.name}: no QC-passing screen of lineage(s) {_label_list(lineages)}; "
            f"lineages screened in this release include {_label_list(screened, 12)}"
        )
    empty = [lin for lin in lineages if lin not in set(kept["lineage"])]
    if empty:
        run.warnings.append(f"no QC-passing screen of {_label_list(empty)}; not in the table")
    return kept


def _long_readings(run: _Run, t: _Tables, guides: pd.Series, seqs: pd.DataFrame) -> pd.DataFrame:
    """Stream the LFC matrix (wanted rows and columns only) and turn it into one row per reading."""
    f = run.files
    spec = MatrixSpec(f.lfc, tuple(t.lfc_header), key_col=0)
    positions = seqs["position"].tolist()
    run.progress.emit(ImportPhase.LFC, 0.05, f"reading {f.lfc.name}", force=True)
    table = run.read_matrix(spec, set(guides.index), positions, (), ImportPhase.LFC, (0.05, 0.85))
    sg = np.asarray(table.column(column_name(0)).to_numpy(zero_copy_only=False), dtype=object)
    first = ~pd.Index(sg).duplicated(keep="first")
    if not first.all():
        run.warnings.append(f"{f.lfc.name}: {int((~first).sum())} guide row(s) repeated; used the first of each")
    sg = sg[first]
    absent = sorted(set(guides.index) - set(sg))
    run.dropped["guides_not_in_lfc"] = len(absent)
    if absent:
        run.warnings.append(f"{len(absent)} kept guide(s) have no row in {f.lfc.name} ({_label_list(absent)})")
    values = np.empty((len(sg), len(positions)), dtype="float64")
    for j, pos in enumerate(positions):
        values[:, j] = np.asarray(table.column(column_name(pos)).to_numpy(zero_copy_only=False), dtype="float64")[first]

    # guide-major: reading k is guide k // n_seq in sequence k % n_seq
    n_seq = len(positions)
    lfc = values.ravel()
    ok = ~np.isnan(lfc)
    run.dropped["readings_missing_lfc"] = int((~ok).sum())
    if not ok.any():
        raise SelectionError(f"{f.lfc.name}: every selected reading is missing; choose other genes or lineages")
    guide_idx = np.repeat(np.arange(len(sg)), n_seq)[ok]
    seq_idx = np.tile(np.arange(n_seq), len(sg))[ok]
    out = pd.DataFrame(
        {
            "sgrna": sg[guide_idx],
            "hugo_symbol": guides.reindex(sg).to_numpy()[guide_idx],
            "depmap_id": seqs["model_id"].to_numpy()[seq_idx],
            "lineage": seqs["lineage"].to_numpy()[seq_idx],
            "lfc": lfc[ok],
            "replicate_id": seqs["sequence_id"].to_numpy()[seq_idx],
        }
    )
    if "pdna_batch" in seqs.columns:
        out["pdna_batch"] = seqs["pdna_batch"].to_numpy()[seq_idx]
    out["screen"] = SCREEN_OF_LIBRARY[f.library]
    for col in ("lineage_subtype", "primary_or_metastasis", "screen_id", "screen_type"):
        if col in seqs.columns:
            out[col] = seqs[col].to_numpy()[seq_idx]
    return out


def _omics_spec(path: Path) -> tuple[MatrixSpec, int | None]:

    """An omics matrix's key column (ModelID), text ID columns and default-entry column."""
    header = read_header(path)
    norms = [_norm(h) for h in header]
    id_norms = [_norm(c) for c in OMICS_ID_COLUMNS]
    key_col = next((i for i, n in enumerate(norms) if n in id_norms), 0)
    first_gene = next((i for i, h in enumerate(header) if re.match(r"^.+\(\s*\d+\s*\)\s*$", h)), None)
    text_cols = tuple(
        i for i, n in enumerate(norms)
        if i != key_col and ((first_gene is not None and i < first_gene) or n in OMICS_ID_NORMS)
    )
    default_col = next((i for i, n in enumerate(norms) if n == _norm(OMICS_DEFAULT_ENTRY)), None)
    return MatrixSpec(path, tuple(header), key_col=key_col, text_cols=text_cols), default_col


def _omics_values(
    run: _Run, path: Path, cell_lines: Sequence[str], genes: Sequence[str], column: str,
    phase: ImportPhase, span: tuple[float, float],
) -> pd.DataFrame:
    """cell line × gene values of an omics matrix (NaN where the release has none)."""
    spec, default_col = _omics_spec(path)
    gene_cols: dict[str, int] = {}
    repeated: list[str] = []
    skip = {spec.key_col, *spec.text_cols}
    wanted = set(genes)
    for i, h in enumerate(spec.header):
        if i in skip:
            continue
        symbol = split_symbol(h)
        if symbol in wanted:
            if symbol in gene_cols:
                repeated.append(symbol)
            else:
                gene_cols[symbol] = i
    if repeated:
        run.warnings.append(
            f"{path.name}: genes with several columns ({_label_list(sorted(set(repeated)))}); used the first"
        )
    absent = [g for g in genes if g not in gene_cols]
    if absent:
        run.warnings.append(f"{path.name}: no column for {len(absent)} gene(s) ({_label_list(absent)}); {column} left empty")
    text = [default_col] if default_col is not None else []
    # Never cached: converting all ~19,000 columns of a wide omics CSV to Parquet took 30 s or 550 MiB
    # (measured), while streaming the 50 wanted columns out of a 300 MB file takes under a second.
    table = run.read_matrix(spec, set(cell_lines), list(gene_cols.values()), text, phase, span, cacheable=False)
    frame = pd.DataFrame({"model_id": table.column(column_name(spec.key_col)).to_numpy(zero_copy_only=False)})
    for symbol, i in gene_cols.items():
        frame[symbol] = table.column(column_name(i)).to_numpy(zero_copy_only=False)
    several = frame["model_id"].duplicated(keep=False).to_numpy()
    if default_col is not None and several.any():  # newer releases: one default profile per cell line
        is_default = parse_bool(pd.Series(table.column(column_name(default_col)).to_numpy(zero_copy_only=False)))
        frame = frame.loc[~several | is_default.eq(True).to_numpy()]
    if frame["model_id"].duplicated().any():
        n = int(frame["model_id"].duplicated().sum())
        run.warnings.append(f"{path.name}: {n} cell line(s) have several rows; used the first of each")
        frame = frame.drop_duplicates("model_id", keep="first")
    return frame.set_index("model_id").reindex(index=list(cell_lines), columns=list(genes))


def _lookup(values: pd.DataFrame, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """values[row label, col label] for each reading, NaN where absent."""
    matrix = values.to_numpy(dtype="float64", na_value=np.nan)
    ri = values.index.get_indexer(rows)
    ci = values.columns.get_indexer(cols)
    out = np.full(len(rows), np.nan)
    ok = (ri >= 0) & (ci >= 0)
    out[ok] = matrix[ri[ok], ci[ok]]
    return out


def _join_omics(run: _Run, out: pd.DataFrame, scale: CopyNumberScale) -> dict[str, Any]:
    """Add ``rna_expr`` and ``gene_cn`` (relative copy number) where the release has them."""
    f = run.files
    cell_lines = sorted(out["depmap_id"].unique())
    genes = sorted(out["hugo_symbol"].unique())
    info: dict[str, Any] = {"expression": None, "copy_number": None}
    steps = [
        ("expression", f.expression, "rna_expr", ImportPhase.EXPRESSION, (0.85, 0.92)),
        ("copy_number", f.copy_number, "gene_cn", ImportPhase.COPY_NUMBER, (0.92, 0.99)),
    ]
    for key, path, column, phase, span in steps:
        if path is None:
            run.warnings.append(f"no {key.replace('_', ' ')} file in the release; '{column}' not added")
            continue
        run.progress.emit(phase, span[0], f"reading {path.name}", force=True)
        matrix = _omics_values(run, path, cell_lines, genes, column, phase, span)
        no_row = [c for c in cell_lines if matrix.loc[c].isna().all()]
        if no_row:
            run.warnings.append(
                f"{path.name}: no values for {len(no_row)} cell line(s) ({_label_list(no_row)}); '{column}' left empty"
            )
        x = _lookup(matrix, out["depmap_id"].to_numpy(), out["hugo_symbol"].to_numpy())
        note: dict[str, Any] = {"file": path.name, "column": column, "cell_lines_without_values": len(no_row)}
        if key == "expression":
            note["scale"] = "log2(TPM + 1), as in the release"
        else:
            note["source_scale"] = CN_SCALE_TEXT[scale]
            note["output_scale"] = "relative copy number (1 = the cell line's genome-wide average; 0 = none)"
            if scale is CopyNumberScale.LOG2_RELATIVE_PLUS_1:
                x = np.exp2(x) - 1.0
                note["conversion"] = "gene_cn = 2**x - 1, x the release's value"
            else:
                note["conversion"] = "none"
        out[column] = x
        info[key] = note
    return info


def import_depmap(
    release_dir: str | Path,
    genes: str | Sequence[str],
    lineages: str | Sequence[str] | None = "all",
    *,
    library: Library | str = Library.AVANA,
    cache: bool = False,
    progress: ProgressCallback | None = None,
    cn_scale: CopyNumberScale | str = CopyNumberScale.LOG2_RELATIVE_PLUS_1,
    settings: Settings | None = None,
) -> ImportResult:
    """Import the given genes and lineages from a DepMap release folder as a screen table.

    Parameters
    ----------
    release_dir
        Folder holding the release CSV files (current 22Q2+ or legacy 20Q–21Q layout, detected).
    genes
        Gene symbols (list or comma-separated text); matched exactly, else ignoring case.
    lineages
        Lineage names as written in ``Model.csv`` / ``sample_info.csv`` (matched ignoring case),
        or ``"all"``.
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
    gene_list = _requested(genes)
    if not gene_list:
        raise SelectionError(
            "no genes given; name the genes to import (e.g. KRAS,BRAF); importing every gene of a release "
            "is not supported (tens of millions of readings)"
        )
    lineage_list = _requested(lineages)

    files = find_release_files(release_dir, library)
    prog = _Progress(progress)
    prog.emit(ImportPhase.MAPS, 0.0, f"reading {files.guide_map.name}, {files.sequence_map.name}, {files.models.name}", force=True)
    t = _read_tables(files)
    seqs = _sequence_table(t)
    matched_genes, matched_lineages = _match_request(t, gene_list, lineage_list, seqs)
    data_dir = (settings or Settings.from_env()).data_dir
    run = _Run(files, prog, choose_cache_dir(files.root, [files.lfc], data_dir) if cache else None)
    guides = _select_guides(run, t, matched_genes)
    kept_seqs = _select_sequences(run, seqs, matched_lineages, all_lineages=lineage_list is None)
    t1 = time.perf_counter()
    out = _long_readings(run, t, guides, kept_seqs)
    t2 = time.perf_counter()
    omics = _join_omics(run, out, scale)
    t3 = time.perf_counter()

    out = out.sort_values(["hugo_symbol", "sgrna", "depmap_id", "replicate_id"], kind="mergesort").reset_index(drop=True)
    for col in out.columns:
        if col not in ("lfc", "rna_expr", "gene_cn"):
            out[col] = out[col].astype("str")  # missing stays missing (NaN)
    _, report = validate_screen(out.copy(), f"import of {files.root}")
    if not report.ok:  # the importer's own guarantee; a failure here is a bug or a very odd release
        raise DataValidationError(f"import of {files.root}", list(report.problems))
    prog.emit(ImportPhase.DONE, 1.0, f"imported {len(out):,} readings", force=True)

    metadata: dict[str, Any] = {
        "format": IMPORT_FORMAT,
        "format_version": IMPORT_FORMAT_VERSION,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "release_dir": str(files.root.resolve()),
        "layout": files.layout.value,
        "library": files.library.value,
        "screen": SCREEN_OF_LIBRARY[files.library],
        "files": files.as_dict(),
        "genes_requested": gene_list,
        "lineages_requested": lineage_list if lineage_list is not None else "all",
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
            f"guides kept when {t.guides.attrs.get('used_rule', 'used')}, aligned to exactly one gene "
            "and only once to it; gene symbols without Entrez ids"
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
        "timings": {
            "maps_s": round(t1 - t0, 3),
            "lfc_s": round(t2 - t1, 3),  # includes building the cache when it was built
            "omics_s": round(t3 - t2, 3),
            "total_s": round(time.perf_counter() - t0, 3),
        },
        "warnings": list(run.warnings),
    }
    return ImportResult(data=out, metadata=metadata, warnings=tuple(run.warnings))


# --------------------------------------------------------------------------- looking before importing


def inspect_release(
    release_dir: str | Path, library: Library | str = Library.AVANA, *, settings: Settings | None = None
) -> ReleaseInfo:
    """The layout, lineages (with screened cell-line counts) and genes of a release, from its small tables."""
    files = find_release_files(release_dir, library)
    t = _read_tables(files)
    status, gene = _guide_status(t.guides)
    seqs = _sequence_table(t)
    ok = seqs["in_map"].eq("both") & seqs["in_models"].eq("both") & seqs["lineage"].notna()
    if "passes_qc" in seqs.columns:
        ok &= seqs["passes_qc"].eq(True)
    lineages = seqs.loc[ok].groupby("lineage")["model_id"].nunique().sort_index()
    spec = MatrixSpec(files.lfc, tuple(t.lfc_header))
    data_dir = (settings or Settings.from_env()).data_dir
    cache_ready = any(
        cache_is_fresh(spec, cache_file_for(d, files.lfc)) for d in cache_dir_candidates(files.root, [files.lfc], data_dir)
    )
    return ReleaseInfo(
        root=files.root,
        layout=files.layout,
        library=files.library,
        files=files.as_dict(),
        lineages={str(k): int(v) for k, v in lineages.items()},
        genes=tuple(sorted(gene[status.eq("kept")].dropna().unique())),
        n_sequences=len(t.lfc_header) - 1,
        n_guides=int(status.size),
        cache_ready=cache_ready,
    )


# --------------------------------------------------------------------------- writing


def _table_suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in TABLE_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise DepMapImportError(
        f"{path}: unknown output format; end the name in {', '.join(TABLE_SUFFIXES)}"
    )


def metadata_path_for(out_path: str | Path) -> Path:
    """The sidecar JSON of an imported table: ``NAME.import.json`` beside ``NAME.parquet`` / ``NAME.csv``."""
    p = Path(out_path)
    suffix = _table_suffix(p)
    return p.with_name(p.name[: -len(suffix)] + ".import.json")


def _temp_beside(target: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    return Path(name)


def write_screen(result: ImportResult, out_path: str | Path) -> tuple[Path, Path]:
    """Write the table (Parquet or CSV/TSV by suffix) and its metadata JSON, each atomically.

    Parquet files also carry the metadata in their schema (key ``speclet.import``). Returns the
    table's and the metadata file's paths.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_path).expanduser()
    if out.is_dir():
        raise DepMapImportError(f"{out}: is a folder; give a file name such as screen.parquet")
    suffix = _table_suffix(out)
    meta_path = metadata_path_for(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataReadError(f"{out.parent}: cannot create the output folder ({exc.strerror or exc})") from None
    meta_text = json.dumps(result.metadata, indent=1, sort_keys=False, allow_nan=False)
    tmp_table: Path | None = None
    tmp_meta: Path | None = None
    try:
        tmp_table = _temp_beside(out)
        tmp_meta = _temp_beside(meta_path)
        if suffix == ".parquet":
            table = pa.Table.from_pandas(result.data, preserve_index=False)
            schema_meta = dict(table.schema.metadata or {})
            schema_meta[PARQUET_METADATA_KEY] = meta_text.encode()
            pq.write_table(table.replace_schema_metadata(schema_meta), tmp_table)
        else:
            result.data.to_csv(
                tmp_table,
                sep="\t" if suffix.startswith(".tsv") else ",",
                index=False,
                compression="gzip" if suffix.endswith(".gz") else None,
            )
        tmp_meta.write_text(meta_text + "\n")
        for tmp in (tmp_table, tmp_meta):
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp_table, out)
        os.replace(tmp_meta, meta_path)
    except OSError as exc:
        raise DataReadError(f"{out}: could not be written ({exc.strerror or exc}); nothing was written") from None
    finally:
        for leftover in (tmp_table, tmp_meta):
            if leftover is not None:
                leftover.unlink(missing_ok=True)
    return out, meta_path


def read_import_metadata(path: str | Path) -> dict[str, Any] | None:
    """The import metadata of a written table (Parquet schema, else the sidecar JSON); ``None`` if absent."""
    p = Path(path)
    if p.name.lower().endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            meta = pq.read_schema(p).metadata or {}
        except Exception:  # not our file or damaged: fall back to the sidecar
            meta = {}
        if PARQUET_METADATA_KEY in meta:
            return json.loads(meta[PARQUET_METADATA_KEY])
    try:
        sidecar = metadata_path_for(p)
    except DepMapImportError:
        return None
    if sidecar.exists():
        return json.loads(sidecar.read_text())
    return None


def save_import(result: ImportResult, settings: Settings) -> tuple[str, Path]:
    """Keep a DepMap import as Parquet under ``<data dir>/imports``; returns its screen key and path.

    The file is named by a hash of the table's content, so importing the same readings again reuses
    it. The key is ``path:<file>`` when the imports folder lies inside an allowed folder, else
    ``import-<16 hex>``.
    """
    from speclet_core.data.paths import resolve_allowed_path

    if settings.read_only:
        raise SpecletError("importing is switched off on this read-only server (SPECLET_READ_ONLY)")
    digest = hashlib.sha256("\t".join(map(str, result.data.columns)).encode())
    digest.update(pd.util.hash_pandas_object(result.data, index=False).to_numpy().tobytes())
    key = "import-" + digest.hexdigest()[:16]
    path, _ = write_screen(result, settings.data_dir / "imports" / f"{key}.parquet")
    try:
        return "path:" + str(resolve_allowed_path(str(path), settings.allowed_data_dirs)), path
    except SpecletError:
        return key, path
