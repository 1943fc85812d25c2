"""NUTS with nutpie (the default): compile once per model and data in a process, sample with live progress.

nutpie's public ``sample`` offers template progress only inside notebooks, so live progress
uses nutpie's internals; all of that is in ``_start_with_progress``, checked against
nutpie 0.16.8. If the internals move, sampling falls back to the public API without
live progress (a test pins the progress behaviour).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import OrderedDict
from typing import Any

import numpy as np

from speclet_core.data.selection import ScreenSelection
from speclet_core.errors import FitError
from speclet_core.fitting.sampling import PROGRESS_INTERVAL_S, Reporter, SamplerResult, available_cores
from speclet_core.models.spec import ModelSpec
from speclet_core.records import FitPhase, FitRequest, SamplerSettings

COMPILED_CACHE_SIZE = 2

_COMPILED: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

# nutpie renders this template on each progress tick; JSON keeps parsing trivial.
_NUTPIE_TEMPLATE = (
    '{"chains": [{% for chain in chains %}{"done": {{ chain.finished_draws }}, '
    '"total": {{ chain.total_draws }}, "div": {{ chain.divergences }}, '
    '"tuning": {{ chain.tuning }} }{% if not loop.last %},{% endif %}{% endfor %}] }'
)


def compile_model(model: Any, key: tuple[Any, ...]) -> Any:
    """Compile (numba) or reuse a compiled model for the same model and data in this process."""
    import nutpie

    if key in _COMPILED:
        _COMPILED.move_to_end(key)
        return _COMPILED[key]
    compiled = nutpie.compile_pymc_model(model, backend="numba")
    _COMPILED[key] = compiled
    while len(_COMPILED) > COMPILED_CACHE_SIZE:
        _COMPILED.popitem(last=False)
    return compiled


class _ChainTally:
    """Per-chain progress from nutpie's template ticks; divergences counted after warm-up."""

    def __init__(self, report: Reporter, total: int) -> None:
        self.report = report
        self.total = total
        self.warmup_div: dict[int, int] = {}

    def __call__(self, text: str) -> None:
        try:
            chains = json.loads(text)["chains"]
        except (ValueError, KeyError):
            return
        done = sum(int(c["done"]) for c in chains)
        div = 0
        for i, c in enumerate(chains):
            if c["tuning"]:
                self.warmup_div[i] = int(c["div"])
            else:
                div += int(c["div"]) - self.warmup_div.get(i, 0)
        phase = FitPhase.TUNING if any(c["tuning"] for c in chains) else FitPhase.SAMPLING
        self.report(phase, done, self.total, max(div, 0))


def sample_nutpie(
    model: Any, public: list[str], spec: ModelSpec, sel: ScreenSelection, request: FitRequest, report: Reporter
) -> SamplerResult:
    """Compile (or reuse) and sample the model with nutpie; draws of the ``public`` variables only."""
    import nutpie

    s = request.sampler
    total = s.chains * (s.tune + s.draws)
    report(FitPhase.COMPILING, 0, total, force=True)
    t0 = time.perf_counter()
    compiled = compile_model(model, (spec.name, spec.version, sel.fingerprint))
    compile_s = time.perf_counter() - t0
    report.raise_if_failed()
    report(FitPhase.TUNING, 0, total, force=True)
    cores = min(s.chains, available_cores())
    t1 = time.perf_counter()
    tally = _ChainTally(report, total)
    # draws go to a zarr store on disk, not to memory: nutpie keeps every variable (internals and
    # warm-up included); a 100-gene × 300-cell-line fit peaked at 12.7 GB of memory that way
    with tempfile.TemporaryDirectory(prefix="speclet-nutpie-") as tmp:
        store = nutpie.zarr_store.LocalStore(tmp)
        try:
            sampler = _start_with_progress(compiled, s, request.seed, cores, tally, store)
        except (AttributeError, TypeError, RuntimeError):  # nutpie internals moved: no live progress
            sampler = nutpie.sample(
                compiled, draws=s.draws, tune=s.tune, chains=s.chains, cores=cores, seed=request.seed,
                target_accept=s.target_accept, progress_bar=False, save_warmup=False, blocking=False,
                zarr_store=store,
            )
        while not _finished(sampler):
            if report.error is not None:
                sampler.cancel()
                report.raise_if_failed()
            time.sleep(0.2)
        try:
            trace = sampler.wait()
            posterior = trace.posterior[[v for v in public if v in trace.posterior]].load()
            stats = trace.sample_stats
            # per-parameter diagnostics (divergence locations, unconstrained draws) stay unstored
            stats = stats.drop_vars([v for v in stats.data_vars if "unconstrained_parameter" in stats[v].dims])
            stats = stats.drop_dims("unconstrained_parameter", errors="ignore").load()
        except Exception as exc:  # nutpie raises plain errors for failed chains
            raise FitError(f"model '{spec.name}': nutpie sampling failed ({exc}); try backend 'pymc'") from exc
        del trace, sampler
    # nutpie's zarr layout leaves chain and draw without coordinates
    index = {"chain": np.arange(posterior.sizes["chain"]), "draw": np.arange(posterior.sizes["draw"])}
    posterior = posterior.assign_coords(index)
    stats = stats.assign_coords(index)
    sample_s = time.perf_counter() - t1
    report(FitPhase.SAMPLING, total, total, int(stats["diverging"].sum()), force=True)
    return SamplerResult(posterior, stats, compile_s, sample_s, {"nutpie_cores": cores})


def _finished(sampler: Any) -> bool:
    try:
        return bool(sampler.is_finished)
    except TimeoutError:  # nutpie 0.16 signals "still running" this way
        return False


# --------------------------------------------------------------------------- nutpie internals (0.16.8)


def _start_with_progress(
    compiled: Any, s: SamplerSettings, seed: int, cores: int, tally: _ChainTally, store: Any
) -> Any:
    """Start nutpie in the background with a progress callback, built from nutpie 0.16.8 internals.

    This is the only place that builds nutpie's private objects: the same background sampler as
    ``nutpie.sample(blocking=False)``, with our own progress template and callback.
    """
    from nutpie import _lib
    from nutpie.sample import _BackgroundSampler

    settings = _lib.PyNutsSettings.Diag(seed)
    settings.num_tune = s.tune
    settings.num_draws = s.draws
    settings.num_chains = s.chains
    settings.target_accept = s.target_accept

    class _ProgressSampler(_BackgroundSampler):
        def __init__(self) -> None:  # only what wait/_extract need
            self._settings = settings
            self._compiled_model = compiled
            self._save_warmup = False
            self._return_raw_trace = False
            self._html = None
            self._zarr_store = store
            self._store = _lib.PyStorage.zarr(store)
            progress = _lib.ProgressType.template_callback(
                int(PROGRESS_INTERVAL_S * 1000), _NUTPIE_TEMPLATE, cores, tally
            )
            self._sampler = compiled._make_sampler(
                settings, np.zeros(compiled.n_dim), cores, progress, self._store
            )

    return _ProgressSampler()
