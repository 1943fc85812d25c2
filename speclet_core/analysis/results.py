"""Small tables the result pages chart, computed from a stored fit's summaries and draws.

Pure functions: arrays, DataFrames or ``xarray`` draws in, a DataFrame or a frozen record out.
The only files read here are the screen table and truth table a fit's request names
(``load_readings``, ``load_truth``). Every table is sized for the browser (``charts.MAX_MARKS``):
callers pick genes first, heatmaps average neighbouring cell lines of a lineage when asked
for more than ``MAX_HEATMAP_CELLS`` cells, and predictive checks histogram server-side.

Conventions: a stronger dependency is a more negative effect; intervals are highest-density
intervals (HDI) computed exactly as ``arviz.hdi`` does (``ranking.compute_hdi``).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from speclet_core.analysis.ranking import compute_hdi, describe_contrast, describe_pair
from speclet_core.errors import AnalysisError, SpecletError

INNER_PROB = 0.5
OUTER_PROB = 0.89
MAX_FOREST_ROWS = 100  # more rows than this is a wall nobody reads; pick or page instead
# Headless Chromium drew 40k heatmap cells in ~11 s on a loaded 2-core machine (docs/benchmarks/pages.md):
# 25k keeps a page of genes × 1,000 cell lines drawable in a few seconds.
MAX_HEATMAP_CELLS = 25_000
MAX_PAIRWISE_SHOWN = 30  # a 30 × 30 matrix is the most a person reads cell by cell
PPC_BINS = 40
PPC_MAX_VALUES = 4_000_000  # predicted values histogrammed per view (draws × readings)
PPC_SURPRISE = 0.01  # a statistic outside the central 98% of its predictive distribution is flagged
MAX_SCATTER_POINTS = 20_000
SAMPLE_DIMS = ("chain", "draw", "sample")
_CLEAR = 0.75  # a pairwise/contrast probability this far from 0.5 is "clear" (as ranking.describe_*)


class ForestSort(StrEnum):
    """Row order of a forest plot."""

    MEAN = "mean"  # strongest dependency (most negative) first
    NAME = "name"


class Pick(StrEnum):
    """Which labels (genes, cell lines) to show when there are too many to show all."""

    STRONGEST = "strongest"  # most negative posterior mean first
    WEAKEST = "weakest"  # most positive first
    CHOSEN = "chosen"  # the labels a person typed


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
class CovariateInfo:
    """How a model's covariate slope relates to a screen column (the transform of ``data.prepare_covariates``).

    ``column`` is the raw screen column, ``z_column`` the value the model multiplies the slope by.
    """

    slope: str
    column: str
    z_column: str
    title: str
    model_scale: str


COVARIATES: dict[str, CovariateInfo] = {
    "rna_slope": CovariateInfo("rna_slope", "rna_expr", "rna_expr_z", "RNA expression (log2 TPM+1)",
                               "z-score of expression within the gene"),
    "cn_slope": CovariateInfo("cn_slope", "gene_cn", "gene_cn_z", "copy number (log2)",
                              "log2 copy number centred within the gene"),
}


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


# --------------------------------------------------------------------------- shared helpers


def is_approximate(manifest: Mapping[str, Any]) -> bool:
    """True for quick (ADVI) fits, whose intervals are a first look only."""
    diagnostics = manifest.get("diagnostics") or {}
    sampler = (manifest.get("request") or {}).get("sampler") or {}
    return bool(diagnostics.get("approximate")) or sampler.get("method") == "quick"


def fit_label(manifest: Mapping[str, Any]) -> str:
    """A short name for a fit in pickers and legends: model, size, id prefix."""
    genes = manifest.get("genes") or []
    method = "quick" if is_approximate(manifest) else "NUTS"
    return f"{manifest.get('model', '?')} · {len(genes)} genes · {method} · {str(manifest.get('fit_id', ''))[:8]}"


def check_interval_probs(inner: float, outer: float) -> tuple[float, float]:
    """Validate the two interval masses of a forest plot (inner < outer, both in (0, 1))."""
    try:
        inner, outer = float(inner), float(outer)
    except (TypeError, ValueError):
        raise AnalysisError(f"interval masses must be numbers, got {inner!r} and {outer!r}") from None
    if not (0.0 < inner < outer < 1.0):
        raise AnalysisError(
            f"interval masses must satisfy 0 < inner < outer < 1, got inner={inner:g}, outer={outer:g}; "
            "e.g. 0.5 and 0.89"
        )
    return inner, outer


def _sample_matrix(draws: xr.DataArray, along: str) -> tuple[np.ndarray, list[str]]:
    """(sample, label) float64 matrix of draws with one labelled dim besides the sample dims."""
    if not isinstance(draws, xr.DataArray):
        raise AnalysisError(f"expected posterior draws as an xarray.DataArray, got {type(draws).__name__}")
    name = draws.name or "draws"
    dims = [str(d) for d in draws.dims]
    sample_dims = [d for d in SAMPLE_DIMS if d in dims]
    if not sample_dims:
        raise AnalysisError(f"{name} has dims {dims}; expected posterior draws with 'chain' and 'draw' dims")
    if along not in dims:
        raise AnalysisError(f"{name} has no {along!r} dim (dims {dims}); pick a variable with that dimension")
    extra = [d for d in dims if d not in (*sample_dims, along)]
    if extra:
        raise AnalysisError(f"{name} has extra dims {extra}; select one label of each first (e.g. one gene)")
    da = draws.transpose(*sample_dims, along)
    values = np.asarray(da.values, dtype=np.float64).reshape(-1, da.sizes[along])
    if values.shape[0] == 0 or values.shape[1] == 0:
        raise AnalysisError(f"{name} is empty: {dict(da.sizes)}")
    if not np.isfinite(values).all():
        raise AnalysisError(f"{name} contains NaN or infinite draws; the fit is damaged or failed, refit it")
    labels = [str(x) for x in da[along].values] if along in da.coords else [str(i) for i in range(values.shape[1])]
    return values, labels


def _close_matches(unknown: Sequence[str], known: Sequence[str], what: str) -> str:
    parts = []
    for u in list(unknown)[:8]:
        close = difflib.get_close_matches(u, list(known), n=3, cutoff=0.6)
        parts.append(repr(u) + (f" (did you mean {', '.join(close)}?)" if close else ""))
    more = f" and {len(unknown) - 8} more" if len(unknown) > 8 else ""
    return f"{len(unknown)} {what}{'s' if len(unknown) != 1 else ''} not in this fit: {', '.join(parts)}{more}"


def pick_labels(
    table: pd.DataFrame, label: str, how: Pick | str, n: int, *, chosen: Sequence[str] = (), page: int = 0
) -> list[str]:
    """Labels to show from a table with a ``mean`` column: the strongest / weakest ``n`` or the chosen ones.

    ``page`` steps through the ranking ``n`` at a time (page 0: the first ``n``). Chosen labels
    keep the order given; unknown ones raise ``AnalysisError`` with close matches.
    """
    try:
        how = Pick(how)
    except ValueError:
        raise AnalysisError(f"unknown pick {how!r}; expected one of {', '.join(p.value for p in Pick)}") from None
    labels = table[label].astype(str)
    if how is Pick.CHOSEN:
        known = set(labels)
        wanted = list(dict.fromkeys(str(c) for c in chosen))
        missing = [c for c in wanted if c not in known]
        if missing:
            raise AnalysisError(_close_matches(missing, list(labels), label.replace("_", " ")))
        return wanted[:MAX_FOREST_ROWS]
    if n < 1:
        raise AnalysisError(f"number of {label}s to show must be at least 1, got {n}")
    order = np.argsort(table["mean"].to_numpy(dtype=np.float64), kind="stable")
    if how is Pick.WEAKEST:
        order = order[::-1]
    start = max(0, int(page)) * n
    return labels.to_numpy()[order[start : start + n]].tolist()


# --------------------------------------------------------------------------- forest plots


def interval_table(draws: xr.DataArray, along: str, *, inner: float = INNER_PROB, outer: float = OUTER_PROB
                   ) -> pd.DataFrame:
    """Posterior mean, sd and two HDIs of every label along one dim.

    Returns
    -------
    DataFrame
        ``along``, mean, sd, inner_low, inner_high, outer_low, outer_high (in the draws' label order).
    """
    inner, outer = check_interval_probs(inner, outer)
    values, labels = _sample_matrix(draws, along)
    ddof = 1 if values.shape[0] > 1 else 0
    in_low, in_high = compute_hdi(values, inner, axis=0)
    out_low, out_high = compute_hdi(values, outer, axis=0)
    return pd.DataFrame({
        along: labels, "mean": values.mean(axis=0), "sd": values.std(axis=0, ddof=ddof),
        "inner_low": in_low, "inner_high": in_high, "outer_low": out_low, "outer_high": out_high,
    })


def forest_rows(
    draws: xr.DataArray,
    along: str,
    *,
    inner: float = INNER_PROB,
    outer: float = OUTER_PROB,
    sort: ForestSort | str = ForestSort.MEAN,
    lineage_of: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Rows of a forest plot: label, lineage (for colour), mean, sd, intervals, and ``order`` (0 = top).

    ``along`` is ``gene`` (the gene-level effect), or ``lineage`` / ``cell_line`` (one gene's
    effect across them); ``lineage_of`` maps cell lines to their lineage.
    """
    try:
        sort = ForestSort(sort)
    except ValueError:
        raise AnalysisError(f"unknown sort {sort!r}; expected one of {', '.join(s.value for s in ForestSort)}") from None
    rows = interval_table(draws, along, inner=inner, outer=outer).rename(columns={along: "label"})
    if along == "lineage":
        rows.insert(1, "lineage", rows["label"])
    elif lineage_of is not None:
        rows.insert(1, "lineage", rows["label"].map(lambda x: lineage_of.get(x, "unknown")))
    else:
        rows.insert(1, "lineage", "all")
    keys = ["mean", "label"] if sort is ForestSort.MEAN else ["label"]
    rows = rows.sort_values(keys, kind="stable", ignore_index=True)
    rows["order"] = np.arange(len(rows))
    rows.attrs.update(inner=float(inner), outer=float(outer), along=along)
    return rows


def subset_rows(rows: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Forest rows of ``labels`` only, keeping their order (``order`` renumbered from 0)."""
    keep = set(labels)
    out = rows[rows["label"].isin(keep)].reset_index(drop=True)
    out["order"] = np.arange(len(out))
    out.attrs.update(rows.attrs)
    return out


def load_truth(data_path: str | Path | None) -> pd.DataFrame | None:
    """The truth table beside a synthetic screen file, or None when there is none (real screens)."""
    from speclet_core.data.demo import truth_path_for

    if not data_path:
        return None
    path = truth_path_for(Path(data_path))
    if not path.is_file():
        return None
    try:
        truth = pd.read_csv(path, dtype={c: "string" for c in ("parameter", "gene", "sgrna", "cell_line", "lineage")})
    except (OSError, ValueError) as exc:
        raise AnalysisError(f"the truth table {path} could not be read ({type(exc).__name__}: {exc}); "
                            "write it again with `python -m speclet_core demo-data`, or delete it") from None
    missing = [c for c in ("parameter", "value") if c not in truth.columns]
    if missing:
        raise AnalysisError(f"the truth table {path} has no column {', '.join(missing)}; expected the columns "
                            "parameter, gene, sgrna, cell_line, lineage, value written by `demo-data`")
    return truth


def truth_values(truth: pd.DataFrame | None, parameter: str, along: str, *, gene: str | None = None) -> pd.Series:
    """True values of one parameter indexed by ``along`` labels (empty when unknown)."""
    if truth is None or along not in truth.columns:
        return pd.Series(dtype=np.float64)
    rows = truth[truth["parameter"] == parameter]
    if gene is not None and "gene" in rows.columns:
        rows = rows[rows["gene"] == gene]
    rows = rows[rows[along].notna()]
    values = pd.Series(rows["value"].to_numpy(dtype=np.float64), index=rows[along].astype(str).to_numpy())
    return values[~values.index.duplicated()]


def add_truth(rows: pd.DataFrame, truth: pd.Series) -> pd.DataFrame:
    """A copy of forest rows with a ``truth`` column (NaN where the truth does not name the label)."""
    out = rows.copy()
    out["truth"] = out["label"].map(truth).astype(np.float64)
    out.attrs.update(rows.attrs)
    return out


def recovery(rows: pd.DataFrame) -> dict[str, float]:
    """How well the intervals recover known true values: coverage of both intervals, error of the mean."""
    if "truth" not in rows.columns:
        return {"n": 0}
    known = rows[rows["truth"].notna()]
    if known.empty:
        return {"n": 0}
    t = known["truth"].to_numpy()
    inside = lambda lo, hi: float(np.mean((known[lo].to_numpy() <= t) & (t <= known[hi].to_numpy())))  # noqa: E731
    err = known["mean"].to_numpy() - t
    return {"n": len(known), "inside_inner": inside("inner_low", "inner_high"),
            "inside_outer": inside("outer_low", "outer_high"), "rmse": float(np.sqrt(np.mean(err**2))),
            "bias": float(np.mean(err))}


def describe_recovery(rec: Mapping[str, float], inner: float, outer: float, what: str = "genes") -> str:
    """One sentence on parameter recovery (empty without truth)."""
    n = int(rec.get("n", 0))
    if not n:
        return ""
    k_out, k_in = round(rec["inside_outer"] * n), round(rec["inside_inner"] * n)
    return (f"The true value lies inside the {outer:.0%} interval for {k_out} of {n} {what} ({rec['inside_outer']:.0%}) "
            f"and inside the {inner:.0%} interval for {k_in} ({rec['inside_inner']:.0%}); well-calibrated intervals "
            f"hold about {outer:.0%} and {inner:.0%}. Posterior means are off by {rec['rmse']:.2f} on average (RMSE).")


def combine_forests(rows_by_fit: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Forest rows of several fits over their shared labels, in the first fit's order, with a ``fit`` column."""
    names = list(rows_by_fit)
    if len(names) < 2:
        raise AnalysisError("comparing forests needs at least two fits")
    first = rows_by_fit[names[0]]
    shared = set(first["label"])
    for rows in rows_by_fit.values():
        shared &= set(rows["label"])
    if not shared:
        raise AnalysisError(f"the fits {', '.join(names)} share no labels to compare; pick fits of the same genes")
    order = {lab: i for i, lab in enumerate(x for x in first["label"] if x in shared)}
    parts = []
    for name, rows in rows_by_fit.items():
        part = rows[rows["label"].isin(shared)].copy()
        part["fit"] = name
        part["order"] = part["label"].map(order)
        parts.append(part)
    out = pd.concat(parts, ignore_index=True).sort_values(["order", "fit"], kind="stable", ignore_index=True)
    out.attrs.update(first.attrs)
    return out


def shrinkage_table(rows_a: pd.DataFrame, rows_b: pd.DataFrame) -> pd.DataFrame:
    """Per shared label: both means, the shift a − b, both outer-interval widths and their ratio a / b."""
    a = rows_a.set_index("label")
    b = rows_b.set_index("label")
    shared = [lab for lab in a.index if lab in b.index]
    if not shared:
        raise AnalysisError("the two fits share no labels; pick fits of the same genes")
    a, b = a.loc[shared], b.loc[shared]
    width_a = (a["outer_high"] - a["outer_low"]).to_numpy()
    width_b = (b["outer_high"] - b["outer_low"]).to_numpy()
    return pd.DataFrame({
        "label": shared, "mean_a": a["mean"].to_numpy(), "mean_b": b["mean"].to_numpy(),
        "shift": (a["mean"] - b["mean"]).to_numpy(), "width_a": width_a, "width_b": width_b,
        "width_ratio": np.divide(width_a, width_b, out=np.full(len(shared), np.nan), where=width_b > 0),
    })


def describe_shrinkage(table: pd.DataFrame, name_a: str, name_b: str) -> str:
    """Plain-language summary of how fit ``a``'s estimates differ from fit ``b``'s (pooling shows as shrinkage)."""
    n = len(table)
    narrower = int((table["width_ratio"] < 1).sum())
    ratio = float(np.nanmedian(table["width_ratio"]))
    spread_a = float(np.std(table["mean_a"], ddof=1)) if n > 1 else 0.0
    spread_b = float(np.std(table["mean_b"], ddof=1)) if n > 1 else 0.0
    text = (f"{name_a} gives a narrower interval than {name_b} for {narrower} of {n} ({narrower / n:.0%}); "
            f"the median width ratio is {ratio:.2f}. ")
    if n > 1:
        toward = "closer together" if spread_a < spread_b else "further apart"
        text += (f"Its posterior means lie {toward} (spread {spread_a:.2f} vs {spread_b:.2f})")
        text += (": partial pooling pulls noisy estimates towards the group, which is the shrinkage to expect."
                 if spread_a < spread_b else ".")
    return text


# --------------------------------------------------------------------------- heatmaps


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
        ``hdi_5.5%``, ``hdi_94.5%`` and ``p_below`` (the same index and columns).
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
        certainty (share of the column's cell lines whose 89% HDI excludes 0), n_cell_lines,
        cell_lines (their ids).
    """
    try:
        stat, order = HeatStat(stat), GeneOrder(order)
    except ValueError:
        raise AnalysisError(f"unknown heatmap option {stat!r} / {order!r}; stat is one of "
                            f"{', '.join(s.value for s in HeatStat)}, order one of {', '.join(o.value for o in GeneOrder)}"
                            ) from None
    needed = ("mean", "sd", "hdi_5.5%", "hdi_94.5%", "p_below")
    missing = [k for k in needed if k not in matrices]
    if missing:
        raise AnalysisError(f"heatmap needs the {', '.join(missing)} matrices as well")
    mean_all = matrices["mean"]
    genes = list(dict.fromkeys(str(g) for g in genes))
    unknown = [g for g in genes if g not in mean_all.index]
    if unknown:
        raise AnalysisError(_close_matches(unknown, [str(x) for x in mean_all.index], "gene"))
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
    certain = ((block["hdi_5.5%"] > 0) | (block["hdi_94.5%"] < 0)).astype(np.float64)
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
        "hdi_low": agg["hdi_5.5%"].reshape(n),
        "hdi_high": agg["hdi_94.5%"].reshape(n),
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

    A cheap stand-in for ``load_readings`` when only the colour of a cell line is needed; empty
    when the table is gone or lacks the columns.
    """
    from speclet_core.data.screen import read_table

    if not data_path or not Path(data_path).is_file():
        return {}
    table = read_table(data_path)
    if not {"depmap_id", "lineage"} <= set(table.columns):
        return {}
    pairs = table[["depmap_id", "lineage"]].dropna().astype(str)
    pairs = pairs.assign(depmap_id=pairs["depmap_id"].str.strip(), lineage=pairs["lineage"].str.strip())
    pairs = pairs[pairs["depmap_id"].isin(set(cell_lines))].drop_duplicates("depmap_id")
    return dict(zip(pairs["depmap_id"], pairs["lineage"], strict=True))


# --------------------------------------------------------------------------- readings of a fit

# sgRNA labels are not read back: no page needs them per reading, and millions of strings are slow to read
READING_LABELS = ("gene", "cell_line", "lineage")


def readings_from_constant_data(const: xr.Dataset | None, observed: np.ndarray,
                                coords: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame | None:
    """The fit's readings from the labels stored with it (``constant_data``), or None when it has none.

    ``constant_data`` holds, along ``reading``, each reading's ``gene``, ``cell_line`` and ``lineage``
    as labels, or as integer positions in the posterior's ``coords``, and the covariates as the
    model used them (``rna_expr_z``, ``gene_cn_z``).
    """
    if const is None or not all(d in const.data_vars for d in READING_LABELS):
        return None
    obs = np.asarray(observed, dtype=np.float64).ravel()
    out: dict[str, Any] = {}
    for dim in READING_LABELS:
        if dim not in const.data_vars:
            continue
        values = np.asarray(const[dim].values)
        if values.shape != obs.shape:
            raise AnalysisError(f"the fit stores {values.size:,} {dim} labels for {obs.size:,} readings; the fit is "
                                "damaged, refit it")
        if values.dtype.kind in "iu":
            labels = list((coords or {}).get(dim) or [])
            if not labels or values.min(initial=0) < 0 or values.max(initial=0) >= len(labels):
                raise AnalysisError(f"the fit stores {dim} positions without matching {dim} labels; refit it")
            out[dim] = pd.Categorical.from_codes(values, categories=pd.Index(labels).astype(str))
        else:
            out[dim] = pd.Categorical(values.astype(str))
    out["lfc"] = obs
    for col in ("rna_expr", "rna_expr_z", "gene_cn", "gene_cn_z"):
        if col in const.data_vars:
            out[col] = np.asarray(const[col].values, dtype=np.float64)
    return pd.DataFrame(out)



def load_readings(request: Mapping[str, Any], *, n_readings: int, observed: np.ndarray | None = None) -> pd.DataFrame:
    """The fit's readings in model order (reading i = row i), reloaded from the screen table it names.

    The table is re-selected exactly as at fit time and checked against the fit: same fingerprint,
    same number of readings and (when ``observed`` is given) the same LFC values, so labels can
    never be attached to the wrong readings.

    Returns
    -------
    DataFrame
        gene, cell_line, lineage, sgrna, lfc, and the covariates with their model-scale
        columns (``rna_expr``/``rna_expr_z``, ``gene_cn``/``gene_cn_z``) when the table has them.
    """
    from speclet_core.data.screen import load_screen, prepare_covariates, select_screen

    path = request.get("data_path")
    fit_hint = "per-reading views (per-gene predictive checks, covariates) need the screen table the fit was made from"
    if not path or not Path(path).is_file():
        raise AnalysisError(f"the screen table {path!r} of this fit is not on this server; {fit_hint}. "
                            "Copy the table back to that path, or refit on this server")
    selection = request.get("selection") or {}
    try:
        sel = select_screen(load_screen(path), selection.get("genes", "all"), selection.get("lineages", "all"),
                            selection.get("cell_lines", "all"))
    except SpecletError as exc:
        raise AnalysisError(f"the screen table {path} no longer matches this fit's selection ({exc}); {fit_hint}") from None
    if sel.fingerprint != request.get("data_fingerprint") or sel.n_rows != n_readings:
        raise AnalysisError(
            f"the screen table {path} changed since this fit was made (fingerprint {sel.fingerprint[:12]} vs the fit's "
            f"{str(request.get('data_fingerprint'))[:12]}, {sel.n_rows:,} vs {n_readings:,} readings); {fit_hint}. "
            "Restore the original table or refit"
        )
    data = sel.data
    if observed is not None:
        obs = np.asarray(observed, dtype=np.float64).reshape(-1)
        if obs.shape[0] != len(data) or not np.allclose(obs, data["lfc"].to_numpy(np.float64), rtol=1e-5, atol=1e-5):
            raise AnalysisError(f"the readings of {path} are not in the order this fit stored them; {fit_hint}, in the "
                                "order speclet_core.data.screen.select_screen gives. Refit to store them again")
    prepared, _ = prepare_covariates(data)
    # categorical columns, as select_screen made them: millions of readings, few distinct labels
    out = pd.DataFrame({
        "gene": data["hugo_symbol"].array, "cell_line": data["depmap_id"].array,
        "lineage": data["lineage"].array, "sgrna": data["sgrna"].array,
        "lfc": data["lfc"].to_numpy(np.float64),
    })
    for col in ("rna_expr", "rna_expr_z", "gene_cn", "gene_cn_z"):
        if col in prepared.columns:
            out[col] = prepared[col].to_numpy(np.float64)
    return out


# --------------------------------------------------------------------------- predictive checks


def reading_stride(n_samples: int, n_readings: int, *, max_values: int = PPC_MAX_VALUES) -> int:
    """Every how-many-th reading to histogram so that samples × readings stays under ``max_values``."""
    return max(1, math.ceil(n_samples * n_readings / max(max_values, 1)))


def _flat_samples(predicted: xr.DataArray | np.ndarray) -> np.ndarray:
    if isinstance(predicted, xr.DataArray):
        dims = [d for d in SAMPLE_DIMS if d in predicted.dims]
        rest = [d for d in predicted.dims if d not in dims]
        arr = np.asarray(predicted.transpose(*dims, *rest).values)
        return arr.reshape(-1, arr.shape[-1]) if arr.ndim > 1 else arr.reshape(1, -1)
    arr = np.asarray(predicted)
    return arr.reshape(1, -1) if arr.ndim == 1 else arr.reshape(-1, arr.shape[-1])


def ppc_edges(observed: np.ndarray, *others: np.ndarray, bins: int = PPC_BINS) -> np.ndarray:
    """Shared histogram edges over the central 99.8% of all values (outliers go to the edge bins)."""
    pooled = np.concatenate([np.asarray(observed, np.float64).ravel()] + [np.asarray(o, np.float64).ravel() for o in others])
    pooled = pooled[np.isfinite(pooled)]
    if pooled.size == 0:
        raise AnalysisError("no finite LFC values to compare")
    low, high = np.quantile(pooled, [0.001, 0.999])
    if not high > low:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1)


def _densities(values: np.ndarray, edges: np.ndarray, *, clip: bool = True) -> np.ndarray:
    """Per-row histogram densities (rows × bins).

    Values outside the edges count in the edge bins (``clip``), or are left out of the window
    while still counting in the total, so the shown density stays the true one (for a prior far
    wider than the data).
    """
    n_bins = len(edges) - 1
    width = edges[1] - edges[0]
    raw = np.floor((values - edges[0]) / width)
    rows = values.shape[0]
    if not clip:
        raw = np.where((raw < 0) | (raw >= n_bins), n_bins, raw)  # an overflow bin, dropped below
    idx = np.clip(raw, 0, n_bins if not clip else n_bins - 1).astype(np.int64)
    per_row = n_bins + (0 if clip else 1)
    counts = np.bincount((idx + (np.arange(rows) * per_row)[:, None]).ravel(), minlength=rows * per_row)
    return counts.reshape(rows, per_row)[:, :n_bins] / (values.shape[1] * width)


def ppc_histogram(
    observed: np.ndarray,
    predicted: xr.DataArray | np.ndarray,
    *,
    prior: xr.DataArray | np.ndarray | None = None,
    edges: np.ndarray | None = None,
    hdi_prob: float = OUTER_PROB,
) -> pd.DataFrame:
    """Observed vs predicted LFC distributions on shared bins.

    Each predicted draw (a whole replicated data set) is histogrammed on its own; the band is
    the equal-tailed ``hdi_prob`` range of those histograms per bin, so an observed bar
    outside the band is a shape the model does not reproduce.

    Returns
    -------
    DataFrame
        bin_low, bin_high, bin_mid, observed (density), predicted_mean, predicted_low,
        predicted_high, and prior_mean/low/high when ``prior`` is given.
    """
    obs = np.asarray(observed, dtype=np.float64).ravel()
    pred = _flat_samples(predicted).astype(np.float64, copy=False)
    if pred.shape[1] != obs.size:
        raise AnalysisError(f"predictions cover {pred.shape[1]:,} readings but {obs.size:,} were observed; "
                            "the fit's groups disagree, refit it")
    pri = None if prior is None else _flat_samples(prior).astype(np.float64, copy=False)
    if pri is not None and pri.shape[1] != obs.size:
        raise AnalysisError(f"prior predictions cover {pri.shape[1]:,} readings but {obs.size:,} were observed")
    if edges is None:
        edges = ppc_edges(obs, pred)  # the window of the data and the fit; a wide prior runs off its edges
    tail = (1 - hdi_prob) / 2
    out = pd.DataFrame({"bin_low": edges[:-1], "bin_high": edges[1:], "bin_mid": (edges[:-1] + edges[1:]) / 2,
                        "observed": _densities(obs.reshape(1, -1), edges)[0]})
    for name, arr in (("predicted", pred), ("prior", pri)):
        if arr is None:
            continue
        dens = _densities(arr, edges, clip=name != "prior")
        out[f"{name}_mean"] = dens.mean(axis=0)
        out[f"{name}_low"] = np.quantile(dens, tail, axis=0)
        out[f"{name}_high"] = np.quantile(dens, 1 - tail, axis=0)
    out.attrs.update(n_readings=int(obs.size), n_draws=int(pred.shape[0]), hdi_prob=hdi_prob)
    return out


PPC_STATISTICS: dict[str, Any] = {
    "mean": lambda x: x.mean(axis=-1),
    "sd": lambda x: x.std(axis=-1),
    "5% quantile": lambda x: np.quantile(x, 0.05, axis=-1),
    "95% quantile": lambda x: np.quantile(x, 0.95, axis=-1),
}


def ppc_statistics(observed: np.ndarray, predicted: xr.DataArray | np.ndarray) -> pd.DataFrame:
    """Summary statistics of the observed LFC against their predictive distribution.

    ``p_predicted_above`` is the share of replicated data sets whose statistic exceeds the
    observed one: values near 0 or 1 (outside ``PPC_SURPRISE``–(1 − ``PPC_SURPRISE``)) flag
    something the model misses. The cut is strict because four statistics are checked at once.
    """
    obs = np.asarray(observed, dtype=np.float64).ravel()
    pred = _flat_samples(predicted).astype(np.float64, copy=False)
    rows = []
    for name, fn in PPC_STATISTICS.items():
        o = float(fn(obs))
        p = fn(pred)
        above = float(np.mean(p > o))
        rows.append({"statistic": name, "observed": o, "predicted_mean": float(p.mean()),
                     "predicted_low": float(np.quantile(p, 0.025)), "predicted_high": float(np.quantile(p, 0.975)),
                     "p_predicted_above": above, "surprising": bool(above < PPC_SURPRISE or above > 1 - PPC_SURPRISE)})
    return pd.DataFrame(rows)


def describe_ppc(stats: pd.DataFrame) -> str:
    """One sentence: which statistics of the data the model reproduces, which it misses."""
    bad = stats[stats["surprising"]]
    if bad.empty:
        return ("The observed mean, spread and tails all lie within the range the fitted model predicts "
                "(98% of replicated data sets): no sign of misfit in these summaries.")
    parts = [f"{r.statistic} (observed {r.observed:.2f}, predicted {r.predicted_low:.2f} to {r.predicted_high:.2f})"
             for r in bad.itertuples()]
    return "The model does not reproduce the observed " + "; ".join(parts) + ". Consider a model with more structure."


def ppc_by_group(
    observed: np.ndarray,
    predicted: xr.DataArray | np.ndarray,
    groups: np.ndarray | pd.Series,
    chosen: Sequence[str],
    *,
    hdi_prob: float = OUTER_PROB,
    max_values: int = PPC_MAX_VALUES,
) -> pd.DataFrame:
    """``ppc_histogram`` per group (genes or lineages of the readings), on edges shared by all groups.

    Beyond ``max_values`` predicted values, every k-th reading of the chosen groups is used.
    """
    obs = np.asarray(observed).ravel()
    pred = _flat_samples(predicted)
    # integer codes: comparing millions of label strings per group would dominate the cost
    codes, uniques = pd.factorize(groups if isinstance(groups, pd.Series) else pd.Series(np.asarray(groups)))
    if codes.shape[0] != obs.size:
        raise AnalysisError(f"{codes.shape[0]:,} group labels for {obs.size:,} readings")
    code_of = {str(u): i for i, u in enumerate(uniques)}
    missing = [c for c in chosen if c not in code_of]
    if missing:
        raise AnalysisError(_close_matches(missing, sorted(code_of), "label"))
    if not chosen:
        raise AnalysisError("pick at least one gene or lineage")
    idx = np.flatnonzero(np.isin(codes, [code_of[c] for c in chosen]))
    idx = idx[:: reading_stride(pred.shape[0], idx.size, max_values=max_values)]
    obs, pred, codes = obs[idx].astype(np.float64), pred[:, idx].astype(np.float64), codes[idx]
    edges = ppc_edges(obs, pred)
    parts = []
    for c in chosen:
        m = codes == code_of[c]
        h = ppc_histogram(obs[m], pred[:, m], edges=edges, hdi_prob=hdi_prob)
        h.insert(0, "group", c)
        h["n_readings"] = int(m.sum())
        parts.append(h)
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------- covariates


def covariate_on_raw_scale(readings: pd.DataFrame, info: CovariateInfo) -> bool:
    """True when the readings carry the raw covariate (plots in its units), False for the model's scale only."""
    if info.column in readings.columns:
        return True
    if info.z_column in readings.columns:
        return False
    raise AnalysisError(f"the fit's readings have neither {info.column!r} nor {info.z_column!r}, so the "
                        f"{info.slope} cannot be drawn against them")


def covariate_title(readings: pd.DataFrame, info: CovariateInfo) -> str:
    """Axis title: the raw units, or the model's scale when only that is stored."""
    return info.title if covariate_on_raw_scale(readings, info) else f"{info.title.split(' (')[0]} ({info.model_scale})"


def covariate_scale(readings: pd.DataFrame, info: CovariateInfo) -> pd.DataFrame:
    """Per gene, how the plotted covariate maps to the model's scale (``data.prepare_covariates``'s transform).

    Returns
    -------
    DataFrame
        index gene: centre, scale, clip (model x = clip((raw' - centre) / scale, ±clip), where
        raw' is the expression itself or log2 of the copy number); the identity when the readings
        carry only the model's scale.
    """
    from speclet_core.data.screen import CN_CLIP, CN_FLOOR, RNA_CLIP

    if not covariate_on_raw_scale(readings, info):
        genes = pd.Index(pd.unique(readings["gene"].astype(str)), name="gene")
        return pd.DataFrame({"centre": 0.0, "scale": 1.0, "clip": np.inf}, index=genes)
    raw = readings[info.column].astype(np.float64)
    if info.column == "gene_cn":
        x = np.log2(raw.clip(lower=CN_FLOOR))
        centre = x.groupby(readings["gene"]).mean()
        return pd.DataFrame({"centre": centre, "scale": 1.0, "clip": CN_CLIP})
    centre = raw.groupby(readings["gene"]).mean()
    scale = raw.groupby(readings["gene"]).std().fillna(0.0)
    return pd.DataFrame({"centre": centre, "scale": scale, "clip": RNA_CLIP})


def _to_axis(raw: np.ndarray, info: CovariateInfo) -> np.ndarray:
    """Raw covariate → the plotted axis (copy number in log2, expression as it is)."""
    from speclet_core.data.screen import CN_FLOOR

    return np.log2(np.clip(raw, CN_FLOOR, None)) if info.column == "gene_cn" else raw


def _axis_to_model(x: np.ndarray, centre: float, scale: float, clip: float) -> np.ndarray:
    if not scale > 0:
        return np.zeros_like(x)
    return np.clip((x - centre) / scale, -clip, clip)


def covariate_points(readings: pd.DataFrame, info: CovariateInfo, genes: Sequence[str], *,
                     max_points: int = MAX_SCATTER_POINTS, seed: int = 0) -> pd.DataFrame:
    """Observed LFC against the covariate for the chosen genes (a fixed random subset beyond ``max_points``)."""
    raw = covariate_on_raw_scale(readings, info)
    column = info.column if raw else info.z_column
    sub = readings[readings["gene"].isin(list(genes)) & readings[column].notna()]
    if sub.empty:
        raise AnalysisError(f"no readings of {', '.join(genes)} have a {column} value")
    if len(sub) > max_points:
        sub = sub.sample(n=max_points, random_state=seed).sort_index()
    out = sub[[c for c in ("gene", "cell_line", "lineage", "sgrna", "lfc") if c in sub.columns]].copy()
    values = sub[column].to_numpy(np.float64)
    out["x"] = _to_axis(values, info) if raw else values
    return out.reset_index(drop=True)


def regression_lines(
    intercept: xr.DataArray,
    slope: xr.DataArray,
    scale: pd.DataFrame,
    x_range: Mapping[str, tuple[float, float]],
    info: CovariateInfo,
    *,
    hdi_prob: float = OUTER_PROB,
    n_grid: int = 40,
    n_lines: int = 20,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Posterior regression lines LFC = gene_effect + slope × x per gene, on the plotted axis.

    The cell-line shifts sum to zero, so this is the line of an average cell line.

    Returns
    -------
    (band, lines)
        band: gene, x, mean, low, high (HDI of the line's height at each x); lines: gene, draw,
        x, lfc for ``n_lines`` evenly spaced posterior draws (the seed notebooks' spaghetti).
    """
    a_all, genes = _sample_matrix(intercept, "gene")
    b_all, genes_b = _sample_matrix(slope, "gene")
    if genes != genes_b or a_all.shape != b_all.shape:
        raise AnalysisError("intercept and slope draws must cover the same genes and draws")
    pick = np.unique(np.linspace(0, a_all.shape[0] - 1, min(n_lines, a_all.shape[0])).round().astype(int))
    bands, lines = [], []
    for gi, gene in enumerate(genes):
        if gene not in scale.index or gene not in x_range:
            raise AnalysisError(f"no covariate values for gene {gene!r}")
        lo, hi = x_range[gene]
        grid = np.linspace(lo, hi, n_grid)
        z = _axis_to_model(grid, *scale.loc[gene, ["centre", "scale", "clip"]].astype(float))
        heights = a_all[:, gi, None] + b_all[:, gi, None] * z[None, :]  # (sample, grid)
        low, high = compute_hdi(heights, hdi_prob, axis=0)
        bands.append(pd.DataFrame({"gene": gene, "x": grid, "mean": heights.mean(axis=0), "low": low, "high": high}))
        lines.append(pd.DataFrame({"gene": gene, "draw": np.repeat(pick, n_grid), "x": np.tile(grid, len(pick)),
                                   "lfc": heights[pick].ravel()}))
    return pd.concat(bands, ignore_index=True), pd.concat(lines, ignore_index=True)


# --------------------------------------------------------------------------- rankings


def pairwise_sentences(comparison: Any, *, limit: int = 10) -> list[str]:
    """Sentences for neighbouring genes of a pairwise comparison (its genes in ranking order)."""
    genes = list(comparison.genes)
    out = []
    for a, b in zip(genes[:-1], genes[1:], strict=True):
        out.append(describe_pair(a, b, float(comparison.p_less.loc[a, b]), n_samples=comparison.n_samples))
        if len(out) >= limit:
            break
    return out


def pairwise_cells(comparison: Any) -> pd.DataFrame:
    """Long table of a pairwise comparison for a heatmap, with the sentence of every pair."""
    long = comparison.to_long()
    long["sentence"] = [describe_pair(a, b, p, n_samples=comparison.n_samples)
                        for a, b, p in zip(long["gene_a"], long["gene_b"], long["p_a_stronger"], strict=True)]
    return long


def contrast_sentences(table: pd.DataFrame, *, limit: int = 5) -> list[str]:
    """Sentences for the top rows of a lineage-contrast table (``ranking.contrast_lineage``)."""
    versus = table.attrs.get("versus")
    n = table.attrs.get("n_samples")
    return [describe_contrast(r.gene, r.lineage, float(r.p_selective), versus=versus, n_samples=n)
            for r in table.head(limit).itertuples()]


# --------------------------------------------------------------------------- model comparison


def check_same_data(manifests: Sequence[Mapping[str, Any]]) -> None:
    """Raise unless every fit was made on the same readings (LOO compares predictions of the same data)."""
    prints = {str((m.get("request") or {}).get("data_fingerprint")) for m in manifests}
    if len(prints) > 1:
        names = ", ".join(f"{fit_label(m)} (data {str((m.get('request') or {}).get('data_fingerprint'))[:8]})"
                          for m in manifests)
        raise AnalysisError(f"these fits were made on different readings, so their LOO scores cannot be compared: "
                            f"{names}; pick fits of the same screen, genes and lineages")


def loo_table(idatas: Mapping[str, Any], *, var_name: str = "lfc") -> pd.DataFrame:
    """Leave-one-out expected log predictive density (ELPD) of each fit, best first.

    Returns
    -------
    DataFrame
        fit, rank, elpd_loo, se, p_loo, elpd_diff, dse (standard error of the difference to the
        best), weight (stacking), share_bad_k (share of readings with Pareto k > 0.7).
    """
    import warnings

    import arviz as az

    if len(idatas) < 1:
        raise AnalysisError("no fits to compare")
    rows = {}
    n_obs = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pareto-k warnings are reported in the table instead
        for name, idata in idatas.items():
            if "log_likelihood" not in idata.groups():
                raise AnalysisError(f"fit {name} stored no log-likelihood (it is left out for very large fits); "
                                    "LOO needs it: refit a smaller selection")
            loo = az.loo(idata, pointwise=True, var_name=var_name)
            k = np.asarray(loo.pareto_k)
            n_obs[name] = k.size
            rows[name] = {"fit": name, "elpd_loo": float(loo.elpd_loo), "se": float(loo.se), "p_loo": float(loo.p_loo),
                          "share_bad_k": float(np.mean(k > 0.7))}
        if len(set(n_obs.values())) > 1:
            raise AnalysisError(f"the fits have different numbers of readings ({n_obs}); LOO compares fits of the "
                                "same readings")
        table = pd.DataFrame(list(rows.values()))
        if len(idatas) > 1:
            cmp = az.compare(dict(idatas), ic="loo", var_name=var_name)
            table["rank"] = table["fit"].map(cmp["rank"]).astype(int)
            table["elpd_diff"] = table["fit"].map(cmp["elpd_diff"]).astype(float)
            table["dse"] = table["fit"].map(cmp["dse"]).astype(float)
            table["weight"] = table["fit"].map(cmp["weight"]).astype(float)
        else:
            table["rank"], table["elpd_diff"], table["dse"], table["weight"] = 0, 0.0, 0.0, 1.0
    table = table.sort_values("rank", ignore_index=True)
    return table[["fit", "rank", "elpd_loo", "se", "p_loo", "elpd_diff", "dse", "weight", "share_bad_k"]]


def describe_loo(table: pd.DataFrame) -> list[str]:
    """Plain-language reading of a LOO table: which fit predicts held-out readings best, and how clearly."""
    best = table.iloc[0]
    out = [f"{best['fit']} predicts held-out readings best (ELPD {best['elpd_loo']:.1f} ± {best['se']:.1f})."]
    for r in table.iloc[1:].itertuples():
        clear = abs(r.elpd_diff) > 2 * r.dse if r.dse > 0 else abs(r.elpd_diff) > 0
        verdict = "a clear difference" if clear else "within noise: the data do not separate them"
        out.append(f"{r.fit} is worse by {abs(r.elpd_diff):.1f} ± {r.dse:.1f} ELPD ({verdict}).")
    bad = table[table["share_bad_k"] > 0]
    for r in bad.itertuples():
        out.append(f"{r.fit}: {r.share_bad_k:.1%} of readings have Pareto k > 0.7, so its LOO estimate is "
                   "unreliable for them (influential readings).")
    return out


def ranking_changes(tables: Mapping[str, pd.DataFrame], *, top_n: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """How the gene ranking changes between fits (tables from ``ranking.rank_genes``).

    Returns
    -------
    (wide, long)
        wide: gene, then ``rank: <fit>`` and ``mean: <fit>`` per fit and ``rank change`` (last fit
        minus first), genes in the first fit's order; long: gene, fit, expected_rank, mean for the
        genes in any fit's top ``top_n`` (a slope chart's data).
    """
    names = list(tables)
    if len(names) < 2:
        raise AnalysisError("comparing rankings needs at least two fits")
    shared = set(tables[names[0]]["gene"])
    for t in tables.values():
        shared &= set(t["gene"])
    if not shared:
        raise AnalysisError("the fits share no genes; compare fits of the same genes")
    first = tables[names[0]]
    genes = [g for g in first["gene"] if g in shared]
    wide = pd.DataFrame({"gene": genes})
    for name in names:
        t = tables[name].set_index("gene").loc[genes]
        # re-rank among the shared genes so fits of different gene sets stay comparable
        wide[f"rank: {name}"] = t["expected_rank"].rank(method="average").to_numpy()
        wide[f"mean: {name}"] = t["mean"].to_numpy()
    wide["rank change"] = wide[f"rank: {names[-1]}"] - wide[f"rank: {names[0]}"]
    top = set()
    for name in names:
        top |= set(wide.nsmallest(top_n, f"rank: {name}")["gene"])
    keep = wide[wide["gene"].isin(top)]
    long = pd.concat([pd.DataFrame({"gene": keep["gene"], "fit": name, "expected_rank": keep[f"rank: {name}"],
                                    "mean": keep[f"mean: {name}"]}) for name in names], ignore_index=True)
    return wide, long


def rank_agreement(wide: pd.DataFrame, names: Sequence[str], *, top_n: int = 20) -> list[str]:
    """Sentences: rank correlation and top-``top_n`` overlap between the first fit and each other."""
    a = wide[f"rank: {names[0]}"]
    out = []
    for name in names[1:]:
        b = wide[f"rank: {name}"]
        rho = float(np.corrcoef(a, b)[0, 1]) if len(wide) > 2 else float("nan")
        k = min(top_n, len(wide))
        overlap = len(set(wide.nsmallest(k, f"rank: {names[0]}")["gene"]) & set(wide.nsmallest(k, f"rank: {name}")["gene"]))
        out.append(f"{name} vs {names[0]}: rank correlation {rho:.2f}; {overlap} of the top {k} genes are the same.")
    return out
