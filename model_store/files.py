"""Checking a fit's files against its manifest: sizes always, sha256 checksums when asked; safe fsyncs."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from model_store.manifest import FitManifest, fix_hint
from model_store.writer import GENE_SUMMARY_FILE, MATRIX_FILES, POSTERIOR_FILE, SUMMARY_FILE

# Only these names are ever opened inside a fit folder, whatever a manifest says.
DATA_FILES = frozenset({POSTERIOR_FILE, SUMMARY_FILE, GENE_SUMMARY_FILE, *MATRIX_FILES.values()})
REQUIRED_FILES = (POSTERIOR_FILE, SUMMARY_FILE, GENE_SUMMARY_FILE)


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


def sha256_of(path: Path) -> str:
    with open(path, "rb", buffering=0) as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def fsync_path(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def verify_files(fit_id: str, folder: Path, manifest: FitManifest, *, checksums: bool = True) -> list[StoreProblem]:
    """Every problem of a fit's data files: unknown names, links, missing, wrong sizes, wrong checksums."""
    problems: list[StoreProblem] = []
    sizes = manifest.sizes
    sums = manifest.checksums
    names = set(sizes) | set(REQUIRED_FILES)
    for name in sorted(names):
        if name not in DATA_FILES:
            problems.append(StoreProblem(fit_id, ProblemKind.UNSAFE, f"manifest names an unknown file {name!r}"))
            continue
        path = folder / name
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            problems.append(StoreProblem(fit_id, ProblemKind.MISSING, f"{name} is missing; " + fix_hint(fit_id)))
            continue
        if not stat.S_ISREG(st.st_mode):
            problems.append(StoreProblem(fit_id, ProblemKind.UNSAFE, f"{name} is not a regular file (a link?)"))
            continue
        expected = sizes.get(name)
        if expected != st.st_size:
            what = "truncated" if isinstance(expected, int) and st.st_size < expected else "damaged"
            problems.append(StoreProblem(
                fit_id, ProblemKind.SIZE,
                f"{name} is {what}: expected {expected} bytes, found {st.st_size}; " + fix_hint(fit_id)))
            continue
        if checksums:
            digest = sha256_of(path)
            if sums.get(name) != digest:
                problems.append(StoreProblem(
                    fit_id, ProblemKind.CHECKSUM,
                    f"{name} is damaged: its sha256 checksum does not match the manifest; " + fix_hint(fit_id)))
    return problems
