"""The quick, approximate fit: mean-field ADVI on the unconstrained space (a first look, never exact)."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from speclet_core.errors import FitError
from speclet_core.fitting.nutpie_sampler import DRAW_DTYPE
from speclet_core.fitting.sampling import Reporter, SamplerResult, dataset_from_draws
from speclet_core.records import FitPhase

# Adam with a decaying step and the average of the second half of the iterates (measured on a
# 20-gene × 130-cell-line flagship fit: gene effects correlate 0.9997 with NUTS means after
# 2,000-4,000 iterations).
QUICK_ITERATIONS = 3_000
QUICK_DRAWS = 1_000
QUICK_LEARNING_RATE = 0.05
QUICK_METHOD = "ADVI (mean-field)"
# Bounded memory at genome size (≈ 810k stored values per draw at 18,000 genes × 40 cell lines): the kept draws are
# float32 and at most this many values in all (800 MB), so a big fit keeps fewer draws (never under QUICK_MIN_DRAWS).
QUICK_MAX_STORED_VALUES = 200_000_000
QUICK_MIN_DRAWS = 100


def quick_draws(values_per_draw: int) -> int:
    """Draws a quick fit keeps for a model of ``values_per_draw`` stored values (fewer for big models)."""
    return max(QUICK_MIN_DRAWS, min(QUICK_DRAWS, QUICK_MAX_STORED_VALUES // max(1, int(values_per_draw))))


def fit_quick(model: Any, public: list[str], seed: int, report: Reporter) -> SamplerResult:
    """Mean-field ADVI on the unconstrained space, then draws mapped to the stored variables.

    Adam with a step decaying as 1/sqrt(t) and the average of the second half of the
    iterates. Approximate: intervals are typically too narrow (no correlations).
    """
    import pytensor
    from pymc.pytensorf import join_nonshared_inputs

    total = QUICK_ITERATIONS
    report(FitPhase.COMPILING, 0, total, force=True)
    t0 = time.perf_counter()
    point = model.initial_point()
    value_vars = model.value_vars
    (logp, dlogp), flat = join_nonshared_inputs(point, [model.logp(jacobian=True), model.dlogp(jacobian=True)], value_vars)
    logp_dlogp = pytensor.function([flat], [logp, dlogp], mode="NUMBA")
    outs = model.replace_rvs_by_values([model[n] for n in public])
    expanded, flat2 = join_nonshared_inputs(point, outs, value_vars)
    # a python-mode function costs no compile; 1,000 calls take about a second
    expand = pytensor.function([flat2], expanded, mode="FAST_COMPILE")
    mu = np.concatenate([np.ravel(point[v.name]) for v in value_vars]).astype(np.float64)
    logp_dlogp(mu)  # numba compiles on the first call
    compile_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    rng = np.random.default_rng(seed)
    d = mu.size
    omega = np.full(d, -2.0)
    m1 = np.zeros(2 * d)
    m2 = np.zeros(2 * d)
    avg = np.zeros(2 * d)
    n_avg = 0
    b1, b2 = 0.9, 0.999
    for it in range(1, total + 1):
        eps = rng.standard_normal(d)
        scale = np.exp(omega)
        lp, grad = logp_dlogp(mu + scale * eps)
        if not np.isfinite(lp) or not np.all(np.isfinite(grad)):
            raise FitError(
                f"quick fit failed at iteration {it}: the log density became non-finite; "
                "use method 'nuts' for this selection"
            )
        g = np.concatenate([grad, grad * eps * scale + 1.0])
        m1 = b1 * m1 + (1 - b1) * g
        m2 = b2 * m2 + (1 - b2) * g * g
        lr = QUICK_LEARNING_RATE / math.sqrt(1.0 + it / 200.0)
        step = lr * (m1 / (1 - b1**it)) / (np.sqrt(m2 / (1 - b2**it)) + 1e-8)
        mu += step[:d]
        omega += step[d:]
        if it > total // 2:
            avg[:d] += mu
            avg[d:] += omega
            n_avg += 1
        if it % 50 == 0:
            report(FitPhase.SAMPLING, it, total, 0)
            report.raise_if_failed()
    mu, omega = avg[:d] / n_avg, avg[d:] / n_avg
    # one draw at a time into float32 arrays: memory is the kept draws (≤ QUICK_MAX_STORED_VALUES) plus one draw
    first = [np.asarray(v) for v in expand(mu)]
    n_draws = quick_draws(sum(v.size for v in first))
    values = {n: np.empty((1, n_draws, *v.shape), dtype=DRAW_DTYPE) for n, v in zip(public, first, strict=True)}
    scale = np.exp(omega)
    for i in range(n_draws):
        for name, v in zip(public, expand(mu + scale * rng.standard_normal(d)), strict=True):
            values[name][0, i] = v
        if i % 50 == 0:
            report.raise_if_failed()
    sample_s = time.perf_counter() - t1
    report(FitPhase.SAMPLING, total, total, 0, force=True)
    posterior = dataset_from_draws(model, values)
    notes = {"quick_iterations": total, "quick_method": QUICK_METHOD, "quick_draws": n_draws}
    return SamplerResult(posterior, None, compile_s, sample_s, notes)
