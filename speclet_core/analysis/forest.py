"""Forest plots: posterior mean and two intervals per label, known truth, recovery and shrinkage between fits.

Pure functions: draws in (see ``draws``), a DataFrame out; ``load_truth`` reads the truth table
beside a synthetic screen. Intervals are highest-density intervals (``model_store.stats``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from model_store.stats import HDI_PROB
from speclet_core.analysis.draws import hdi_columns, sample_matrix
from speclet_core.errors import AnalysisError
from speclet_core.labels import describe_unknown

INNER_PROB = 0.5
MAX_FOREST_ROWS = 100  # more rows than this is a wall nobody reads; pick or page instead


class ForestSort(StrEnum):
    """Row order of a forest plot."""

    MEAN = "mean"  # strongest dependency (most negative) first
    NAME = "name"


class Pick(StrEnum):
    """Which labels (genes, cell lines) to show when there are too many to show all."""

    STRONGEST = "strongest"  # most negative posterior mean first
    WEAKEST = "weakest"  # most positive first
    CHOSEN = "chosen"  # the labels a person typed


def check_interval_probs(inner: float, outer: float) -> tuple[float, float]:
    """Validate the two interval masses of a forest plot (inner < outer, both in (0, 1))."""
    try:
        inner, outer = float(inner), float(outer)
    except (TypeError, ValueError):
        raise AnalysisError(f"interval masses must be numbers, got {inner!r} and {outer!r}") from None
    if not (0.0 < inner < outer < 1.0):
        raise AnalysisError(
            f"interval masses must satisfy 0 < inner < outer < 1, got inner={inner:g}, outer={outer:g}; "
            f"e.g. {INNER_PROB:g} and {HDI_PROB:g}"
        )
    return inner, outer


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
            raise AnalysisError(describe_unknown(missing, list(labels), label.replace("_", " "), "this fit"))
        return wanted[:MAX_FOREST_ROWS]
    if n < 1:
        raise AnalysisError(f"number of {label}s to show must be at least 1, got {n}")
    order = np.argsort(table["mean"].to_numpy(dtype=np.float64), kind="stable")
    if how is Pick.WEAKEST:
        order = order[::-1]
    start = max(0, int(page)) * n
    return labels.to_numpy()[order[start : start + n]].tolist()


def interval_table(draws: xr.DataArray, along: str, *, inner: float = INNER_PROB, outer: float = HDI_PROB
                   ) -> pd.DataFrame:
    """Posterior mean, sd and two HDIs of every label along one dim.

    Returns
    -------
    DataFrame
        ``along``, mean, sd, inner_low, inner_high, outer_low, outer_high (in the draws' label order).
    """
    inner, outer = check_interval_probs(inner, outer)
    values, labels = sample_matrix(draws, along)
    ddof = 1 if values.shape[0] > 1 else 0
    in_low, in_high = hdi_columns(values, inner)
    out_low, out_high = hdi_columns(values, outer)
    return pd.DataFrame({
        along: labels, "mean": values.mean(axis=0), "sd": values.std(axis=0, ddof=ddof),
        "inner_low": in_low, "inner_high": in_high, "outer_low": out_low, "outer_high": out_high,
    })


def forest_rows(
    draws: xr.DataArray,
    along: str,
    *,
    inner: float = INNER_PROB,
    outer: float = HDI_PROB,
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
