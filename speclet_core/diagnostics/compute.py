"""Convergence diagnostics after every fit: the numbers behind the verdict.

R-hat, bulk and tail ESS of every stored posterior element, divergences, BFMI and
tree-depth hits, computed with the store's vectorised statistics
(:mod:`model_store.stats`) and judged by the one verdict (:mod:`.verdict`).
"""

from __future__ import annotations

from typing import Any

import arviz as az
import numpy as np
import xarray as xr

from model_store.stats import bfmi, rhat_ess
from speclet_core.diagnostics.verdict import judge


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
            rhats[str(name)], bulks[str(name)], tails[str(name)] = diagnose_elements(da)
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


def _with_verdict(out: dict[str, Any], total_draws: int, *, approximate: bool) -> dict[str, Any]:
    verdict = judge(out, total_draws, approximate=approximate)
    out["verdict"] = verdict.level.value
    out["reasons"] = list(verdict.reasons)
    return out
