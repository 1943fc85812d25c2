"""What a fit will cost (time, peak memory, disk) before it starts, from measured constants.

Every constant below was measured on this project's 2-core machine; each says where and how
(``docs/benchmarks/fitting.md``, section "Cost constants"; ``benchmarks/bench_cost.py`` re-measures them).
Times are CPU seconds of one thread, turned into wall seconds by the cores the fit may use and the load
of the machine. ``estimate_cost`` is what the Fit page shows before submitting, what a job's ETA starts
from, and what admission (``speclet_core.fitting.request.admit_cost``) compares with the machine.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from speclet_core.data.selection import ScreenSelection
from speclet_core.errors import ModelError
from speclet_core.fitting.approximate import QUICK_ITERATIONS, quick_draws
from speclet_core.fitting.derived import (  # what post-processing keeps
    LOG_LIKELIHOOD_MAX_VALUES,
    POSTERIOR_PREDICTIVE_MAX_DRAWS,
    POSTERIOR_PREDICTIVE_MAX_VALUES,
)
from speclet_core.fitting.sampling import available_cores
from speclet_core.models.spec import ModelSpec, count_parameters, get_model, public_variables
from speclet_core.records import FitMethod, SamplerSettings

# ---------------------------------------------------------------------------------------------- measured constants
# Where each comes from: docs/benchmarks/fitting.md, "Cost constants (2026-12-03)". "CPU" means seconds of one busy
# thread (time.process_time), which a shared machine's load stretches less than wall time.
#
# Gradient of the log density (one BLAS thread): linear in readings × predictor terms, plus a little per parameter.
# Fitted to issue 16's measured CPU times of the flagship (3 terms): 127 µs @ 10.4k readings, 1.26 ms @ 120k,
# 3.1 ms @ 320k, 41 ms @ 2.88 M: these constants give 150 µs, 1.5 ms, 4.0 ms and 36 ms (within 1.3×).
GRADIENT_NS_PER_READING_TERM = 3.6
GRADIENT_NS_PER_PARAMETER = 6.0
GRADIENT_OVERHEAD_S = 20e-6
# Leapfrog steps per NUTS draw: a power law in the parameter count d, step size ∝ d^-1/4 (the fitted exponent on
# 31 steps @ 3,079 parameters, 63 @ 31,897 and 63 @ 90,085 is 0.23; steps come in powers of 2 minus 1). Models
# without a gene × cell-line matrix took about half as many (15 @ 3k). Measured with full warm-ups (1,000 draws):
# a short warm-up leaves the step size small (a 2 × (60 + 60) run at 32k parameters took 159 steps per draw).
STEPS_AT_REFERENCE = 31.0
STEPS_AT_REFERENCE_SMALL = 15.0
STEPS_REFERENCE_PARAMETERS = 3_079
STEPS_EXPONENT = 0.25
STEPS_MAX = 1_023  # tree depth 10, nutpie's default cap
# Loading, building and compiling (numba, through nutpie or the quick fit's log density), CPU seconds: about constant
# per model (22-66 CPU s measured from 10k to 2.9 M readings on a loaded machine, where CPU seconds are inflated;
# 12-35 s wall on a quiet one; 30 s wall at load 5 in bench_eta.py), plus
# reading, validating and building the model, ≈ 10 µs per reading (28 CPU s at 2.88 M readings).
COMPILE_S = 20.0
COMPILE_S_PER_MILLION_READINGS = 10.0
COMPILE_S_PER_MILLION_PARAMETERS = 0.0
QUICK_COMPILE_FACTOR = 0.7  # the quick fit compiles the log density only (no sampler): 22-51 against 60-66 CPU s
# Post-processing (posterior predictive, log-likelihood, diagnostics, summaries) and writing the store, CPU seconds:
# least squares over six fits (10k to 2.9 M readings, quick and NUTS), each within 0.8-1.5× of these.
POSTPROCESS_S = 4.0
POSTPROCESS_NS_PER_STORED_VALUE = 700.0  # kept draws × stored values: diagnostics, summaries, the NetCDF
POSTPROCESS_NS_PER_DERIVED_VALUE = 120.0  # log-likelihood and posterior-predictive values
QUICK_EXPAND_S_PER_DRAW = 2.5e-3  # the quick fit maps each draw to the stored variables in Python mode…
QUICK_EXPAND_NS_PER_VALUE = 25.0  # …plus this per stored value
QUICK_NS_PER_PARAMETER_ITERATION = 8.0  # Adam's vector updates of the quick fit, per parameter and iteration
# Peak resident memory (MiB), least squares over the same six fits (each within 0.9-1.15×): the libraries, plus per
# reading (the table, the model's data, derived temporaries), plus the posterior and derived groups held in memory
# (float32, held ≈ 1.3 times at the peak while storing), plus nutpie's compiled sampler and chains' state for NUTS.
RSS_BASE_MB = 800.0
RSS_BYTES_PER_READING = 780.0
RSS_IN_MEMORY_FACTOR = 1.3
RSS_NUTS_MB = 250.0
RSS_BYTES_PER_PARAMETER_CHAIN = 100.0
# Disk: nutpie 0.16.8's temporary zarr store writes ≈ 30 bytes per parameter per iteration, warm-up included
# (946,408 bytes per iteration at 31,897 parameters: docs/benchmarks/sampler_memory.md; 229 MB measured against
# 219 MB estimated at 2 × 120 iterations). It is removed before the store writes, whose temporary copy is about the
# stored size (650 MB-1.5 GB measured in TMPDIR for 0.7-1 GB fits): the peak is the larger of the two plus the fit.
TMP_BYTES_PER_PARAMETER_ITERATION = 30.0
STORED_BYTES_PER_VALUE = 4  # kept draws, log-likelihood and posterior predictive are float32
STORED_SUMMARY_BYTES_PER_ELEMENT = 120  # the per-element summary table (Parquet) beside the NetCDF

# A draws budget for big fits: above this many parameters the Fit page proposes 4 × (500 + 500) (issue 16).
BIG_FIT_PARAMETERS = 100_000
BIG_FIT_SAMPLER = {"chains": 4, "tune": 500, "draws": 500}


def steps_per_draw(n_params: int, *, matrix: bool) -> float:
    """Leapfrog steps (gradient evaluations) per NUTS draw expected for a model of ``n_params`` parameters.

    ``matrix``: whether the model has a gene × cell-line effect (deeper trees at equal size).
    """
    base = STEPS_AT_REFERENCE if matrix else STEPS_AT_REFERENCE_SMALL
    return min(STEPS_MAX, base * max(1.0, n_params / STEPS_REFERENCE_PARAMETERS) ** STEPS_EXPONENT)


def gradient_seconds(n_readings: int, n_terms: int, n_params: int) -> float:
    """CPU seconds of one gradient of the log density on one thread."""
    ns = n_readings * max(1, n_terms) * GRADIENT_NS_PER_READING_TERM + n_params * GRADIENT_NS_PER_PARAMETER
    return ns * 1e-9 + GRADIENT_OVERHEAD_S


def compile_seconds(n_readings: int, n_params: int, *, quick: bool = False) -> float:
    """CPU seconds to load the data, build and compile the model (numba) before sampling starts."""
    s = COMPILE_S * (QUICK_COMPILE_FACTOR if quick else 1.0)
    return s + COMPILE_S_PER_MILLION_READINGS * n_readings / 1e6 + COMPILE_S_PER_MILLION_PARAMETERS * n_params / 1e6


def machine_slowdown(threads: int, load: float | None = None, cores: int | None = None) -> float:
    """How much slower than on an idle machine ``threads`` busy threads run, given the load average (≥ 1).

    Other work's runnable processes (``load``, default the 1-minute load average) share the cores with ours.
    """
    cores = cores or available_cores()
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
    return max(1.0, (max(0.0, load) + threads) / cores) / max(1.0, threads / cores)


@dataclass(frozen=True)
class CostEstimate:
    """What a fit is expected to cost: seconds per stage (wall), peak memory, temporary and stored disk."""

    rows: int
    parameters: int
    stored_values_per_draw: int
    kept_draws: int  # all chains together
    steps_per_draw: float
    gradient_ms: float
    compile_s: float
    sampling_s: float
    postprocess_s: float
    peak_rss_mb: float
    tmp_disk_mb: float
    stored_disk_mb: float
    slowdown: float  # the machine's load factor already in the seconds above
    approximate: bool
    terms: int = 1  # predictor terms and whether there is a gene × cell-line matrix: for ``with_sampler``
    matrix: bool = False

    @property
    def stored_values(self) -> int:
        """Kept draws × stored values per draw (the posterior's size)."""
        return self.kept_draws * self.stored_values_per_draw

    @property
    def memory_mb(self) -> float:
        """The kept posterior in MiB (float32)."""
        return self.stored_values * STORED_BYTES_PER_VALUE / 2**20

    @property
    def total_s(self) -> float:
        return self.compile_s + self.sampling_s + self.postprocess_s

    @property
    def disk_mb(self) -> float:
        """Disk the fit needs at its peak: the stored fit, plus the larger of the sampler's temporary store and the
        store's temporary copy while writing (about the stored size)."""
        return max(self.tmp_disk_mb, self.stored_disk_mb) + self.stored_disk_mb

    def with_sampler(self, sampler: SamplerSettings, *, load: float | None = None) -> CostEstimate:
        """The same model and data with other sampler settings (e.g. the draws budget, or the quick method)."""
        return estimate_from_sizes(self.rows, self.parameters, self.stored_values_per_draw, sampler,
                                   terms=self.terms, matrix=self.matrix, load=load)

    def as_dict(self) -> dict[str, Any]:
        """The estimate as plain numbers (for a job's record and the fit's provenance)."""
        out = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        out["total_s"] = round(self.total_s, 3)
        return out

    def describe(self) -> str:
        """One line for a person."""
        kind = "quick approximate fit" if self.approximate else "full NUTS fit"
        return (f"{self.rows:,} readings × {self.parameters:,} parameters: a {kind} takes roughly "
                f"{self.cost_words()}")

    def cost_words(self) -> str:
        """Time by stage, memory and disk in words (``describe`` without the sizes)."""
        load = f" at this machine's load (×{self.slowdown:.1f})" if self.slowdown > 1.05 else ""
        return (
            f"{human_seconds(self.total_s)}{load} (compiling ≈ {human_seconds(self.compile_s)}, "
            f"{'optimising' if self.approximate else 'sampling'} ≈ {human_seconds(self.sampling_s)}, "
            f"summarising and saving ≈ {human_seconds(self.postprocess_s)}), needs ≈ {human_mb(self.peak_rss_mb)} "
            f"of memory and ≈ {human_mb(self.disk_mb)} of disk ({human_mb(self.stored_disk_mb)} stored)"
        )


def human_seconds(s: float) -> str:
    """``40 s``, ``12 min``, ``3.5 h``."""
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def human_mb(mb: float) -> str:
    """``640 MB``, ``3.2 GB`` (MiB and GiB, written as people say them)."""
    return f"{mb:,.0f} MB" if mb < 1024 else f"{mb / 1024:,.1f} GB"


def estimate_cost(
    selection: ScreenSelection,
    model: str | ModelSpec | None = None,
    sampler: SamplerSettings | None = None,
    *,
    built: Any = None,
    load: float | None = None,
    cores: int | None = None,
) -> CostEstimate:
    """Seconds, peak memory and disk of a fit before starting it.

    Pass a ``ScreenSelection`` with a model (name or spec); for a ``FitRequest`` use
    ``request.estimate_request``. The model is built, not compiled, to count its parameters exactly
    (``built``: the model already built on this selection). ``load``: the
    machine's load average to plan for (default: now); ``cores``: the cores a fit may use.
    """
    if model is None:
        raise ModelError("estimate_cost: name the model to estimate (e.g. 'sgrna_gene_lineage')")
    spec = model if isinstance(model, ModelSpec) else get_model(model)
    sel = selection
    sampler = sampler or SamplerSettings()
    built = built if built is not None else spec.build(sel)
    n_params, per_draw = model_sizes(built)
    return estimate_from_sizes(sel.n_rows, n_params, per_draw, sampler, terms=len(spec.predictor),
                               matrix=spec.gene_cell_line_effect is not None, load=load, cores=cores)


def estimate_from_sizes(
    n: int, n_params: int, per_draw: int, sampler: SamplerSettings, *, terms: int, matrix: bool,
    load: float | None = None, cores: int | None = None,
) -> CostEstimate:
    """The estimate from a model's sizes: ``n`` readings, ``n_params`` parameters, ``per_draw`` stored values,
    ``terms`` predictor terms, ``matrix``: whether it has a gene × cell-line effect."""
    grad = gradient_seconds(n, terms, n_params)
    cores = cores or available_cores()
    approximate = sampler.method == FitMethod.QUICK
    if approximate:
        chains, kept = 1, quick_draws(per_draw)
        steps = 1.0
        slowdown = machine_slowdown(1, load, cores)
        sampling_cpu = (QUICK_ITERATIONS * (grad + n_params * QUICK_NS_PER_PARAMETER_ITERATION * 1e-9)
                        + kept * (QUICK_EXPAND_S_PER_DRAW + per_draw * QUICK_EXPAND_NS_PER_VALUE * 1e-9))
        sampling = sampling_cpu * slowdown
        tmp_bytes = 0.0
    else:
        chains, kept = sampler.chains, sampler.chains * sampler.draws
        parallel = min(chains, cores)
        slowdown = machine_slowdown(parallel, load, cores)
        steps = steps_per_draw(n_params, matrix=matrix)
        sampling = chains * (sampler.tune + sampler.draws) * steps * grad / parallel * slowdown
        tmp_bytes = chains * (sampler.tune + sampler.draws) * n_params * TMP_BYTES_PER_PARAMETER_ITERATION
    one_core = machine_slowdown(1, load, cores)
    compile_s = compile_seconds(n, n_params, quick=approximate) * one_core
    derived = _derived_values(n, chains, kept // chains)
    stored_values = kept * per_draw
    postprocess = (POSTPROCESS_S + (stored_values * POSTPROCESS_NS_PER_STORED_VALUE
                                    + derived * POSTPROCESS_NS_PER_DERIVED_VALUE) * 1e-9) * one_core
    in_memory = (stored_values + derived) * STORED_BYTES_PER_VALUE
    rss = (RSS_BASE_MB + (0.0 if approximate else RSS_NUTS_MB)
           + (n * RSS_BYTES_PER_READING + n_params * chains * RSS_BYTES_PER_PARAMETER_CHAIN
              + in_memory * RSS_IN_MEMORY_FACTOR) / 2**20)
    stored_bytes = in_memory + per_draw * STORED_SUMMARY_BYTES_PER_ELEMENT
    return CostEstimate(
        rows=n,
        parameters=n_params,
        stored_values_per_draw=int(per_draw),
        kept_draws=int(kept),
        steps_per_draw=float(steps),
        gradient_ms=float(grad * 1e3),
        compile_s=float(compile_s),
        sampling_s=float(sampling),
        postprocess_s=float(postprocess),
        peak_rss_mb=float(rss),
        tmp_disk_mb=float(tmp_bytes / 2**20),
        stored_disk_mb=float(stored_bytes / 2**20),
        slowdown=float(slowdown),
        approximate=approximate,
        terms=terms,
        matrix=matrix,
    )


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


COST_STAGES = ("compile_s", "sampling_s", "postprocess_s", "total_s", "peak_rss_mb")


def cost_record(estimate: CostEstimate, timings: dict[str, float]) -> dict[str, Any]:
    """What a fit's provenance keeps about its cost: the estimate made when it started, and what it took.

    ``actual`` has the engine's timings (compile, sampling, post-processing; total from loading to the end of
    post-processing) and the process's peak RSS; the store adds its own write time (``store_timings``).
    """
    actual = {
        "compile_s": timings.get("compile_s"), "sampling_s": timings.get("sample_s"),
        "postprocess_s": timings.get("postprocess_s"), "total_s": timings.get("total_s"),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    return {"predicted": estimate.as_dict(), "actual": actual}


def _derived_values(n_readings: int, chains: int, draws: int) -> int:
    """Values of the log-likelihood (when under its cap) and the posterior predictive a fit keeps."""
    ll = chains * draws * n_readings
    ll = ll if ll <= LOG_LIKELIHOOD_MAX_VALUES else 0
    cap = min(POSTERIOR_PREDICTIVE_MAX_DRAWS, POSTERIOR_PREDICTIVE_MAX_VALUES // max(1, n_readings))
    ppc = chains * max(1, min(draws, cap // max(1, chains))) * n_readings
    return int(ll + ppc)


def model_sizes(built: Any) -> tuple[int, int]:
    """(free parameters, stored values per draw) of a built model, without compiling the model.

    Static shapes and named dims give most sizes at once; the rest are evaluated in one small function.
    """
    import pytensor

    public = set(public_variables(built))
    stored = [v for v in [*built.free_RVs, *built.deterministics] if v.name in public]
    sizes: dict[str, int] = {}
    unknown = []
    for v in stored:
        shape = v.type.shape
        dims = built.named_vars_to_dims.get(v.name) or ()
        if all(d is not None for d in shape):
            sizes[v.name] = int(np.prod(shape))
        elif len(dims) == len(shape) and all(built.coords.get(d) is not None for d in dims):
            sizes[v.name] = int(np.prod([len(built.coords[d]) for d in dims]))
        else:
            unknown.append(v)
    if unknown:
        shapes = pytensor.function([], [v.shape for v in unknown], mode="FAST_COMPILE")()
        sizes.update({v.name: int(np.prod(sh)) for v, sh in zip(unknown, shapes, strict=True)})
    values = built.value_vars
    if all(all(d is not None for d in v.type.shape) for v in values):
        n_params = int(sum(np.prod(v.type.shape) for v in values))
    else:
        n_params = count_parameters(built)
    return n_params, int(sum(sizes.values()))


