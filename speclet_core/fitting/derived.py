"""Quantities derived from a posterior with numpy: predictions, posterior predictive, log-likelihood, prior.

Predictions come from each model's declared linear predictor (``ModelSpec.predictor``) and
the stored variables, and the reading distribution from its declared ``likelihood`` and
``noise``, so no second graph has to be compiled after sampling. A model declaring a
family this module does not know gets a ``ModelError``, never wrong numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from speclet_core.data.selection import ScreenSelection
from speclet_core.errors import FitError, ModelError
from speclet_core.models.spec import DIM_COLUMNS, Likelihood, ModelSpec

# Stored sizes. log_likelihood is readings × draws × chains (float32); above the cap it is
# skipped and the reason recorded, so LOO is only offered when it is affordable.
LOG_LIKELIHOOD_MAX_VALUES = 200_000_000
POSTERIOR_PREDICTIVE_MAX_DRAWS = 200
# and at most this many replicated readings in all (float32: 160 MB), so a genome-wide fit keeps fewer draws
POSTERIOR_PREDICTIVE_MAX_VALUES = 40_000_000
# draws × readings of one block of float64 temporaries while predicting
PREDICT_BLOCK_VALUES = 5_000_000
PRIOR_DRAWS = 100
PRIOR_MAX_VALUES = 20_000_000
_LOG_2PI = float(np.log(2 * np.pi))


def reading_indices(posterior: xr.Dataset, selection: ScreenSelection, dims: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """For each reading, the position of its label along each of ``dims`` in the posterior's coords."""
    out = []
    for dim in dims:
        labels = selection.data[DIM_COLUMNS[dim]].astype(str).to_numpy()
        pos = pd.Index([str(x) for x in posterior.coords[dim].values]).get_indexer(labels)
        if (pos < 0).any():
            raise FitError(f"posterior has no '{dim}' label for some readings (e.g. {labels[pos < 0][0]!r})")
        out.append(pos)
    return tuple(out)


def predict_mean(
    spec: ModelSpec, posterior: xr.Dataset, selection: ScreenSelection, *, draws: np.ndarray | None = None
) -> np.ndarray:
    """The model's mean of each reading for each draw: (chain, draw, reading).

    Uses ``spec.predictor`` and the stored variables only; ``draws`` picks draw positions.
    """
    total: np.ndarray | None = None
    for term in spec.predictor:
        arr = posterior[term.variable].transpose("chain", "draw", *term.dims).values
        if draws is not None:
            arr = arr[:, draws]
        where: tuple[Any, ...] = (slice(None), slice(None), *reading_indices(posterior, selection, term.dims))
        part = arr[where]
        if term.covariate:
            part = part * selection.data[term.covariate].to_numpy(dtype=np.float64)
        total = part if total is None else total + part
    if total is None:
        raise ModelError(f"model '{spec.name}' declares no predictor; give its spec the terms of a reading's mean")
    return total


def _noise(spec: ModelSpec, posterior: xr.Dataset, draws: np.ndarray | None = None) -> np.ndarray:
    """The reading-noise draws (chain, draw, 1), broadcastable against (chain, draw, reading)."""
    noise = posterior[spec.noise].values
    return (noise if draws is None else noise[:, draws])[..., None]


def _unknown_family(spec: ModelSpec, what: str) -> ModelError:
    return ModelError(
        f"model '{spec.name}' declares likelihood {spec.likelihood!r}, for which speclet cannot compute {what}; "
        f"known likelihoods: {', '.join(Likelihood)} (add the family to speclet_core/fitting/derived.py)"
    )


def log_density(spec: ModelSpec, y: np.ndarray, mean: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Log density of readings ``y`` given their means and the noise, in the model's declared family."""
    if spec.likelihood == Likelihood.NORMAL:
        z = (y - mean) / noise
        return -0.5 * z * z - np.log(noise) - 0.5 * _LOG_2PI
    raise _unknown_family(spec, "a log-likelihood")


def draw_readings(spec: ModelSpec, mean: np.ndarray, noise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Replicated readings around their means, in the model's declared family."""
    if spec.likelihood == Likelihood.NORMAL:
        return mean + noise * rng.standard_normal(mean.shape)
    raise _unknown_family(spec, "posterior predictive draws")


def posterior_predictive(spec: ModelSpec, posterior: xr.Dataset, sel: ScreenSelection, seed: int) -> xr.Dataset:
    """Replicated ``lfc`` (float32) of every reading for a few evenly spaced draws per chain.

    At most ``POSTERIOR_PREDICTIVE_MAX_DRAWS`` draws and ``POSTERIOR_PREDICTIVE_MAX_VALUES`` values
    in all, computed a block of draws at a time.
    """
    chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    cap = min(POSTERIOR_PREDICTIVE_MAX_DRAWS, POSTERIOR_PREDICTIVE_MAX_VALUES // max(1, sel.n_rows))
    per_chain = max(1, min(n_draws, cap // chains))
    keep = np.unique(np.linspace(0, n_draws - 1, per_chain).round().astype(int))
    rng = np.random.default_rng([seed, 2])
    y = np.empty((chains, len(keep), sel.n_rows), dtype=np.float32)
    block = max(1, PREDICT_BLOCK_VALUES // max(1, sel.n_rows * chains))
    noise = _noise(spec, posterior, keep)
    for start in range(0, len(keep), block):
        part = slice(start, min(len(keep), start + block))
        mean = predict_mean(spec, posterior, sel, draws=keep[part])
        y[:, part] = draw_readings(spec, mean, noise[:, part], rng)
    return xr.Dataset(
        {"lfc": (["chain", "draw", "reading"], y)},
        coords={"chain": posterior.coords["chain"].values, "draw": posterior.coords["draw"].values[keep],
                "reading": np.arange(sel.n_rows)},
    )


def log_likelihood(spec: ModelSpec, posterior: xr.Dataset, sel: ScreenSelection) -> xr.Dataset:
    """Pointwise log-likelihood of every reading for every draw (float32), for LOO."""
    chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    y = sel.data["lfc"].to_numpy(dtype=np.float64)
    out = np.empty((chains, n_draws, sel.n_rows), dtype=np.float32)
    block = max(1, 5_000_000 // max(1, sel.n_rows * chains))  # bound the float64 temporaries
    noise = _noise(spec, posterior)
    for start in range(0, n_draws, block):
        idx = np.arange(start, min(n_draws, start + block))
        mean = predict_mean(spec, posterior, sel, draws=idx)
        out[:, idx] = log_density(spec, y, mean, noise[:, idx])
    return xr.Dataset(
        {"lfc": (["chain", "draw", "reading"], out)},
        coords={"chain": posterior.coords["chain"].values, "draw": posterior.coords["draw"].values,
                "reading": np.arange(sel.n_rows)},
    )


def sample_prior(model: Any, public: list[str], seed: int, n_values: int) -> tuple[Any | None, int]:
    """Prior and prior-predictive draws (an InferenceData), as many as ``PRIOR_MAX_VALUES`` allows; None under 10."""
    import pymc as pm

    draws = min(PRIOR_DRAWS, PRIOR_MAX_VALUES // max(1, n_values))
    if draws < 10:
        return None, 0
    # python-mode forward sampling: a few seconds at most and nothing to compile
    pp = pm.sample_prior_predictive(
        draws=draws, model=model, var_names=[*public, "lfc"], random_seed=seed,
        compile_kwargs={"mode": "FAST_COMPILE"},
    )
    return pp, draws


def derive_groups(
    spec: ModelSpec, sel: ScreenSelection, model: Any, public: list[str], posterior: xr.Dataset, seed: int
) -> tuple[dict[str, xr.Dataset], dict[str, Any]]:
    """The groups computed from a posterior (predictive, log-likelihood, prior) and notes on what was kept."""
    groups: dict[str, xr.Dataset] = {"posterior_predictive": posterior_predictive(spec, posterior, sel, seed)}
    notes: dict[str, Any] = {
        "posterior_predictive_draws": int(groups["posterior_predictive"].sizes["draw"] * posterior.sizes["chain"])
    }
    n_ll = posterior.sizes["chain"] * posterior.sizes["draw"] * sel.n_rows
    if n_ll <= LOG_LIKELIHOOD_MAX_VALUES:
        groups["log_likelihood"] = log_likelihood(spec, posterior, sel)
        notes["log_likelihood"] = "stored"
    else:
        notes["log_likelihood"] = (
            f"skipped: {n_ll:,} values (readings × draws) is over the cap of {LOG_LIKELIHOOD_MAX_VALUES:,}"
        )
    per_draw = sum(int(np.prod([posterior.sizes[d] for d in posterior[v].dims[2:]])) for v in posterior.data_vars)
    prior, n_prior = sample_prior(model, public, seed, per_draw + sel.n_rows)
    if prior is not None:
        prior_ds = prior["prior"]
        groups["prior"] = prior_ds.drop_vars([v for v in prior_ds.data_vars if v not in public])
        groups["prior_predictive"] = prior["prior_predictive"]
    notes["prior_draws"] = n_prior
    return groups, notes
