"""Wide DepMap matrices read as a stream, keeping only chosen rows and columns; an optional columnar cache.

A release's log-fold-change matrix is several GB of CSV (≈70,000 guides × 1,100 sequences). It is
never loaded whole: pyarrow's streaming CSV reader converts only the wanted columns (the rest are
tokenised and skipped) and each block is filtered to the wanted rows before the next is read, so
memory stays at a few blocks whatever the file size.

The optional cache is the same matrix as Parquet (columns ``c0, c1, …`` by position, all values
float64 so cached and uncached imports give identical numbers), beside a JSON note of the source's
size and mtime: a changed source invalidates it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from speclet_core.errors import DataReadError

# Cells read as missing (pyarrow compares whole cells).
NULL_VALUES = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A", "-nan", "-NaN"]
# Bytes of CSV parsed at a time. The parser's working memory is tens of times the block for a wide
# matrix (measured: 8 MiB blocks → ≈300 MiB, 1 MiB → ≈50 MiB on the 1,100-column LFC matrix) and
# 1 MiB was no slower.
BLOCK_SIZE = 1 << 20
ROW_GROUP_BYTES = 32 << 20  # float64 payload per Parquet row group of the cache
COMBINE_BATCHES = 16  # cache build: merge pending batches into one after this many
CACHE_SCHEME = 1
CACHE_FOLDER = ".speclet-cache"

Tick = Callable[[float, str], None]  # (fraction of this step done, message)


def column_name(i: int) -> str:
    """Positional column name used inside pyarrow tables and the cache (headers may repeat or be empty)."""
    return f"c{i}"


@dataclass(frozen=True)
class MatrixSpec:
    """A wide CSV: its header, which column keys the rows, and which other columns are text."""

    path: Path
    header: tuple[str, ...]
    key_col: int = 0
    text_cols: tuple[int, ...] = ()

    @property
    def n_columns(self) -> int:
        return len(self.header)

    @property
    def block_size(self) -> int:
        """Bytes parsed at a time: a block must hold whole rows, and a row is about as long as the header."""
        header_bytes = sum(len(h.encode()) + 1 for h in self.header)
        return max(BLOCK_SIZE, 4 * header_bytes)

    def types(self, cols: Sequence[int]) -> dict[str, pa.DataType]:
        text = {self.key_col, *self.text_cols}
        return {column_name(i): (pa.string() if i in text else pa.float64()) for i in cols}


def _mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def _open_stream(path: Path) -> tuple[IO[bytes], Any]:
    raw = open(path, "rb")
    stream: Any = pa.PythonFile(raw, mode="r")
    if path.name.lower().endswith(".gz"):
        stream = pa.CompressedInputStream(stream, "gzip")
    return raw, stream


def _arrow_error(spec: MatrixSpec, exc: Exception) -> DataReadError:
    """A pyarrow CSV error as a message naming the file and the column by its header."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

    def name(m: re.Match[str]) -> str:
        i = int(m.group(1))
        label = spec.header[i] if 0 <= i < spec.n_columns else "?"
        return f"column {i + 1} ('{label}')"

    msg = re.sub(r"column #(\d+)", name, msg)
    return DataReadError(f"{spec.path}: {msg}; the file may be truncated or damaged, download it again")


def _value_set(keys: Collection[str]) -> pa.Array:
    return pa.array(sorted(set(keys)), type=pa.string())


def _empty(spec: MatrixSpec, cols: Sequence[int]) -> pa.Table:
    types = spec.types(cols)
    return pa.table({column_name(i): pa.array([], type=types[column_name(i)]) for i in cols})


@dataclass(frozen=True)
class RowRequest:
    """Which rows of a matrix to read (by key; all if ``keys`` is ``None``) and which columns (by position)."""

    keys: frozenset[str] | None
    value_cols: tuple[int, ...]
    text_cols: tuple[int, ...] = ()

    def columns(self, spec: MatrixSpec) -> list[int]:
        """The key column, then the text and value columns, each once."""
        return list(dict.fromkeys([spec.key_col, *self.text_cols, *self.value_cols]))


def read_rows_csv(spec: MatrixSpec, rows: RowRequest, *, tick: Tick | None = None) -> pa.Table:
    """Stream the CSV, keeping the requested rows and columns."""
    cols = rows.columns(spec)
    keys = rows.keys
    names = [column_name(i) for i in range(spec.n_columns)]
    read_opts = pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=spec.block_size, use_threads=True)
    convert_opts = pacsv.ConvertOptions(
        include_columns=[column_name(i) for i in cols],
        column_types=spec.types(cols),
        null_values=NULL_VALUES,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    value_set = _value_set(keys) if keys is not None else None
    size = max(spec.path.stat().st_size, 1)
    parts: list[pa.RecordBatch] = []
    raw, stream = _open_stream(spec.path)
    try:
        reader = pacsv.open_csv(stream, read_options=read_opts, convert_options=convert_opts)
        for batch in reader:
            if value_set is not None:
                batch = batch.filter(pc.is_in(batch.column(0), value_set=value_set))
            if batch.num_rows:
                parts.append(batch)
            if tick is not None:
                pos = raw.tell()
                tick(min(pos / size, 1.0), f"reading {spec.path.name}: {_mb(pos)} of {_mb(size)}")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise _arrow_error(spec, exc) from None
    except OSError as exc:
        raise DataReadError(f"{spec.path}: could not be read ({exc}); download it again") from None
    finally:
        stream.close()
        raw.close()
    if not parts:
        return _empty(spec, cols)
    return pa.Table.from_batches(parts)


# --------------------------------------------------------------------------- the columnar cache


def cache_file_for(cache_dir: Path, source: Path) -> Path:
    stem = source.name
    for suffix in (".gz", ".csv"):
        stem = stem.removesuffix(suffix) if stem.lower().endswith(suffix) else stem
    return cache_dir / f"{stem}.parquet"


def _note_path(cache_file: Path) -> Path:
    return cache_file.with_suffix(".json")


def _expected_note(spec: MatrixSpec) -> dict[str, Any]:
    st = spec.path.stat()
    return {
        "scheme": CACHE_SCHEME,
        "source": spec.path.name,
        "source_size": st.st_size,
        "source_mtime_ns": st.st_mtime_ns,
        "n_columns": spec.n_columns,
        "key_col": spec.key_col,
        "text_cols": list(spec.text_cols),
    }


def cache_is_fresh(spec: MatrixSpec, cache_file: Path) -> bool:
    """True when the cache file was built from the source as it is now (same size and mtime)."""
    try:
        note = json.loads(_note_path(cache_file).read_text())
        parquet_size = cache_file.stat().st_size
    except (OSError, ValueError):
        return False
    expected = _expected_note(spec)
    return all(note.get(k) == v for k, v in expected.items()) and note.get("parquet_size") == parquet_size


def _fsync_replace(tmp: Path, target: Path) -> None:
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)


def build_cache(spec: MatrixSpec, cache_file: Path, *, tick: Tick | None = None) -> None:
    """Convert the whole CSV to Parquet (float64 values, positional column names), atomically."""
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cols = list(range(spec.n_columns))
    names = [column_name(i) for i in cols]
    types = spec.types(cols)
    schema = pa.schema([(n, types[n]) for n in names])
    n_values = max(spec.n_columns - 1 - len(spec.text_cols), 1)
    rows_per_group = max(64, ROW_GROUP_BYTES // (8 * n_values))
    read_opts = pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=spec.block_size, use_threads=True)
    convert_opts = pacsv.ConvertOptions(
        column_types=types, null_values=NULL_VALUES, strings_can_be_null=True, quoted_strings_can_be_null=True
    )
    size = max(spec.path.stat().st_size, 1)
    note = _expected_note(spec)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{cache_file.name}.", suffix=".tmp", dir=cache_file.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    raw, stream = _open_stream(spec.path)
    n_rows = 0
    try:
        with pq.ParquetWriter(
            tmp, schema, compression="snappy", use_dictionary=False, write_statistics=False
        ) as writer:
            pending: list[pa.RecordBatch] = []
            pending_rows = 0
            reader = pacsv.open_csv(stream, read_options=read_opts, convert_options=convert_opts)
            for batch in reader:
                pending.append(batch)
                pending_rows += batch.num_rows
                if len(pending) >= COMBINE_BATCHES:
                    # a wide matrix gives batches of a few rows × thousands of arrays: merge them early
                    pending = pa.Table.from_batches(pending, schema=schema).combine_chunks().to_batches()
                if pending_rows >= rows_per_group:
                    writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=pending_rows)
                    n_rows += pending_rows
                    pending, pending_rows = [], 0
                if tick is not None:
                    pos = raw.tell()
                    tick(min(pos / size, 1.0), f"building the columnar cache of {spec.path.name}: {_mb(pos)} of {_mb(size)}")
            if pending:
                writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=pending_rows)
                n_rows += pending_rows
        _fsync_replace(tmp, cache_file)
        note.update(parquet_size=cache_file.stat().st_size, n_rows=n_rows)
        fd, note_tmp = tempfile.mkstemp(prefix=f".{cache_file.stem}.", suffix=".json.tmp", dir=cache_file.parent)
        with os.fdopen(fd, "w") as fh:
            json.dump(note, fh, indent=1)
        _fsync_replace(Path(note_tmp), _note_path(cache_file))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise _arrow_error(spec, exc) from None
    finally:
        stream.close()
        raw.close()
        tmp.unlink(missing_ok=True)


def read_rows_cached(spec: MatrixSpec, cache_file: Path, rows: RowRequest, *, tick: Tick | None = None) -> pa.Table:
    """Like ``read_rows_csv`` from the Parquet cache: only row groups holding wanted rows are read."""
    cols = rows.columns(spec)
    keys = rows.keys
    wanted_names = [column_name(i) for i in cols]
    try:
        pf = pq.ParquetFile(cache_file)
        key_name = column_name(spec.key_col)
        sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]
        if keys is None:
            groups = list(range(pf.num_row_groups))
            value_set = None
        else:
            value_set = _value_set(keys)
            key_values = pf.read(columns=[key_name]).column(0)
            positions = np.flatnonzero(pc.is_in(key_values, value_set=value_set).to_numpy(zero_copy_only=False))
            ends = np.cumsum(sizes)
            groups = sorted({int(g) for g in np.searchsorted(ends, positions, side="right")})
        parts = []
        for n, g in enumerate(groups, start=1):
            table = pf.read_row_group(g, columns=wanted_names)
            if value_set is not None:
                table = table.filter(pc.is_in(table.column(key_name), value_set=value_set))
            parts.append(table)
            if tick is not None:
                tick(n / len(groups), f"reading the columnar cache of {spec.path.name}: {n} of {len(groups)} blocks")
    except (OSError, pa.ArrowException) as exc:
        raise DataReadError(
            f"{cache_file}: damaged columnar cache ({exc}); delete the folder {cache_file.parent} and import again"
        ) from None
    if not parts:
        return _empty(spec, cols)
    return pa.concat_tables(parts).select(wanted_names)


# --------------------------------------------------------------------------- where the cache lives


def _dir_writable(folder: Path) -> bool:
    try:
        folder.mkdir(exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
        return True
    except OSError:
        return False


def _fallback_cache_dir(release_dir: Path, sources: Sequence[Path], data_dir: Path) -> Path:
    h = hashlib.sha256(str(release_dir.resolve()).encode())
    for p in sorted(sources, key=lambda q: q.name):
        st = p.stat()
        h.update(f"\x1f{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return data_dir / "depmap-cache" / h.hexdigest()[:16]


def cache_dir_candidates(release_dir: Path, sources: Sequence[Path], data_dir: Path) -> tuple[Path, Path]:
    """Where a release's cache may be, without creating anything: in the release, then in the data dir."""
    return release_dir / CACHE_FOLDER, _fallback_cache_dir(release_dir, sources, data_dir)


def choose_cache_dir(release_dir: Path, sources: Sequence[Path], data_dir: Path) -> Path:
    """``.speclet-cache/`` in the release folder if writable, else ``<data dir>/depmap-cache/<hash>``.

    The hash covers the release folder's path and its sources' sizes and mtimes, so a changed release
    gets a fresh folder there (the notes beside each cache file catch changes in the local folder).
    """
    local = release_dir / CACHE_FOLDER
    if _dir_writable(local):
        return local
    return _fallback_cache_dir(release_dir, sources, data_dir)
