"""Reading a screen table file: CSV, TSV, gzip'd CSV/TSV or Parquet, with known column aliases mapped.

Reading checks only that the file is a readable table; ``speclet_core.data.validation`` checks its rules.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pandas as pd

from speclet_core.data.columns import COLUMN_ALIASES, NA_VALUES, TEXT_COLUMNS
from speclet_core.errors import DataReadError

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a screen table file into a DataFrame of strings/floats with canonical column names.

    Accepts CSV, TSV (optionally gzip'd, with a UTF-8 BOM and CRLF line ends) and Parquet.
    Does not validate beyond "this is a readable table"; see ``validate_screen``.
    """
    p = Path(path)
    if not p.exists():
        raise DataReadError(f"{p}: file not found; check the path and that the file exists")
    if p.is_dir():
        raise DataReadError(f"{p}: is a folder, expected a CSV, TSV or Parquet file")
    with open(p, "rb") as fh:
        head = fh.read(4)
    try:
        if head == PARQUET_MAGIC:
            df = _read_parquet(p)
        else:
            df = _read_text(p, gzipped=head[:2] == GZIP_MAGIC)
    except DataReadError:
        raise
    except PermissionError:
        raise DataReadError(f"{p}: permission denied; make the file readable") from None
    except OSError as exc:
        raise DataReadError(f"{p}: could not be read ({exc.strerror or exc})") from None
    return _numeric_extras(canonicalise_columns(df))


def _read_parquet(p: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(p)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise DataReadError(f"{p}: not a readable Parquet file ({exc}); re-export it") from None
    return table.to_pandas()


def _read_text(p: Path, *, gzipped: bool) -> pd.DataFrame:
    opener = gzip.open if gzipped else open
    try:
        with opener(p, "rb") as fh:
            raw = fh.read()
    except (gzip.BadGzipFile, EOFError) as exc:
        raise DataReadError(f"{p}: damaged gzip file ({exc}); re-compress or send it uncompressed") from None
    if b"\x00" in raw[:65536]:
        raise DataReadError(
            f"{p}: not a text table (binary content); expected CSV, TSV, gzip'd CSV/TSV or Parquet"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataReadError(
            f"{p}: not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV (e.g. Excel: 'CSV UTF-8')"
        ) from None
    if not text.strip():
        return pd.DataFrame()
    first_line = text.split("\n", 1)[0]
    name = p.name.lower().removesuffix(".gz")
    if name.endswith((".tsv", ".tab")) or first_line.count("\t") > first_line.count(","):
        sep = "\t"
    else:
        sep = ","
    try:
        df = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_values=NA_VALUES,
            skipinitialspace=False,
        )
    except pd.errors.ParserError as exc:
        raise DataReadError(f"{p}: malformed table ({exc}); check the quoting and column counts") from None
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    return df


def _numeric_extras(df: pd.DataFrame) -> pd.DataFrame:
    """Extra (non-contract) text columns that are entirely numeric become numbers."""
    for col in df.columns:
        if col in COLUMN_ALIASES or col in TEXT_COLUMNS or not pd.api.types.is_string_dtype(df[col]):
            continue
        converted = pd.to_numeric(df[col], errors="coerce")
        if converted.notna().sum() == df[col].notna().sum() and df[col].notna().any():
            df[col] = converted
    return df


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
