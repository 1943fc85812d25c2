"""Posterior (and prior) predictive checks: observed vs replicated LFC, histogrammed server-side.

Predictions are thinned once to what memory holds (``thin_predictions``), then every view uses
every k-th reading so draws × readings stays under ``PPC_MAX_VALUES``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from model_store import StoredFit
from model_store.stats import HDI_PROB
from speclet_core.analysis.draws import SAMPLE_DIMS
from speclet_core.errors import AnalysisError
from speclet_core.labels import describe_unknown

PPC_BINS = 40
PPC_MAX_VALUES = 4_000_000  # predicted values histogrammed per view (draws × readings)
PPC_CACHE_VALUES = 20_000_000  # predicted values kept in memory per fit (float32: 80 MB)
PPC_SURPRISE = 0.01  # flagged when fewer than 1% of replicated data sets fall on one side of the observed statistic


def thin_predictions(predicted: xr.DataArray, n_readings: int, *, max_values: int = PPC_CACHE_VALUES) -> np.ndarray:
    """Predictive draws (chain, draw, reading) as a float32 (sample, reading) matrix of at most ``max_values``.

    Keeps the first chains and evenly spaced draws of each, so a lazily stored array is read only
    where it is kept.
    """
    n_chain, n_draw = predicted.sizes["chain"], predicted.sizes["draw"]
    chains = max(1, min(n_chain, max_values // max(n_readings, 1)))
    per_chain = max(1, min(n_draw, max_values // max(n_readings * chains, 1)))
    draws = np.unique(np.linspace(0, n_draw - 1, per_chain).round().astype(int))
    kept = predicted.isel(chain=slice(0, chains), draw=draws).transpose("chain", "draw", "reading")
    return np.asarray(kept.values, dtype=np.float32).reshape(-1, n_readings)


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
    hdi_prob: float = HDI_PROB,
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
    tail = (1 - HDI_PROB) / 2
    for name, fn in PPC_STATISTICS.items():
        o = float(fn(obs))
        p = fn(pred)
        above = float(np.mean(p > o))
        # the page's one interval: the central HDI_PROB of the replicated statistic (as the histogram band)
        rows.append({"statistic": name, "observed": o, "predicted_mean": float(p.mean()),
                     "predicted_low": float(np.quantile(p, tail)), "predicted_high": float(np.quantile(p, 1 - tail)),
                     "p_predicted_above": above, "surprising": bool(above < PPC_SURPRISE or above > 1 - PPC_SURPRISE)})
    return pd.DataFrame(rows)


def ppc_overall(observed: np.ndarray, predicted: np.ndarray, prior: np.ndarray | None = None, *,
                max_values: int = PPC_MAX_VALUES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(histogram, statistics) over every reading, every k-th beyond ``max_values`` predicted values.

    ``predicted`` and ``prior`` are (sample, reading) matrices; the histogram's ``stride`` attr is k.
    """
    obs = np.asarray(observed).ravel()
    step = reading_stride(predicted.shape[0], obs.size, max_values=max_values)
    hist = ppc_histogram(obs[::step], predicted[:, ::step], prior=None if prior is None else prior[:, ::step])
    hist.attrs["stride"] = step
    return hist, ppc_statistics(obs[::step], predicted[:, ::step])


def ppc_by_group(
    observed: np.ndarray,
    predicted: xr.DataArray | np.ndarray,
    groups: np.ndarray | pd.Series,
    chosen: Sequence[str],
    *,
    hdi_prob: float = HDI_PROB,
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
        raise AnalysisError(describe_unknown(missing, sorted(code_of), "label", "this fit"))
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


def fit_predictions(fit: StoredFit, *, max_values: int = PPC_CACHE_VALUES
                    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(observed, posterior predictive (sample, reading) or None, prior predictive or None) of a stored fit, float32,
    each predictive thinned to ``max_values`` values."""
    observed = np.asarray(fit.dataset("observed_data")["lfc"].values, dtype=np.float32).ravel()

    def thinned(group: str) -> np.ndarray | None:
        if fit.manifest.shape_of(group, "lfc") is None:
            return None
        return thin_predictions(fit.dataset(group)["lfc"], observed.size, max_values=max_values)

    return observed, thinned("posterior_predictive"), thinned("prior_predictive")
