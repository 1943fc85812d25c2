"""Expression and copy number of an import: the wanted cells of the release's omics matrices, joined per reading.

Copy number: DepMap's gene-level copy number (``OmicsCNGene``, ``CCLE_gene_cn``) is
log2(relative copy number + 1); the screen table's ``gene_cn`` is relative copy number
(1 = the cell line's genome-wide average), so it is converted back as ``2**x - 1``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from speclet_core.depmap.matrix import MatrixSpec, RowRequest, column_name
from speclet_core.depmap.progress import ImportPhase
from speclet_core.depmap.release import (
    OMICS_DEFAULT_ENTRY,
    OMICS_ID_COLUMNS,
    normalise_name,
    parse_bool,
    read_header,
    split_symbol,
)
from speclet_core.depmap.run import ImportRun
from speclet_core.labels import join_labels

# Columns of an omics matrix that identify its row (never a gene), compared after ``normalise_name``.
OMICS_ID_NORMS = frozenset(
    normalise_name(c)
    for c in (
        "", "ModelID", "DepMap_ID", "SequencingID", "SequenceID", "ProfileID", "ModelConditionID",
        "IsDefaultEntryForModel", "IsDefaultEntryForMC", "Unnamed: 0", "cell_line", "CellLineName",
    )
)


class CopyNumberScale(StrEnum):
    """How the release's copy-number matrix is scaled (the output is always relative copy number)."""

    LOG2_RELATIVE_PLUS_1 = "log2_relative_plus_1"  # DepMap OmicsCNGene / CCLE_gene_cn: log2(CN ratio + 1)
    RELATIVE = "relative"  # already relative copy number: kept as is


CN_SCALE_TEXT = {
    CopyNumberScale.LOG2_RELATIVE_PLUS_1: "log2(relative copy number + 1)",
    CopyNumberScale.RELATIVE: "relative copy number",
}


def _omics_spec(path: Path) -> tuple[MatrixSpec, int | None]:
    """An omics matrix's key column (ModelID), text ID columns and default-entry column."""
    header = read_header(path)
    norms = [normalise_name(h) for h in header]
    id_norms = [normalise_name(c) for c in OMICS_ID_COLUMNS]
    key_col = next((i for i, n in enumerate(norms) if n in id_norms), 0)
    first_gene = next((i for i, h in enumerate(header) if re.match(r"^.+\(\s*\d+\s*\)\s*$", h)), None)
    text_cols = tuple(
        i for i, n in enumerate(norms)
        if i != key_col and ((first_gene is not None and i < first_gene) or n in OMICS_ID_NORMS)
    )
    default_col = next((i for i, n in enumerate(norms) if n == normalise_name(OMICS_DEFAULT_ENTRY)), None)
    return MatrixSpec(path, tuple(header), key_col=key_col, text_cols=text_cols), default_col


def _omics_values(
    run: ImportRun, path: Path, cell_lines: Sequence[str], genes: Sequence[str], column: str,
    phase: ImportPhase, span: tuple[float, float],
) -> pd.DataFrame:
    """cell line × gene values of an omics matrix (NaN where the release has none)."""
    spec, default_col = _omics_spec(path)
    gene_cols: dict[str, int] = {}
    repeated: list[str] = []
    skip = {spec.key_col, *spec.text_cols}
    wanted = set(genes)
    for i, h in enumerate(spec.header):
        if i in skip:
            continue
        symbol = split_symbol(h)
        if symbol in wanted:
            if symbol in gene_cols:
                repeated.append(symbol)
            else:
                gene_cols[symbol] = i
    if repeated:
        run.warnings.append(
            f"{path.name}: genes with several columns ({join_labels(sorted(set(repeated)))}); used the first"
        )
    absent = [g for g in genes if g not in gene_cols]
    if absent:
        run.warnings.append(f"{path.name}: no column for {len(absent)} gene(s) ({join_labels(absent)}); {column} left empty")
    text = [default_col] if default_col is not None else []
    # Never cached: converting all ~19,000 columns of a wide omics CSV to Parquet took 30 s or 550 MiB
    # (measured), while streaming the 50 wanted columns out of a 300 MB file takes under a second.
    rows = RowRequest(frozenset(cell_lines), tuple(gene_cols.values()), tuple(text))
    table = run.read_matrix(spec, rows, phase, span, cacheable=False)
    frame = pd.DataFrame({"model_id": table.column(column_name(spec.key_col)).to_numpy(zero_copy_only=False)})
    for symbol, i in gene_cols.items():
        frame[symbol] = table.column(column_name(i)).to_numpy(zero_copy_only=False)
    several = frame["model_id"].duplicated(keep=False).to_numpy()
    if default_col is not None and several.any():  # newer releases: one default profile per cell line
        is_default = parse_bool(pd.Series(table.column(column_name(default_col)).to_numpy(zero_copy_only=False)))
        frame = frame.loc[~several | is_default.eq(True).to_numpy()]
    if frame["model_id"].duplicated().any():
        n = int(frame["model_id"].duplicated().sum())
        run.warnings.append(f"{path.name}: {n} cell line(s) have several rows; used the first of each")
        frame = frame.drop_duplicates("model_id", keep="first")
    return frame.set_index("model_id").reindex(index=list(cell_lines), columns=list(genes))


def _lookup(values: pd.DataFrame, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """values[row label, col label] for each reading, NaN where absent."""
    matrix = values.to_numpy(dtype="float64", na_value=np.nan)
    ri = values.index.get_indexer(rows)
    ci = values.columns.get_indexer(cols)
    out = np.full(len(rows), np.nan)
    ok = (ri >= 0) & (ci >= 0)
    out[ok] = matrix[ri[ok], ci[ok]]
    return out


def join_omics(run: ImportRun, out: pd.DataFrame, scale: CopyNumberScale) -> dict[str, Any]:
    """Add ``rna_expr`` and ``gene_cn`` (relative copy number) where the release has them."""
    f = run.files
    cell_lines = sorted(out["depmap_id"].unique())
    genes = sorted(out["hugo_symbol"].unique())
    info: dict[str, Any] = {"expression": None, "copy_number": None}
    steps = [
        ("expression", f.expression, "rna_expr", ImportPhase.EXPRESSION, (0.85, 0.92)),
        ("copy_number", f.copy_number, "gene_cn", ImportPhase.COPY_NUMBER, (0.92, 0.99)),
    ]
    for key, path, column, phase, span in steps:
        if path is None:
            run.warnings.append(f"no {key.replace('_', ' ')} file in the release; '{column}' not added")
            continue
        run.progress.emit(phase, span[0], f"reading {path.name}", force=True)
        matrix = _omics_values(run, path, cell_lines, genes, column, phase, span)
        no_row = [c for c in cell_lines if matrix.loc[c].isna().all()]
        if no_row:
            run.warnings.append(
                f"{path.name}: no values for {len(no_row)} cell line(s) ({join_labels(no_row)}); '{column}' left empty"
            )
        x = _lookup(matrix, out["depmap_id"].to_numpy(), out["hugo_symbol"].to_numpy())
        note: dict[str, Any] = {"file": path.name, "column": column, "cell_lines_without_values": len(no_row)}
        if key == "expression":
            note["scale"] = "log2(TPM + 1), as in the release"
        else:
            note["source_scale"] = CN_SCALE_TEXT[scale]
            note["output_scale"] = "relative copy number (1 = the cell line's genome-wide average; 0 = none)"
            if scale is CopyNumberScale.LOG2_RELATIVE_PLUS_1:
                x = np.exp2(x) - 1.0
                note["conversion"] = "gene_cn = 2**x - 1, x the release's value"
            else:
                note["conversion"] = "none"
        out[column] = x
        info[key] = note
    return info

