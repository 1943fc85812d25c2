"""The one door every screen table comes through: load, validate, select.

A screen table is tidy: one row per reading of one sgRNA in one cell line
(see the README's table of columns). ``load_screen`` reads CSV, TSV, gzip'd
CSV/TSV or Parquet, maps known column aliases and validates every rule at once,
so a bad file is reported completely and clearly at the edge.
``select_screen`` picks genes and lineages into a ``ScreenSelection`` with
stable, sorted categories and a content fingerprint, the data part of every
cache key.
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from speclet_core.errors import DataReadError, DataValidationError, SelectionError

REQUIRED_COLUMNS: tuple[str, ...] = ("sgrna", "hugo_symbol", "depmap_id", "lineage", "lfc")
NAME_COLUMNS: tuple[str, ...] = ("sgrna", "hugo_symbol", "depmap_id", "lineage")
NUMERIC_COLUMNS: tuple[str, ...] = ("lfc", "rna_expr", "gene_cn")
# Identifiers kept as text whatever they look like (a batch "2" is a label, not a number).
TEXT_COLUMNS: tuple[str, ...] = (*NAME_COLUMNS, "replicate_id", "pdna_batch", "screen")
# Optional columns that change what a fit sees, so they are part of the fingerprint.
FINGERPRINT_OPTIONAL: tuple[str, ...] = ("replicate_id", "pdna_batch", "screen", "rna_expr", "gene_cn")

# canonical name -> other spellings seen in DepMap-derived tables (matched case-insensitively)
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "sgrna": ("sgrna", "sgrna_id", "guide", "construct_barcode"),
    "hugo_symbol": ("hugo_symbol", "gene", "gene_symbol", "symbol"),
    "depmap_id": ("depmap_id", "modelid", "model_id", "cell_line"),
    "lineage": ("lineage", "oncotreelineage", "oncotree_lineage"),
    "lfc": ("lfc", "log_fold_change", "logfoldchange", "log2fc"),
    "pdna_batch": ("pdna_batch", "p_dna_batch", "pdnabatch"),
    "gene_cn": ("gene_cn", "copy_number", "cn"),
    "rna_expr": ("rna_expr", "rna_expression", "expression"),
    "replicate_id": ("replicate_id", "replicate", "sequenceid", "sequence_id"),
}

NA_VALUES = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A", "-"]
MAX_ROWS_SHOWN = 5
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
FINGERPRINT_SCHEME = "speclet-screen-v2"


def _row_label(index: Iterable[int]) -> str:
    """Spreadsheet row numbers (the header is row 1) of the first few offenders."""
    idx = list(index)
    shown = ", ".join(str(i + 2) for i in idx[:MAX_ROWS_SHOWN])
    more = f" and {len(idx) - MAX_ROWS_SHOWN} more" if len(idx) > MAX_ROWS_SHOWN else ""
    return f"row{'s' if len(idx) != 1 else ''} {shown}{more}"


# --------------------------------------------------------------------------- reading


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


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class ValidationReport:
    """What validation found: every problem, and the missing readings it dropped."""

    source: str
    problems: tuple[str, ...]
    n_rows_read: int
    n_missing_lfc: int

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_screen(df: pd.DataFrame, source: str = "table") -> tuple[pd.DataFrame, ValidationReport]:
    """Check every rule of the screen table at once.

    Returns the cleaned table (names stripped, ``lfc`` numeric, missing ``lfc``
    rows dropped) and a report. The cleaned table is only meaningful when the
    report is ``ok``.
    """
    problems: list[str] = []
    n_read = len(df)
    if df.shape[1] == 0 or n_read == 0:
        problems.append("the table is empty (no rows); expected one row per sgRNA reading")
        return df, ValidationReport(source, tuple(problems), n_read, 0)

    df = df.reset_index(drop=True)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        found = ", ".join(map(str, df.columns[:30]))
        hints = []
        for m in missing:
            close = difflib.get_close_matches(m, [str(c).lower() for c in df.columns], n=1, cutoff=0.6)
            if close:
                hints.append(f"'{m}' (did you mean '{close[0]}'?)")
            else:
                hints.append(f"'{m}'")
        problems.append(
            f"missing required column{'s' if len(missing) > 1 else ''} {', '.join(hints)}; "
            f"found: {found}; rename your columns (required: {', '.join(REQUIRED_COLUMNS)})"
        )

    for col in NAME_COLUMNS:
        if col not in df.columns:
            continue
        values = df[col].astype("string").str.strip()
        empty = values.isna() | (values == "")
        if empty.any():
            problems.append(f"column '{col}': empty name in {_row_label(np.flatnonzero(empty))}")
        df[col] = values

    for col in ("replicate_id", "pdna_batch", "screen"):
        if col in df.columns:
            df[col] = df[col].map(_label_text, na_action="ignore").astype("string")

    n_missing = 0
    for col in NUMERIC_COLUMNS:
        if col not in df.columns:
            continue
        raw = df[col]
        numeric = pd.to_numeric(raw, errors="coerce").astype("float64")
        bad = numeric.isna() & raw.notna()
        if bad.any():
            example = raw[bad].iloc[0]
            problems.append(
                f"column '{col}': non-numeric value (e.g. {str(example)!r}) in "
                f"{_row_label(np.flatnonzero(bad))}; use a number or leave the cell empty / NA"
            )
        inf = np.isinf(numeric.to_numpy())
        if inf.any():
            problems.append(f"column '{col}': infinite value in {_row_label(np.flatnonzero(inf))}")
        df[col] = numeric
        if col == "lfc":
            n_missing = int((raw.isna()).sum())

    if "sgrna" in df.columns and "hugo_symbol" in df.columns:
        problems.extend(_one_to_one(df, "sgrna", "hugo_symbol", "sgRNA", "gene"))
    if "depmap_id" in df.columns and "lineage" in df.columns:
        problems.extend(_one_to_one(df, "depmap_id", "lineage", "cell line", "lineage"))

    dup = df.duplicated(keep="first")
    if dup.any():
        problems.append(
            f"{int(dup.sum())} exact duplicate row{'s' if dup.sum() > 1 else ''} "
            f"({_row_label(np.flatnonzero(dup))}); remove the repeated rows"
        )

    if "lfc" in df.columns and not problems:
        keep = df["lfc"].notna()
        if not keep.any():
            problems.append("column 'lfc': every value is missing; nothing to fit")
        df = df.loc[keep].reset_index(drop=True)
    return df, ValidationReport(source, tuple(problems), n_read, n_missing)


def _label_text(value: Any) -> str:
    """A label as text; 2.0 (a number read from Parquet/Excel) becomes "2"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _one_to_one(df: pd.DataFrame, key: str, value: str, key_word: str, value_word: str) -> list[str]:
    pairs = df[[key, value]].dropna().drop_duplicates()
    counts = pairs.groupby(key, sort=True, observed=True)[value].nunique()
    offenders = counts[counts > 1].index
    out = []
    for name in offenders[:MAX_ROWS_SHOWN]:
        targets = sorted(pairs.loc[pairs[key] == name, value].astype(str))
        rows = np.flatnonzero((df[key] == name).to_numpy())
        out.append(
            f"column '{value}': {key_word} '{name}' maps to {len(targets)} {value_word}s "
            f"({', '.join(targets[:4])}) in {_row_label(rows)}; each {key_word} must map to one {value_word}"
        )
    if len(offenders) > MAX_ROWS_SHOWN:
        out.append(f"column '{value}': {len(offenders) - MAX_ROWS_SHOWN} more {key_word}s map to several {value_word}s")
    return out


# --------------------------------------------------------------------------- the screen


@dataclass(frozen=True)
class Screen:
    """A validated screen table and where it came from."""

    data: pd.DataFrame = field(repr=False)
    source: str
    n_rows_read: int
    n_missing_lfc: int

    @cached_property
    def genes(self) -> tuple[str, ...]:
        return tuple(sorted(self.data["hugo_symbol"].unique()))

    @cached_property
    def lineages(self) -> tuple[str, ...]:
        return tuple(sorted(self.data["lineage"].unique()))

    @cached_property
    def cell_lines(self) -> tuple[str, ...]:
        return tuple(sorted(self.data["depmap_id"].unique()))

    @property
    def covariates(self) -> tuple[str, ...]:
        return tuple(c for c in ("rna_expr", "gene_cn") if c in self.data.columns)

    def summarise(self) -> dict[str, Any]:
        """Counts a person wants to see first."""
        d = self.data
        return {
            "source": self.source,
            "rows": len(d),
            "genes": d["hugo_symbol"].nunique(),
            "sgrnas": d["sgrna"].nunique(),
            "cell_lines": d["depmap_id"].nunique(),
            "lineages": d["lineage"].nunique(),
            "dropped_missing_lfc": self.n_missing_lfc,
            "covariates": list(self.covariates),
        }


def screen_from_frame(df: pd.DataFrame, source: str = "table") -> Screen:
    """Validate an in-memory table (e.g. an upload) into a ``Screen``."""
    df = canonicalise_columns(df.copy())
    clean, report = validate_screen(df, source)
    if not report.ok:
        raise DataValidationError(source, list(report.problems))
    return Screen(clean, source, report.n_rows_read, report.n_missing_lfc)


def load_screen(path: str | Path) -> Screen:
    """Read and validate a screen table file; raise ``DataValidationError`` listing every problem."""
    df = read_table(path)
    clean, report = validate_screen(df, str(path))
    if not report.ok:
        raise DataValidationError(str(path), list(report.problems))
    return Screen(clean, str(path), report.n_rows_read, report.n_missing_lfc)


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class ScreenSelection:
    """Selected readings with sorted categorical labels and integer indices for models.

    ``data`` has categorical ``hugo_symbol``, ``sgrna``, ``depmap_id`` and ``lineage``
    columns whose categories are the sorted labels below, so ``.cat.codes`` are the
    model indices.
    """

    data: pd.DataFrame = field(repr=False)
    genes: tuple[str, ...]
    sgrnas: tuple[str, ...]
    cell_lines: tuple[str, ...]
    lineages: tuple[str, ...]
    fingerprint: str
    requested: dict[str, Any]

    @property
    def n_rows(self) -> int:
        return len(self.data)

    def index(self, column: str) -> np.ndarray:
        """Integer codes of a categorical column (``hugo_symbol``, ``sgrna``, ``depmap_id``, ``lineage``)."""
        return self.data[column].cat.codes.to_numpy(dtype=np.int64)

    @cached_property
    def sgrna_gene(self) -> np.ndarray:
        """For each sgRNA (in ``sgrnas`` order), the index of its gene."""
        pairs = self.data[["sgrna", "hugo_symbol"]].drop_duplicates("sgrna")
        out = np.empty(len(self.sgrnas), dtype=np.int64)
        out[pairs["sgrna"].cat.codes.to_numpy()] = pairs["hugo_symbol"].cat.codes.to_numpy()
        return out

    @cached_property
    def cell_line_lineage(self) -> np.ndarray:
        """For each cell line (in ``cell_lines`` order), the index of its lineage."""
        pairs = self.data[["depmap_id", "lineage"]].drop_duplicates("depmap_id")
        out = np.empty(len(self.cell_lines), dtype=np.int64)
        out[pairs["depmap_id"].cat.codes.to_numpy()] = pairs["lineage"].cat.codes.to_numpy()
        return out

    @property
    def coords(self) -> dict[str, list[str]]:
        return {
            "gene": list(self.genes),
            "sgrna": list(self.sgrnas),
            "cell_line": list(self.cell_lines),
            "lineage": list(self.lineages),
        }

    def summarise(self) -> dict[str, Any]:
        return {
            "rows": self.n_rows,
            "genes": len(self.genes),
            "sgrnas": len(self.sgrnas),
            "cell_lines": len(self.cell_lines),
            "lineages": len(self.lineages),
            "fingerprint": self.fingerprint,
        }


def select_labels(requested: Sequence[str], available: Sequence[str], what: str) -> list[str]:
    """Match requested labels exactly, else case-insensitively; report unknown ones with close matches."""
    exact = set(available)
    folded = {a.casefold(): a for a in available}
    out: list[str] = []
    unknown: list[str] = []
    for r in requested:
        r = str(r).strip()
        if not r:
            continue
        if r in exact:
            out.append(r)
        elif r.casefold() in folded:
            out.append(folded[r.casefold()])
        else:
            unknown.append(r)
    if unknown:
        parts = []
        for u in unknown[:10]:
            close = difflib.get_close_matches(u, list(available), n=3, cutoff=0.6)
            parts.append(f"'{u}'" + (f" (close: {', '.join(close)})" if close else ""))
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise SelectionError(
            f"{len(unknown)} {what}{'s' if len(unknown) > 1 else ''} not in the screen: "
            f"{', '.join(parts)}{more}; the screen has {len(available)} {what}s"
        )
    return list(dict.fromkeys(out))


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() in {"all", "*", ""}:
            return None
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def select_screen(
    screen: Screen,
    genes: str | Sequence[str] | None = None,
    lineages: str | Sequence[str] | None = None,
    cell_lines: str | Sequence[str] | None = None,
) -> ScreenSelection:
    """Select genes and lineages (``None`` or ``"all"``: everything), optionally cell lines.

    Unknown labels raise ``SelectionError`` with close matches; lineage names match
    case-insensitively.
    """
    gene_list = _as_list(genes)
    lineage_list = _as_list(lineages)
    cell_list = _as_list(cell_lines)
    d = screen.data
    mask = np.ones(len(d), dtype=bool)
    if gene_list is not None:
        chosen = select_labels(gene_list, screen.genes, "gene")
        if not chosen:
            raise SelectionError("no genes selected; pick at least one gene")
        mask &= d["hugo_symbol"].isin(chosen).to_numpy()
    if lineage_list is not None:
        chosen_l = select_labels(lineage_list, screen.lineages, "lineage")
        if not chosen_l:
            raise SelectionError("no lineages selected; pick at least one lineage")
        mask &= d["lineage"].isin(chosen_l).to_numpy()
    if cell_list is not None:
        chosen_c = select_labels(cell_list, screen.cell_lines, "cell line")
        mask &= d["depmap_id"].isin(chosen_c).to_numpy()
    sub = d.loc[mask].copy()
    if sub.empty:
        raise SelectionError(
            "the selection has no readings (the chosen genes were not screened in the chosen "
            "lineages / cell lines); widen the selection"
        )
    for col in NAME_COLUMNS:
        sub[col] = pd.Categorical(sub[col].astype(str), categories=sorted(sub[col].astype(str).unique()))
    sub = sort_canonical(sub).reset_index(drop=True)
    requested = {
        "genes": sorted(set(gene_list)) if gene_list is not None else "all",
        "lineages": sorted(set(lineage_list)) if lineage_list is not None else "all",
        "cell_lines": sorted(set(cell_list)) if cell_list is not None else "all",
    }
    return ScreenSelection(
        data=sub,
        genes=tuple(sub["hugo_symbol"].cat.categories),
        sgrnas=tuple(sub["sgrna"].cat.categories),
        cell_lines=tuple(sub["depmap_id"].cat.categories),
        lineages=tuple(sub["lineage"].cat.categories),
        fingerprint=fingerprint_frame(sub),
        requested=requested,
    )


def _fingerprint_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in (*REQUIRED_COLUMNS, *FINGERPRINT_OPTIONAL) if c in df.columns]


def _canonical_keys(df: pd.DataFrame) -> tuple[list[str], dict[str, Any], np.ndarray]:
    """Fingerprint columns, their sort keys (text as sorted factor codes, numbers as floats), and the row order."""
    cols = _fingerprint_columns(df)
    keys: dict[str, Any] = {}
    for col in cols:
        if col in NUMERIC_COLUMNS:
            arr = df[col].to_numpy(dtype="<f8", na_value=np.nan)
            arr = np.where(arr == 0.0, 0.0, arr)  # -0.0 == 0.0
            keys[col] = arr
        else:
            codes, uniques = pd.factorize(df[col].astype("string"), sort=True, use_na_sentinel=True)
            keys[col] = (codes.astype("<i8"), [str(u) for u in uniques])
    sort_keys = [keys[c] if c in NUMERIC_COLUMNS else keys[c][0] for c in cols]
    order = np.lexsort(sort_keys[::-1]) if len(df) else np.arange(0)
    return cols, keys, order


def sort_canonical(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in a canonical order that does not depend on the input order."""
    _, _, order = _canonical_keys(df)
    return df.iloc[order]


def fingerprint_frame(df: pd.DataFrame) -> str:
    """sha256 over the fit-relevant columns of the rows in canonical order.

    The same readings give the same fingerprint on any machine, whatever the row
    order or extra columns; any changed reading changes it. Text columns are hashed as
    their sorted distinct values plus one integer code per row (fast for millions of rows).
    """
    cols, keys, order = _canonical_keys(df)
    h = hashlib.sha256(FINGERPRINT_SCHEME.encode())
    h.update(str(len(df)).encode())
    for col in cols:
        h.update(b"\x1e" + col.encode())
        if col in NUMERIC_COLUMNS:
            arr = keys[col][order]
            arr = np.where(np.isnan(arr), np.nan, arr)  # one NaN bit pattern
            h.update(arr.astype("<f8").tobytes())
        else:
            codes, uniques = keys[col]
            h.update(json.dumps(uniques, ensure_ascii=False).encode("utf-8"))
            h.update(codes[order].tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- covariates

RNA_CLIP = 5.0
CN_CLIP = 2.0
CN_FLOOR = 0.01


def prepare_covariates(data: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Scale covariates as the seed notebooks do, and record the transform.

    ``rna_expr`` → ``rna_expr_z``: z-scored within gene, clipped to ±5, missing → 0
    (the gene's mean). ``gene_cn`` → ``gene_cn_z``: log2(max(cn, 0.01)) centred within
    gene, clipped to ±2, missing → 0.
    """
    out = data.copy()
    transforms: dict[str, dict[str, Any]] = {}
    gene = out["hugo_symbol"].astype(str)
    if "rna_expr" in out.columns:
        x = out["rna_expr"].astype(float)
        mean = x.groupby(gene).transform("mean")
        sd = x.groupby(gene).transform("std").fillna(0.0)
        z = ((x - mean) / sd.where(sd > 0, np.nan)).fillna(0.0).clip(-RNA_CLIP, RNA_CLIP)
        out["rna_expr_z"] = z.to_numpy()
        transforms["rna_expr"] = {
            "output": "rna_expr_z",
            "method": "z-score within gene",
            "clip": [-RNA_CLIP, RNA_CLIP],
            "missing_filled_with_gene_mean": int(x.isna().sum()),
        }
    if "gene_cn" in out.columns:
        x = np.log2(out["gene_cn"].astype(float).clip(lower=CN_FLOOR))
        centred = (x - x.groupby(gene).transform("mean")).fillna(0.0).clip(-CN_CLIP, CN_CLIP)
        out["gene_cn_z"] = centred.to_numpy()
        transforms["gene_cn"] = {
            "output": "gene_cn_z",
            "method": f"log2(max(copy number, {CN_FLOOR})) centred within gene",
            "clip": [-CN_CLIP, CN_CLIP],
            "missing_filled_with_gene_mean": int(out["gene_cn"].isna().sum()),
        }
    return out, transforms
