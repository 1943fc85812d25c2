"""Checking every rule of a screen table at once, so a bad file is reported completely at the edge."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from speclet_core.data.columns import CELL_LINE_ANNOTATIONS, NAME_COLUMNS, NUMERIC_COLUMNS, REQUIRED_COLUMNS
from speclet_core.labels import close_matches, join_labels

MAX_ROWS_SHOWN = 5


def _row_label(index: Iterable[int]) -> str:
    """Spreadsheet row numbers (the header is row 1) of the first few offenders."""
    rows = [i + 2 for i in index]
    return f"row{'s' if len(rows) != 1 else ''} {join_labels(rows, MAX_ROWS_SHOWN)}"

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
            close = close_matches(m, [str(c) for c in df.columns], n=1)
            hints.append(f"'{m}' (did you mean '{close[0]}'?)" if close else f"'{m}'")
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
    for col in CELL_LINE_ANNOTATIONS:  # a name, subtype, sex … belongs to the cell line, not to a reading
        if col in df.columns and "depmap_id" in df.columns:
            problems.extend(_one_to_one(df, "depmap_id", col, "cell line", "value"))

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
