"""The fitting engine: a ``FitRequest`` in, a ``FitResult`` (posterior + checks + diagnostics) out.

``run_fit`` is what a worker calls. It reads as the stages of a fit, each called once:
load, select and check the data (``request``), build the model (``models``), sample
(nutpie by default, PyMC's NUTS, or a quick ADVI approximation), derive the predictive
checks and log-likelihood (``derived``), assemble the InferenceData and judge it
(``diagnostics``). It writes nothing: storing, provenance attrs included, is the model
store's job; ``FitResult.provenance`` carries what only the fit knows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import arviz as az
import numpy as np
import xarray as xr

from speclet_core.data.cell_lines import CELL_LINE_GROUP, annotation_dataset, cell_line_table
from speclet_core.data.selection import ScreenSelection
from speclet_core.diagnostics.compute import compute_diagnostics
from speclet_core.fitting.approximate import QUICK_METHOD, fit_quick
from speclet_core.fitting.cost import cost_record, estimate_cost
from speclet_core.fitting.derived import derive_groups
from speclet_core.fitting.nutpie_sampler import sample_nutpie
from speclet_core.fitting.pymc_sampler import sample_pymc
from speclet_core.fitting.request import admit_fit, load_request, with_covariates
from speclet_core.fitting.sampling import ProgressCallback, Reporter, SamplerResult, quiet_pymc
from speclet_core.models.spec import DIM_COLUMNS, ModelSpec, public_variables
from speclet_core.records import Backend, FitMethod, FitPhase, FitRequest
from speclet_core.settings import Settings


@dataclass(frozen=True)
class FitResult:
    """A finished fit in memory: posterior and checks, the model spec, diagnostics, timings and provenance.

    ``provenance`` holds what only the fit knows (the model's title, the data path, selection
    counts, covariate scaling, notes on what was stored); the store writes it into the root
    attrs next to the request, roles, diagnostics and timings.
    """

    idata: az.InferenceData
    spec: ModelSpec
    diagnostics: dict[str, Any]
    timings: dict[str, float]
    provenance: dict[str, Any]

    @property
    def approximate(self) -> bool:
        return bool(self.diagnostics.get("approximate"))


def run_fit(request: FitRequest, *, settings: Settings, progress: ProgressCallback | None = None) -> FitResult:
    """Load, build, sample and check one fit; return it in memory (nothing is written).

    ``settings`` gives the size caps, checked again here. ``progress`` receives
    ``FitProgress`` at most about twice a second; an exception it raises stops the fit and
    propagates (a worker can cancel this way).
    """
    report = Reporter(progress)
    t_start = time.perf_counter()
    report(FitPhase.LOADING, force=True)
    report.raise_if_failed()
    spec, sel = load_request(request, settings)
    sel, transforms = with_covariates(spec, sel)
    model = spec.build(sel)
    public = public_variables(model)
    estimate = estimate_cost(sel, spec, request.sampler, built=model)
    admit_fit(estimate, settings, model=spec.name, genes=len(sel.genes))  # this machine's memory and disk, now
    load_s = time.perf_counter() - t_start

    with quiet_pymc():
        sampled = _sample(model, public, spec, sel, request, report, settings.nutpie_backend)
    report.raise_if_failed()

    t_post = time.perf_counter()
    report(FitPhase.SAVING, *report.counts, force=True)
    posterior = _stored_variables(sampled.posterior, public)
    with quiet_pymc():
        derived, notes = derive_groups(spec, sel, model, public, posterior, request.seed)
    idata = _assemble(spec, sel, posterior, sampled.sample_stats, derived)
    approximate = request.sampler.method == FitMethod.QUICK
    method = QUICK_METHOD if approximate else f"NUTS ({request.sampler.backend})"
    diagnostics = compute_diagnostics(idata, approximate=approximate, method=method)
    timings = {
        "load_s": round(load_s, 3),
        "compile_s": round(sampled.compile_s, 3),
        "sample_s": round(sampled.sample_s, 3),
        "postprocess_s": round(time.perf_counter() - t_post, 3),
        "total_s": round(time.perf_counter() - t_start, 3),
    }
    provenance = {
        "model_title": spec.title,
        "data_path": request.data_path,
        "selection_counts": sel.summarise(),
        "approximate": "true" if approximate else "false",
        "covariate_transforms": transforms,
        "notes": {**notes, **sampled.notes},
        "cost": cost_record(estimate, timings),  # predicted vs actual, so the constants can be checked
    }
    report.raise_if_failed()
    return FitResult(idata=idata, spec=spec, diagnostics=diagnostics, timings=timings, provenance=provenance)


def _sample(
    model: Any, public: list[str], spec: ModelSpec, sel: ScreenSelection, request: FitRequest, report: Reporter,
    nutpie_backend: str = "numba",
) -> SamplerResult:
    """The sampler the request asks for: quick ADVI, nutpie (numba or JAX) or PyMC's NUTS."""
    if request.sampler.method == FitMethod.QUICK:
        return fit_quick(model, public, request.seed, report)
    if request.sampler.backend == Backend.NUTPIE:
        return sample_nutpie(model, public, spec, sel, request, report, backend=nutpie_backend)
    return sample_pymc(model, public, request, report)


def _stored_variables(posterior: xr.Dataset, public: list[str]) -> xr.Dataset:
    """The posterior without sampler internals and without coords no kept variable uses."""
    posterior = posterior.drop_vars([v for v in posterior.data_vars if v not in public])
    used = {d for v in posterior.data_vars.values() for d in v.dims}
    return posterior.drop_vars([c for c in posterior.coords if c not in used])


def _assemble(
    spec: ModelSpec,
    sel: ScreenSelection,
    posterior: xr.Dataset,
    stats: xr.Dataset | None,
    derived: dict[str, xr.Dataset],
) -> az.InferenceData:
    """All groups of a fit: posterior, sample stats, the data read, and the derived groups."""
    groups: dict[str, xr.Dataset] = {"posterior": posterior}
    if stats is not None:
        groups["sample_stats"] = stats
    reading = np.arange(sel.n_rows)
    groups["observed_data"] = xr.Dataset(
        {"lfc": ("reading", sel.data["lfc"].to_numpy(dtype=np.float64))}, coords={"reading": reading}
    )
    const = {
        dim: ("reading", sel.data[col].astype(str).to_numpy(dtype=object))
        for dim, col in DIM_COLUMNS.items()
        if col in sel.data.columns
    }
    for term in spec.predictor:
        if term.covariate:
            const[term.covariate] = ("reading", sel.data[term.covariate].to_numpy(dtype=np.float64))
    groups["constant_data"] = xr.Dataset(const, coords={"reading": reading})
    # the cell lines' lineage, name and annotations, so pages can show names without the screen table
    groups[CELL_LINE_GROUP] = annotation_dataset(cell_line_table(sel.data).reindex(list(sel.cell_lines)))
    return az.InferenceData(**groups, **derived)  # type: ignore[arg-type]
