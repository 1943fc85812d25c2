"""Heatmaps: a gene × cell-line (or gene × lineage) posterior, cell lines grouped by lineage.

Sized for the browser: beyond ``MAX_HEATMAP_CELLS`` cells, neighbouring cell lines of a lineage
are averaged into one column.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from model_store import StoredFit
from model_store.stats import HDI_HIGH, HDI_LOW
from speclet_core.errors import AnalysisError, SpecletError
from speclet_core.labels import describe_unknown

# Headless Chromium drew 40k heatmap cells in ~11 s on a loaded 2-core machine (docs/benchmarks/pages.md):
# 25k keeps a page of genes × 1,000 cell lines drawable in a few seconds.
MAX_HEATMAP_CELLS = 25_000
MAX_HEATMAP_GENES = 200  # rows a person can still read; columns average beyond MAX_HEATMAP_CELLS instead
DEFAULT_HEATMAP_GENES = 50
HEATMAP_STATS = ("mean", "sd", HDI_LOW, HDI_HIGH, "p_below")  # the matrices a heatmap needs


class HeatStat(StrEnum):
    """What a heatmap cell's colour shows."""

    MEAN = "mean"
    SD = "sd"
    P_BELOW = "p_below"  # P(effect < threshold), threshold as stored (-0.5)


class GeneOrder(StrEnum):
    """Row order of a heatmap."""

    CLUSTER = "cluster"  # genes with similar profiles next to each other
    MEAN = "mean"  # strongest dependency first
    NAME = "name"


@dataclass(frozen=True)
class HeatmapView:
    """What a heatmap draws: ``cells`` (one row per mark), row and column order, the lineage band.

    ``per_column`` is how many cell lines each column averages (1: none averaged).
    """

    cells: pd.DataFrame
    genes: tuple[str, ...]
    columns: tuple[str, ...]
    bands: pd.DataFrame
    per_column: int
    n_columns_total: int
    stat: HeatStat


def default_heatmap_genes(n_columns: int) -> int:
    """Genes a heatmap shows by default: 50, fewer (at least 25) when that many rows would average columns."""
    return max(25, min(DEFAULT_HEATMAP_GENES, MAX_HEATMAP_CELLS // max(1, int(n_columns))))


def _cluster_order(values: np.ndarray) -> np.ndarray:
    """Leaf order of average-linkage clustering of the rows (optimal leaf ordering), NaN read as 0."""
    if values.shape[0] < 3:
        return np.arange(values.shape[0])
    from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
    from scipy.spatial.distance import pdist

    x = np.nan_to_num(values.astype(np.float64))
    dist = pdist(x, metric="euclidean")
    if not np.any(dist > 0):
        return np.arange(values.shape[0])
    tree = linkage(dist, method="average")
    if values.shape[0] <= 400:  # optimal ordering is O(n³); beyond this the plain order is close enough
        tree = optimal_leaf_ordering(tree, dist)
    return leaves_list(tree)


def heatmap_view(
    matrices: Mapping[str, pd.DataFrame],
    genes: Sequence[str],
    *,
    stat: HeatStat | str = HeatStat.MEAN,
    order: GeneOrder | str = GeneOrder.CLUSTER,
    column_lineage: Mapping[str, str] | None = None,
    max_cells: int = MAX_HEATMAP_CELLS,
) -> HeatmapView:
    """Cells of a gene × cell-line (or gene × lineage) heatmap for the chosen genes.

    Parameters
    ----------
    matrices
        Gene × column frames from ``StoredFit.matrix`` keyed by stat: ``mean``, ``sd``,
        ``HEATMAP_STATS`` (mean, sd, the HDI bounds, p_below; the same index and columns).
    genes
        Rows to show (at most ``max_cells`` in all once columns are counted).
    stat, order
        What the colour shows; how rows are ordered.
    column_lineage
        Lineage of every column (cell lines); columns are grouped by lineage, and within a
        lineage ordered by their mean over the shown genes (strongest first). ``None`` for
        gene × lineage matrices.
    max_cells
        When genes × columns exceed it, neighbouring columns of the same lineage are averaged
        (``per_column`` of them per shown column) so the browser gets at most this many cells.

    Returns
    -------
    HeatmapView
        ``cells`` has gene, column, lineage, value, mean, sd, hdi_low, hdi_high, p_below,
        certainty (share of the column's cell lines whose HDI excludes 0), n_cell_lines,
        cell_lines (their ids).
    """
    try:
        stat, order = HeatStat(stat), GeneOrder(order)
    except ValueError:
        raise AnalysisError(f"unknown heatmap option {stat!r} / {order!r}; stat is one of "
                            f"{', '.join(s.value for s in HeatStat)}, order one of {', '.join(o.value for o in GeneOrder)}"
                            ) from None
    needed = HEATMAP_STATS
    missing = [k for k in needed if k not in matrices]
    if missing:
        raise AnalysisError(f"heatmap needs the {', '.join(missing)} matrices as well")
    mean_all = matrices["mean"]
    genes = list(dict.fromkeys(str(g) for g in genes))
    unknown = [g for g in genes if g not in mean_all.index]
    if unknown:
        raise AnalysisError(describe_unknown(unknown, [str(x) for x in mean_all.index], "gene", "this fit"))
    if not genes:
        raise AnalysisError("no genes to show; pick at least one gene")
    columns = [str(c) for c in mean_all.columns]
    if len(genes) > max_cells:
        raise AnalysisError(f"{len(genes):,} genes cannot fit in {max_cells:,} cells; pick fewer genes")
    lineage = [column_lineage.get(c, "unknown") if column_lineage is not None else c for c in columns]
    block = {k: matrices[k].loc[genes].to_numpy(dtype=np.float64) for k in needed}
    col_mean = np.nanmean(block["mean"], axis=0)
    lineage_names = sorted(set(lineage))
    lin_index = np.array([lineage_names.index(x) for x in lineage])
    col_order = np.lexsort((np.array(columns), col_mean, lin_index))  # lineage, then strongest first
    per_column = max(1, math.ceil(len(genes) * len(columns) / max_cells))
    # group ids: consecutive runs of per_column columns within each lineage
    groups: list[np.ndarray] = []
    for li in range(len(lineage_names)):
        members = col_order[lin_index[col_order] == li]
        groups += [members[i : i + per_column] for i in range(0, len(members), per_column)]
    while len(genes) * len(groups) > max_cells:  # ragged lineage ends can add a few groups: widen once more
        per_column += 1
        groups = []
        for li in range(len(lineage_names)):
            members = col_order[lin_index[col_order] == li]
            groups += [members[i : i + per_column] for i in range(0, len(members), per_column)]
    n_groups = len(groups)
    labels, group_lineage, members_text, sizes = [], [], [], []
    agg = {k: np.empty((len(genes), n_groups)) for k in (*needed, "certainty")}
    certain = ((block[HDI_LOW] > 0) | (block[HDI_HIGH] < 0)).astype(np.float64)
    for j, idx in enumerate(groups):
        lin = lineage[idx[0]]
        names = [columns[i] for i in idx]
        if len(idx) == 1:
            labels.append(names[0])
        else:
            labels.append(f"{lin}: {names[0]} … {names[-1]} ({len(idx)})")
        group_lineage.append(lin)
        members_text.append(", ".join(names[:6]) + (f", … ({len(names)} in all)" if len(names) > 6 else ""))
        sizes.append(len(idx))
        for k in needed:
            agg[k][:, j] = np.nanmean(block[k][:, idx], axis=1)
        agg["certainty"][:, j] = certain[:, idx].mean(axis=1)
    if order is GeneOrder.CLUSTER:
        row_order = _cluster_order(agg[stat.value] if stat is not HeatStat.SD else agg["mean"])
    elif order is GeneOrder.MEAN:
        row_order = np.lexsort((np.array(genes), np.nanmean(block["mean"], axis=1)))
    else:
        row_order = np.argsort(np.array(genes), kind="stable")
    gene_arr = np.array(genes, dtype=object)
    n = len(genes) * n_groups
    cells = pd.DataFrame({
        "gene": np.repeat(gene_arr, n_groups),
        "column": np.tile(np.array(labels, dtype=object), len(genes)),
        "lineage": np.tile(np.array(group_lineage, dtype=object), len(genes)),
        "value": agg[stat.value].reshape(n),
        "mean": agg["mean"].reshape(n),
        "sd": agg["sd"].reshape(n),
        "hdi_low": agg[HDI_LOW].reshape(n),
        "hdi_high": agg[HDI_HIGH].reshape(n),
        "p_below": agg["p_below"].reshape(n),
        "certainty": agg["certainty"].reshape(n),
        "n_cell_lines": np.tile(np.array(sizes), len(genes)),
        "cell_lines": np.tile(np.array(members_text, dtype=object), len(genes)),
    })
    bands = pd.DataFrame({"column": labels, "lineage": group_lineage, "n_cell_lines": sizes})
    return HeatmapView(cells=cells, genes=tuple(gene_arr[row_order]), columns=tuple(labels), bands=bands,
                       per_column=per_column, n_columns_total=len(columns), stat=stat)


def cell_line_lineages(posterior: xr.Dataset | None, readings: pd.DataFrame | None = None) -> dict[str, str]:
    """Each cell line's lineage: from the posterior's ``cell_line_lineage`` coordinate, else the readings."""
    if posterior is not None and "cell_line_lineage" in posterior.coords and "cell_line" in posterior.coords:
        return dict(zip((str(c) for c in posterior["cell_line"].values),
                        (str(x) for x in posterior["cell_line_lineage"].values), strict=True))
    if readings is not None:
        pairs = readings[["cell_line", "lineage"]].drop_duplicates("cell_line")
        return dict(zip(pairs["cell_line"].astype(str), pairs["lineage"].astype(str), strict=True))
    return {}


def cell_line_lineages_from_table(data_path: str | Path | None, cell_lines: Sequence[str]) -> dict[str, str]:
    """The listed cell lines' lineages as the screen table names them (two columns read, nothing validated).

    A cheap stand-in for ``readings.load_readings`` when only the colour of a cell line is needed; empty
    when the table is gone or lacks the columns.
    """
    from speclet_core.data.reading import read_table

    if not data_path or not Path(data_path).is_file():
        return {}
    table = read_table(data_path)
    if not {"depmap_id", "lineage"} <= set(table.columns):
        return {}
    pairs = table[["depmap_id", "lineage"]].dropna().astype(str)
    pairs = pairs.assign(depmap_id=pairs["depmap_id"].str.strip(), lineage=pairs["lineage"].str.strip())
    pairs = pairs[pairs["depmap_id"].isin(set(cell_lines))].drop_duplicates("depmap_id")
    return dict(zip(pairs["depmap_id"], pairs["lineage"], strict=True))


def fit_cell_line_lineages(fit: StoredFit, readings: Callable[[], pd.DataFrame | None]) -> dict[str, str]:
    """Cell line → lineage of a stored fit: from its posterior's coordinate, else its screen table, else its readings.

    ``readings`` gives the fit's readings (or None); it is called only when the table is gone.
    """
    mapping = cell_line_lineages(fit.dataset("posterior"))
    cells = list(fit.manifest.cell_lines)
    if not mapping and cells:
        try:
            mapping = cell_line_lineages_from_table(fit.manifest.request.data_path, cells)
        except SpecletError:
            mapping = {}
    if not mapping and cells:  # the table is gone: the labels stored with the fit (slower for huge fits)
        mapping = cell_line_lineages(None, readings())
    return mapping


def with_column_labels(view: HeatmapView, labels: Mapping[str, str]) -> HeatmapView:
    """The view with its cell-line columns shown by ``labels`` (``"HT-29 (ACH-000552)"``; the id kept in ``depmap_id``).

    Columns without a label (averaged groups of cell lines, lineages) stay as they are.
    """
    if not labels:
        return view
    cells = view.cells.copy()
    cells["depmap_id"] = cells["column"].astype(str)
    cells["column"] = [labels.get(c, c) for c in cells["depmap_id"]]
    bands = view.bands.assign(column=[labels.get(str(c), str(c)) for c in view.bands["column"]])
    return replace(view, cells=cells, columns=tuple(labels.get(c, c) for c in view.columns), bands=bands)
