"""What a screen table says about each cell line: its name and annotations, and the one way to label it.

A screen table may carry facts about the cell lines (``columns.CELL_LINE_ANNOTATIONS``: name, lineage
subtype, primary / metastasis, sex, age), one value per cell line (validation checks it). Here they become
one row per cell line (``cell_line_table``); a fit stores that table with its posterior
(``annotation_dataset`` / ``table_from_dataset``: the ``cell_line_annotations`` group of the NetCDF, on the
``cell_line`` dimension), and every page shows a cell line as ``format_cell_line`` writes it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from speclet_core.data.columns import CELL_LINE_ANNOTATIONS

# The NetCDF group of a fit that holds its cell lines' lineage and annotations.
CELL_LINE_GROUP = "cell_line_annotations"
NAME_COLUMN = "cell_line_name"
# Columns a page may colour or group cell lines by, in the order offered, with their labels.
GROUPING_COLUMNS: dict[str, str] = {
    "lineage": "lineage",
    "lineage_subtype": CELL_LINE_ANNOTATIONS["lineage_subtype"],
    "primary_or_metastasis": CELL_LINE_ANNOTATIONS["primary_or_metastasis"],
    "sex": CELL_LINE_ANNOTATIONS["sex"],
}
# Per (gene, cell line) mutation flag of real DepMap-derived tables: cell lines can be grouped by it per gene.
MUTATION_COLUMN = "is_mutated"
MUTATION_LABEL = "mutated in the gene (is_mutated)"
MUTATED, NOT_MUTATED = "mutated", "not mutated"
# What a cell line without a value of a grouping column is grouped as.
UNKNOWN = "not recorded"
TABLE_COLUMNS: tuple[str, ...] = ("lineage", NAME_COLUMN, "lineage_subtype", "primary_or_metastasis", "sex", "age")
TABLE_LABELS: dict[str, str] = {"lineage": "lineage", **{c: CELL_LINE_ANNOTATIONS[c] for c in TABLE_COLUMNS[1:]}}
_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0"})


def format_cell_line(cell_line: str, name: Any = None) -> str:
    """The one way a cell line is shown: ``"HT-29 (ACH-000552)"``, or the bare id when no name is known."""
    text = "" if name is None or (isinstance(name, float) and np.isnan(name)) or name is pd.NA else str(name).strip()
    return f"{text} ({cell_line})" if text and text != cell_line else cell_line


def _text(value: Any) -> str | None:
    """A cell value as display text; 63.0 (a number read from a file) becomes "63"; missing → None."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def _sex_from_is_male(values: list[Any]) -> list[str | None]:
    low = [(_text(v) or "").lower() for v in values]
    return ["Male" if v in _TRUE else "Female" if v in _FALSE else None for v in low]


def cell_line_table(data: pd.DataFrame) -> pd.DataFrame:
    """One row per cell line of a screen table (index ``depmap_id``, sorted): lineage and the annotations it has.

    Values are text (``None`` where the table does not say); ``sex`` comes from ``is_male`` when the table
    has no ``sex`` column. Validation has already checked that each cell line has one value of each.
    """
    codes, uniques = pd.factorize(data["depmap_id"].astype(str))
    ids = [str(i) for i in uniques]
    present = [c for c in ("lineage", *CELL_LINE_ANNOTATIONS) if c in data.columns]
    first: dict[str, list[Any]] = {}
    for col in present:  # the first value given for each cell line (missing cells skipped), by hashing, not sorting
        column = data[col]
        rows = np.flatnonzero(column.notna().to_numpy())
        rows = rows[~pd.Index(codes[rows]).duplicated()]
        values: list[Any] = [None] * len(ids)
        for code, value in zip(codes[rows], column.iloc[rows].tolist(), strict=True):
            values[code] = value
        first[col] = values
    out = pd.DataFrame(index=pd.Index(ids, name="depmap_id"))
    for col in present:
        if col == "is_male":
            continue
        texts = [_text(v) for v in first[col]]
        if col == "sex":  # DepMap writes "Unknown" where it does not know: the same as a blank cell
            texts = [None if v is not None and v.lower() == "unknown" else v for v in texts]
        out[col] = pd.Series(texts, index=out.index, dtype=object)
    if "sex" not in out.columns and "is_male" in first:
        out["sex"] = pd.Series(_sex_from_is_male(first["is_male"]), index=out.index, dtype=object)
    ordered = [c for c in TABLE_COLUMNS if c in out.columns]
    return out[ordered].sort_index()


def cell_line_labels(table: pd.DataFrame, cell_lines: Any = None) -> dict[str, str]:
    """Cell line id → its label (``format_cell_line``) for every cell line of ``table`` (and of ``cell_lines``)."""
    ids = [str(c) for c in (table.index if cell_lines is None else cell_lines)]
    names = table[NAME_COLUMN] if NAME_COLUMN in table.columns else pd.Series(dtype=object)
    return {c: format_cell_line(c, names.get(c)) for c in ids}


def grouping_columns(table: pd.DataFrame) -> dict[str, str]:
    """The columns of ``table`` that cell lines can be coloured or grouped by (those with a value), with labels."""
    return {c: label for c, label in GROUPING_COLUMNS.items() if c in table.columns and table[c].notna().any()}


def group_values(table: pd.DataFrame, column: str, cell_lines: Any) -> pd.Series:
    """Each cell line's value of ``column`` (``UNKNOWN`` where not recorded), in the order of ``cell_lines``."""
    ids = pd.Index([str(c) for c in cell_lines])
    if column not in table.columns:
        return pd.Series(UNKNOWN, index=ids, dtype=object)
    values = table[column].reindex(ids)
    return pd.Series([UNKNOWN if v is None or pd.isna(v) else v for v in values], index=ids, dtype=object)


def annotation_dataset(table: pd.DataFrame) -> xr.Dataset:
    """The table as a dataset on the ``cell_line`` dimension (missing values as empty strings: netCDF text)."""
    data = {col: ("cell_line", np.array([_text(v) or "" for v in table[col]], dtype=object))
            for col in table.columns}
    return xr.Dataset(data, coords={"cell_line": np.array(table.index.astype(str), dtype=object)})


def table_from_dataset(ds: xr.Dataset) -> pd.DataFrame:
    """``annotation_dataset`` read back: one row per cell line, ``None`` where no value was stored."""
    index = pd.Index([str(v) for v in ds["cell_line"].values], name="depmap_id")
    out = pd.DataFrame(index=index)
    for col in ds.data_vars:
        values = [str(v) if str(v) != "" else None for v in np.asarray(ds[col].values)]
        out[str(col)] = pd.Series(values, index=index, dtype=object)
    return out


def has_names(table: pd.DataFrame) -> bool:
    """Whether any cell line of ``table`` has a name (else every label is the bare id)."""
    return NAME_COLUMN in table.columns and bool(table[NAME_COLUMN].notna().any())


def grouping_choices(table: pd.DataFrame, data: pd.DataFrame) -> dict[str, str]:
    """What a screen's cell lines can be grouped by: ``grouping_columns`` and, when the table has it,
    whether the gene is mutated in the cell line (``is_mutated``, a per-gene grouping)."""
    out = grouping_columns(table)
    if MUTATION_COLUMN in data.columns and data[MUTATION_COLUMN].notna().any():
        out[MUTATION_COLUMN] = MUTATION_LABEL
    return out


def _mutation_groups(values: pd.Series) -> list[str]:
    low = [(_text(v) or "").lower() for v in values]
    return [MUTATED if v in _TRUE else NOT_MUTATED if v in _FALSE else UNKNOWN for v in low]


def summarise_cell_lines(rows: pd.DataFrame, table: pd.DataFrame, genes: Any, by: str) -> pd.DataFrame:
    """Mean LFC of each of ``genes`` in each cell line of ``rows``, with the cell line's label and its group.

    ``by`` is a column of ``grouping_choices``; cell lines without a value are grouped as ``UNKNOWN``.
    Columns: gene, cell_line, label, group, cell_line_lfc (mean LFC of its readings), readings.
    """
    wanted = [str(g) for g in genes]
    d = rows.loc[rows["hugo_symbol"].astype(str).isin(wanted)]
    keys = [d["hugo_symbol"].astype(str).rename("gene"), d["depmap_id"].astype(str).rename("cell_line")]
    agg = d.groupby(keys, sort=True)["lfc"].agg(cell_line_lfc="mean", readings="size")
    if by == MUTATION_COLUMN and MUTATION_COLUMN in d.columns:
        flags = d.groupby(keys, sort=True)[MUTATION_COLUMN].first()
        agg["group"] = _mutation_groups(flags.reindex(agg.index))
    out = agg.reset_index()
    if "group" not in out.columns:
        out["group"] = group_values(table, by, out["cell_line"]).to_numpy()
    labels = cell_line_labels(table, out["cell_line"].unique())
    out.insert(2, "label", out["cell_line"].map(labels))
    return out[["gene", "cell_line", "label", "group", "cell_line_lfc", "readings"]]


def summarise_groups(per_cell_line: pd.DataFrame) -> pd.DataFrame:
    """Per gene and group: cell lines, and the mean and median of their mean LFCs (``summarise_cell_lines`` rows)."""
    g = per_cell_line.groupby(["gene", "group"], sort=True)["cell_line_lfc"]
    out = g.agg(cell_lines="size", mean_lfc="mean", median_lfc="median").reset_index()
    return out
