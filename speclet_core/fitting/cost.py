"""A rough guess of what a fit costs (seconds, memory), shown before it starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from speclet_core.data.selection import ScreenSelection
from speclet_core.errors import ModelError
from speclet_core.fitting.approximate import QUICK_DRAWS, QUICK_ITERATIONS
from speclet_core.fitting.request import load_selection
from speclet_core.fitting.sampling import available_cores
from speclet_core.models.spec import ModelSpec, count_parameters, get_model, public_variables
from speclet_core.records import FitMethod, FitRequest, SamplerSettings

# Rough cost model (seconds), calibrated on this 2-core machine; see docs/benchmarks/fitting.md.
COST_COMPILE_S = 20.0
COST_NS_PER_READING_TERM = 3.0
COST_NS_PER_PARAMETER = 10.0
COST_STEPS_PER_DRAW = 31  # tree depth 5 at target_accept 0.9, models with a gene × cell-line matrix…
COST_STEPS_PER_DRAW_SMALL = 15
COST_STEPS_AT_PARAMETERS = 3_000  # …of about this many parameters; more take more steps:
COST_STEPS_EXPONENT = 0.25  # step size ∝ d^-1/4 (measured 31 @ 3k, 63 @ 32k-90k, ≈ 127 projected @ 810k)
STORED_BYTES_PER_VALUE = 4  # kept draws are float32 (nutpie_sampler.DRAW_DTYPE)


def steps_per_draw(n_params: int, *, matrix: bool) -> float:
    """Gradient evaluations per draw expected for a model of ``n_params`` parameters.

    ``matrix``: whether the model has a gene × cell-line effect (deeper trees at equal size).
    """
    base = COST_STEPS_PER_DRAW if matrix else COST_STEPS_PER_DRAW_SMALL
    return base * max(1.0, n_params / COST_STEPS_AT_PARAMETERS) ** COST_STEPS_EXPONENT


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
        sel = load_selection(request.data_path, request.selection)
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
        parallel = min(sampler.chains, available_cores())
        steps = steps_per_draw(n_params, matrix=spec.gene_cell_line_effect is not None)
        sampling = sampler.chains * (sampler.tune + sampler.draws) * steps * grad_s / parallel
        stored = sampler.chains * sampler.draws * per_draw
        compile_s = COST_COMPILE_S
    memory_mb = stored * STORED_BYTES_PER_VALUE / 2**20
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
