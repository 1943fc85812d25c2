"""Reading a screen table file: CSV, TSV, gzip'd CSV/TSV or Parquet, with known column aliases mapped.

Reading checks only that the file is a readable table of bounded size; ``speclet_core.data.validation``
checks its rules. Every bound is checked before the table is parsed: the text is streamed once (gzip
decompressed in chunks) to count its bytes and lines, find NUL bytes and read the header's column count;
a Parquet file's footer gives its row count, column count and uncompressed size. So a small file that
expands to gigabytes is refused after reading at most the limit, holding one chunk in memory. Errors name
the file as the user knows it (``name``), never a server-side temporary path.
"""

from __future__ import annotations

import codecs
import errno
import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from speclet_core.data.columns import COLUMN_ALIASES, NA_VALUES, TEXT_COLUMNS
from speclet_core.errors import DataReadError
from speclet_core.settings import Settings

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
CHUNK_BYTES = 1 << 20
MAX_HEADER_BYTES = 1 << 20  # a header of SPECLET_MAX_COLUMNS names fits many times over
MAX_PARQUET_FOOTER_BYTES = 64 << 20


@dataclass(frozen=True)
class TableLimits:
    """How large a screen table may be before it is parsed (``SPECLET_MAX_TABLE_MB`` / ``_COLUMNS`` / ``_ROWS``)."""

    max_table_mb: int = Settings.max_table_mb
    max_columns: int = Settings.max_columns
    max_rows: int = Settings.max_rows

    @classmethod
    def from_settings(cls, settings: Settings) -> TableLimits:
        return cls(settings.max_table_mb, settings.max_columns, settings.max_rows)

    @property
    def max_bytes(self) -> int:
        return self.max_table_mb * 2**20


def read_table(path: str | Path, *, name: str | None = None, limits: TableLimits | None = None) -> pd.DataFrame:
    """Read a screen table file into a DataFrame of strings/floats with canonical column names.

    Accepts CSV, TSV (optionally gzip'd, with a UTF-8 BOM and CRLF line ends) and Parquet. ``name`` is the
    file's name in messages (default: the path); ``limits`` default to the ``SPECLET_*`` settings.
    Does not validate beyond "this is a readable table within the limits"; see ``validate_screen``.
    """
    p = Path(path)
    shown = name or str(p)
    limits = limits or TableLimits.from_settings(Settings.from_env())
    if not p.exists():
        raise DataReadError(f"{shown}: file not found; check the path and that the file exists")
    if p.is_dir():
        raise DataReadError(f"{shown}: is a folder, expected a CSV, TSV or Parquet file")
    if not p.is_file():
        raise DataReadError(f"{shown}: not a regular file (a pipe or device?); expected a CSV, TSV or Parquet file")
    try:
        with open(p, "rb") as fh:
            head = fh.read(4)
        if head == PARQUET_MAGIC:
            df = _read_parquet(p, shown, limits)
        else:
            df = _read_text(p, shown, limits, gzipped=head[:2] == GZIP_MAGIC)
    except PermissionError:
        raise DataReadError(f"{shown}: permission denied; make the file readable") from None
    except DataReadError:
        raise
    except OSError as exc:
        if exc.errno == errno.ENOMEM:  # under a memory limit: the caller reports it as such
            raise MemoryError(str(exc)) from None
        raise DataReadError(f"{shown}: could not be read ({exc.strerror or exc})") from None
    return _numeric_extras(canonicalise_columns(df))


# --------------------------------------------------------------------------- Parquet


def _read_parquet(p: Path, shown: str, limits: TableLimits) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    damaged = f"{shown}: damaged Parquet file"
    size = p.stat().st_size
    with open(p, "rb") as fh:
        if size < 12:
            raise DataReadError(f"{damaged} (only {size} bytes; truncated?); re-export it")
        fh.seek(-8, 2)
        tail = fh.read(8)
    footer = int.from_bytes(tail[:4], "little")
    if tail[4:] != PARQUET_MAGIC or footer > size - 12:
        raise DataReadError(f"{damaged} (its end marker is missing: truncated or not Parquet); re-export it")
    if footer > MAX_PARQUET_FOOTER_BYTES:
        raise DataReadError(f"{damaged} (its metadata claims {footer / 2**20:.0f} MiB); re-export it")
    try:
        pf = pq.ParquetFile(p)
        meta = pf.metadata
        schema = pf.schema_arrow
        uncompressed = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise DataReadError(f"{damaged} ({_quiet(exc, p, shown)}); re-export it") from None
    _check_rows(shown, meta.num_rows, limits, "rows")
    _check_columns(shown, meta.num_columns, limits)
    if uncompressed > limits.max_bytes:
        raise DataReadError(
            f"{shown}: {uncompressed / 2**20:,.0f} MiB once uncompressed, over the limit of "
            f"{limits.max_table_mb:,} MiB (SPECLET_MAX_TABLE_MB); send a smaller table (fewer genes or cell lines)"
        )
    nested = [f"'{f.name}' ({f.type})" for f in schema if pa.types.is_nested(f.type)]
    if nested:
        raise DataReadError(
            f"{shown}: column{'s' if len(nested) > 1 else ''} {', '.join(nested[:5])} hold nested values "
            "(lists or records); a screen table has one number or text per cell: flatten them and re-export"
        )
    try:
        return pf.read().to_pandas()
    except Exception as exc:
        raise DataReadError(f"{damaged} ({_quiet(exc, p, shown)}); re-export it") from None


def _quiet(exc: Exception, p: Path, shown: str) -> str:
    """A library's message without the server's path of the file."""
    return str(exc).replace(str(p), shown)[:300] or type(exc).__name__


# --------------------------------------------------------------------------- CSV / TSV


def _read_text(p: Path, shown: str, limits: TableLimits, *, gzipped: bool) -> pd.DataFrame:
    header, has_content = _scan_text(p, shown, limits, gzipped=gzipped)
    if not has_content:
        return pd.DataFrame()
    name = p.name.lower().removesuffix(".gz")
    if name.endswith((".tsv", ".tab")) or header.count("\t") > header.count(","):
        sep = "\t"
    else:
        sep = ","
    _check_columns(shown, header.count(sep) + 1, limits)
    try:
        return pd.read_csv(
            p,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_values=NA_VALUES,
            skipinitialspace=False,
            encoding="utf-8-sig",
            compression="gzip" if gzipped else None,
        )
    except pd.errors.ParserError as exc:
        if "out of memory" in str(exc):  # pandas' C parser words a failed allocation so
            raise MemoryError(str(exc)) from None
        raise DataReadError(f"{shown}: malformed table ({_quiet(exc, p, shown)}); check the quoting and column "
                            "counts") from None
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def _scan_text(p: Path, shown: str, limits: TableLimits, *, gzipped: bool) -> tuple[str, bool]:
    """Stream the text once within the limits; returns (header line, whether there is any content)."""
    opener = gzip.open if gzipped else open
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    expanded = " once decompressed" if gzipped else ""
    total = lines = 0
    head = b""
    header: str | None = None
    has_content = False
    try:
        with opener(p, "rb") as fh:
            while chunk := fh.read(CHUNK_BYTES):
                if (nul := chunk.find(b"\x00")) >= 0:
                    raise DataReadError(
                        f"{shown}: not a text table (NUL bytes at byte {total + nul:,}"
                        f"{expanded}); expected CSV, TSV, gzip'd CSV/TSV or Parquet"
                    )
                try:
                    text = decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    raise DataReadError(
                        f"{shown}: not UTF-8 text (byte {total + exc.start:,}); save it as UTF-8 CSV "
                        "(e.g. Excel: 'CSV UTF-8')"
                    ) from None
                has_content = has_content or bool(text.strip())
                total += len(chunk)
                if total > limits.max_bytes:
                    raise DataReadError(
                        f"{shown}: more than {limits.max_table_mb:,} MiB of text{expanded}, over the limit "
                        "(SPECLET_MAX_TABLE_MB); send a smaller table (fewer genes or cell lines) or Parquet"
                    )
                lines += chunk.count(b"\n")
                _check_rows(shown, lines - 1, limits, "lines below the header")
                if header is None:
                    head += chunk
                    if b"\n" in head:
                        header = head.split(b"\n", 1)[0].decode("utf-8-sig", "replace")
                    elif len(head) > MAX_HEADER_BYTES:
                        raise DataReadError(
                            f"{shown}: the first line is longer than {MAX_HEADER_BYTES // 2**20} MiB; a screen "
                            "table's header names a few columns (expected CSV or TSV)"
                        )
                    if header is not None:
                        _check_columns(shown, max(header.count(","), header.count("\t")) + 1, limits)
                        head = b""
            decoder.decode(b"", final=True)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataReadError(f"{shown}: damaged gzip file ({exc}); re-compress or send it uncompressed") from None
    except UnicodeDecodeError as exc:
        raise DataReadError(f"{shown}: not UTF-8 text (the last bytes, {exc.reason}); save it as UTF-8 CSV") from None
    if header is None:
        header = head.decode("utf-8-sig", "replace")
    return header, has_content


def _check_rows(shown: str, n: int, limits: TableLimits, what: str) -> None:
    if limits.max_rows and n > limits.max_rows:
        raise DataReadError(
            f"{shown}: more than {limits.max_rows:,} {what}, over the limit (SPECLET_MAX_ROWS); select fewer "
            "genes or cell lines (e.g. with import-depmap) and send that table"
        )


def _check_columns(shown: str, n: int, limits: TableLimits) -> None:
    if limits.max_columns and n > limits.max_columns:
        raise DataReadError(
            f"{shown}: {n:,} columns, over the limit of {limits.max_columns:,} (SPECLET_MAX_COLUMNS); a screen "
            "table is tidy, one row per reading (columns sgrna, hugo_symbol, depmap_id, lineage, lfc, …): "
            "reshape a wide matrix into that form"
        )


# --------------------------------------------------------------------------- columns


def _numeric_extras(df: pd.DataFrame) -> pd.DataFrame:
    """Extra (non-contract) text columns that are entirely numeric become numbers (int64 when every value is a
    whole-number literal, as ``pd.to_numeric`` gives, else float64).

    All candidate columns are converted at once (one flattened array) and replaced in one step: converting
    and assigning column by column took minutes on tens of thousands of columns.
    """
    if df.empty or df.columns.has_duplicates:
        return df
    candidates = [c for c, dtype in df.dtypes.items()
                  if c not in COLUMN_ALIASES and c not in TEXT_COLUMNS and pd.api.types.is_string_dtype(dtype)]
    if not candidates:
        return df
    block = df[candidates].to_numpy(dtype=object)
    present = ~pd.isna(block)
    numbers = pd.to_numeric(pd.Series(block.ravel(order="F")), errors="coerce").to_numpy(dtype="float64")
    numbers = numbers.reshape(block.shape, order="F")
    # numeric: every present value converted (NaN exactly where the cell was empty), and some value present
    convert = (np.isnan(numbers) == ~present).all(axis=0) & present.any(axis=0)
    if not convert.any():
        return df
    chosen = [c for c, ok in zip(candidates, convert, strict=True) if ok]
    values, numbers, present = block[:, convert], numbers[:, convert], present[:, convert]
    whole = present.all(axis=0)
    if whole.any():  # columns without gaps whose every text is a whole number become int64
        texts = pd.Series(values[:, whole].ravel(order="F")).astype(str)
        literal = texts.str.fullmatch(r"\s*[+-]?\d+\s*").to_numpy().reshape((len(df), -1), order="F")
        whole[whole] = literal.all(axis=0)
    parts = [pd.DataFrame(numbers[:, ~whole], columns=[c for c, w in zip(chosen, whole, strict=True) if not w],
                          index=df.index)]
    if whole.any():
        ints = pd.to_numeric(pd.Series(values[:, whole].ravel(order="F")))
        if ints.dtype == np.int64:
            parts.append(pd.DataFrame(ints.to_numpy().reshape((len(df), -1), order="F"),
                                      columns=[c for c, w in zip(chosen, whole, strict=True) if w], index=df.index))
        else:  # beyond int64: as pd.to_numeric decides, column by column (rare)
            parts.append(pd.DataFrame({c: pd.to_numeric(df[c], errors="coerce") for c, w in zip(chosen, whole, strict=True) if w},
                                      index=df.index))
    return pd.concat([df.drop(columns=chosen), *parts], axis=1)[list(df.columns)]


def canonicalise_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Rename known aliases (case-insensitive) to the canonical column names."""
    lookup = {alias: canon for canon, aliases in COLUMN_ALIASES.items() for alias in aliases}
    rename: dict[str, str] = {}
    taken = {c for c in df.columns if c in COLUMN_ALIASES}
    for col in df.columns:
        key = str(col).strip().lower()
        canon = lookup.get(key)
        if canon and col != canon and canon not in taken:
            rename[col] = canon
            taken.add(canon)
        elif not canon and str(col) != str(col).strip():
            rename[col] = str(col).strip()
    return df.rename(columns=rename)
