"""Frozen, validated records that cross boundaries (page → core, CLI → queue → worker → store).

Field descriptions double as widget help text.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from model_store.ids import compute_fit_id, request_identity
from speclet_core.labels import ALL, means_all, parse_labels


class FitMethod(StrEnum):
    NUTS = "nuts"  # full MCMC
    QUICK = "quick"  # approximate (ADVI / Pathfinder): a first look, never exact


class Backend(StrEnum):
    NUTPIE = "nutpie"
    PYMC = "pymc"


class FitPhase(StrEnum):
    """What a running fit is doing (the fitting engine reports it, the queue stores it, pages show it)."""

    LOADING = "loading"
    COMPILING = "compiling"
    TUNING = "tuning"
    SAMPLING = "sampling"
    SAVING = "saving"


class Verdict(StrEnum):
    """The one verdict on a fit's convergence (``speclet_core.diagnostics.verdict`` decides it)."""

    CONVERGED = "converged"
    LOOK_CLOSER = "look_closer"
    DO_NOT_TRUST = "do_not_trust"


class Record(BaseModel):
    """Base of every frozen, validated record that crosses a boundary."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class SamplerSettings(Record):
    method: FitMethod = Field(default=FitMethod.NUTS, description="Full NUTS sampling, or a quick approximate fit for a first look.")
    backend: Backend = Field(default=Backend.NUTPIE, description="NUTS implementation: nutpie (fast, default) or PyMC's own sampler.")
    chains: int = Field(default=4, ge=1, le=16, description="Independent chains; 4 lets R-hat detect chains that disagree.")
    tune: int = Field(default=1000, ge=50, le=20_000, description="Warm-up draws per chain (discarded).")
    draws: int = Field(default=1000, ge=50, le=20_000, description="Kept draws per chain.")
    target_accept: float = Field(default=0.9, gt=0.5, lt=1.0, description="Higher means smaller steps: fewer divergences, slower.")


class Selection(Record):
    """Which part of the screen a fit uses; ``"all"`` or a sorted list of labels."""

    genes: tuple[str, ...] | str = "all"
    lineages: tuple[str, ...] | str = "all"
    cell_lines: tuple[str, ...] | str = "all"

    @field_validator("genes", "lineages", "cell_lines", mode="before")
    @classmethod
    def _normalise(cls, v: Any) -> Any:
        if means_all(v):
            return ALL
        return tuple(sorted(set(parse_labels(v) or ())))


class ModelOptions(Record):
    """Options some models read (``ModelSpec.options`` names them); unset options leave the fit id as before."""

    biomarker: str | None = Field(
        default=None,
        description="Column marking cell lines: COLUMN (true/false per cell line), COLUMN:GENE (that gene's rows, "
        "e.g. is_mutated:KRAS) or COLUMN=VALUE (e.g. primary_or_metastasis=metastasis).",
    )
    batch: str | None = Field(
        default=None, description="Column whose values shift every reading: screen (Broad vs Sanger) or pdna_batch."
    )

    def given(self) -> dict[str, str]:
        """The options that are set, by name."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class FitRequest(Record):
    """Everything that determines a fit. ``fit_id`` hashes all of it except where the data lives."""

    data_path: str = Field(description="Screen table the worker reads (not part of the fit id).")
    data_fingerprint: str = Field(description="sha256 of the selected readings (speclet_core.data.fingerprint).")
    selection: Selection = Selection()
    model: str = Field(description="Model name in the catalog.")
    model_version: str = Field(description="Model version; part of the fit id.")
    sampler: SamplerSettings = SamplerSettings()
    seed: int = Field(default=1, ge=0, lt=2**32, description="Random seed: the same seed gives the same draws.")
    options: ModelOptions = ModelOptions()

    def identity(self) -> dict[str, Any]:
        """The content that names the fit (options only when set, so fits without them keep their ids)."""
        return request_identity(self.model_dump(mode="json"))

    @property
    def fit_id(self) -> str:
        return compute_fit_id(self.identity())
