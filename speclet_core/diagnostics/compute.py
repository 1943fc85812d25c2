"""Convergence diagnostics after every fit, with a plain-language verdict.

A fit is flagged (``look_closer``) when any parameter has R-hat > 1.01, bulk ESS < 400,
or there is any divergence; it is ``do_not_trust`` when the problems are gross (R-hat >
1.05, bulk ESS < 100, divergences in more than 1 % of draws, or BFMI < 0.2). An
approximate (quick) fit is never ``converged``: it is a first look only.
"""

from __future__ import annotations

import warnings
from enum import StrEnum
from typing import Any

import arviz as az
import numpy as np
import xarray as xr
from scipy import fft, stats

RHAT_FLAG = 1.01
RHAT_FAIL = 1.05
ESS_FLAG = 400.0
ESS_FAIL = 100.0
BFMI_FLAG = 0.3
BFMI_FAIL = 0.2
DIVERGENT_FAIL_FRACTION = 0.01
APPROXIMATE_REASON = "approximate: first look only ({method}); refit with method 'nuts' before trusting intervals"


# parameters per block of the vectorised diagnostics (bounds the FFT's memory)
BLOCK_VALUES = 4_000_000
MIN_DRAWS_VECTORISED = 20


class Verdict(StrEnum):
    CONVERGED = "converged"
    LOOK_CLOSER = "look_closer"
    DO_NOT_TRUST = "do_not_trust"


def _worst(values: dict[str, np.ndarray], post: xr.Dataset, *, largest: bool) -> tuple[float | None, str | None]:
    """The extreme value over every variable and element (NaN ignored) and where it is."""
    best: float | None = None
    where: str | None = None
    for name, arr in values.items():
        if arr.size == 0 or np.all(np.isnan(arr)):
            continue
        flat = int(np.nanargmax(arr) if largest else np.nanargmin(arr))
        val = float(arr.ravel()[flat])
        if best is None or (val > best if largest else val < best):
            best = val
            where = _label(post[name], flat, name)
    return best, where


def _label(da: xr.DataArray, flat: int, name: str) -> str:
    dims = da.dims[2:]
    if not dims:
        return name
    idx = np.unravel_index(flat, da.shape[2:])
    labels = [str(da.coords[d].values[i]) if d in da.coords else str(i) for d, i in zip(dims, idx, strict=True)]
    return f"{name}[{', '.join(labels)}]"


# --------------------------------------------------------------------------- vectorised R-hat / ESS
# The same estimators as ArviZ (rank-normalised split R-hat, bulk and tail ESS; Vehtari et al.
# 2021), computed for many parameters at once: ArviZ loops over elements in Python, which takes
# minutes for a gene × cell-line matrix of 30,000 elements.


def _split(x: np.ndarray) -> np.ndarray:
    """(K, chain, draw) → (K, 2·chain, draw // 2): first and last halves as separate chains."""
    half = x.shape[2] // 2
    return np.concatenate([x[:, :, :half], x[:, :, x.shape[2] - half:]], axis=1)


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Rank-normalise each parameter over all its draws (Blom offsets, average ranks for ties)."""
    k = x.shape[0]
    flat = x.reshape(k, -1)
    n = flat.shape[1]
    order = np.argsort(flat, axis=1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(n)[None, :], axis=1)
    # the normal quantile depends only on the rank: one table for every parameter
    z = stats.norm.ppf((np.arange(1, n + 1) - 0.375) / (n + 0.25))[ranks]
    ties = (np.diff(np.take_along_axis(flat, order, axis=1), axis=1) == 0).any(axis=1)
    if ties.any():  # rare for continuous draws: let scipy average the tied ranks
        tied = stats.rankdata(flat[ties], axis=1, method="average")
        z[ties] = stats.norm.ppf((tied - 0.375) / (n + 0.25))
    return z.reshape(x.shape)


def _rhat_basic(x: np.ndarray) -> np.ndarray:
    n = x.shape[2]
    chain_mean = x.mean(axis=2)
    within = x.var(axis=2, ddof=1).mean(axis=1)
    between = n * chain_mean.var(axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def _ess_basic(x: np.ndarray) -> np.ndarray:
    """Geyer's initial monotone sequence ESS of (K, chain, draw), as ``arviz.stats.diagnostics._ess``."""
    k, n_chain, n_draw = x.shape
    m = fft.next_fast_len(2 * n_draw)
    centred = x - x.mean(axis=2, keepdims=True)
    f = fft.rfft(centred, n=m, axis=2)
    acov = fft.irfft(f * np.conjugate(f), n=m, axis=2)[:, :, :n_draw] / n_draw
    mean_acov = acov.mean(axis=1)  # K × lag
    mean_var = acov[:, :, 0].mean(axis=1) * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus = var_plus + x.mean(axis=2).var(axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = 1.0 - (mean_var[:, None] - mean_acov) / var_plus[:, None]
    rho[:, 0] = 1.0
    n_pairs = (n_draw - 1) // 2
    pairs = rho[:, 0 : 2 * n_pairs : 2] + rho[:, 1 : 2 * n_pairs : 2]  # pair k = lags (2k, 2k + 1)
    # the loop in ArviZ evaluates pairs 1 .. k_max and stops after the first pair sum <= 0
    k_max = min((n_draw - 2) // 2 if (n_draw - 2) % 2 else (n_draw - 2) // 2 - 1, n_pairs - 1)
    stop = pairs[:, 1 : k_max + 1] <= 0
    k_star = np.where(stop.any(axis=1), stop.argmax(axis=1) + 1, k_max)
    last_pair_ok = pairs[np.arange(k), k_star] >= 0
    even = rho[np.arange(k), 2 * k_star]
    tail = np.where(last_pair_ok | (even > 0), even, 0.0)
    monotone = np.minimum.accumulate(pairs, axis=1)
    keep = np.arange(pairs.shape[1])[None, :] < k_star[:, None]
    tau = -1.0 + 2.0 * np.where(keep, monotone, 0.0).sum(axis=1) + tail
    total = n_chain * n_draw
    tau = np.maximum(tau, 1.0 / np.log10(total))
    ess = total / tau
    constant = (x.max(axis=(1, 2)) - x.min(axis=(1, 2))) < np.finfo(float).resolution
    ess[constant] = total
    ess[np.isnan(rho).any(axis=1) & ~constant] = np.nan
    return ess


def rhat_ess(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank-normalised split R-hat, bulk ESS and tail ESS of (chain, draw, *shape) draws, each of ``shape``."""
    chains, n_draws = draws.shape[:2]
    shape = draws.shape[2:]
    if n_draws < MIN_DRAWS_VECTORISED:  # ArviZ's loops handle the degenerate short cases
        ds = xr.Dataset({"x": (("chain", "draw", *(f"d{i}" for i in range(len(shape)))), draws)})
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore")
            return (az.rhat(ds)["x"].values, az.ess(ds, method="bulk")["x"].values,
                    az.ess(ds, method="tail")["x"].values)
    x = np.moveaxis(draws.reshape(chains, n_draws, -1), 2, 0).astype(np.float64)
    k = x.shape[0]
    rhat = np.full(k, np.nan)
    bulk = np.full(k, np.nan)
    tail = np.full(k, np.nan)
    block = max(1, BLOCK_VALUES // max(1, chains * n_draws))
    for start in range(0, k, block):
        part = x[start : start + block]
        split = _split(part)
        folded = np.abs(split - np.median(split.reshape(split.shape[0], -1), axis=1)[:, None, None])
        constant = (part.max(axis=(1, 2)) - part.min(axis=(1, 2))) < np.finfo(float).resolution
        r = np.maximum(_rhat_basic(_z_scale(split)), _rhat_basic(_z_scale(folded)))
        r[constant] = np.nan
        rhat[start : start + block] = r
        bulk[start : start + block] = _ess_basic(_z_scale(split))
        flat = part.reshape(part.shape[0], -1)
        q05, q95 = np.quantile(flat, [0.05, 0.95], axis=1)
        low = _ess_basic(_split((part <= q05[:, None, None]).astype(np.float64)))
        high = _ess_basic(_split((part <= q95[:, None, None]).astype(np.float64)))
        tail[start : start + block] = np.minimum(low, high)
    return rhat.reshape(shape), bulk.reshape(shape), tail.reshape(shape)


def _count_true(stats: xr.Dataset | None, *names: str) -> int | None:
    if stats is None:
        return None
    for name in names:
        if name in stats:
            return int(np.asarray(stats[name].values, dtype=bool).sum())
    return None


def compute_diagnostics(
    idata: az.InferenceData, *, approximate: bool = False, method: str = "NUTS"
) -> dict[str, Any]:
    """R-hat, bulk/tail ESS, divergences, BFMI and tree-depth hits of a fit, and a verdict.

    Every stored posterior variable and element is checked (constant elements, such as
    the zero deviation of a lineage with one cell line, are skipped). Returns a JSON-able
    dict: ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail`` (with the worst variables),
    ``divergences``, ``bfmi_min``, ``treedepth_hits``, ``draws``, ``chains``, ``verdict``,
    ``reasons`` and ``approximate``.
    """
    post = idata["posterior"]
    chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    stats = idata["sample_stats"] if "sample_stats" in idata.groups() else None
    out: dict[str, Any] = {
        "chains": chains,
        "draws": draws,
        "approximate": bool(approximate),
        "method": method,
        "max_rhat": None,
        "max_rhat_at": None,
        "min_ess_bulk": None,
        "min_ess_bulk_at": None,
        "min_ess_tail": None,
        "min_ess_tail_at": None,
        "divergences": None,
        "bfmi_min": None,
        "treedepth_hits": None,
    }
    if approximate:
        # draws from an approximation are independent by construction: R-hat / ESS say nothing
        out["verdict"] = Verdict.LOOK_CLOSER.value
        out["reasons"] = [APPROXIMATE_REASON.format(method=method)]
        return out

    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore")
        if chains >= 2 and draws >= 4:
            rhats, bulks, tails = {}, {}, {}
            for name, da in post.data_vars.items():
                rhats[str(name)], bulks[str(name)], tails[str(name)] = rhat_ess(
                    da.transpose("chain", "draw", ...).values
                )
            out["max_rhat"], out["max_rhat_at"] = _worst(rhats, post, largest=True)
            out["min_ess_bulk"], out["min_ess_bulk_at"] = _worst(bulks, post, largest=False)
            out["min_ess_tail"], out["min_ess_tail_at"] = _worst(tails, post, largest=False)
        if stats is not None and "energy" in stats:
            bfmi = np.asarray(az.bfmi(idata), dtype=float)
            out["bfmi_min"] = float(np.nanmin(bfmi)) if bfmi.size and not np.all(np.isnan(bfmi)) else None
    out["divergences"] = _count_true(stats, "diverging")
    out["treedepth_hits"] = _count_true(stats, "maxdepth_reached", "reached_max_treedepth")
    out["verdict"], out["reasons"] = judge(out, chains * draws)
    return out


def judge(d: dict[str, Any], total_draws: int) -> tuple[str, list[str]]:
    """Verdict and reasons from diagnostic numbers (see the module docstring for the rules)."""
    fail: list[str] = []
    flag: list[str] = []
    rhat, ess_b, ess_t = d.get("max_rhat"), d.get("min_ess_bulk"), d.get("min_ess_tail")
    div, bfmi, depth = d.get("divergences"), d.get("bfmi_min"), d.get("treedepth_hits")
    if rhat is None or ess_b is None:
        flag.append("too few draws to compute R-hat and ESS; run more draws")
    if rhat is not None and rhat > RHAT_FLAG:
        text = (
            f"R-hat {rhat:.3f} > {RHAT_FLAG} at {d.get('max_rhat_at')}: chains disagree; "
            "run more tuning and draws"
        )
        (fail if rhat > RHAT_FAIL else flag).append(text)
    if ess_b is not None and ess_b < ESS_FLAG:
        text = (
            f"bulk ESS {ess_b:.0f} < {ESS_FLAG:.0f} at {d.get('min_ess_bulk_at')}: too few independent draws; "
            "run more draws"
        )
        (fail if ess_b < ESS_FAIL else flag).append(text)
    if ess_t is not None and ess_t < ESS_FAIL:
        flag.append(f"tail ESS {ess_t:.0f} < {ESS_FAIL:.0f} at {d.get('min_ess_tail_at')}: intervals are unreliable")
    if div:
        text = (
            f"{div} divergent transition{'s' if div != 1 else ''}: the sampler missed part of the posterior; "
            "raise target_accept (e.g. 0.95) or simplify the model"
        )
        (fail if div > DIVERGENT_FAIL_FRACTION * total_draws else flag).append(text)
    if bfmi is not None and bfmi < BFMI_FLAG:
        text = f"BFMI {bfmi:.2f} < {BFMI_FLAG}: energy explores poorly (often a funnel); run longer"
        (fail if bfmi < BFMI_FAIL else flag).append(text)
    if depth:
        flag.append(f"{depth} draws hit the maximum tree depth: sampling was inefficient, results may be too")
    if fail:
        return Verdict.DO_NOT_TRUST.value, fail + flag
    if flag:
        return Verdict.LOOK_CLOSER.value, flag
    return Verdict.CONVERGED.value, []
