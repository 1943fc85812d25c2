"""A stored fit's manifest: the typed ``FitManifest`` record, its checksum and its schema migrations.

``manifest.json`` is written once per fit with its own sha256 (``manifest_sha256``). Reading it
checks that checksum over the raw JSON, brings an older schema up to ``SCHEMA_VERSION``
(``MIGRATIONS``), and only then validates it into a ``FitManifest``, once: every reader
after that gets attributes, never a dict.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from model_store.ids import canonical_json
from speclet_core.errors import CorruptFitError, FitNotFoundError, StoreError

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
# Manifest upgrades, keyed by the schema version they read; each returns the next version's manifest.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


class FitStatus(StrEnum):
    """Headline of a stored fit's diagnostics (the job's own status lives in the queue)."""

    OK = "ok"  # the diagnostics' verdict was "converged"
    FLAGGED = "flagged"  # anything else: look closer before trusting it


class ManifestPart(BaseModel):
    """Base of the manifest's records: frozen, and no field the store does not know."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class VariableLayout(ManifestPart):
    """How one stored variable is laid out in ``posterior.nc``."""

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str


class StoredRequest(ManifestPart):
    """The fit request as stored (``FitRequest.model_dump(mode="json")``); selection and sampler stay JSON."""

    data_path: str | None = None
    data_fingerprint: str
    selection: dict[str, Any] = Field(default_factory=dict)
    model: str
    model_version: str
    sampler: dict[str, Any] = Field(default_factory=dict)
    seed: int = 1
    options: dict[str, Any] = Field(default_factory=dict)  # model options (biomarker, batch); empty for most fits


class FitRoles(ManifestPart):
    """Which posterior variable answers which question (``ModelSpec.roles()``)."""

    gene_effect: str
    gene_lineage_effect: str | None = None
    gene_cell_line_effect: str | None = None
    hyperparameters: tuple[str, ...] = ()
    covariate_slopes: tuple[str, ...] = ()

    def variable_of(self, role: str) -> str | None:
        """The variable holding one of the three effect roles (``gene_effect`` …), or None."""
        if role not in ("gene_effect", "gene_lineage_effect", "gene_cell_line_effect"):
            raise StoreError(f"unknown role {role!r}: expected gene_effect, gene_lineage_effect or gene_cell_line_effect")
        value: str | None = getattr(self, role)
        return value

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class FitDiagnostics(ManifestPart):
    """Convergence numbers and the verdict judged when the fit was made (``compute_diagnostics``)."""

    chains: int | None = None
    draws: int | None = None
    approximate: bool = False
    method: str | None = None
    max_rhat: float | None = None
    max_rhat_at: str | None = None
    min_ess_bulk: float | None = None
    min_ess_bulk_at: str | None = None
    min_ess_tail: float | None = None
    min_ess_tail_at: str | None = None
    divergences: int | None = None
    bfmi_min: float | None = None
    treedepth_hits: int | None = None
    verdict: str | None = None
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The numbers as stored (the verdict rules and the CLI read them as a mapping)."""
        return self.model_dump(mode="json", exclude_unset=True)


class FitManifest(ManifestPart):
    """Everything known about a stored fit without opening its data files."""

    schema_version: int = SCHEMA_VERSION
    fit_id: str
    created_utc: str = ""
    model: str
    model_version: str = ""
    status: FitStatus = FitStatus.FLAGGED
    request: StoredRequest
    roles: FitRoles
    diagnostics: FitDiagnostics = FitDiagnostics()
    element_diagnostics: dict[str, Any] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    genes: tuple[str, ...] = ()
    lineages: tuple[str, ...] = ()
    cell_lines: tuple[str, ...] = ()
    groups: dict[str, dict[str, VariableLayout]] = Field(default_factory=dict)
    summary_variables: tuple[str, ...] = ()
    sizes: dict[str, int] = Field(default_factory=dict)
    total_bytes: int = 0
    checksums: dict[str, str] = Field(default_factory=dict)
    storage: dict[str, Any] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)
    store_timings: dict[str, float] = Field(default_factory=dict)
    manifest_sha256: str = ""
    # where the fit's NetCDF is now: added on reading, never hashed or written
    posterior_path: str | None = None

    @property
    def approximate(self) -> bool:
        """A quick approximate fit (a first look only)."""
        return self.diagnostics.approximate or self.request.sampler.get("method") == "quick"

    def has_group(self, group: str) -> bool:
        """Whether ``posterior.nc`` holds this InferenceData group (``sample_stats``, ``log_likelihood`` …)."""
        return group in self.groups

    def shape_of(self, group: str, variable: str) -> tuple[int, ...] | None:
        """Stored shape of one variable of one group, or None when the fit has no such variable."""
        layout = self.groups.get(group, {}).get(variable)
        return None if layout is None else layout.shape

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON values, exactly the keys that were stored (and ``posterior_path``)."""
        return self.model_dump(mode="json", exclude_unset=True)

    def to_json(self) -> str:
        """The manifest as indented JSON with sorted keys (``store show``)."""
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)


# --------------------------------------------------------------------------- writing and reading


def json_safe(obj: Any) -> Any:
    """Plain JSON values: numpy scalars unwrapped, NaN/inf as null, tuples and paths as lists/strings."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return str(obj)


def manifest_hash(manifest: dict[str, Any]) -> str:
    """sha256 of a manifest's canonical JSON without its own checksum."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(canonical_json(body).encode("ascii")).hexdigest()


def fix_hint(fit_id: str) -> str:
    return (f"delete it (python -m speclet_core store delete {fit_id}) and fit it again; "
            "`python -m speclet_core store verify` lists every damaged fit")


def validate_manifest(fit_id: str, raw: dict[str, Any], *, writing: bool = False) -> FitManifest:
    """A manifest's JSON as a ``FitManifest``; one error lists every field that does not fit.

    Raises ``CorruptFitError`` for a stored manifest, or ``StoreError`` for one being written
    (a fit the store could not read back is never written).
    """
    try:
        return FitManifest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    if writing:
        raise StoreError(f"cannot store fit {fit_id}: its request, roles, diagnostics or timings do not fit "
                         f"the manifest ({problems})")
    raise CorruptFitError(f"fit {fit_id}: {MANIFEST_FILE} does not describe a fit ({problems}); " + fix_hint(fit_id))


def upgrade_manifest(fit_id: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Bring an older manifest up to SCHEMA_VERSION in memory, or say clearly why not."""
    version = manifest.get("schema_version")
    if not isinstance(version, int):
        raise CorruptFitError(f"fit {fit_id}: {MANIFEST_FILE} has no schema_version; " + fix_hint(fit_id))
    if version > SCHEMA_VERSION:
        raise StoreError(f"fit {fit_id} was written by a newer speclet (store schema {version}); this version "
                         f"reads schema {SCHEMA_VERSION} and older; upgrade speclet to open it")
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise StoreError(f"fit {fit_id} uses store schema {version}, which this version cannot read or "
                             f"migrate to schema {SCHEMA_VERSION}; fit it again (or open it with the speclet "
                             "version that wrote it)")
        manifest = step(dict(manifest))
        version = manifest["schema_version"]
    return manifest


def read_manifest(fit_id: str, folder: Path, posterior_file: str) -> FitManifest:
    """Read, check, migrate and validate the manifest in a fit's folder (never through a link)."""
    path = folder / MANIFEST_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise FitNotFoundError(
            f"no stored fit has id {fit_id}; `python -m speclet_core store list` shows the stored fits"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StoreError(f"{path} is a symbolic link; the store never follows links") from None
        raise StoreError(f"fit {fit_id}: cannot read {MANIFEST_FILE} ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        raw = fh.read()
    try:
        manifest = json.loads(raw)
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise CorruptFitError(f"fit {fit_id}: {MANIFEST_FILE} is damaged (not valid JSON: {exc}); "
                              + fix_hint(fit_id)) from None
    if manifest.get("manifest_sha256") != manifest_hash(manifest):
        raise CorruptFitError(f"fit {fit_id}: {MANIFEST_FILE} does not match its own checksum (edited or damaged); "
                              + fix_hint(fit_id))
    manifest = upgrade_manifest(fit_id, manifest)
    if manifest.get("fit_id") != fit_id:
        raise CorruptFitError(f"fit {fit_id}: its manifest names fit {manifest.get('fit_id')!r}; the folder was "
                              "renamed or copied by hand; " + fix_hint(fit_id))
    manifest["posterior_path"] = str(folder / posterior_file)
    return validate_manifest(fit_id, manifest)
