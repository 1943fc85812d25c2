"""Model-scale columns of a selection: scaled covariates (expression, copy number), biomarkers and batches.

``prepare_covariates`` scales expression and copy number within gene and records the transform;
``read_marker`` / ``marker_covariate`` turn a marker column (``is_mutated:KRAS``) into each cell
line's marked status, centred within lineage; ``batch_column`` names the column of a batch term.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from speclet_core.data.selection import ScreenSelection
from speclet_core.errors import SelectionError

# Clips keep a few extreme cell lines from dominating a gene's covariate slope; the floor keeps log2 finite.
RNA_CLIP = 5.0
CN_CLIP = 2.0
CN_FLOOR = 0.01


def prepare_covariates(data: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Scale covariates within gene, and record the transform.

    ``rna_expr`` → ``rna_expr_z``: z-scored within gene, clipped to ±5, missing → 0
    (the gene's mean). ``gene_cn`` → ``gene_cn_z``: log2(max(cn, 0.01)) centred within
    gene, clipped to ±2, missing → 0.
    """
    out = data.copy()
    transforms: dict[str, dict[str, Any]] = {}
    gene = out["hugo_symbol"].astype(str)
    if "rna_expr" in out.columns:
        x = out["rna_expr"].astype(float)
        mean = x.groupby(gene).transform("mean")
        sd = x.groupby(gene).transform("std").fillna(0.0)
        z = ((x - mean) / sd.where(sd > 0, np.nan)).fillna(0.0).clip(-RNA_CLIP, RNA_CLIP)
        out["rna_expr_z"] = z.to_numpy()
        transforms["rna_expr"] = {
            "output": "rna_expr_z",
            "method": "z-score within gene",
            "clip": [-RNA_CLIP, RNA_CLIP],
            "missing_filled_with_gene_mean": int(x.isna().sum()),
        }
    if "gene_cn" in out.columns:
        x = np.log2(out["gene_cn"].astype(float).clip(lower=CN_FLOOR))
        centred = (x - x.groupby(gene).transform("mean")).fillna(0.0).clip(-CN_CLIP, CN_CLIP)
        out["gene_cn_z"] = centred.to_numpy()
        transforms["gene_cn"] = {
            "output": "gene_cn_z",
            "method": f"log2(max(copy number, {CN_FLOOR})) centred within gene",
            "clip": [-CN_CLIP, CN_CLIP],
            "missing_filled_with_gene_mean": int(out["gene_cn"].isna().sum()),
        }
    return out, transforms


# --------------------------------------------------------------------------- biomarker and batch columns

# Columns a model option adds to a selection (``mark_selection``, ``assign_batch``).
MARKED = "marked"  # 1.0 in a marked cell line, 0.0 otherwise
MARKER_X = "marker_x"  # ``marked`` centred within lineage: the biomarker model's covariate
BATCH = "batch"  # the batch (screen, pDNA batch) of each reading, as text
NO_BATCH = "all"  # the one batch of a fit without a batch term

# Cell texts that mark a cell line (anything else, missing included, leaves it unmarked).
TRUE_TEXTS = frozenset({"true", "t", "yes", "y", "1", "1.0", "mutated", "mutant", "mut", "positive", "pos"})
FALSE_TEXTS = frozenset({"false", "f", "no", "n", "0", "0.0", "wt", "wild_type", "wildtype", "wild-type",
                         "negative", "neg", "not_mutated"})
# A column with more distinct values than this is no marker (an id, a number).
MAX_MARKER_VALUES = 20
MAX_BATCHES = 50
# Columns the screen table must have or that carry readings: never markers.
_NOT_MARKERS = frozenset({"sgrna", "hugo_symbol", "depmap_id", "lineage", "lfc", "rna_expr", "gene_cn",
                          "replicate_id", "counts_final", "counts_initial", "sgrna_target_pos",
                          "genome_alignment", MARKED, MARKER_X, BATCH, "rna_expr_z", "gene_cn_z",
                          "screen", "pdna_batch", "sgrna_target_chr"})
# Columns that identify or measure readings: never batches.
_NOT_BATCHES = frozenset({"sgrna", "hugo_symbol", "depmap_id", "lineage", "lfc", "rna_expr", "gene_cn",
                          MARKED, MARKER_X, BATCH})


@dataclass(frozen=True)
class MarkerChoice:
    """What marks a cell line: ``COLUMN``, ``COLUMN:GENE`` (that gene's rows) and/or ``=VALUE``."""

    column: str
    gene: str | None = None
    value: str | None = None

    @property
    def label(self) -> str:
        """The choice written as on the command line (``is_mutated:KRAS``)."""
        return self.column + (f":{self.gene}" if self.gene else "") + (f"={self.value}" if self.value else "")


@dataclass(frozen=True)
class CellLineMarker:
    """The marker of each selected cell line, and how it was read."""

    choice: MarkerChoice
    marked: pd.Series  # bool, index: cell line id
    n_missing: int  # cell lines whose marker value was missing (left unmarked)

    def describe(self) -> dict[str, Any]:
        """JSON-able summary (kept with the fit)."""
        return {
            "biomarker": self.choice.label,
            "marked_cell_lines": [str(c) for c in self.marked.index[self.marked]],
            "unmarked_cell_lines": [str(c) for c in self.marked.index[~self.marked]],
            "missing_left_unmarked": self.n_missing,
        }


def parse_marker(text: str) -> MarkerChoice:
    """``COLUMN``, ``COLUMN:GENE``, ``COLUMN=VALUE`` or ``COLUMN:GENE=VALUE`` as a ``MarkerChoice``."""
    raw = str(text or "").strip()
    rest, _, value = raw.partition("=")
    column, _, gene = rest.partition(":")
    column, gene, value = column.strip(), gene.strip(), value.strip()
    if not column or (":" in rest and not gene) or ("=" in raw and not value):
        raise SelectionError(
            f"biomarker {raw!r}: write COLUMN (a true/false column), COLUMN:GENE (that gene's rows, e.g. "
            "is_mutated:KRAS) or COLUMN=VALUE (e.g. primary_or_metastasis=metastasis)"
        )
    return MarkerChoice(column=column, gene=gene or None, value=value or None)


def _text(values: pd.Series) -> pd.Series:
    """Cell values as stripped lower-case text, missing as <NA>."""
    return values.astype("string").str.strip().str.lower()


def marker_columns(data: pd.DataFrame) -> dict[str, str]:
    """Columns that can mark cell lines, each with how to use it (``COLUMN`` or ``COLUMN:GENE``)."""
    out: dict[str, str] = {}
    cell = data["depmap_id"].astype(str)
    for col in data.columns:
        if col in _NOT_MARKERS or str(col).endswith("_z"):
            continue
        text = _text(data[col])
        n_values = text.nunique(dropna=True)
        if not 2 <= n_values <= MAX_MARKER_VALUES:
            continue
        per_cell = text.groupby(cell).nunique(dropna=True)
        usage = f"{col}:GENE" if (per_cell > 1).any() else col
        if not set(text.dropna().unique()) <= TRUE_TEXTS | FALSE_TEXTS:
            usage += "=VALUE"
        out[str(col)] = usage
    return out


def _match_column(data: pd.DataFrame, column: str, what: str, choices: dict[str, str]) -> str:
    by_lower = {str(c).lower(): str(c) for c in data.columns}
    found = by_lower.get(column.lower())
    if found is None or found not in choices:
        listed = ", ".join(choices.values()) or "none"
        reason = "is not a column of the screen table" if found is None else "cannot mark cell lines"
        raise SelectionError(f"{what} column '{column}' {reason}; columns that can: {listed}")
    return found


def read_marker(data: pd.DataFrame, text: str, cell_lines: Sequence[str]) -> CellLineMarker:
    """Which of ``cell_lines`` the marker ``text`` marks, read from the whole screen table ``data``.

    A plain ``COLUMN`` must hold one value per cell line (true/false texts, or use ``=VALUE``); a
    column that describes each gene in a cell line (``is_mutated``) needs the gene: ``is_mutated:KRAS``
    marks the cell lines in which KRAS's rows are true (the gene need not be among the fitted genes).
    Missing values leave a cell line unmarked (DepMap tables write "not mutated" as missing in
    hotspot columns); a cell line with no rows of the gene is an error.
    """
    choice = parse_marker(text)
    choices = marker_columns(data)
    column = _match_column(data, choice.column, "biomarker", choices)
    choice = MarkerChoice(column=column, gene=choice.gene, value=choice.value)
    rows = data
    if choice.gene is not None:
        genes = data["hugo_symbol"].astype(str)
        wanted = {g.lower(): g for g in genes.unique()}.get(choice.gene.lower())
        if wanted is None:
            raise SelectionError(
                f"biomarker '{choice.label}': gene '{choice.gene}' is not in the screen table; name a screened gene"
            )
        choice = MarkerChoice(column=column, gene=wanted, value=choice.value)
        rows = data[genes == wanted]
    text_values = _text(rows[column])
    if choice.value is not None:
        hit = text_values == choice.value.lower()
        if not hit.fillna(False).any():
            seen = ", ".join(sorted(text_values.dropna().unique())[:MAX_MARKER_VALUES])
            raise SelectionError(f"biomarker '{choice.label}': no row has {column} = {choice.value!r}; values: {seen}")
    else:
        odd = sorted(set(text_values.dropna().unique()) - TRUE_TEXTS - FALSE_TEXTS)
        if odd:
            raise SelectionError(
                f"biomarker '{choice.label}': column '{column}' is not true/false (values include "
                f"{', '.join(odd[:5])}); say which value marks a cell line: --biomarker {column}=VALUE"
            )
        hit = text_values.isin(TRUE_TEXTS)
    cell = rows["depmap_id"].astype(str)
    frame = pd.DataFrame({"cell": cell.to_numpy(), "hit": hit.fillna(False).to_numpy(dtype=bool),
                          "missing": text_values.isna().to_numpy(), "value": text_values.fillna("").to_numpy()})
    if choice.gene is None:
        varies = frame[~frame["missing"]].groupby("cell")["value"].nunique()
        if (varies > 1).any():
            example = varies.index[varies > 1][0]
            raise SelectionError(
                f"biomarker '{choice.label}': column '{column}' differs between rows of the same cell line (e.g. "
                f"{example}): it describes each gene there; name the gene whose status marks a cell line, e.g. "
                f"--biomarker {column}:KRAS"
            )
    per_cell = frame.groupby("cell").agg(hit=("hit", "any"), missing=("missing", "all"))
    wanted_cells = [str(c) for c in cell_lines]
    absent = [c for c in wanted_cells if c not in per_cell.index]
    if absent:
        raise SelectionError(
            f"biomarker '{choice.label}': {len(absent)} selected cell line(s) have no rows of {choice.gene or column} "
            f"({', '.join(absent[:5])}), so their status is unknown; leave them out with --cell-lines"
        )
    per_cell = per_cell.loc[wanted_cells]
    marked = per_cell["hit"].astype(bool)
    return CellLineMarker(choice=choice, marked=marked, n_missing=int((per_cell["missing"] & ~marked).sum()))


def marker_covariate(marked: np.ndarray, lineage_of: np.ndarray, n_lineages: int) -> np.ndarray:
    """Per cell line: its marker (0/1) minus the share of marked cell lines in its lineage.

    Centred within lineage, the marker contrast is learned only from cell lines of the same
    lineage, so it is never a lineage difference in disguise; a lineage whose cell lines are all
    marked (or all unmarked) gets 0 and does not inform it.
    """
    marked = np.asarray(marked, dtype=np.float64)
    counts = np.bincount(lineage_of, minlength=n_lineages).astype(np.float64)
    share = np.bincount(lineage_of, weights=marked, minlength=n_lineages) / np.maximum(counts, 1.0)
    return marked - share[lineage_of]


def batch_column(data: pd.DataFrame, column: str) -> str:
    """The screen-table column named by ``--batch`` (``screen``, ``pdna_batch``, …), or a clear error."""
    by_lower = {str(c).lower(): str(c) for c in data.columns}
    found = by_lower.get(str(column).strip().lower())
    if found == "p_dna_batch" or str(column).strip().lower() == "p_dna_batch":
        found = by_lower.get("pdna_batch", found)
    candidates = [c for c in ("screen", "pdna_batch") if c in data.columns]
    if found is None or found in _NOT_BATCHES:
        raise SelectionError(
            f"batch column '{column}' is not a column of the screen table that can hold batches; "
            f"columns that can: {', '.join(candidates) or 'none (the table has no screen or pdna_batch column)'}"
        )
    return found


def _refingerprint(sel: ScreenSelection, data: pd.DataFrame, *parts: str) -> ScreenSelection:
    """The selection with new columns and a fingerprint that also covers what they were made from."""
    h = hashlib.sha256(sel.fingerprint.encode())
    for part in parts:
        h.update(b"\x1e" + part.encode())
    return dataclasses.replace(sel, data=data, fingerprint=h.hexdigest())


def mark_selection(screen_data: pd.DataFrame, sel: ScreenSelection, text: str) -> tuple[ScreenSelection, CellLineMarker]:
    """The selection with ``marked`` and ``marker_x`` per reading, read from the whole screen table.

    The fingerprint then covers the marker's name and which cell lines it marks, so a changed
    marker column gives a different fit. Raises ``SelectionError`` when no lineage of the
    selection has both marked and unmarked cell lines (the contrast would not be identified).
    """
    marker = read_marker(screen_data, text, sel.cell_lines)
    marked = marker.marked.to_numpy(dtype=bool)
    lineage_of = sel.cell_line_lineage
    mixed = [sel.lineages[k] for k in range(len(sel.lineages))
             if 0 < marked[lineage_of == k].sum() < (lineage_of == k).sum()]
    if not mixed:
        raise SelectionError(
            f"biomarker '{marker.choice.label}' marks {int(marked.sum())} of the {len(marked)} selected cell lines, "
            "and no lineage has both marked and unmarked cell lines, so marked and unmarked cannot be compared "
            "within a lineage; select cell lines or lineages with both"
        )
    x = marker_covariate(marked, lineage_of, len(sel.lineages))
    c = sel.index("depmap_id")
    data = sel.data.copy()
    data[MARKED] = marked[c].astype(np.float64)
    data[MARKER_X] = x[c]
    labels = ",".join(np.asarray(sel.cell_lines)[marked])
    return _refingerprint(sel, data, "biomarker", marker.choice.label, labels), marker


def assign_batch(sel: ScreenSelection, column: str | None) -> ScreenSelection:
    """The selection with a ``batch`` label per reading: the values of ``column``, or one batch without it.

    Raises ``SelectionError`` for a column with missing values, a single value in the selection
    (nothing to shift) or more than ``MAX_BATCHES`` values.
    """
    data = sel.data.copy()
    if column is None:
        data[BATCH] = NO_BATCH
        return dataclasses.replace(sel, data=data)
    col = batch_column(data, column)
    values = data[col].astype("string").str.strip()
    missing = values.isna() | (values == "")
    if missing.any():
        raise SelectionError(
            f"batch column '{col}' is missing in {int(missing.sum())} of {len(values)} selected readings; "
            "fill it in or fit without --batch"
        )
    levels = sorted(values.unique())
    if len(levels) < 2:
        raise SelectionError(
            f"batch column '{col}' has one value in the selection ({levels[0]}): there is nothing to shift; "
            "fit without --batch"
        )
    if len(levels) > MAX_BATCHES:
        raise SelectionError(
            f"batch column '{col}' has {len(levels)} values, more than {MAX_BATCHES}; it looks like an id, not a batch"
        )
    data[BATCH] = values.astype(str).to_numpy()
    return _refingerprint(sel, data, "batch", col)
