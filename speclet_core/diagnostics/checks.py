"""Diagnostics views of a stored fit: worst-first triage, trace / rank / energy data.

Pure functions over xarray / pandas; the Diagnostics page only renders what these return.
The thresholds that mark an element as breaking come from ``speclet_core.diagnostics.verdict``
(the fit's verdict itself is stored with it: ``verdict.verdict_of``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from model_store.stats import bfmi
from speclet_core.diagnostics.verdict import ESS_FLAG, ESS_TAIL_FLAG, RHAT_FLAG

MAX_TRACE_POINTS = 4_000  # per variable element, all chains together


STAT_COLUMNS = frozenset({"mean", "sd", "hdi_5.5%", "hdi_94.5%", "r_hat", "ess_bulk", "ess_tail", "p_below"})


def coordinate_columns(summary: pd.DataFrame) -> list[str]:
    """The summary's coordinate columns (gene, cell_line, …): everything but the variable and the statistics."""
    return [c for c in summary.columns if c not in STAT_COLUMNS and c not in ("variable", "parameter")]


def label_elements(df: pd.DataFrame) -> pd.Series:
    """Readable element names, e.g. ``gene_effect[KRAS]``, ``gene_cell_line_effect[KRAS, ACH-000001]`` (vectorised)."""
    labels = df["variable"].astype(str)
    inner = pd.Series("", index=df.index, dtype=object)
    for col in coordinate_columns(df):
        values = df[col].astype(object)
        present = values.notna() & (values.astype(str) != "")
        text = values.astype(str)
        inner = inner.where(~present, inner.where(inner == "", inner + ", ") + text)
    return labels.where(inner == "", labels + "[" + inner + "]")


def _breaks(df: pd.DataFrame) -> pd.Series:
    return (df["r_hat"] > RHAT_FLAG) | (df["ess_bulk"] < ESS_FLAG) | (df["ess_tail"] < ESS_TAIL_FLAG)


def summarise_variables(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per variable: elements, worst R-hat / ESS and how many elements break a threshold; worst first."""
    d = summary.assign(breaking=_breaks(summary))
    out = d.groupby("variable", sort=False, observed=True).agg(
        elements=("r_hat", "size"), max_r_hat=("r_hat", "max"), min_ess_bulk=("ess_bulk", "min"),
        min_ess_tail=("ess_tail", "min"), breaking=("breaking", "sum"),
    ).reset_index()
    out["variable"] = out["variable"].astype(str)
    return out.sort_values(["max_r_hat", "min_ess_bulk"], ascending=[False, True], ignore_index=True)


def rank_worst(
    summary: pd.DataFrame, k: int = 20, variables: list[str] | None = None, only_breaking: bool = False
) -> pd.DataFrame:
    """The worst ``k`` elements by R-hat (highest first), ties by bulk ESS (lowest first), with a ``parameter`` label.

    Works on millions of rows: only the candidates are sorted and labelled.
    """
    df = summary
    if variables:
        df = df[df["variable"].isin(variables)]
    if only_breaking:
        df = df[_breaks(df)]
    if df.empty:
        return df.assign(parameter=pd.Series(dtype=object))
    rhat = df["r_hat"].to_numpy(dtype=float, na_value=np.inf)
    ess = df["ess_bulk"].to_numpy(dtype=float, na_value=-np.inf)
    candidates = np.arange(len(df))
    if len(df) > 4 * k:
        cut = np.partition(rhat, len(rhat) - k)[len(rhat) - k]  # the k-th largest R-hat
        candidates = np.flatnonzero(rhat >= cut)
    order = candidates[np.lexsort((ess[candidates], -rhat[candidates]))][:k]
    worst = df.iloc[order].copy()
    worst.insert(0, "parameter", label_elements(worst).to_numpy())
    return worst


def element_selection(row: pd.Series) -> tuple[str, dict[str, Any]]:
    """(variable, coordinate selection) of one summary row, for reading its draws."""
    sel = {}
    for col in row.index:
        if col in STAT_COLUMNS or col in ("variable", "parameter"):
            continue
        value = row[col]
        if pd.notna(value) and str(value) != "":
            sel[col] = value
    return str(row["variable"]), sel


def draws_to_frame(draws: xr.DataArray, max_points: int = MAX_TRACE_POINTS) -> pd.DataFrame:
    """A (chain, draw) DataArray as a long table ``chain, draw, value``, thinned to ``max_points``."""
    if set(draws.dims) != {"chain", "draw"}:
        extra = [d for d in draws.dims if d not in ("chain", "draw")]
        raise ValueError(f"select one element first: dims {extra} remain")
    n_chain, n_draw = draws.sizes["chain"], draws.sizes["draw"]
    step = max(1, int(np.ceil(n_chain * n_draw / max_points)))
    values = np.asarray(draws.transpose("chain", "draw").values)[:, ::step]
    draw_idx = np.arange(n_draw)[::step]
    return pd.DataFrame(
        {
            "chain": np.repeat(np.arange(n_chain), len(draw_idx)).astype(str),
            "draw": np.tile(draw_idx, n_chain),
            "value": values.ravel(),
        }
    )


def divergent_draws(diverging: xr.DataArray | None) -> pd.DataFrame:
    """Positions of divergent transitions: ``chain, draw``."""
    if diverging is None:
        return pd.DataFrame({"chain": [], "draw": []})
    arr = np.asarray(diverging.transpose("chain", "draw").values, dtype=bool)
    chain, draw = np.nonzero(arr)
    return pd.DataFrame({"chain": chain.astype(str), "draw": draw})


def rank_histogram(draws: xr.DataArray, bins: int = 20) -> pd.DataFrame:
    """Rank plot data: ranks over all chains, histogram per chain (uniform when chains agree)."""
    values = np.asarray(draws.transpose("chain", "draw").values, dtype=float)
    n_chain, n_draw = values.shape
    flat = values.ravel()
    flat_ranks = np.empty(flat.size)
    flat_ranks[np.argsort(flat, kind="mergesort")] = np.arange(flat.size)
    ranks = flat_ranks.reshape(n_chain, n_draw)
    edges = np.linspace(0, flat.size, bins + 1)
    rows = []
    for c in range(n_chain):
        counts, _ = np.histogram(ranks[c], bins=edges)
        for b in range(bins):
            rows.append({"chain": str(c), "bin": b, "rank_low": edges[b], "count": int(counts[b])})
    out = pd.DataFrame(rows)
    out["expected"] = n_draw / bins
    return out


def energy_frame(energy: xr.DataArray, max_points: int = 8_000) -> pd.DataFrame:
    """Marginal energy (centred) and energy transitions, for the BFMI overlay histogram."""
    e = np.asarray(energy.transpose("chain", "draw").values, dtype=float)
    marginal = (e - e.mean(axis=1, keepdims=True)).ravel()
    transition = np.diff(e, axis=1).ravel()
    rng = np.random.default_rng(0)

    def take(x: np.ndarray) -> np.ndarray:
        return x if x.size <= max_points else rng.choice(x, size=max_points, replace=False)

    return pd.concat(
        [
            pd.DataFrame({"kind": "marginal energy", "value": take(marginal)}),
            pd.DataFrame({"kind": "energy transition", "value": take(transition)}),
        ],
        ignore_index=True,
    )


def sampler_table(sample_stats: xr.Dataset) -> pd.DataFrame:
    """Per chain: step size, mean / max tree depth, divergences, BFMI."""
    rows = []
    n_chain = sample_stats.sizes.get("chain", 0)
    has_energy = "energy" in sample_stats
    b = bfmi(sample_stats["energy"].transpose("chain", "draw").values) if has_energy else np.full(n_chain, np.nan)
    for c in range(n_chain):
        s = sample_stats.isel(chain=c)
        row: dict[str, Any] = {"chain": c}
        if "step_size" in s:
            row["step size"] = float(np.asarray(s["step_size"]).mean())
        depth_var = "tree_depth" if "tree_depth" in s else ("depth" if "depth" in s else None)
        if depth_var:
            depth = np.asarray(s[depth_var])
            row["mean tree depth"] = float(depth.mean())
            row["max tree depth"] = int(depth.max())
        if "n_steps" in s:
            row["mean gradient steps"] = float(np.asarray(s["n_steps"]).mean())
        if "diverging" in s:
            row["divergences"] = int(np.asarray(s["diverging"]).sum())
        row["BFMI"] = float(b[c])
        rows.append(row)
    return pd.DataFrame(rows)


def style_table(df: pd.DataFrame) -> Any:
    """Numbers rounded; the values that break a threshold (``verdict.BREAK_RULE``) highlighted."""
    shown = df.drop(columns=coordinate_columns(df) + ["variable"], errors="ignore")
    bad = "background-color: #f8d7da"
    styler = shown.style.format(precision=3, subset=[c for c in shown.columns if shown[c].dtype.kind == "f"])
    if "r_hat" in shown:
        styler = styler.map(lambda v: bad if v > RHAT_FLAG else "", subset=["r_hat"])
    for col, least in (("ess_bulk", ESS_FLAG), ("ess_tail", ESS_TAIL_FLAG)):
        if col in shown:
            styler = styler.map(lambda v, least=least: bad if v < least else "", subset=[col])
    return styler


def read_sample_stats(fit: Any) -> Any:
    """The fit's sampler statistics (lazily opened)."""
    return fit.dataset("sample_stats")


def read_sample_stat(fit: Any, name: str) -> Any:
    """One sampler statistic (e.g. ``diverging``, ``energy``), or None when the fit has none."""
    if not fit.manifest.has_group("sample_stats"):
        return None
    ds = fit.dataset("sample_stats")
    return ds[name].load() if name in ds else None
