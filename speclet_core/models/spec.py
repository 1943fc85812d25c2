"""What a model is: its spec (meaning, equation, roles, predictor, likelihood) and the one registry of specs.

``ModelSpec`` declares everything pages and the fitting engine need to know about a model
without reading its PyMC graph: which variable is the gene effect, which are hyper-parameters,
the linear predictor of each reading in terms of stored variables, and the distribution family
of a reading given that mean (``likelihood``), used both by the PyMC builder and by the numpy
predictive checks and log-likelihood.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pymc as pm

from speclet_core.data.selection import ScreenSelection
from speclet_core.errors import ModelError

RAW_SUFFIX = "_raw"

# model dim -> selection column holding its labels
DIM_COLUMNS: dict[str, str] = {
    "gene": "hugo_symbol", "sgrna": "sgrna", "cell_line": "depmap_id", "lineage": "lineage",
    "batch": "batch",  # only in selections of models with a batch option (``ModelOptions.batch``)
}


class Likelihood(StrEnum):
    """Distribution family of one reading's LFC given its mean and the model's noise variable."""

    NORMAL = "normal"


@dataclass(frozen=True)
class LinearTerm:
    """One additive term of a reading's mean: ``variable[dims of the reading]`` (× ``covariate``)."""

    variable: str
    dims: tuple[str, ...]
    covariate: str | None = None


Builder = Callable[[ScreenSelection, "ModelSpec"], pm.Model]


@dataclass(frozen=True)
class ModelSpec:
    """One catalog entry: what a model means, how it is written, and how to build it.

    ``likelihood`` and ``noise`` (the name of the reading-noise variable) are declared here
    once: the builder observes the readings with them, and the fitting engine computes the
    posterior predictive and log-likelihood with them.
    """

    name: str
    version: str
    title: str
    description: str
    equation: str
    terms: Mapping[str, str]
    builder: Builder = field(repr=False, compare=False)
    required_columns: tuple[str, ...] = ()
    min_lineages: int = 1
    max_lineages: int | None = None
    lineage_counterpart: str | None = None
    gene_lineage_effect: str | None = None
    gene_cell_line_effect: str | None = None
    hyperparameters: tuple[str, ...] = ()
    covariate_slopes: tuple[str, ...] = ()
    pooled_counterpart: str | None = None
    predictor: tuple[LinearTerm, ...] = ()
    likelihood: Likelihood = Likelihood.NORMAL
    noise: str = "sigma"
    options: tuple[str, ...] = ()  # ``ModelOptions`` fields the builder reads
    required_options: tuple[str, ...] = ()  # of those, the ones a request must set

    def build(self, selection: ScreenSelection) -> pm.Model:
        """The unfitted PyMC model for a selection (checks the selection fits the model first)."""
        check_selection(self, selection)
        return self.builder(selection, self)

    def roles(self) -> dict[str, Any]:
        """Which variable answers which question, for pages that show any model."""
        return {
            "gene_effect": "gene_effect",
            "gene_lineage_effect": self.gene_lineage_effect,
            "gene_cell_line_effect": self.gene_cell_line_effect,
            "hyperparameters": list(self.hyperparameters),
            "covariate_slopes": list(self.covariate_slopes),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (for attrs, the CLI and the Models page)."""
        return {
            "name": self.name,
            "version": self.version,
            "title": self.title,
            "description": self.description,
            "equation": self.equation,
            "required_columns": list(self.required_columns),
            "min_lineages": self.min_lineages,
            "max_lineages": self.max_lineages,
            "terms": dict(self.terms),
            "roles": self.roles(),
            "pooled_counterpart": self.pooled_counterpart,
            "predictor": [
                {"variable": t.variable, "dims": list(t.dims), "covariate": t.covariate} for t in self.predictor
            ],
            "likelihood": str(self.likelihood),
            "options": list(self.options),
            "required_options": list(self.required_options),
        }


MODELS: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a spec to the catalog; names are unique and snake_case."""
    if spec.name in MODELS:
        raise ModelError(f"model name {spec.name!r} is registered twice; model names must be unique")
    if not spec.name.replace("_", "").isalnum() or spec.name != spec.name.lower():
        raise ModelError(f"model name {spec.name!r}: use lowercase snake_case")
    MODELS[spec.name] = spec
    return spec


def get_model(name: str) -> ModelSpec:
    """The catalog entry for ``name``; ``ModelError`` lists the known names otherwise."""
    key = str(name).strip().lower()
    if key not in MODELS:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return MODELS[key]


def list_models() -> list[ModelSpec]:
    """Every registered model, in catalog order."""
    return list(MODELS.values())


def check_selection(spec: ModelSpec, selection: ScreenSelection) -> None:
    """Raise ``ModelError`` if ``spec`` cannot be fitted to ``selection`` (columns, lineages)."""
    problems = []
    data = selection.data
    for col in spec.required_columns:
        if col not in data.columns:
            problems.append(f"needs column '{col}', which the screen table does not have")
        elif data[col].notna().sum() == 0:
            problems.append(f"needs column '{col}', but every value of it is missing in the selection")
    if len(selection.lineages) < spec.min_lineages:
        problems.append(
            f"needs at least {spec.min_lineages} lineages to compare them, the selection has "
            f"{len(selection.lineages)} ({', '.join(selection.lineages)})"
        )
    if spec.max_lineages is not None and len(selection.lineages) > spec.max_lineages:
        instead = f", or fit '{spec.lineage_counterpart}' to compare lineages" if spec.lineage_counterpart else ""
        shown = ", ".join(selection.lineages[:5]) + (", …" if len(selection.lineages) > 5 else "")
        raise ModelError(
            f"model '{spec.name}' fits one lineage at a time ({spec.max_lineages} at most), the selection has "
            f"{len(selection.lineages)} ({shown}); select a single lineage{instead}"
        )
    if problems:
        raise ModelError(
            f"model '{spec.name}' cannot be fitted to this selection: {'; '.join(problems)}; "
            "widen the selection or pick another model"
        )


def public_variables(model: pm.Model) -> list[str]:
    """Names of the variables a fit keeps: free variables and deterministics, no sampler internals."""
    names = [v.name for v in [*model.free_RVs, *model.deterministics]]
    return [n for n in names if not n.endswith(RAW_SUFFIX)]


def count_parameters(model: pm.Model) -> int:
    """Number of free (sampled) scalars of a built model."""
    point = model.initial_point()
    return int(sum(np.size(v) for v in point.values()))
