"""Parameter recovery: the truth of exactly what a fit saw, and whether intervals cover it as promised.

A synthetic screen's truth table (``data.synthetic``) describes the whole screen: its
``gene_effect`` is the gene's average over *all* lineages and cell lines. A fit of a subset (three
of six lineages, some cell lines) estimates the average over the part it saw, so its truth is
recomputed here from the generating means of the readings it saw:

    cell mean[g, c]    = gene_cell_line_effect[g, c] + cell_line_effect[c] + mean of gene g's sgRNA effects
    lineage mean[g, l] = mean of cell mean[g, c] over the seen cell lines c of lineage l

and then, for what each model's variable estimates (see ``models.catalog``):

- ``gene_effect``: the mean of the lineage means over the seen lineages (models with a gene ×
  lineage level: every lineage counts once) or of the cell means over the seen cell lines (models
  without one: every cell line counts once);
- ``gene_lineage_effect`` / ``gene_cell_line_effect``: the lineage / cell mean; a model that also
  has a ``cell_line_effect`` (the flagship) keeps the cell lines' shifts there, so they are taken
  out, less their average over the seen lineages (which the gene effect carries).

On the whole screen these reduce to the truth table's ``gene_effect``. Coverage is judged against
Binomial(n, p): ``k`` of ``n`` true values inside p-intervals is out of line below the
``TAIL`` quantile (too narrow, or a mismatch) or above the ``1 − TAIL`` one (too wide).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from model_store.manifest import FitManifest
from speclet_core.analysis.forest import load_truth, truth_values
from speclet_core.errors import AnalysisError

TAIL = 0.01  # a coverage count beyond this binomial quantile on either side is flagged


def seen_cell_lines(truth: pd.DataFrame, manifest: FitManifest) -> list[str]:
    """The cell lines a fit saw: stored with the fit, else the truth's cell lines in the fit's selection."""
    if manifest.cell_lines:
        return [str(c) for c in manifest.cell_lines]
    cells = truth[truth["parameter"] == "cell_line_effect"]
    selection = manifest.request.selection
    # a model without lineage or cell-line dims stores no such labels: its request's selection says what it saw
    lineages = manifest.lineages or _chosen(selection.get("lineages"))
    if lineages:
        cells = cells[cells["lineage"].isin(set(lineages))]
    chosen = _chosen(selection.get("cell_lines"))
    if chosen:
        cells = cells[cells["cell_line"].isin(set(chosen))]
    return cells["cell_line"].astype(str).tolist()


def _chosen(value: Any) -> tuple[str, ...]:
    """Labels a stored selection names, or () for "all"."""
    if value is None or isinstance(value, str):
        return ()
    return tuple(str(v) for v in value)


def truth_for_fit(truth: pd.DataFrame | None, manifest: FitManifest, parameter: str, along: str, *,
                  gene: str | None = None) -> pd.Series:
    """True values of ``parameter`` over what the fit saw, indexed by ``along`` labels (empty when unknown).

    ``parameter`` is a role's variable (``gene_effect``, ``gene_lineage_effect``,
    ``gene_cell_line_effect``) or any other truth-table parameter (e.g. a slope, taken as it is).
    """
    if truth is None:
        return pd.Series(dtype=np.float64)
    if parameter not in {"gene_effect", "gene_lineage_effect", "gene_cell_line_effect"}:
        return truth_values(truth, parameter, along, gene=gene)
    table = _cell_means(truth, manifest, [gene] if gene else list(manifest.genes))
    if table is None:
        return pd.Series(dtype=np.float64)
    cell_mean, cell_shift, lineage_of = table
    lineages = [lin for lin in dict.fromkeys(lineage_of.to_numpy()) if not manifest.lineages
                or lin in set(manifest.lineages)]
    lineage_mean = cell_mean.T.groupby(lineage_of).mean().T[lineages]  # gene × lineage
    lineage_shift = cell_shift.groupby(lineage_of).mean()[lineages]
    separates_cells = "cell_line_effect" in manifest.groups.get("posterior", {})
    common = float(lineage_shift.mean())
    if parameter == "gene_effect":
        lineage_level = bool(manifest.roles.gene_lineage_effect)
        values = lineage_mean.mean(axis=1) if lineage_level else cell_mean.mean(axis=1)
        return _one(values, along, "gene")
    if parameter == "gene_lineage_effect":
        if separates_cells:
            lineage_mean = lineage_mean - (lineage_shift - common)
        return _one(lineage_mean.loc[gene] if gene else lineage_mean.stack(), along, "lineage")
    if separates_cells:
        cell_mean = cell_mean - (cell_shift - common)
    return _one(cell_mean.loc[gene] if gene else cell_mean.stack(), along, "cell_line")


def _one(values: pd.Series, along: str, label: str) -> pd.Series:
    if along != label or isinstance(values.index, pd.MultiIndex):
        return pd.Series(dtype=np.float64)
    return values.astype(np.float64)


def _cell_means(truth: pd.DataFrame, manifest: FitManifest, genes: Sequence[str]
                ) -> tuple[pd.DataFrame, pd.Series, pd.Series] | None:
    """(cell mean gene × cell line, cell-line shift, lineage of each cell line) over the seen cells, or None."""
    cells = seen_cell_lines(truth, manifest)
    t = truth
    gc = t[(t["parameter"] == "gene_cell_line_effect") & t["gene"].isin(set(genes)) & t["cell_line"].isin(set(cells))]
    cl = t[(t["parameter"] == "cell_line_effect") & t["cell_line"].isin(set(cells))]
    if gc.empty or cl.empty:
        return None
    matrix = gc.pivot_table(index="gene", columns="cell_line", values="value")
    shift = cl.set_index("cell_line")["value"].astype(np.float64)
    shift = shift[~shift.index.duplicated()].reindex(matrix.columns)
    lineage_of = cl.drop_duplicates("cell_line").set_index("cell_line")["lineage"].reindex(matrix.columns)
    sg = t[(t["parameter"] == "sgrna_effect") & t["gene"].isin(set(genes))]
    guide_mean = sg.groupby("gene")["value"].mean().reindex(matrix.index).fillna(0.0)
    cell_mean = matrix.add(shift, axis=1).add(guide_mean, axis=0)
    return cell_mean, shift, lineage_of


def load_truth_for_fit(manifest: FitManifest, parameter: str, along: str, *, gene: str | None = None) -> pd.Series:
    """``truth_for_fit`` of the truth table beside the fit's screen (empty for real screens)."""
    return truth_for_fit(load_truth(manifest.request.data_path), manifest, parameter, along, gene=gene)


def coverage_range(n: int, prob: float, tail: float = TAIL) -> tuple[int, int]:
    """The counts of true values inside ``prob``-intervals that Binomial(n, prob) makes unremarkable."""
    if n < 0 or not 0.0 < prob < 1.0:
        raise AnalysisError(f"coverage needs n ≥ 0 and 0 < prob < 1, got n={n}, prob={prob}")
    low = int(stats.binom.ppf(tail, n, prob))
    high = int(stats.binom.isf(tail, n, prob))
    # ppf gives the smallest k with P(K ≤ k) ≥ tail: a count below it is out of line; likewise above isf
    return low, max(high, low)


def coverage_problem(n: int, k: int, prob: float, tail: float = TAIL) -> str:
    """Empty when ``k`` of ``n`` inside ``prob``-intervals is as promised, else what is wrong (one clause)."""
    if n == 0:
        return ""
    low, high = coverage_range(n, prob, tail)
    if k < low:
        return (f"only {k} of {n} true values lie inside the {prob:.0%} intervals, fewer than {prob:.0%} intervals "
                f"should hold ({low}–{high} would be unremarkable): the intervals are too narrow or the fit does "
                "not estimate what the truth describes")
    if k > high:
        return (f"{k} of {n} true values lie inside the {prob:.0%} intervals, more than {prob:.0%} intervals should "
                f"hold ({low}–{high} would be unremarkable): the intervals are wider than they need to be")
    return ""
