"""NUTS with nutpie (the default): compile once per model and data in a process, sample with live progress.

nutpie's public ``sample`` offers template progress only inside notebooks, so live progress
uses nutpie's internals; all of that is in ``_start_with_progress``, checked against
nutpie 0.16.8. If the internals move, sampling falls back to the public API without
live progress (a test pins the progress behaviour).

What is kept: the model is compiled with the stored variable names only (``var_names``), so no
unstored deterministic is ever computed or written; draws go to a temporary zarr store on disk
and are read back one variable and one chain at a time into float32 arrays, so the whole
posterior never exists in float64; warm-up groups and per-parameter sampler statistics
(gradients, unconstrained draws, mass matrices, divergence locations) are never read.
nutpie 0.16.8's zarr store still writes the free (transformed) variables, warm-up draws and
those statistics whatever the settings say (measured: ``docs/benchmarks/sampler_memory.md``;
nutpie ≥ 0.16.9 needs Python ≥ 3.12, so it cannot replace 0.16.8 here). So a ``ChunkSweeper``
thread deletes those arrays' chunk files as nutpie writes them (each chunk file, 16 draws of one
chain, is written once and never read back by nutpie): the temporary disk then holds the kept
draws plus at most a few chunks of the rest (``docs/benchmarks/genome.md``).

Backends: numba (the default) or JAX (``SPECLET_NUTPIE_BACKEND=jax``; worth it on an
accelerator only: on CPU it is 1.6-2.1x slower). Each chain runs with one BLAS thread
(threadpoolctl), so chains, not BLAS threads, use the cores.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections import OrderedDict
from typing import Any

import numpy as np
import xarray as xr

from speclet_core.data.selection import ScreenSelection
from speclet_core.errors import FitError
from speclet_core.fitting.sampling import PROGRESS_INTERVAL_S, Reporter, SamplerResult, available_cores
from speclet_core.models.spec import ModelSpec
from speclet_core.records import FitPhase, FitRequest, SamplerSettings

COMPILED_CACHE_SIZE = 2
NUTPIE_BACKENDS = ("numba", "jax")
# nutpie's mass-matrix adaptation: "diag" (default) or "low_rank" (low_rank_modified_mass_matrix);
# the default is the one with fewer gradient evaluations per effective draw (docs/benchmarks/genome.md)
MASS_MATRICES = ("diag", "low_rank")
MASS_MATRIX = "diag"
# nutpie's default tree depth limit (2**10 leapfrog steps per draw at most); benchmarks that only check
# the pipeline's memory and disk at genome size lower it, to bound their time (never a fit's default)
MAX_TREE_DEPTH = 10
# kept draws are stored in float32 (7 significant digits: far below any posterior's Monte Carlo error)
DRAW_DTYPE = np.float32

_COMPILED: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

# nutpie renders this template on each progress tick; JSON keeps parsing trivial.
_NUTPIE_TEMPLATE = (
    '{"chains": [{% for chain in chains %}{"done": {{ chain.finished_draws }}, '
    '"total": {{ chain.total_draws }}, "div": {{ chain.divergences }}, '
    '"tuning": {{ chain.tuning }} }{% if not loop.last %},{% endif %}{% endfor %}] }'
)


def compile_model(model: Any, key: tuple[Any, ...], stored: list[str] | None = None, backend: str = "numba") -> Any:
    """Compile or reuse a compiled model for the same model, data, stored names and backend in this process.

    ``stored``: the variables to keep (``var_names``); ``backend``: ``numba`` or ``jax`` (with JAX's
    own gradient).
    """
    import nutpie

    if backend not in NUTPIE_BACKENDS:
        raise FitError(f"unknown nutpie backend {backend!r}; use one of {', '.join(NUTPIE_BACKENDS)}")
    key = (*key, backend, tuple(stored) if stored is not None else None)
    if key in _COMPILED:
        _COMPILED.move_to_end(key)
        return _COMPILED[key]
    kwargs: dict[str, Any] = {"backend": backend, "var_names": stored}
    if backend == "jax":
        kwargs["gradient_backend"] = "jax"
    try:
        compiled = nutpie.compile_pymc_model(model, **kwargs)
    except ImportError as exc:
        raise FitError(
            f"nutpie backend '{backend}' needs JAX, which is not installed ({exc}); "
            "install jax and jaxlib (see requirements.txt) or unset SPECLET_NUTPIE_BACKEND"
        ) from exc
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
    model: Any, public: list[str], spec: ModelSpec, sel: ScreenSelection, request: FitRequest, report: Reporter,
    *, backend: str = "numba",
) -> SamplerResult:
    """Compile (or reuse) and sample the model with nutpie; float32 draws of the ``public`` variables only."""
    import nutpie
    from threadpoolctl import threadpool_limits

    s = request.sampler
    total = s.chains * (s.tune + s.draws)
    report(FitPhase.COMPILING, 0, total, force=True)
    t0 = time.perf_counter()
    compiled = compile_model(model, (spec.name, spec.version, sel.fingerprint), public, backend)
    compile_s = time.perf_counter() - t0
    report.raise_if_failed()
    report(FitPhase.TUNING, 0, total, force=True)
    cores = min(s.chains, available_cores())
    t1, cpu1 = time.perf_counter(), time.process_time()
    tally = _ChainTally(report, total)
    # draws go to a zarr store on disk, not to memory; one BLAS thread per chain (from ~1 M readings
    # OpenBLAS otherwise threads each chain's matrix products and oversubscribes the cores)
    with (tempfile.TemporaryDirectory(prefix="speclet-nutpie-") as tmp, threadpool_limits(limits=1),
          ChunkSweeper(tmp, public)):
        store = nutpie.zarr_store.LocalStore(tmp)
        try:
            sampler = _start_with_progress(compiled, s, request.seed, cores, tally, store)
        except (AttributeError, TypeError, RuntimeError):  # nutpie internals moved: no live progress
            sampler = nutpie.sample(
                compiled, draws=s.draws, tune=s.tune, chains=s.chains, cores=cores, seed=request.seed,
                target_accept=s.target_accept, progress_bar=False, save_warmup=False, blocking=False,
                zarr_store=store, low_rank_modified_mass_matrix=MASS_MATRIX == "low_rank", **_UNSTORED_STATS,
            )
        while not _finished(sampler):
            if report.error is not None:
                sampler.cancel()
                report.raise_if_failed()
            time.sleep(0.2)
        try:
            trace = sampler.wait()
            posterior = read_draws(trace.posterior, [v for v in public if v in trace.posterior])
            stats = read_draw_stats(trace.sample_stats)
            warmup_steps = _warmup_steps(trace)
        except Exception as exc:  # nutpie raises plain errors for failed chains
            raise FitError(f"model '{spec.name}': nutpie sampling failed ({exc}); try backend 'pymc'") from exc
        del trace, sampler
    # nutpie's zarr layout leaves chain and draw without coordinates
    index = {"chain": np.arange(posterior.sizes["chain"]), "draw": np.arange(posterior.sizes["draw"])}
    posterior = posterior.assign_coords(index)
    stats = stats.assign_coords(index)
    sample_s = time.perf_counter() - t1
    sample_cpu_s = time.process_time() - cpu1  # every chain thread of this process
    report(FitPhase.SAMPLING, total, total, int(stats["diverging"].sum()), force=True)
    # gradient evaluations, warm-up included: with the CPU time, the measured cost constants (genome.md)
    n_steps = int(stats["n_steps"].sum()) + warmup_steps if "n_steps" in stats else None
    notes = {"nutpie_cores": cores, "nutpie_backend": backend, "nutpie_mass_matrix": MASS_MATRIX,
             "nutpie_sample_cpu_s": round(sample_cpu_s, 2), "nutpie_gradient_evals": n_steps}
    return SamplerResult(posterior, stats, compile_s, sample_s, notes)


def _warmup_steps(trace: Any) -> int:
    """Leapfrog steps (one gradient each) taken in warm-up, from the per-draw statistics kept for it; 0 if absent."""
    group = getattr(trace, "warmup_sample_stats", None)
    if group is None or "n_steps" not in group:
        return 0
    return int(np.nansum(group["n_steps"].values))


# asked of nutpie for the record; its zarr store (0.16.8) writes these statistics regardless
_UNSTORED_STATS = {"store_gradient": False, "store_unconstrained": False, "store_divergences": False,
                   "store_mass_matrix": False}


class ChunkSweeper:
    """Deletes, as nutpie writes them, the chunk files of every array of its zarr store that is never read.

    Kept: the ``kept`` posterior variables and the per-draw (chain, draw) sampler statistics
    (warm-up included: a few bytes per draw). Deleted: the warm-up draws, free (transformed) variables not kept, and per-parameter
    statistics (gradient, unconstrained draw, mass matrix, divergence locations). nutpie 0.16.8
    writes each chunk file (one chain × 16 draws) once, by rename, and never reads it back, and a
    zarr reader sees a missing chunk as the fill value, so only arrays nobody reads are touched;
    array metadata (``zarr.json``) and coordinate arrays stay, so the store still opens. Works as a
    context manager: a background thread sweeps every ``interval_s`` and once more on exit.
    """

    KEPT_GROUPS = ("posterior", "sample_stats")

    def __init__(self, root: str | os.PathLike[str], kept: list[str], interval_s: float = 0.5) -> None:
        self.root = os.fspath(root)
        self.kept = set(kept)
        self.interval_s = interval_s
        self.swept_bytes = 0
        self._verdict: dict[str, bool] = {}  # array folder → delete its chunks?
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ChunkSweeper:
        self._thread = threading.Thread(target=self._run, name="speclet-chunk-sweeper", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sweep()
        self.sweep()

    def sweep(self) -> int:
        """One pass: delete the finished chunk files of unread arrays; returns the bytes freed."""
        freed = 0
        try:
            groups = list(os.scandir(self.root))
        except OSError:
            return 0
        for group in groups:
            if not group.is_dir():
                continue
            try:
                arrays = [a for a in os.scandir(group.path) if a.is_dir()]
            except OSError:
                continue
            for array in arrays:
                if self._unread(group.name, array.name, array.path):
                    freed += _delete_chunks(os.path.join(array.path, "c"))
        self.swept_bytes += freed
        return freed

    def _unread(self, group: str, name: str, path: str) -> bool:
        if path in self._verdict:
            return self._verdict[path]
        try:
            with open(os.path.join(path, "zarr.json")) as fh:
                meta = json.load(fh)
        except (OSError, ValueError):  # not written yet: decide on a later pass
            return False
        per_draw = list(meta.get("dimension_names") or [])[:2] == ["chain", "draw"]
        if not per_draw:  # coordinates and anything else: kept
            verdict = False
        elif group == "warmup_sample_stats":  # warm-up: one value per draw is kept (steps, for the cost record)
            verdict = len(meta.get("shape", ())) > 2
        elif group not in self.KEPT_GROUPS:  # the warm-up draws
            verdict = True
        elif group == "posterior":
            verdict = name not in self.kept
        else:  # sample_stats: only one value per draw is read
            verdict = len(meta.get("shape", ())) > 2
        self._verdict[path] = verdict
        return verdict


def _delete_chunks(folder: str) -> int:
    """Delete the chunk files below ``folder`` (never a file being written: those carry a '#'); bytes freed."""
    freed = 0
    for dirpath, _, files in os.walk(folder):
        for f in files:
            if "#" in f or f.startswith("."):
                continue
            full = os.path.join(dirpath, f)
            try:
                size = os.path.getsize(full)
                os.unlink(full)
            except OSError:
                continue
            freed += size
    return freed


def read_draws(source: xr.Dataset, names: list[str]) -> xr.Dataset:
    """The kept draws of ``names`` as float32, read one variable and one chain at a time.

    ``source`` is nutpie's lazily opened zarr posterior; at most one chain of one variable is
    ever held in float64, so reading needs the float32 posterior plus that one block.
    """
    chain_index = np.arange(source.sizes["chain"])
    out: dict[str, xr.DataArray] = {}
    for name in names:
        da = source[name]
        arr = np.empty(da.shape, dtype=DRAW_DTYPE)
        axis = da.dims.index("chain")
        for c in chain_index:
            where = [slice(None)] * da.ndim
            where[axis] = c
            arr[tuple(where)] = np.asarray(da.isel(chain=c).values, dtype=DRAW_DTYPE)
        coords = {d: da.coords[d].values for d in da.dims if d in da.coords and d not in ("chain", "draw")}
        out[name] = xr.DataArray(arr, dims=da.dims, coords=coords)
    return xr.Dataset(out)


def read_draw_stats(source: xr.Dataset) -> xr.Dataset:
    """Sampler statistics with one value per draw (divergence, energy, depth, steps…), loaded; no per-parameter ones."""
    keep = [v for v in source.data_vars if set(source[v].dims) <= {"chain", "draw"}]
    return source[keep].load()


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

    if MASS_MATRIX not in MASS_MATRICES:
        raise FitError(f"unknown mass matrix {MASS_MATRIX!r}; use one of {', '.join(MASS_MATRICES)}")
    make = _lib.PyNutsSettings.LowRank if MASS_MATRIX == "low_rank" else _lib.PyNutsSettings.Diag
    settings = make(seed)
    settings.num_tune = s.tune
    settings.num_draws = s.draws
    settings.num_chains = s.chains
    settings.target_accept = s.target_accept
    settings.maxdepth = MAX_TREE_DEPTH
    for name, value in _UNSTORED_STATS.items():
        setattr(settings, name, value)

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
