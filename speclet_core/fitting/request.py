"""Checks around a fit request: at submit time (``prepare_request``) and again when a worker takes it up.

``prepare_request`` loads and validates the screen, selects, checks that the model can be
fitted to it (columns, lineages, size caps) and returns the ``FitRequest``, or raises a
``SpecletError`` that says what to change. ``load_request`` is the worker's side: the same
model version, the same data (fingerprint), the same checks.
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
from speclet_core.labels import ALL, means_all
from speclet_core.models.spec import ModelSpec, check_selection, get_model, list_models
from speclet_core.records import FitRequest, ModelOptions, SamplerSettings, Selection
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
    ``SelectionError``, ``ModelError``) with a message that says what to change.
    """
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
        options=options,
    )


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


def with_covariates(spec: ModelSpec, sel: ScreenSelection) -> tuple[ScreenSelection, dict[str, Any]]:
    """The selection with the model-scale covariates its predictor reads, and how they were scaled."""
    if not any(t.covariate for t in spec.predictor):
        return sel, {}
    prepared, transforms = prepare_covariates(sel.data)
    return dataclasses.replace(sel, data=prepared), transforms
