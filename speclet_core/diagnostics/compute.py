"""Convergence diagnostics after every fit: the numbers behind the verdict.

R-hat, bulk and tail ESS of the stored posterior, divergences, BFMI and tree-depth hits,
computed with the store's vectorised statistics (:mod:`model_store.stats`) and judged by
the one verdict (:mod:`.verdict`).

The verdict needs the worst R-hat and ESS, not every element's. A variable of up to
``SCREEN_ABOVE_ELEMENTS`` elements gets the exact rank-normalised statistics for every
element; a larger one (a gene × cell-line matrix) is first screened block by block with
cheap statistics of evenly thinned raw draws (split R-hat of the values and of their
distance from the mean, an ESS of both from the first autocorrelation lags), and the exact statistics are
computed for the ``SCREEN_CANDIDATES`` worst elements by each screen and every element
holding NaN. Measured at 32k elements × 4 × 1,000 draws: 11-18× faster than the exact
statistics of every element (``docs/benchmarks/sampler_memory.md``). Where some elements mix
worse than the rest (a stuck chain, a slow or heavy-tailed element) the screen finds them and
the reported worst values are the exact ones (tests/fitting/test_streaming.py); where every
element mixes alike, the worst is a noise extreme among thousands and the screen may report
the second or tenth worst instead (measured: max R-hat 1.0113 vs 1.0115, min bulk ESS 836 vs
764 — the same verdict unless a value sits at a threshold).
"""

from __future__ import annotations

from typing import Any

import arviz as az
import numpy as np
import xarray as xr

from model_store.stats import bfmi, rhat_ess
from speclet_core.diagnostics.verdict import judge

# Variables larger than this are screened before the exact statistics (see the module docstring).
SCREEN_ABOVE_ELEMENTS = 2_000
# Elements kept by each screen for the exact statistics.
SCREEN_CANDIDATES = 300
# Autocorrelation lags the screen's ESS sums, and draws per chain it looks at (thinned evenly).
SCREEN_LAGS = 6
SCREEN_DRAWS = 250
# Draws per block of elements while screening (float32: ≈ 16 MB a block).
SCREEN_BLOCK_VALUES = 4_000_000


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
        return _with_verdict(out, chains * draws, approximate=True)

    if chains >= 2 and draws >= 4:
        rhats, bulks, tails = {}, {}, {}
        for name, da in post.data_vars.items():
            rhats[str(name)], bulks[str(name)], tails[str(name)] = diagnose_variable(da)
        out["max_rhat"], out["max_rhat_at"] = _worst(rhats, post, largest=True)
        out["min_ess_bulk"], out["min_ess_bulk_at"] = _worst(bulks, post, largest=False)
        out["min_ess_tail"], out["min_ess_tail_at"] = _worst(tails, post, largest=False)
    if stats is not None and "energy" in stats:
        per_chain = bfmi(stats["energy"].transpose("chain", "draw").values)
        out["bfmi_min"] = float(np.nanmin(per_chain)) if per_chain.size and not np.all(np.isnan(per_chain)) else None
    out["divergences"] = _count_true(stats, "diverging")
    out["treedepth_hits"] = _count_true(stats, "maxdepth_reached", "reached_max_treedepth")
    return _with_verdict(out, chains * draws, approximate=False)


def diagnose_elements(da: xr.DataArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R-hat, bulk and tail ESS of every element of one variable, each shaped like one draw of it."""
    values = np.asarray(da.transpose("chain", "draw", ...).values)
    chains, draws = values.shape[:2]
    shape = values.shape[2:]
    # (chain, draw, *shape) -> (element, chain, draw), as the statistics take them
    elements = np.moveaxis(values.reshape(chains, draws, -1), 2, 0)
    rhat, bulk, tail = rhat_ess(elements)
    return rhat.reshape(shape), bulk.reshape(shape), tail.reshape(shape)


def diagnose_variable(da: xr.DataArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R-hat, bulk and tail ESS of the elements that can be the worst of one variable (NaN elsewhere).

    Exact for every element of a small variable; a large one is screened first (module docstring).
    """
    n_elem = int(np.prod(da.shape[2:], dtype=np.int64)) if da.ndim > 2 else 1
    if n_elem <= SCREEN_ABOVE_ELEMENTS:
        return diagnose_elements(da)
    values = np.asarray(da.transpose("chain", "draw", ...).values)
    chains, draws = values.shape[:2]
    shape = values.shape[2:]
    flat = values.reshape(chains, draws, -1)
    candidates = screen_candidates(flat)
    elements = np.moveaxis(flat[:, :, candidates], 2, 0)
    out = [np.full(n_elem, np.nan) for _ in range(3)]
    for arr, exact in zip(out, rhat_ess(elements), strict=True):
        arr[candidates] = exact
    return out[0].reshape(shape), out[1].reshape(shape), out[2].reshape(shape)


def screen_candidates(flat: np.ndarray) -> np.ndarray:
    """Positions of the elements of ``(chain, draw, element)`` draws that may hold the worst R-hat or ESS.

    The screens look at every ``draws // SCREEN_DRAWS``-th draw in float32: split R-hat of the values
    and of their distance from the mean, an ESS from the first ``SCREEN_LAGS`` autocorrelations
    of both and of being in a tail; elements holding NaN or infinities are always kept.
    """
    chains, draws, n_elem = flat.shape
    step = max(1, draws // SCREEN_DRAWS)
    block = max(1, SCREEN_BLOCK_VALUES // max(1, chains * (draws // step)))
    screens = np.full((5, n_elem), np.nan)
    suspect = np.zeros(n_elem, dtype=bool)
    for start in range(0, n_elem, block):
        sl = slice(start, min(n_elem, start + block))
        x = np.ascontiguousarray(np.moveaxis(flat[:, ::step, sl], 2, 0), dtype=np.float32)
        suspect[sl] = ~np.isfinite(x).all(axis=(1, 2))
        centre = x.mean(axis=(1, 2), keepdims=True)
        folded = np.abs(x - centre)
        # the tail ESS counts draws beyond the 5% and 95% quantiles: screened with the normal's
        tail = (folded > 1.645 * x.std(axis=(1, 2), keepdims=True)).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            screens[0, sl], screens[2, sl] = _screen(x)
            screens[1, sl], screens[3, sl] = _screen(folded)
            screens[4, sl] = _screen(tail)[1]
    keep = set(np.flatnonzero(suspect).tolist())
    k = min(SCREEN_CANDIDATES, n_elem)
    screens[2:] *= -1.0  # lowest ESS first
    for score in screens:
        score = np.where(np.isfinite(score), score, -np.inf)  # constant elements (no spread) cannot be worst
        keep.update(np.argpartition(score, n_elem - k)[n_elem - k:].tolist())
    return np.array(sorted(keep), dtype=np.int64)


def _screen(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split R-hat and a short-lag ESS of raw draws ``(element, chain, draw)``: cheap, for ranking only."""
    half = x.shape[2] // 2
    z = np.concatenate([x[:, :, :half], x[:, :, x.shape[2] - half:]], axis=1)
    n_elem, n_chain, n = z.shape
    chain_mean = z.mean(axis=2, dtype=np.float64)
    centred = z - chain_mean[:, :, None].astype(np.float32)
    acov0 = np.einsum("ecd,ecd->ec", centred, centred, dtype=np.float64) / n
    within = acov0.mean(axis=1) * n / (n - 1.0)
    between = chain_mean.var(axis=1, ddof=1)
    var_plus = within * (n - 1.0) / n + between
    r_hat = np.sqrt(var_plus / within)
    rho_sum = np.zeros(n_elem)
    lags = min(SCREEN_LAGS, n - 1)
    for t in range(1, lags + 1):
        acov_t = np.einsum("ecd,ecd->e", centred[:, :, : n - t], centred[:, :, t:], dtype=np.float64) / (n * n_chain)
        rho_sum += np.maximum(1.0 - (within - acov_t) / var_plus, 0.0)
    return r_hat, n_chain * n / np.maximum(1.0 + 2.0 * rho_sum, 1.0 / lags)


def _with_verdict(out: dict[str, Any], total_draws: int, *, approximate: bool) -> dict[str, Any]:
    verdict = judge(out, total_draws, approximate=approximate)
    out["verdict"] = verdict.level.value
    out["reasons"] = list(verdict.reasons)
    return out
