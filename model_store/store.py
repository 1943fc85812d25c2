"""The store of fitted posteriors: one folder per fit id, written atomically, read lock-free.

Layout under the store's root (``Settings.fits_dir``)::

    <fit id>/manifest.json                fit id, request, status, diagnostics, sizes, checksums, schema
    <fit id>/posterior.nc                 the ArviZ NetCDF (provenance in its root attributes)
    <fit id>/summary.parquet              mean, sd, 89% HDI, R-hat, ESS of every posterior element
    <fit id>/gene_summary.parquet         the gene-level effect, one row per gene
    <fit id>/matrix_gene_*.parquet        gene × cell line / gene × lineage cells (when the model has them)
    .incoming/                            folders being written (invisible until renamed into place)
    .trash/                               folders being deleted

A fit is written into ``.incoming/``, fsynced, and renamed into place in one step, so a
reader sees either nothing or a whole fit. Renaming onto an existing fit folder fails,
which is what makes two writers of the same fit id end with exactly one intact fit.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr

from model_store.ids import FIT_ID_RE, canonical_json, check_fit_id, fit_id_from_request
from model_store.summaries import MatrixKind, MatrixStat
from model_store.writer import (
    GENE_SUMMARY_FILE,
    MATRIX_FILES,
    POSTERIOR_FILE,
    SAMPLE_DIMS,
    SUMMARY_FILE,
    StorageOptions,
    netcdf_attr,
    package_versions,
    write_fit_files,
)
from speclet_core.errors import CorruptFitError, FitNotFoundError, SpecletError, StoreError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
INCOMING_DIR = ".incoming"
TRASH_DIR = ".trash"
# Only these names are ever opened inside a fit folder, whatever a manifest says.
DATA_FILES = frozenset({POSTERIOR_FILE, SUMMARY_FILE, GENE_SUMMARY_FILE, *MATRIX_FILES.values()})
REQUIRED_FILES = (POSTERIOR_FILE, SUMMARY_FILE, GENE_SUMMARY_FILE)
# A dead writer's leftovers are removed only after this long, so a writer that has just
# created its lock file is never mistaken for a dead one.
STALE_AFTER_S = 60.0
PREFIX_RE = re.compile(r"^[0-9a-f]{4,64}$")
# Manifest upgrades, keyed by the schema version they read; each returns the next version's manifest.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
ROLE_DIMS = {"gene_effect": {"gene"}, "gene_lineage_effect": {"gene", "lineage"},
             "gene_cell_line_effect": {"gene", "cell_line"}}


class FitStatus(StrEnum):
    """Headline of a stored fit's diagnostics (the job's own status lives in the queue)."""

    OK = "ok"  # the diagnostics' verdict was "converged"
    FLAGGED = "flagged"  # anything else: look closer before trusting it


class ProblemKind(StrEnum):
    MISSING = "missing_file"
    SIZE = "size_mismatch"
    CHECKSUM = "checksum_mismatch"
    MANIFEST = "bad_manifest"
    SCHEMA = "unsupported_schema"
    UNSAFE = "unsafe_path"


@dataclass(frozen=True)
class StoreProblem:
    """One damaged fit found by ``verify``."""

    fit_id: str
    kind: ProblemKind
    message: str

    def __str__(self) -> str:
        return f"{self.fit_id}: {self.message}"


# --------------------------------------------------------------------------- small helpers


def _json_safe(obj: Any) -> Any:
    """Plain JSON values: numpy scalars unwrapped, NaN/inf as null, tuples and paths as lists/strings."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return str(obj)


def _manifest_hash(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(canonical_json(body).encode("ascii")).hexdigest()


def _sha256(path: Path) -> str:
    with open(path, "rb", buffering=0) as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _fsync(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _status_of(diagnostics: dict[str, Any]) -> FitStatus:
    return FitStatus.OK if diagnostics.get("verdict") == "converged" else FitStatus.FLAGGED


def _fix_hint(fit_id: str) -> str:
    return (f"delete it (python -m speclet_core store delete {fit_id}) and fit it again; "
            "`python -m speclet_core store verify` lists every damaged fit")


def check_roles(idata: Any, roles: dict[str, Any]) -> None:
    """Check the model's roles against the posterior; one error lists every mismatch."""
    if "posterior" not in list(idata.groups()):
        raise StoreError("cannot store a fit without a posterior group: expected an InferenceData from sampling")
    post = idata["posterior"]
    problems: list[str] = []
    missing_dims = [d for d in SAMPLE_DIMS if d not in post.dims]
    if missing_dims:
        problems.append(f"the posterior has no {' or '.join(missing_dims)} dimension (found {list(post.dims)})")
    if not roles.get("gene_effect"):
        problems.append("roles name no gene_effect variable: every model declares its gene-level effect")
    for role, wanted in ROLE_DIMS.items():
        name = roles.get(role)
        if not name:
            continue
        if name not in post.data_vars:
            problems.append(f"role {role} names {name!r}, which is not in the posterior "
                            f"(variables: {', '.join(map(str, post.data_vars)) or 'none'})")
            continue
        da = post[name]
        element_dims = {str(d) for d in da.dims if d not in SAMPLE_DIMS}
        if element_dims != wanted or da.dtype.kind not in "iuf":
            problems.append(f"role {role} variable {name!r} has dims {list(da.dims)} and dtype {da.dtype}; "
                            f"expected numbers with dims chain, draw, {', '.join(sorted(wanted))}")
    for role in ("hyperparameters", "covariate_slopes"):
        for name in roles.get(role) or []:
            if name not in post.data_vars:
                problems.append(f"role {role} lists {name!r}, which is not in the posterior")
    for dim in ("gene", "cell_line", "lineage", "sgrna"):
        if dim in post.coords:
            labels = [str(v) for v in post.coords[dim].values]
            if len(set(labels)) != len(labels):
                problems.append(f"coordinate {dim} has repeated labels; each {dim} must appear once")
    if problems:
        raise StoreError("the fit's posterior does not match its model's roles:\n" + "\n".join(f"  - {p}" for p in problems))


# --------------------------------------------------------------------------- reading one fit


class StoredFit:
    """A stored fit, opened lazily: nothing beyond the manifest is read until asked for.

    Summaries come from small Parquet files; ``draws`` reads only the selected part of one
    variable from the NetCDF. Close it (or use ``with``) to release the NetCDF handles.
    """

    def __init__(self, fit_id: str, folder: Path, manifest: dict[str, Any]) -> None:
        self.fit_id = fit_id
        self.folder = folder
        self.manifest = manifest
        self._datasets: dict[str, xr.Dataset] = {}
        self._idata: Any = None
        # Pages share one StoredFit across sessions (threads): open each handle once.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"StoredFit({self.fit_id[:12]}…, model={self.manifest.get('model')!r})"

    def __enter__(self) -> StoredFit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def posterior_path(self) -> Path:
        return self.folder / POSTERIOR_FILE

    @property
    def roles(self) -> dict[str, Any]:
        return dict(self.manifest.get("roles") or {})

    @contextlib.contextmanager
    def _reading(self, what: str, filename: str) -> Iterator[None]:
        """Turn file errors into store errors a page can show: deleted meanwhile, or damaged."""
        try:
            yield
        except SpecletError:
            raise
        except FileNotFoundError:
            raise FitNotFoundError(
                f"fit {self.fit_id} was deleted while {what} was being read; it is no longer in the store"
            ) from None
        except (OSError, pa.ArrowException, RuntimeError) as exc:
            raise CorruptFitError(
                f"fit {self.fit_id}: {filename} is damaged, reading {what} failed ({type(exc).__name__}: {exc}); "
                + _fix_hint(self.fit_id)
            ) from None

    def _parquet(self, filename: str, what: str) -> pq.ParquetFile:
        with self._reading(what, filename):
            return pq.ParquetFile(self.folder / filename, page_checksum_verification=True)

    def summary(self, var_names: Sequence[str] | None = None) -> pd.DataFrame:
        """Per-element table of the posterior: variable, its coordinates, mean, sd, 89% HDI, R-hat, ESS."""
        order: list[str] = list(self.manifest.get("summary_variables") or [])
        if var_names is None:
            groups = list(range(len(order)))
        else:
            unknown = [v for v in var_names if v not in order]
            if unknown:
                raise StoreError(f"fit {self.fit_id[:12]} has no summarised variable {', '.join(map(repr, unknown))}; "
                                 f"it has {', '.join(order)}")
            groups = [order.index(v) for v in var_names]
        pf = self._parquet(SUMMARY_FILE, "the summary table")
        with self._reading("the summary table", SUMMARY_FILE):
            return pf.read_row_groups(groups).to_pandas()

    def gene_summary(self) -> pd.DataFrame:
        """The gene-level effect: one row per gene with mean, sd, 89% HDI, P(effect < -0.5), R-hat, ESS."""
        pf = self._parquet(GENE_SUMMARY_FILE, "the gene summary")
        with self._reading("the gene summary", GENE_SUMMARY_FILE):
            return pf.read().to_pandas()

    def matrix(self, kind: MatrixKind | str, stat: MatrixStat | str = MatrixStat.MEAN) -> pd.DataFrame:
        """Genes × cell lines (or lineages) of one statistic, precomputed at put time (the heatmap's data)."""
        try:
            kind = MatrixKind(kind)
            stat = MatrixStat(stat)
        except ValueError:
            raise StoreError(
                f"matrix({kind!r}, {stat!r}): kind must be one of {', '.join(k.value for k in MatrixKind)} "
                f"and stat one of {', '.join(s.value for s in MatrixStat)}"
            ) from None
        filename = MATRIX_FILES[kind]
        if filename not in self.manifest.get("sizes", {}):
            raise StoreError(
                f"fit {self.fit_id[:12]} (model {self.manifest.get('model')}) has no {kind.role} variable, so there "
                f"is no {kind.value.replace('_', ' × ', 1).replace('_', ' ')} matrix; its roles: {self.roles}"
            )
        other = kind.column_dim
        genes = self.manifest["genes"]
        columns = self.manifest[f"{other}s"]
        what = f"the {kind.value} {stat.value} matrix"
        pf = self._parquet(filename, what)
        with self._reading(what, filename):
            values = pf.read(columns=[stat.value]).column(0).to_numpy()
        if values.size != len(genes) * len(columns):
            raise CorruptFitError(f"fit {self.fit_id}: {filename} holds {values.size} cells, expected "
                                  f"{len(genes)} × {len(columns)}; " + _fix_hint(self.fit_id))
        return pd.DataFrame(values.reshape(len(genes), len(columns)), index=pd.Index(genes, name="gene"),
                            columns=pd.Index(columns, name=other))

    def dataset(self, group: str = "posterior") -> xr.Dataset:
        """One group of the NetCDF, opened lazily (kept open until ``close``)."""
        groups = self.manifest.get("groups") or {}
        if group not in groups:
            raise StoreError(f"fit {self.fit_id[:12]} has no {group!r} group; it has {', '.join(groups)}")
        with self._lock:
            if group not in self._datasets:
                with self._reading(f"the {group} group", POSTERIOR_FILE):
                    self._datasets[group] = xr.open_dataset(self.posterior_path, group=group, engine="h5netcdf",
                                                            cache=False)
            return self._datasets[group]

    def draws(self, var: str, *, group: str = "posterior", load: bool = True, **sel: Any) -> xr.DataArray:
        """Draws of one variable, only the selected labels (e.g. ``draws("gene_effect", gene="KRAS")``).

        Reads just that part of the file; ``load=False`` returns it unread (lazy).
        """
        ds = self.dataset(group)
        if var not in ds.data_vars:
            raise StoreError(f"fit {self.fit_id[:12]} has no variable {var!r} in {group}; "
                             f"it has {', '.join(map(str, ds.data_vars))}")
        da = ds[var]
        chosen: dict[str, Any] = {}
        for dim, wanted in sel.items():
            if dim not in da.dims:
                raise StoreError(f"{var} has no dimension {dim!r}; its dimensions are {', '.join(map(str, da.dims))}")
            labels = da.indexes[dim] if dim in da.indexes else pd.RangeIndex(da.sizes[dim])
            many = isinstance(wanted, list | tuple | np.ndarray | pd.Index)
            asked = list(wanted) if many else [wanted]
            if labels.dtype.kind in "iu":  # the summary table holds every label as text, e.g. reading "17"
                asked = [int(w) if isinstance(w, str) and w.lstrip("-").isdigit() else w for w in asked]
            chosen[dim] = asked if many else asked[0]
            missing = [w for w in asked if w not in labels]
            if missing:
                shown = ", ".join(map(str, labels[:5]))
                raise StoreError(f"{dim} {', '.join(map(repr, missing[:5]))} not in fit {self.fit_id[:12]} "
                                 f"({len(labels)} {dim} labels, e.g. {shown})")
        if chosen:
            da = da.sel(chosen)
        if load:
            with self._reading(f"draws of {var}", POSTERIOR_FILE):
                da = da.load()
        return da

    def open_idata(self) -> Any:
        """The whole fit as ``arviz.InferenceData`` (lazily loaded groups)."""
        import arviz as az

        with self._lock:
            if self._idata is None:
                with self._reading("the InferenceData", POSTERIOR_FILE):
                    self._idata = az.from_netcdf(self.posterior_path)
            return self._idata

    def verify(self) -> list[StoreProblem]:
        """Full check of this fit's files against the manifest's sizes and sha256 checksums."""
        return _verify_files(self.fit_id, self.folder, self.manifest)

    def close(self) -> None:
        with self._lock:
            for ds in self._datasets.values():
                ds.close()
            self._datasets.clear()
            if self._idata is not None:
                for group in self._idata.groups():
                    self._idata[group].close()
                self._idata = None


def _verify_files(fit_id: str, folder: Path, manifest: dict[str, Any], *, checksums: bool = True) -> list[StoreProblem]:
    problems: list[StoreProblem] = []
    sizes: dict[str, Any] = manifest.get("sizes") or {}
    sums: dict[str, Any] = manifest.get("checksums") or {}
    names = set(sizes) | set(REQUIRED_FILES)
    for name in sorted(names):
        if name not in DATA_FILES:
            problems.append(StoreProblem(fit_id, ProblemKind.UNSAFE, f"manifest names an unknown file {name!r}"))
            continue
        path = folder / name
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            problems.append(StoreProblem(fit_id, ProblemKind.MISSING, f"{name} is missing; " + _fix_hint(fit_id)))
            continue
        if not stat.S_ISREG(st.st_mode):
            problems.append(StoreProblem(fit_id, ProblemKind.UNSAFE, f"{name} is not a regular file (a link?)"))
            continue
        expected = sizes.get(name)
        if expected != st.st_size:
            what = "truncated" if isinstance(expected, int) and st.st_size < expected else "damaged"
            problems.append(StoreProblem(
                fit_id, ProblemKind.SIZE,
                f"{name} is {what}: expected {expected} bytes, found {st.st_size}; " + _fix_hint(fit_id)))
            continue
        if checksums:
            digest = _sha256(path)
            if sums.get(name) != digest:
                problems.append(StoreProblem(
                    fit_id, ProblemKind.CHECKSUM,
                    f"{name} is damaged: its sha256 checksum does not match the manifest; " + _fix_hint(fit_id)))
    return problems


# --------------------------------------------------------------------------- the store


class ModelStore:
    """Fitted posteriors on disk, one folder per fit id (see the module docstring for the layout).

    Parameters
    ----------
    root
        The store's folder, normally ``Settings.from_env().fits_dir``; created on the first ``put``.
    options
        How draws are written (precision, compression, chunk size); readers need no options.
    """

    def __init__(self, root: Path | str, *, options: StorageOptions | None = None) -> None:
        self.root = Path(root).expanduser().absolute()
        self.options = options or StorageOptions()

    @classmethod
    def default(cls) -> ModelStore:
        """The store at ``SPECLET_DATA_DIR``/fits."""
        from speclet_core.settings import Settings

        return cls(Settings.from_env().fits_dir)

    def __repr__(self) -> str:
        return f"ModelStore({str(self.root)!r})"

    # ---------------------------------------------------------------- paths

    def _folder(self, fit_id: str) -> Path:
        """The fit's folder, only from a validated id, and never a link leading elsewhere."""
        check_fit_id(fit_id)
        folder = self.root / fit_id
        if folder.is_symlink():
            raise StoreError(f"{folder} is a symbolic link; the store never follows links (remove it)")
        return folder

    def path_of(self, fit_id: str) -> Path:
        """Folder of a fit (whether or not it exists)."""
        return self._folder(fit_id)

    # ---------------------------------------------------------------- reading

    def exists(self, fit_id: str) -> bool:
        """Whether a complete fit with this id is in the store (cheap: one stat)."""
        return (self._folder(fit_id) / MANIFEST_FILE).is_file()

    def _read_manifest(self, fit_id: str) -> dict[str, Any]:
        folder = self._folder(fit_id)
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
                                  + _fix_hint(fit_id)) from None
        if manifest.get("manifest_sha256") != _manifest_hash(manifest):
            raise CorruptFitError(f"fit {fit_id}: {MANIFEST_FILE} does not match its own checksum (edited or damaged); "
                                  + _fix_hint(fit_id))
        manifest = self._upgrade(fit_id, manifest)
        if manifest.get("fit_id") != fit_id:
            raise CorruptFitError(f"fit {fit_id}: its manifest names fit {manifest.get('fit_id')!r}; the folder was "
                                  "renamed or copied by hand; " + _fix_hint(fit_id))
        manifest["posterior_path"] = str(folder / POSTERIOR_FILE)
        return manifest

    def _upgrade(self, fit_id: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """Bring an older manifest up to SCHEMA_VERSION in memory, or say clearly why not."""
        version = manifest.get("schema_version")
        if not isinstance(version, int):
            raise CorruptFitError(f"fit {fit_id}: {MANIFEST_FILE} has no schema_version; " + _fix_hint(fit_id))
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

    def manifest(self, fit_id: str) -> dict[str, Any]:
        """A fit's manifest alone (checked against its own checksum), even when its data files are damaged."""
        return self._read_manifest(fit_id)

    def problems(self, fit_id: str, *, checksums: bool = False) -> list[StoreProblem]:
        """What is wrong with one stored fit: sizes only (fast), or sizes and sha256 checksums."""
        return _verify_files(fit_id, self._folder(fit_id), self._read_manifest(fit_id), checksums=checksums)

    def get(self, fit_id: str) -> StoredFit:
        """Open a stored fit lazily; a missing, truncated or unreadable fit raises a clear store error."""
        manifest = self._read_manifest(fit_id)
        folder = self._folder(fit_id)
        problems = _verify_files(fit_id, folder, manifest, checksums=False)
        if problems:
            if all(p.kind is ProblemKind.MISSING for p in problems) and not folder.exists():
                raise FitNotFoundError(f"fit {fit_id} was deleted while it was being opened")
            raise CorruptFitError(f"fit {fit_id}: " + "; ".join(p.message for p in problems))
        return StoredFit(fit_id, folder, manifest)

    def fit_ids(self) -> list[str]:
        """Ids of every fit folder in the store, damaged ones included (sorted)."""
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        return sorted(e.name for e in entries if FIT_ID_RE.fullmatch(e.name) and e.is_dir(follow_symlinks=False))

    def list(self, model: str | None = None, gene: str | None = None, lineage: str | None = None,
             status: FitStatus | str | None = None) -> list[dict[str, Any]]:
        """Manifests of the stored fits, newest first, filtered by model name, gene, lineage or status.

        Damaged fits are left out here (``verify`` names them).
        """
        if status is not None:
            try:
                status = FitStatus(status)
            except ValueError:
                raise StoreError(f"status {status!r}: expected one of {', '.join(s.value for s in FitStatus)}") from None
        out = []
        for fit_id in self.fit_ids():
            try:
                manifest = self._read_manifest(fit_id)
            except SpecletError as exc:
                log.warning("skipping fit %s: %s", fit_id[:12], exc)
                continue
            if model is not None and manifest.get("model") != model:
                continue
            if gene is not None and gene not in manifest.get("genes", []):
                continue
            if lineage is not None and lineage not in manifest.get("lineages", []):
                continue
            if status is not None and manifest.get("status") != status:
                continue
            out.append(manifest)
        out.sort(key=lambda m: (str(m.get("created_utc", "")), m["fit_id"]), reverse=True)
        return out

    def resolve(self, prefix: str) -> str:
        """The full fit id starting with ``prefix`` (at least 4 hex characters, unique in the store)."""
        if not isinstance(prefix, str) or not PREFIX_RE.fullmatch(prefix):
            raise StoreError(f"invalid fit id {repr(prefix)[:80]}: expected 4 to 64 hexadecimal characters "
                             "(the start of a fit id from `store list`)")
        if len(prefix) == 64:
            return prefix
        matches = [f for f in self.fit_ids() if f.startswith(prefix)]
        if not matches:
            raise FitNotFoundError(f"no stored fit id starts with {prefix}; `python -m speclet_core store list` "
                                   "shows the stored fits")
        if len(matches) > 1:
            raise StoreError(f"{prefix} matches {len(matches)} fits ({', '.join(m[:12] for m in matches[:5])}); "
                             "give more characters")
        return matches[0]

    def disk_usage(self) -> int:
        """Bytes used by every file under the store's root (fits, and writes in progress)."""
        total = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                with contextlib.suppress(FileNotFoundError):
                    total += os.lstat(os.path.join(dirpath, name)).st_size
        return total

    def verify(self) -> builtins.list[StoreProblem]:
        """Check every stored fit's manifest, sizes and sha256 checksums; one problem per damaged part."""
        problems: builtins.list[StoreProblem] = []
        for fit_id in self.fit_ids():
            try:
                manifest = self._read_manifest(fit_id)
            except FitNotFoundError:
                if self._folder(fit_id).exists():
                    problems.append(StoreProblem(fit_id, ProblemKind.MANIFEST,
                                                 f"{MANIFEST_FILE} is missing; " + _fix_hint(fit_id)))
                continue
            except CorruptFitError as exc:
                problems.append(StoreProblem(fit_id, ProblemKind.MANIFEST, str(exc)))
                continue
            except StoreError as exc:
                problems.append(StoreProblem(fit_id, ProblemKind.SCHEMA, str(exc)))
                continue
            problems += _verify_files(fit_id, self._folder(fit_id), manifest)
        return problems

    # ---------------------------------------------------------------- writing

    def _intact_manifest(self, fit_id: str) -> dict[str, Any] | None:
        """The manifest of an existing fit whose files are all there with the right sizes, else None."""
        try:
            manifest = self._read_manifest(fit_id)
        except SpecletError:
            return None
        return None if _verify_files(fit_id, self._folder(fit_id), manifest, checksums=False) else manifest

    def put(self, fit_id: str, idata: Any, *, request: dict[str, Any], roles: dict[str, Any],
            diagnostics: dict[str, Any], timings: dict[str, Any], provenance: dict[str, Any] | None = None
            ) -> dict[str, Any]:
        """Store a fit atomically and return its manifest.

        A fit id already stored intact is left as it is (its manifest is returned); a damaged
        one is replaced. ``request`` is ``FitRequest.model_dump(mode="json")`` and must hash to
        ``fit_id``; ``roles`` is ``ModelSpec.roles()``.
        """
        check_fit_id(fit_id)
        from_request = fit_id_from_request(request)
        if from_request != fit_id:
            raise StoreError(f"fit id {fit_id} does not match its request (which hashes to {from_request}); "
                             "store a fit under request.fit_id")
        existing = self._intact_manifest(fit_id)
        if existing is not None:
            return existing
        check_roles(idata, roles)
        self.root.mkdir(parents=True, exist_ok=True)
        self.clean_incomplete()
        incoming = self.root / INCOMING_DIR
        incoming.mkdir(exist_ok=True)
        token = f"{fit_id}.{os.getpid()}.{secrets.token_hex(4)}"
        tmp = incoming / token
        lock_path = incoming / f"{token}.lock"
        lock_fd = os.open(lock_path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            tmp.mkdir()
            manifest = self._write(fit_id, tmp, idata, request=request, roles=roles, diagnostics=diagnostics,
                                   timings=timings, provenance=provenance or {})
            return self._publish(fit_id, tmp, manifest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                lock_path.unlink()
            os.close(lock_fd)

    def _write(self, fit_id: str, tmp: Path, idata: Any, *, request: dict[str, Any], roles: dict[str, Any],
               diagnostics: dict[str, Any], timings: dict[str, Any], provenance: dict[str, Any]) -> dict[str, Any]:
        t0 = time.perf_counter()
        created = _now_utc()
        versions = package_versions()
        root_attrs: dict[str, Any] = {
            **{str(k): netcdf_attr(_json_safe(v)) for k, v in provenance.items()},
            "speclet_store_schema": SCHEMA_VERSION,
            "fit_id": fit_id,
            "model": str(request["model"]),
            "model_version": str(request["model_version"]),
            "data_fingerprint": str(request["data_fingerprint"]),
            "selection": canonical_json(_json_safe(request["selection"])),
            "sampler": canonical_json(_json_safe(request["sampler"])),
            "seed": int(request["seed"]),
            "request": canonical_json(_json_safe(request)),
            "roles": canonical_json(_json_safe(roles)),
            "timings": canonical_json(_json_safe(timings)),
            "diagnostics": canonical_json(_json_safe(diagnostics)),
            "package_versions": canonical_json(versions),
            "created_utc": created,
        }
        report = write_fit_files(tmp, idata, root_attrs=root_attrs, roles=roles, options=self.options)
        t1 = time.perf_counter()
        sizes = {name: (tmp / name).stat().st_size for name in report.files}
        checksums = {name: _sha256(tmp / name) for name in report.files}
        checksums_s = time.perf_counter() - t1
        manifest: dict[str, Any] = _json_safe({
            "schema_version": SCHEMA_VERSION,
            "fit_id": fit_id,
            "created_utc": created,
            "model": request["model"],
            "model_version": request["model_version"],
            "status": _status_of(diagnostics).value,
            "request": request,
            "roles": roles,
            "diagnostics": diagnostics,
            "element_diagnostics": report.element_diagnostics,
            "timings": timings,
            "genes": report.labels.get("gene", []),
            "lineages": report.labels.get("lineage", []),
            "cell_lines": report.labels.get("cell_line", []),
            "groups": report.variables,
            "summary_variables": report.summary_variables,
            "sizes": sizes,
            "total_bytes": sum(sizes.values()),
            "checksums": checksums,
            "storage": self.options.describe(),
            "provenance": {**_json_safe(provenance), "package_versions": versions},
        })
        for name in report.files:
            _fsync(tmp / name)
        manifest["store_timings"] = {
            **{k: round(v, 4) for k, v in report.timings.items()},
            "checksums_s": round(checksums_s, 4),
            "total_s": round(time.perf_counter() - t0, 4),
        }
        manifest["manifest_sha256"] = _manifest_hash(manifest)
        path = tmp / MANIFEST_FILE
        with open(path, "w", encoding="ascii") as fh:
            json.dump(manifest, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        _fsync(tmp, directory=True)
        return manifest

    def _publish(self, fit_id: str, tmp: Path, manifest: dict[str, Any]) -> dict[str, Any]:
        """Rename the finished folder into place; if another writer got there first, keep theirs."""
        final = self._folder(fit_id)
        for _attempt in range(5):
            try:
                os.rename(tmp, final)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise StoreError(f"could not move fit {fit_id} into place at {final}: {exc.strerror}") from None
                existing = self._intact_manifest(fit_id)
                if existing is not None:
                    return existing
                self._move_to_trash(fit_id)  # a damaged copy: replace it
                continue
            _fsync(self.root, directory=True)
            return {**manifest, "posterior_path": str(final / POSTERIOR_FILE)}
        raise StoreError(f"could not store fit {fit_id}: its folder kept changing under concurrent writers; try again")

    def _move_to_trash(self, fit_id: str) -> Path | None:
        trash = self.root / TRASH_DIR
        trash.mkdir(exist_ok=True)
        dest = trash / f"{fit_id}.{os.getpid()}.{secrets.token_hex(4)}"
        try:
            os.rename(self._folder(fit_id), dest)
        except FileNotFoundError:
            return None
        _fsync(self.root, directory=True)
        return dest

    def delete(self, fit_id: str) -> None:
        """Remove a fit; readers that have it open keep working or get "fit not found", never a crash."""
        if not self._folder(fit_id).exists():
            raise FitNotFoundError(f"no stored fit has id {fit_id}; nothing deleted")
        dest = self._move_to_trash(fit_id)
        if dest is None:
            raise FitNotFoundError(f"no stored fit has id {fit_id}; nothing deleted")
        shutil.rmtree(dest, ignore_errors=True)

    def clean_incomplete(self) -> int:
        """Remove what dead writers and interrupted deletes left behind; returns how many were removed."""
        removed = 0
        now = time.time()
        incoming = self.root / INCOMING_DIR
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(incoming):
                if entry.name.endswith(".lock"):
                    continue
                lock_path = incoming / f"{entry.name}.lock"
                if self._writer_alive(lock_path, now):
                    continue
                shutil.rmtree(entry.path, ignore_errors=True)
                with contextlib.suppress(FileNotFoundError):
                    lock_path.unlink()
                removed += 1
            for entry in os.scandir(incoming):
                folder = incoming / entry.name.removesuffix(".lock")
                if entry.name.endswith(".lock") and not folder.exists() and not self._writer_alive(Path(entry.path), now):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.root / TRASH_DIR):
                if now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S:
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed += 1
        return removed

    @staticmethod
    def _writer_alive(lock_path: Path, now: float) -> bool:
        """A writer holds its lock file until it finishes; the kernel releases it when the writer dies."""
        try:
            st = os.lstat(lock_path)
        except FileNotFoundError:
            return False
        if now - st.st_mtime < STALE_AFTER_S:
            return True
        fd = os.open(lock_path, os.O_RDWR | os.O_NOFOLLOW)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False
