"""The fitting engine: a ``FitRequest`` in, a ``FitResult`` (posterior + checks + diagnostics) out.

``prepare_request`` is what the queue calls at submit time: it loads and validates the
screen, selects, checks that the model can be fitted to it (columns, lineages, size caps)
and returns the request, or raises a ``SpecletError`` that says what to change.
``run_fit`` is what a worker calls: it reloads the data, checks it did not change, builds
the model, samples (nutpie by default, PyMC's NUTS as a fallback, or a quick mean-field
ADVI approximation), and computes the predictive checks and diagnostics in memory. It
writes nothing: storing is the model store's job.

Predictions and the log-likelihood come from each model's declared linear predictor
(``ModelSpec.predictor``) and the stored posterior with numpy, so no second graph has to
be compiled after sampling.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import math
import multiprocessing
import os
import tempfile
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from speclet_core.data.screen import ScreenSelection, load_screen, prepare_covariates, select_screen
from speclet_core.diagnostics.compute import compute_diagnostics
from speclet_core.errors import FitError, ModelError
from speclet_core.models.catalog import DIM_COLUMNS, RAW_SUFFIX, ModelSpec, check_selection, count_parameters, get_model
from speclet_core.records import Backend, FitMethod, FitRequest, SamplerSettings, Selection
from speclet_core.settings import Settings

# Stored sizes. log_likelihood is readings × draws × chains (float32); above the cap it is
# skipped and the reason recorded, so LOO is only offered when it is affordable.
LOG_LIKELIHOOD_MAX_VALUES = 200_000_000
POSTERIOR_PREDICTIVE_MAX_DRAWS = 200
PRIOR_DRAWS = 100
PRIOR_MAX_VALUES = 20_000_000
PROGRESS_INTERVAL_S = 0.5
# Quick mode: mean-field ADVI with Adam, a decaying step and the average of the second half
# of the iterates (measured on the seed-002-sized flagship: gene effects correlate 0.9997
# with NUTS means after 2,000-4,000 iterations).
QUICK_ITERATIONS = 3_000
QUICK_DRAWS = 1_000
QUICK_LEARNING_RATE = 0.05
QUICK_METHOD = "ADVI (mean-field)"
# Rough cost model (seconds), calibrated on this 2-core machine; see docs/benchmarks/fitting.md.
COST_COMPILE_S = 20.0
COST_NS_PER_READING_TERM = 3.0
COST_NS_PER_PARAMETER = 10.0
COST_STEPS_PER_DRAW = 31  # tree depth 5 at target_accept 0.9, models with a gene × cell-line matrix
COST_STEPS_PER_DRAW_SMALL = 15
COMPILED_CACHE_SIZE = 2


class FitPhase(StrEnum):
    LOADING = "loading"
    COMPILING = "compiling"
    TUNING = "tuning"
    SAMPLING = "sampling"
    SAVING = "saving"


@dataclass(frozen=True)
class FitProgress:
    """Where a running fit is: relayed by the worker to the queue and the Fit page.

    ``draws_done`` / ``draws_total`` count every iteration of every chain, warm-up
    included, so their ratio is the fraction of sampling work done. ``divergences``
    counts divergent transitions after warm-up so far.
    """

    phase: FitPhase
    draws_done: int = 0
    draws_total: int = 0
    divergences: int = 0


ProgressCallback = Callable[[FitProgress], None]


@dataclass(frozen=True)
class FitResult:
    """A finished fit in memory: posterior and checks, the model spec, diagnostics and timings."""

    idata: az.InferenceData
    spec: ModelSpec
    diagnostics: dict[str, Any]
    timings: dict[str, float]

    @property
    def approximate(self) -> bool:
        return bool(self.diagnostics.get("approximate"))


@dataclass(frozen=True)
class CostEstimate:
    """A rough guess of what a fit costs, shown before it starts."""

    rows: int
    parameters: int
    stored_values: int
    compile_s: float
    sampling_s: float
    memory_mb: float
    approximate: bool

    @property
    def total_s(self) -> float:
        return self.compile_s + self.sampling_s

    def describe(self) -> str:
        """One line for a person."""
        kind = "quick approximate fit" if self.approximate else "full NUTS fit"
        return (
            f"{self.rows:,} readings × {self.parameters:,} parameters: a {kind} takes roughly "
            f"{_human_seconds(self.total_s)} (compiling ≈ {_human_seconds(self.compile_s)}) "
            f"and keeps ≈ {self.memory_mb:,.0f} MB of draws"
        )


def _human_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


# --------------------------------------------------------------------------- progress


class _Reporter:
    """Throttles progress calls (≤ 2 per second, phase changes always) and keeps the callback's error.

    nutpie calls back from its own thread, where an exception cannot stop sampling; the
    error is kept and re-raised by the sampling loop, so a callback can cancel a fit.
    """

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.last_phase: FitPhase | None = None
        self.last_time = 0.0
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.counts = (0, 0, 0)

    def __call__(
        self, phase: FitPhase, done: int = 0, total: int = 0, divergences: int = 0, *, force: bool = False
    ) -> None:
        if self.callback is None or self.error is not None:
            return
        with self.lock:
            self.counts = (done, total, divergences)
            now = time.monotonic()
            if not force and phase == self.last_phase and now - self.last_time < PROGRESS_INTERVAL_S:
                return
            self.last_phase, self.last_time = phase, now
            try:
                self.callback(FitProgress(phase, int(done), int(total), int(divergences)))
            except BaseException as exc:  # re-raised by the sampling loop (cancellation)
                self.error = exc

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error


# --------------------------------------------------------------------------- requests


def _load_selection(data_path: str | Path, selection: Selection) -> ScreenSelection:
    screen = load_screen(data_path)
    return select_screen(screen, selection.genes, selection.lineages, selection.cell_lines)


def check_size(spec: ModelSpec, selection: ScreenSelection, settings: Settings) -> None:
    """Raise ``ModelError`` when the selection is over the size caps of ``Settings``."""
    problems = []
    if selection.n_rows > settings.max_rows:
        problems.append(
            f"{selection.n_rows:,} readings, more than the limit of {settings.max_rows:,} (SPECLET_MAX_ROWS)"
        )
    if len(selection.genes) > settings.max_genes:
        problems.append(
            f"{len(selection.genes):,} genes, more than the limit of {settings.max_genes:,} (SPECLET_MAX_GENES)"
        )
    if problems:
        raise ModelError(
            f"model '{spec.name}': the selection is too large to fit here: {'; '.join(problems)}; "
            "select fewer genes or lineages, or raise the limit"
        )


def _canonical(requested: Any, chosen: tuple[str, ...]) -> Any:
    """``"all"`` stays all; explicit labels become the matched labels, so the fit id is stable."""
    if requested is None or (isinstance(requested, str) and requested.strip().lower() in {"", "all", "*"}):
        return "all"
    return chosen


def prepare_request(
    data_path: str | Path,
    model: str,
    *,
    genes: Any = "all",
    lineages: Any = "all",
    cell_lines: Any = "all",
    sampler: SamplerSettings | Mapping[str, Any] | None = None,
    seed: int = 1,
    settings: Settings | None = None,
) -> FitRequest:
    """Validate everything a fit needs and return its ``FitRequest`` (nothing is sampled).

    Raises a ``SpecletError`` subclass (``DataReadError``, ``DataValidationError``,
    ``SelectionError``, ``ModelError``) with a message that says what to change.
    """
    spec = get_model(model)
    settings = settings or Settings.from_env()
    path = Path(data_path).expanduser().resolve()
    screen = load_screen(path)
    sel = select_screen(screen, genes, lineages, cell_lines)
    check_selection(spec, sel)
    check_size(spec, sel, settings)
    if sampler is None:
        sampler = SamplerSettings()
    elif not isinstance(sampler, SamplerSettings):
        sampler = SamplerSettings(**dict(sampler))
    selection = Selection(
        genes=_canonical(genes, sel.genes),
        lineages=_canonical(lineages, sel.lineages),
        cell_lines=_canonical(cell_lines, sel.cell_lines),
    )
    return FitRequest(
        data_path=str(path),
        data_fingerprint=sel.fingerprint,
        selection=selection,
        model=spec.name,
        model_version=spec.version,
        sampler=sampler,
        seed=seed,
    )


# --------------------------------------------------------------------------- running a fit


def public_variables(model: Any) -> list[str]:
    """Names of the variables a fit keeps: free variables and deterministics, no sampler internals."""
    names = [v.name for v in [*model.free_RVs, *model.deterministics]]
    return [n for n in names if not n.endswith(RAW_SUFFIX)]


def run_fit(request: FitRequest, *, progress: ProgressCallback | None = None) -> FitResult:
    """Load, build, sample and check one fit; return it in memory (nothing is written).

    ``progress`` receives ``FitProgress`` at most about twice a second; an exception it
    raises stops the fit and propagates (a worker can cancel this way).
    """
    report = _Reporter(progress)
    t_start = time.perf_counter()
    report(FitPhase.LOADING, force=True)
    report.raise_if_failed()
    spec = get_model(request.model)
    if spec.version != request.model_version:
        raise FitError(
            f"model '{spec.name}' is version {spec.version} now, the request was for version "
            f"{request.model_version}; submit the fit again"
        )
    sel = _load_selection(request.data_path, request.selection)
    if sel.fingerprint != request.data_fingerprint:
        raise FitError(
            f"{request.data_path}: the data file changed since the fit was requested (fingerprint "
            f"{sel.fingerprint[:12]}… instead of {request.data_fingerprint[:12]}…); submit the fit again"
        )
    check_selection(spec, sel)
    check_size(spec, sel, Settings.from_env())
    transforms: dict[str, Any] = {}
    if any(t.covariate for t in spec.predictor):
        prepared, transforms = prepare_covariates(sel.data)
        sel = _with_data(sel, prepared)
    model = spec.build(sel)
    public = public_variables(model)
    load_s = time.perf_counter() - t_start

    settings = request.sampler
    with warnings.catch_warnings(), _quiet_pymc():
        warnings.simplefilter("ignore")
        if settings.method == FitMethod.QUICK:
            posterior, stats, compile_s, sample_s, extra = _fit_quick(model, public, request.seed, report)
        elif settings.backend == Backend.NUTPIE:
            posterior, stats, compile_s, sample_s, extra = _sample_nutpie(model, public, spec, sel, request, report)
        else:
            posterior, stats, compile_s, sample_s, extra = _sample_pymc(model, public, request, report)
    report.raise_if_failed()

    t_post = time.perf_counter()
    report(FitPhase.SAVING, *report.counts, force=True)
    approximate = settings.method == FitMethod.QUICK
    with _quiet_pymc():
        idata, notes = _assemble(spec, sel, model, public, posterior, stats, request)
    diagnostics = compute_diagnostics(
        idata, approximate=approximate, method=QUICK_METHOD if approximate else f"NUTS ({settings.backend})"
    )
    post_s = time.perf_counter() - t_post
    timings = {
        "load_s": round(load_s, 3),
        "compile_s": round(compile_s, 3),
        "sample_s": round(sample_s, 3),
        "postprocess_s": round(post_s, 3),
        "total_s": round(time.perf_counter() - t_start, 3),
    }
    idata.attrs.update(
        _attrs(spec, request, sel, approximate, transforms, timings, diagnostics, {**notes, **extra})
    )
    report.raise_if_failed()
    return FitResult(idata=idata, spec=spec, diagnostics=diagnostics, timings=timings)


@contextlib.contextmanager
def _quiet_pymc() -> Iterator[None]:
    """PyMC logs every sampling step at INFO; a worker relays progress itself."""
    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _with_data(sel: ScreenSelection, data: pd.DataFrame) -> ScreenSelection:
    return ScreenSelection(
        data=data,
        genes=sel.genes,
        sgrnas=sel.sgrnas,
        cell_lines=sel.cell_lines,
        lineages=sel.lineages,
        fingerprint=sel.fingerprint,
        requested=sel.requested,
    )


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------- nutpie

_COMPILED: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

# nutpie renders this template on each progress tick; JSON keeps parsing trivial.
_NUTPIE_TEMPLATE = (
    '{"chains": [{% for chain in chains %}{"done": {{ chain.finished_draws }}, '
    '"total": {{ chain.total_draws }}, "div": {{ chain.divergences }}, '
    '"tuning": {{ chain.tuning }} }{% if not loop.last %},{% endif %}{% endfor %}] }'
)


def _compile_nutpie(model: Any, key: tuple[Any, ...]) -> Any:
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

    def __init__(self, report: _Reporter, total: int) -> None:
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


def _sample_nutpie(
    model: Any, public: list[str], spec: ModelSpec, sel: ScreenSelection, request: FitRequest, report: _Reporter
) -> tuple[xr.Dataset, xr.Dataset, float, float, dict[str, Any]]:
    import nutpie

    s = request.sampler
    total = s.chains * (s.tune + s.draws)
    report(FitPhase.COMPILING, 0, total, force=True)
    t0 = time.perf_counter()
    key = (spec.name, spec.version, sel.fingerprint)
    compiled = _compile_nutpie(model, key)
    compile_s = time.perf_counter() - t0
    report.raise_if_failed()
    report(FitPhase.TUNING, 0, total, force=True)
    cores = min(s.chains, _available_cores())
    t1 = time.perf_counter()
    tally = _ChainTally(report, total)
    # draws go to a zarr store on disk, not to memory: nutpie keeps every variable (internals and
    # warm-up included); a 100-gene × 300-cell-line fit peaked at 12.7 GB of memory that way
    with tempfile.TemporaryDirectory(prefix="speclet-nutpie-") as tmp:
        store = nutpie.zarr_store.LocalStore(tmp)
        try:
            sampler = _start_nutpie(compiled, s, request.seed, cores, tally, store)
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
            sampler._sampler.wait(None)
            trace = sampler._extract(sampler._sampler.take_results())
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
    return posterior, stats, compile_s, sample_s, {"nutpie_cores": cores}


def _finished(sampler: Any) -> bool:
    try:
        return bool(sampler._sampler.is_finished())
    except TimeoutError:  # nutpie 0.16 signals "still running" this way
        return False


def _start_nutpie(
    compiled: Any, s: SamplerSettings, seed: int, cores: int, tally: _ChainTally, store: Any
) -> Any:
    """Start nutpie in the background with a progress callback (nutpie 0.16 internals).

    ``nutpie.sample`` only offers template progress inside notebooks, so this builds the
    same background sampler with our own template; a test pins the behaviour.
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


# --------------------------------------------------------------------------- PyMC


def _sample_pymc(
    model: Any, public: list[str], request: FitRequest, report: _Reporter
) -> tuple[xr.Dataset, xr.Dataset, float, float, dict[str, Any]]:
    import pymc as pm

    s = request.sampler
    total = s.chains * (s.tune + s.draws)
    # worker processes may be daemonic, and daemons cannot start chain processes
    cores = 1 if multiprocessing.current_process().daemon else min(s.chains, _available_cores())
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
    return trace.posterior, trace.sample_stats, compile_s, end - t0 - compile_s, {"pymc_cores": cores}


# --------------------------------------------------------------------------- quick (ADVI)


def _fit_quick(
    model: Any, public: list[str], seed: int, report: _Reporter
) -> tuple[xr.Dataset, None, float, float, dict[str, Any]]:
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
    draws = mu + np.exp(omega) * rng.standard_normal((QUICK_DRAWS, d))
    values: dict[str, list[np.ndarray]] = {n: [] for n in public}
    for x in draws:
        for name, v in zip(public, expand(x), strict=True):
            values[name].append(np.asarray(v))
    sample_s = time.perf_counter() - t1
    report(FitPhase.SAMPLING, total, total, 0, force=True)
    posterior = _dataset_from_draws(model, {n: np.stack(v)[None, ...] for n, v in values.items()})
    return posterior, None, compile_s, sample_s, {"quick_iterations": total, "quick_method": QUICK_METHOD}


def _dataset_from_draws(model: Any, arrays: dict[str, np.ndarray]) -> xr.Dataset:
    """(chain, draw, *dims) arrays → a Dataset with the model's named dims and coords."""
    data_vars = {}
    coords: dict[str, Any] = {}
    for name, arr in arrays.items():
        dims = list(model.named_vars_to_dims.get(name, ()) or ())
        for i in range(len(dims), arr.ndim - 2):
            dims.append(f"{name}_dim_{i}")
        for dim in dims:
            if dim in model.coords and model.coords[dim] is not None:
                coords[dim] = list(model.coords[dim])
        data_vars[name] = (["chain", "draw", *dims], arr)
    coords["chain"] = np.arange(next(iter(arrays.values())).shape[0])
    coords["draw"] = np.arange(next(iter(arrays.values())).shape[1])
    return xr.Dataset(data_vars, coords=coords)


# --------------------------------------------------------------------------- predictions


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
    assert total is not None, f"model {spec.name} declares no predictor"
    return total


def _noise(spec: ModelSpec, posterior: xr.Dataset, draws: np.ndarray | None = None) -> np.ndarray:
    sigma = posterior[spec.noise].values
    return sigma if draws is None else sigma[:, draws]


def _posterior_predictive(
    spec: ModelSpec, posterior: xr.Dataset, sel: ScreenSelection, seed: int
) -> xr.Dataset:
    chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    per_chain = max(1, min(n_draws, POSTERIOR_PREDICTIVE_MAX_DRAWS // chains))
    keep = np.unique(np.linspace(0, n_draws - 1, per_chain).round().astype(int))
    mean = predict_mean(spec, posterior, sel, draws=keep)
    sigma = _noise(spec, posterior, keep)[..., None]
    rng = np.random.default_rng([seed, 2])
    y = mean + sigma * rng.standard_normal(mean.shape)
    return xr.Dataset(
        {"lfc": (["chain", "draw", "reading"], y)},
        coords={"chain": posterior.coords["chain"].values, "draw": posterior.coords["draw"].values[keep],
                "reading": np.arange(sel.n_rows)},
    )


def _log_likelihood(spec: ModelSpec, posterior: xr.Dataset, sel: ScreenSelection) -> xr.Dataset:
    chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    y = sel.data["lfc"].to_numpy(dtype=np.float64)
    out = np.empty((chains, n_draws, sel.n_rows), dtype=np.float32)
    block = max(1, 5_000_000 // max(1, sel.n_rows * chains))  # bound the float64 temporaries
    sigma_all = _noise(spec, posterior)
    for start in range(0, n_draws, block):
        idx = np.arange(start, min(n_draws, start + block))
        mean = predict_mean(spec, posterior, sel, draws=idx)
        sigma = sigma_all[:, idx][..., None]
        z = (y - mean) / sigma
        out[:, idx] = -0.5 * z * z - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    return xr.Dataset(
        {"lfc": (["chain", "draw", "reading"], out)},
        coords={"chain": posterior.coords["chain"].values, "draw": posterior.coords["draw"].values,
                "reading": np.arange(sel.n_rows)},
    )


def _prior(model: Any, public: list[str], seed: int, n_values: int) -> tuple[az.InferenceData | None, int]:
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


def _assemble(
    spec: ModelSpec,
    sel: ScreenSelection,
    model: Any,
    public: list[str],
    posterior: xr.Dataset,
    stats: xr.Dataset | None,
    request: FitRequest,
) -> tuple[az.InferenceData, dict[str, Any]]:
    """All groups of a fit: posterior, sample stats, data, predictive checks, log-likelihood, prior."""
    posterior = posterior.drop_vars([v for v in posterior.data_vars if v not in public])
    used = {d for v in posterior.data_vars.values() for d in v.dims}
    posterior = posterior.drop_vars([c for c in posterior.coords if c not in used])
    groups: dict[str, xr.Dataset] = {"posterior": posterior}
    notes: dict[str, Any] = {}
    if stats is not None:
        groups["sample_stats"] = stats
    reading = np.arange(sel.n_rows)
    groups["observed_data"] = xr.Dataset(
        {"lfc": ("reading", sel.data["lfc"].to_numpy(dtype=np.float64))}, coords={"reading": reading}
    )
    const = {
        dim: ("reading", sel.data[col].astype(str).to_numpy(dtype=object))
        for dim, col in DIM_COLUMNS.items()
    }
    for term in spec.predictor:
        if term.covariate:
            const[term.covariate] = ("reading", sel.data[term.covariate].to_numpy(dtype=np.float64))
    groups["constant_data"] = xr.Dataset(const, coords={"reading": reading})
    groups["posterior_predictive"] = _posterior_predictive(spec, posterior, sel, request.seed)
    notes["posterior_predictive_draws"] = int(groups["posterior_predictive"].sizes["draw"] * posterior.sizes["chain"])
    n_ll = posterior.sizes["chain"] * posterior.sizes["draw"] * sel.n_rows
    if n_ll <= LOG_LIKELIHOOD_MAX_VALUES:
        groups["log_likelihood"] = _log_likelihood(spec, posterior, sel)
        notes["log_likelihood"] = "stored"
    else:
        notes["log_likelihood"] = (
            f"skipped: {n_ll:,} values (readings × draws) is over the cap of {LOG_LIKELIHOOD_MAX_VALUES:,}"
        )
    per_draw = sum(int(np.prod([posterior.sizes[d] for d in posterior[v].dims[2:]])) for v in posterior.data_vars)
    prior, n_prior = _prior(model, public, request.seed, per_draw + sel.n_rows)
    if prior is not None:
        prior_ds = prior["prior"]
        groups["prior"] = prior_ds.drop_vars([v for v in prior_ds.data_vars if v not in public])
        groups["prior_predictive"] = prior["prior_predictive"]
    notes["prior_draws"] = n_prior
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arviz warns about the non-standard constant_data order
        idata = az.InferenceData(**groups)  # type: ignore[arg-type]
    return idata, notes


def _package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("pymc", "pytensor", "nutpie", "arviz", "numpy", "xarray"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _attrs(
    spec: ModelSpec,
    request: FitRequest,
    sel: ScreenSelection,
    approximate: bool,
    transforms: dict[str, Any],
    timings: dict[str, float],
    diagnostics: dict[str, Any],
    notes: dict[str, Any],
) -> dict[str, str]:
    """Root attrs: strings and JSON strings only (NetCDF attrs must be scalars)."""
    return {
        "fit_id": request.fit_id,
        "model": spec.name,
        "model_version": spec.version,
        "model_title": spec.title,
        "roles": json.dumps(spec.roles()),
        "data_path": request.data_path,
        "data_fingerprint": request.data_fingerprint,
        "selection": json.dumps(request.selection.model_dump(mode="json")),
        "selection_counts": json.dumps(sel.summarise()),
        "sampler": json.dumps(request.sampler.model_dump(mode="json")),
        "seed": str(request.seed),
        "approximate": "true" if approximate else "false",
        "covariate_transforms": json.dumps(transforms),
        "timings": json.dumps(timings),
        "diagnostics": json.dumps(diagnostics),
        "notes": json.dumps(notes),
        "package_versions": json.dumps(_package_versions()),
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------- cost


def estimate_cost(
    selection: ScreenSelection | FitRequest,
    model: str | ModelSpec | None = None,
    sampler: SamplerSettings | None = None,
) -> CostEstimate:
    """Rough seconds and memory of a fit before starting it (rows × parameters).

    Pass a ``ScreenSelection`` with a model name (the Fit page), or a ``FitRequest``
    (model and sampler come from it; the data are loaded). The model is built, not
    compiled, to count its parameters exactly.
    """
    if isinstance(selection, FitRequest):
        request = selection
        spec = get_model(request.model)
        sampler = sampler or request.sampler
        sel = _load_selection(request.data_path, request.selection)
    else:
        if model is None:
            raise ModelError("estimate_cost: name the model to estimate (e.g. 'sgrna_gene_lineage')")
        spec = model if isinstance(model, ModelSpec) else get_model(model)
        sel = selection
    sampler = sampler or SamplerSettings()
    built = spec.build(sel)
    n_params = count_parameters(built)
    public = set(public_variables(built))
    per_draw = sum(_size(v) for v in [*built.free_RVs, *built.deterministics] if v.name in public)
    grad_s = (
        sel.n_rows * len(spec.predictor) * COST_NS_PER_READING_TERM + n_params * COST_NS_PER_PARAMETER
    ) * 1e-9 + 20e-6
    approximate = sampler.method == FitMethod.QUICK
    if approximate:
        sampling = QUICK_ITERATIONS * (grad_s + 3 * n_params * 1e-9) + QUICK_DRAWS * 1e-3
        stored = QUICK_DRAWS * per_draw
        compile_s = COST_COMPILE_S / 2
    else:
        parallel = min(sampler.chains, _available_cores())
        steps = COST_STEPS_PER_DRAW if spec.gene_cell_line_effect else COST_STEPS_PER_DRAW_SMALL
        sampling = sampler.chains * (sampler.tune + sampler.draws) * steps * grad_s / parallel
        stored = sampler.chains * sampler.draws * per_draw
        compile_s = COST_COMPILE_S
    memory_mb = stored * 8 / 2**20
    return CostEstimate(
        rows=sel.n_rows,
        parameters=n_params,
        stored_values=int(stored),
        compile_s=compile_s,
        sampling_s=float(sampling),
        memory_mb=float(memory_mb),
        approximate=approximate,
    )


def _size(var: Any) -> int:
    return int(np.prod(var.shape.eval()))
