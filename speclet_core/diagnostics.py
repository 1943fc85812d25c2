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

RHAT_FLAG = 1.01
RHAT_FAIL = 1.05
ESS_FLAG = 400.0
ESS_FAIL = 100.0
BFMI_FLAG = 0.3
BFMI_FAIL = 0.2
DIVERGENT_FAIL_FRACTION = 0.01
APPROXIMATE_REASON = "approximate: first look only ({method}); refit with method 'nuts' before trusting intervals"


class Verdict(StrEnum):
    CONVERGED = "converged"
    LOOK_CLOSER = "look_closer"
    DO_NOT_TRUST = "do_not_trust"


def _worst(values: xr.Dataset, *, largest: bool) -> tuple[float | None, str | None]:
    """The extreme value over every variable and element (NaN ignored) and where it is."""
    best: float | None = None
    where: str | None = None
    for name, da in values.data_vars.items():
        arr = np.asarray(da.values, dtype=float)
        if arr.size == 0 or np.all(np.isnan(arr)):
            continue
        flat = int(np.nanargmax(arr) if largest else np.nanargmin(arr))
        val = float(arr.ravel()[flat])
        if best is None or (val > best if largest else val < best):
            best = val
            where = _label(da, flat, str(name))
    return best, where


def _label(da: xr.DataArray, flat: int, name: str) -> str:
    if da.ndim == 0:
        return name
    idx = np.unravel_index(flat, da.shape)
    labels = [str(da.coords[d].values[i]) if d in da.coords else str(i) for d, i in zip(da.dims, idx, strict=True)]
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
    post = idata.posterior
    chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    stats = idata.sample_stats if "sample_stats" in idata.groups() else None
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
        if chains * draws >= 8:
            out["max_rhat"], out["max_rhat_at"] = _worst(az.rhat(post), largest=True)
            out["min_ess_bulk"], out["min_ess_bulk_at"] = _worst(az.ess(post, method="bulk"), largest=False)
            out["min_ess_tail"], out["min_ess_tail_at"] = _worst(az.ess(post, method="tail"), largest=False)
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
