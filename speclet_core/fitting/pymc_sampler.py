"""NUTS with PyMC's own sampler (the fallback backend), with the same progress reports as nutpie."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

from speclet_core.errors import FitError
from speclet_core.fitting.sampling import Reporter, SamplerResult, available_cores
from speclet_core.records import FitPhase, FitRequest


def sample_pymc(model: Any, public: list[str], request: FitRequest, report: Reporter) -> SamplerResult:
    """Sample the model with ``pm.sample``; draws of the ``public`` variables only."""
    import pymc as pm

    s = request.sampler
    total = s.chains * (s.tune + s.draws)
    # worker processes may be daemonic, and daemons cannot start chain processes
    cores = 1 if multiprocessing.current_process().daemon else min(s.chains, available_cores())
    done = [0]
    div = [0]
    first_draw: list[float] = []
    t0 = time.perf_counter()
    report(FitPhase.COMPILING, 0, total, force=True)

    def callback(trace: Any, draw: Any) -> None:
        if not first_draw:
            first_draw.append(time.perf_counter())
        done[0] += 1
        if not draw.tuning and any(st.get("diverging", False) for st in draw.stats):
            div[0] += 1
        report(FitPhase.TUNING if draw.tuning else FitPhase.SAMPLING, done[0], total, div[0])
        if report.error is not None:
            raise KeyboardInterrupt  # PyMC's documented way to stop from a callback

    try:
        trace = pm.sample(
            draws=s.draws, tune=s.tune, chains=s.chains, cores=cores, random_seed=request.seed,
            target_accept=s.target_accept, progressbar=False, model=model, var_names=public,
            callback=callback, compute_convergence_checks=False, idata_kwargs={"log_likelihood": False},
        )
    except KeyboardInterrupt:
        report.raise_if_failed()
        raise
    except Exception as exc:
        report.raise_if_failed()
        raise FitError(f"model '{request.model}': PyMC sampling failed ({exc})") from exc
    end = time.perf_counter()
    # PyMC compiles inside pm.sample: the time to the first draw is compiling + initialising
    compile_s = (first_draw[0] if first_draw else end) - t0
    return SamplerResult(trace.posterior, trace.sample_stats, compile_s, end - t0 - compile_s, {"pymc_cores": cores})
