"""Checks around a fit request: at submit time (``prepare_request``) and again when a worker takes it up.

``prepare_request`` loads and validates the screen, selects, checks that the model can be
fitted to it (columns, lineages, the hard ceilings) and that this machine can run it (``admit_fit``:
the cost estimate's peak memory and disk against the budgets of ``Settings``), and returns the
``FitRequest``, or raises a ``SpecletError`` that says what to change. ``load_request`` is the
worker's side: the same model version, the same data (fingerprint), the same checks; the engine
admits the fit again on the model it built, against the worker machine's memory and disk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from speclet_core.data.covariates import assign_batch, mark_selection, marker_columns, prepare_covariates
from speclet_core.data.screen import Screen, load_screen
from speclet_core.data.selection import ScreenSelection, select_screen
from speclet_core.errors import FitError, ModelError
from speclet_core.fitting.cost import BIG_FIT_SAMPLER, RSS_BASE_MB, CostEstimate, estimate_cost, human_mb
from speclet_core.labels import ALL, means_all
from speclet_core.models.spec import ModelSpec, check_selection, get_model, list_models
from speclet_core.records import FitMethod, FitRequest, ModelOptions, SamplerSettings, Selection
from speclet_core.settings import Settings


def load_selection(data_path: str | Path, selection: Selection) -> ScreenSelection:
    """The screen at ``data_path``, loaded and validated, narrowed to ``selection``."""
    screen = load_screen(data_path)
    return select_screen(screen, selection.genes, selection.lineages, selection.cell_lines)


_OPTION_FLAGS = {"biomarker": "--biomarker COLUMN", "batch": "--batch screen|pdna_batch"}


def apply_options(spec: ModelSpec, screen: Screen, sel: ScreenSelection, options: ModelOptions) -> ScreenSelection:
    """The selection with the columns the model's options add (marker, batch); refuse options it does not read."""
    for name in options.given():
        if name not in spec.options:
            takers = [m.name for m in list_models() if name in m.options]
            raise ModelError(
                f"model '{spec.name}' has no {name} option; models that have: {', '.join(takers) or 'none'}"
            )
    for name in spec.required_options:
        if getattr(options, name) is None:
            hint = ""
            if name == "biomarker":
                hint = f"; columns of this table that can mark cell lines: {', '.join(marker_columns(screen.data).values())}"
            raise ModelError(f"model '{spec.name}' needs the {name} option ({_OPTION_FLAGS.get(name, name)}){hint}")
    if options.biomarker is not None:
        sel, _ = mark_selection(screen.data, sel, options.biomarker)
    if "batch" in spec.options:
        sel = assign_batch(sel, options.batch)
    return sel


def check_size(spec: ModelSpec, selection: ScreenSelection, settings: Settings) -> None:
    """Raise ``ModelError`` when the selection is over the hard ceilings of ``Settings`` (before any estimate)."""
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
            "select fewer genes or lineages, or ask the administrator to raise this server's hard ceiling"
        )


# Disk needed beyond the estimate: the store's write margin (model_store.writer) and the estimate's own error.
ADMIT_DISK_FACTOR = 1.25


def admit_fit(estimate: CostEstimate, settings: Settings, *, model: str, genes: int | None = None) -> None:
    """Refuse (``ModelError``) a fit this machine cannot hold: its estimated peak memory over the memory budget,
    or its temporary plus stored disk over the disk budget; the message gives the numbers and what to change.

    The one admission rule: ``prepare_request`` (CLI ``fit`` and ``atlas``, the Fit page, the first start) and the
    fitting engine in the worker call it. ``genes``: the selection's gene count, to say how many would fit.
    """
    problem = admission_problem(estimate, settings, model=model, genes=genes)
    if problem is not None:
        raise ModelError(problem)


def admission_problem(estimate: CostEstimate, settings: Settings, *, model: str, genes: int | None = None
                      ) -> str | None:
    """Why ``admit_fit`` would refuse this fit (the whole message), or None when it fits."""
    memory, memory_why = settings.fit_memory_budget()
    disk, disk_why = settings.fit_disk_budget()
    need_disk = estimate.disk_mb * ADMIT_DISK_FACTOR
    problems = []
    shrink = 1.0
    if memory and estimate.peak_rss_mb > memory:
        problems.append(f"it needs ≈ {human_mb(estimate.peak_rss_mb)} of memory at its peak, more than the "
                        f"{human_mb(memory)} it may use ({memory_why})")
        shrink = min(shrink, max(0.0, memory - RSS_BASE_MB) / max(1.0, estimate.peak_rss_mb - RSS_BASE_MB))
    if disk and need_disk > disk:
        problems.append(f"it needs ≈ {human_mb(need_disk)} of disk (≈ {human_mb(estimate.tmp_disk_mb)} temporary "
                        f"while sampling, ≈ {human_mb(estimate.stored_disk_mb)} stored and as much again while "
                        "writing, and a margin), more than the "
                        f"{human_mb(disk)} available ({disk_why})")
        shrink = min(shrink, disk / need_disk)
    if not problems:
        return None
    fixes = []
    if genes and genes > 1:
        fixes.append(f"select fewer genes (about {max(1, int(genes * shrink * 0.9)):,} of the {genes:,} would fit)")
    if not estimate.approximate:
        budget = estimate.with_sampler(SamplerSettings.model_validate(BIG_FIT_SAMPLER), load=0.0)
        if budget.kept_draws < estimate.kept_draws or budget.tmp_disk_mb < estimate.tmp_disk_mb:
            fixes.append(f"keep fewer draws ({sampler_words(BIG_FIT_SAMPLER)} needs ≈ "
                         f"{human_mb(budget.peak_rss_mb)} of memory and ≈ {human_mb(budget.disk_mb)} of disk)")
        quick = estimate.with_sampler(SamplerSettings(method=FitMethod.QUICK), load=0.0)
        fixes.append(f"use the quick approximate method for a first look (method quick: ≈ "
                     f"{human_mb(quick.peak_rss_mb)} of memory, ≈ {human_mb(quick.disk_mb)} of disk)")
    fixes.append("or free memory or disk, or raise SPECLET_FIT_MEMORY_BUDGET_MB / SPECLET_FIT_DISK_BUDGET_MB")
    return (f"model '{model}': this fit of {estimate.rows:,} readings × {estimate.parameters:,} parameters "
            f"cannot run on this machine: {'; and '.join(problems)}. To make it fit: {'; '.join(fixes)}")


def sampler_words(sampler: Mapping[str, int]) -> str:
    """``4 chains × (500 warm-up + 500 kept draws)``."""
    return f"{sampler['chains']} chains × ({sampler['tune']} warm-up + {sampler['draws']} kept draws)"


def _canonical(requested: Any, chosen: tuple[str, ...]) -> Any:
    """``"all"`` stays all; explicit labels become the matched labels, so the fit id is stable."""
    return ALL if means_all(requested) else chosen


def prepare_request(
    data_path: str | Path,
    model: str,
    *,
    settings: Settings,
    genes: Any = ALL,
    lineages: Any = ALL,
    cell_lines: Any = ALL,
    sampler: SamplerSettings | Mapping[str, Any] | None = None,
    seed: int = 1,
    options: ModelOptions | Mapping[str, Any] | None = None,
) -> FitRequest:
    """Validate everything a fit needs and return its ``FitRequest`` (nothing is sampled).

    Raises a ``SpecletError`` subclass (``DataReadError``, ``DataValidationError``,
    ``SelectionError``, ``ModelError``) with a message that says what to change; a fit this
    machine cannot hold is refused here (``admit_fit``).
    """
    return prepare_fit(data_path, model, settings=settings, genes=genes, lineages=lineages, cell_lines=cell_lines,
                       sampler=sampler, seed=seed, options=options)[0]


def prepare_fit(
    data_path: str | Path,
    model: str,
    *,
    settings: Settings,
    genes: Any = ALL,
    lineages: Any = ALL,
    cell_lines: Any = ALL,
    sampler: SamplerSettings | Mapping[str, Any] | None = None,
    seed: int = 1,
    options: ModelOptions | Mapping[str, Any] | None = None,
) -> tuple[FitRequest, CostEstimate]:
    """As ``prepare_request``, also returning the admitted fit's ``CostEstimate`` (its ``total_s`` is the job's
    ``estimate_s``)."""
    spec = get_model(model)
    path = Path(data_path).expanduser().resolve()
    screen = load_screen(path)
    sel = select_screen(screen, genes, lineages, cell_lines)
    if not isinstance(options, ModelOptions):
        options = ModelOptions(**dict(options or {}))
    sel = apply_options(spec, screen, sel, options)
    check_selection(spec, sel)
    check_size(spec, sel, settings)
    if sampler is None:
        sampler = SamplerSettings()
    elif not isinstance(sampler, SamplerSettings):
        sampler = SamplerSettings(**dict(sampler))
    estimate = estimate_cost(sel, spec, sampler)
    admit_fit(estimate, settings, model=spec.name, genes=len(sel.genes))
    selection = Selection(
        genes=_canonical(genes, sel.genes),
        lineages=_canonical(lineages, sel.lineages),
        cell_lines=_canonical(cell_lines, sel.cell_lines),
    )
    request = FitRequest(
        data_path=str(path),
        data_fingerprint=sel.fingerprint,
        selection=selection,
        model=spec.name,
        model_version=spec.version,
        sampler=sampler,
        seed=seed,
        options=options,
    )
    return request, estimate


def load_request(request: FitRequest, settings: Settings) -> tuple[ModelSpec, ScreenSelection]:
    """The model and selection of a queued request, checked again: same model version, same data, same caps."""
    spec = get_model(request.model)
    if spec.version != request.model_version:
        raise FitError(
            f"model '{spec.name}' is version {spec.version} now, the request was for version "
            f"{request.model_version}; submit the fit again"
        )
    screen = load_screen(request.data_path)
    sel = select_screen(screen, request.selection.genes, request.selection.lineages, request.selection.cell_lines)
    sel = apply_options(spec, screen, sel, request.options)
    if sel.fingerprint != request.data_fingerprint:
        raise FitError(
            f"{request.data_path}: the data file changed since the fit was requested (fingerprint "
            f"{sel.fingerprint[:12]}… instead of {request.data_fingerprint[:12]}…); submit the fit again"
        )
    check_selection(spec, sel)
    check_size(spec, sel, settings)
    return spec, sel


def estimate_request(request: FitRequest) -> CostEstimate:
    """The cost estimate of a request (its data loaded and selected, its options applied), at the load of now."""
    spec = get_model(request.model)
    screen = load_screen(request.data_path)
    chosen = request.selection
    sel = apply_options(spec, screen, select_screen(screen, chosen.genes, chosen.lineages, chosen.cell_lines),
                        request.options)
    return estimate_cost(sel, spec, request.sampler)


def with_covariates(spec: ModelSpec, sel: ScreenSelection) -> tuple[ScreenSelection, dict[str, Any]]:
    """The selection with the model-scale covariates its predictor reads, and how they were scaled."""
    if not any(t.covariate for t in spec.predictor):
        return sel, {}
    prepared, transforms = prepare_covariates(sel.data)
    return dataclasses.replace(sel, data=prepared), transforms
