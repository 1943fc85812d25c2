"""The result of an import and how it is kept: the table (Parquet or CSV/TSV) plus its metadata, atomically."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from speclet_core.depmap.release import DepMapImportError
from speclet_core.errors import DataReadError, SpecletError
from speclet_core.settings import Settings

IMPORT_FORMAT = "speclet-depmap-import"
IMPORT_FORMAT_VERSION = 1
PARQUET_METADATA_KEY = b"speclet.import"
TABLE_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".tsv", ".tsv.gz")


@dataclass(frozen=True)
class ImportResult:
    """An imported screen table, what was done to make it, and what the user should know."""

    data: pd.DataFrame = field(repr=False)
    metadata: dict[str, Any]
    warnings: tuple[str, ...] = ()

    def summarise(self) -> dict[str, int]:
        return dict(self.metadata["counts"])


def _table_suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in TABLE_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise DepMapImportError(
        f"{path}: unknown output format; end the name in {', '.join(TABLE_SUFFIXES)}"
    )


def metadata_path_for(out_path: str | Path) -> Path:
    """The sidecar JSON of an imported table: ``NAME.import.json`` beside ``NAME.parquet`` / ``NAME.csv``."""
    p = Path(out_path)
    suffix = _table_suffix(p)
    return p.with_name(p.name[: -len(suffix)] + ".import.json")


def _temp_beside(target: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    return Path(name)


def write_screen(result: ImportResult, out_path: str | Path) -> tuple[Path, Path]:
    """Write the table (Parquet or CSV/TSV by suffix) and its metadata JSON, each atomically.

    Parquet files also carry the metadata in their schema (key ``speclet.import``). Returns the
    table's and the metadata file's paths.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_path).expanduser()
    if out.is_dir():
        raise DepMapImportError(f"{out}: is a folder; give a file name such as screen.parquet")
    suffix = _table_suffix(out)
    meta_path = metadata_path_for(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataReadError(f"{out.parent}: cannot create the output folder ({exc.strerror or exc})") from None
    meta_text = json.dumps(result.metadata, indent=1, sort_keys=False, allow_nan=False)
    tmp_table: Path | None = None
    tmp_meta: Path | None = None
    try:
        tmp_table = _temp_beside(out)
        tmp_meta = _temp_beside(meta_path)
        if suffix == ".parquet":
            table = pa.Table.from_pandas(result.data, preserve_index=False)
            schema_meta = dict(table.schema.metadata or {})
            schema_meta[PARQUET_METADATA_KEY] = meta_text.encode()
            pq.write_table(table.replace_schema_metadata(schema_meta), tmp_table)
        else:
            result.data.to_csv(
                tmp_table,
                sep="\t" if suffix.startswith(".tsv") else ",",
                index=False,
                compression="gzip" if suffix.endswith(".gz") else None,
            )
        tmp_meta.write_text(meta_text + "\n")
        for tmp in (tmp_table, tmp_meta):
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp_table, out)
        os.replace(tmp_meta, meta_path)
    except OSError as exc:
        raise DataReadError(f"{out}: could not be written ({exc.strerror or exc}); nothing was written") from None
    finally:
        for leftover in (tmp_table, tmp_meta):
            if leftover is not None:
                leftover.unlink(missing_ok=True)
    return out, meta_path


def read_import_metadata(path: str | Path) -> dict[str, Any] | None:
    """The import metadata of a written table (Parquet schema, else the sidecar JSON); ``None`` if absent."""
    p = Path(path)
    if p.name.lower().endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            meta = pq.read_schema(p).metadata or {}
        except Exception:  # not our file or damaged: fall back to the sidecar
            meta = {}
        if PARQUET_METADATA_KEY in meta:
            return json.loads(meta[PARQUET_METADATA_KEY])
    try:
        sidecar = metadata_path_for(p)
    except DepMapImportError:
        return None
    if sidecar.exists():
        return json.loads(sidecar.read_text())
    return None


def save_import(result: ImportResult, settings: Settings) -> tuple[str, Path]:
    """Keep a DepMap import as Parquet under ``<data dir>/imports``; returns its screen key and path.

    The file is named by a hash of the table's content, so importing the same readings again reuses
    it. The key is ``path:<file>`` when the imports folder lies inside an allowed folder, else
    ``import-<16 hex>``.
    """
    from speclet_core.data.paths import resolve_allowed_path

    if settings.read_only:
        raise SpecletError("importing is switched off on this read-only server (SPECLET_READ_ONLY)")
    digest = hashlib.sha256("\t".join(map(str, result.data.columns)).encode())
    digest.update(pd.util.hash_pandas_object(result.data, index=False).to_numpy().tobytes())
    key = "import-" + digest.hexdigest()[:16]
    path, _ = write_screen(result, settings.data_dir / "imports" / f"{key}.parquet")
    try:
        return "path:" + str(resolve_allowed_path(str(path), settings.allowed_data_dirs)), path
    except SpecletError:
        return key, path
