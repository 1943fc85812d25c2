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
import json
import logging
import math
import os
import re
import secrets
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model_store.files import ProblemKind, StoreProblem, fsync_path, sha256_of, verify_files
from model_store.fit import StoredFit
from model_store.ids import FIT_ID_RE, canonical_json, check_fit_id, fit_id_from_request
from model_store.manifest import (
    MANIFEST_FILE,
    SCHEMA_VERSION,
    FitManifest,
    FitStatus,
    fix_hint,
    json_safe,
    manifest_hash,
    read_manifest,
    validate_manifest,
)
from model_store.writer import (
    POSTERIOR_FILE,
    StorageOptions,
    check_roles,
    estimate_fit_bytes,
    needed_free_bytes,
    netcdf_attr,
    package_versions,
    write_fit_files,
)
from speclet_core.errors import CorruptFitError, FitNotFoundError, SpecletError, StoreError

log = logging.getLogger(__name__)

INCOMING_DIR = ".incoming"
TRASH_DIR = ".trash"
# A dead writer's leftovers are removed only after this long, so a writer that has just
# created its lock file is never mistaken for a dead one.
STALE_AFTER_S = 60.0
PREFIX_RE = re.compile(r"^[0-9a-f]{4,64}$")


def _now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


MB = 1 << 20
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# How HDF5 (through h5py / netCDF), Arrow and the C library spell "the disk is full" when no errno comes along.
DISK_FULL_TEXTS = ("no space left on device", "errno = 28", "disk quota exceeded", "errno = 122")


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error (or what caused it) is the disk running out of space (ENOSPC / EDQUOT)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return True
        if any(text in str(current).lower() for text in DISK_FULL_TEXTS):
            return True
        current = current.__cause__ or current.__context__
    return False


def free_bytes(folder: Path) -> int:
    """Free space (for this user) on the filesystem holding ``folder`` or its nearest existing parent."""
    for candidate in (folder, *folder.parents):
        try:
            return shutil.disk_usage(candidate).free
        except FileNotFoundError:
            continue
    return shutil.disk_usage("/").free


def disk_full_message(folder: Path, need: int | None = None) -> str:
    free = free_bytes(folder)
    need_text = f"need ≈{math.ceil(need / MB):,} MB, " if need is not None else ""
    return (f"disk full: not enough free disk in {folder}: {need_text}{free / MB:,.0f} MB free; free space on that disk "
            "(or point SPECLET_DATA_DIR at a larger one), or fit fewer genes, cell lines or draws, then run "
            "the fit again")


def _status_of(diagnostics: dict[str, Any]) -> FitStatus:
    return FitStatus.OK if diagnostics.get("verdict") == "converged" else FitStatus.FLAGGED


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

    def _read_manifest(self, fit_id: str) -> FitManifest:
        return read_manifest(fit_id, self._folder(fit_id), POSTERIOR_FILE)

    def manifest(self, fit_id: str) -> FitManifest:
        """A fit's manifest alone (checked against its own checksum), even when its data files are damaged."""
        return self._read_manifest(fit_id)

    def problems(self, fit_id: str, *, checksums: bool = False) -> list[StoreProblem]:
        """What is wrong with one stored fit: sizes only (fast), or sizes and sha256 checksums."""
        return verify_files(fit_id, self._folder(fit_id), self._read_manifest(fit_id), checksums=checksums)

    def get(self, fit_id: str) -> StoredFit:
        """Open a stored fit lazily; a missing, truncated or unreadable fit raises a clear store error."""
        manifest = self._read_manifest(fit_id)
        folder = self._folder(fit_id)
        problems = verify_files(fit_id, folder, manifest, checksums=False)
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
             status: FitStatus | str | None = None) -> list[FitManifest]:
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
            if model is not None and manifest.model != model:
                continue
            if gene is not None and gene not in manifest.genes:
                continue
            if lineage is not None and lineage not in manifest.lineages:
                continue
            if status is not None and manifest.status != status:
                continue
            out.append(manifest)
        out.sort(key=lambda m: (m.created_utc, m.fit_id), reverse=True)
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
                                                 f"{MANIFEST_FILE} is missing; " + fix_hint(fit_id)))
                continue
            except CorruptFitError as exc:
                problems.append(StoreProblem(fit_id, ProblemKind.MANIFEST, str(exc)))
                continue
            except StoreError as exc:
                problems.append(StoreProblem(fit_id, ProblemKind.SCHEMA, str(exc)))
                continue
            problems += verify_files(fit_id, self._folder(fit_id), manifest)
        return problems

    # ---------------------------------------------------------------- writing

    def _intact_manifest(self, fit_id: str) -> FitManifest | None:
        """The manifest of an existing fit whose files are all there with the right sizes, else None."""
        try:
            manifest = self._read_manifest(fit_id)
        except SpecletError:
            return None
        return None if verify_files(fit_id, self._folder(fit_id), manifest, checksums=False) else manifest

    def put(self, fit_id: str, idata: Any, *, request: dict[str, Any], roles: dict[str, Any],
            diagnostics: dict[str, Any], timings: dict[str, Any], provenance: dict[str, Any] | None = None
            ) -> FitManifest:
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
        # A full disk in the middle of an HDF5 write can crash h5py (SIGSEGV) before any error reaches
        # Python, so check first that the whole fit fits, with room to spare.
        need = needed_free_bytes(estimate_fit_bytes(idata, self.options))
        if free_bytes(self.root) < need:
            raise StoreError(disk_full_message(self.root, need))
        incoming = self.root / INCOMING_DIR
        incoming.mkdir(exist_ok=True)
        token = f"{fit_id}.{os.getpid()}.{secrets.token_hex(4)}"
        tmp = incoming / token
        lock_path = incoming / f"{token}.lock"
        try:
            lock_fd = os.open(lock_path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            if is_disk_full(exc):
                raise StoreError(disk_full_message(self.root, need)) from None
            raise
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            tmp.mkdir()
            manifest = self._write(fit_id, tmp, idata, request=request, roles=roles, diagnostics=diagnostics,
                                   timings=timings, provenance=provenance or {})
            return self._publish(fit_id, tmp, manifest)
        except Exception as exc:
            if is_disk_full(exc):  # the disk filled up while writing (another process took the space)
                raise StoreError(disk_full_message(self.root, need)) from None
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                lock_path.unlink()
            os.close(lock_fd)

    def _write(self, fit_id: str, tmp: Path, idata: Any, *, request: dict[str, Any], roles: dict[str, Any],
               diagnostics: dict[str, Any], timings: dict[str, Any], provenance: dict[str, Any]) -> FitManifest:
        t0 = time.perf_counter()
        created = _now_utc()
        versions = package_versions()
        root_attrs: dict[str, Any] = {
            **{str(k): netcdf_attr(json_safe(v)) for k, v in provenance.items()},
            "speclet_store_schema": SCHEMA_VERSION,
            "fit_id": fit_id,
            "model": str(request["model"]),
            "model_version": str(request["model_version"]),
            "data_fingerprint": str(request["data_fingerprint"]),
            "selection": canonical_json(json_safe(request["selection"])),
            "sampler": canonical_json(json_safe(request["sampler"])),
            "seed": int(request["seed"]),
            "request": canonical_json(json_safe(request)),
            "roles": canonical_json(json_safe(roles)),
            "timings": canonical_json(json_safe(timings)),
            "diagnostics": canonical_json(json_safe(diagnostics)),
            "package_versions": canonical_json(versions),
            "created_utc": created,
        }
        report = write_fit_files(tmp, idata, root_attrs=root_attrs, roles=roles, options=self.options)
        t1 = time.perf_counter()
        sizes = {name: (tmp / name).stat().st_size for name in report.files}
        checksums = {name: sha256_of(tmp / name) for name in report.files}
        checksums_s = time.perf_counter() - t1
        manifest: dict[str, Any] = json_safe({
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
            "provenance": {**json_safe(provenance), "package_versions": versions},
        })
        for name in report.files:
            fsync_path(tmp / name)
        manifest["store_timings"] = {
            **{k: round(v, 4) for k, v in report.timings.items()},
            "checksums_s": round(checksums_s, 4),
            "total_s": round(time.perf_counter() - t0, 4),
        }
        manifest["manifest_sha256"] = manifest_hash(manifest)
        record = validate_manifest(fit_id, manifest, writing=True)
        path = tmp / MANIFEST_FILE
        with open(path, "w", encoding="ascii") as fh:
            json.dump(manifest, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        fsync_path(tmp, directory=True)
        return record

    def _publish(self, fit_id: str, tmp: Path, manifest: FitManifest) -> FitManifest:
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
            fsync_path(self.root, directory=True)
            return manifest.model_copy(update={"posterior_path": str(final / POSTERIOR_FILE)})
        raise StoreError(f"could not store fit {fit_id}: its folder kept changing under concurrent writers; try again")

    def _move_to_trash(self, fit_id: str) -> Path | None:
        trash = self.root / TRASH_DIR
        trash.mkdir(exist_ok=True)
        dest = trash / f"{fit_id}.{os.getpid()}.{secrets.token_hex(4)}"
        try:
            os.rename(self._folder(fit_id), dest)
        except FileNotFoundError:
            return None
        fsync_path(self.root, directory=True)
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
