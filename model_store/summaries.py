"""Summary tables of a fit, computed while its draws are written and stored as Parquet.

Pages read these instead of the posterior: the per-element table (mean, sd, 89%
HDI, R-hat, bulk/tail ESS), the gene-level effect, and gene × cell-line /
gene × lineage matrices with P(effect < -0.5). Parquet pages carry CRC checksums,
so damage is caught when a page is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from model_store.stats import HDI_HIGH, HDI_LOW, HDI_PROB, ElementStats

# P(effect < threshold) is stored for the effect variables: "how likely is this gene a dependency?"
P_BELOW_THRESHOLD = -0.5
STAT_COLUMNS: tuple[str, ...] = ("mean", "sd", HDI_LOW, HDI_HIGH, "r_hat", "ess_bulk", "ess_tail")
WORST_K = 10
# Dimension columns of the summary table come first in this order, then any others alphabetically.
KNOWN_DIMS: tuple[str, ...] = ("gene", "sgrna", "cell_line", "lineage")


class MatrixKind(StrEnum):
    """Which two-way effect a matrix holds (rows are always genes)."""

    GENE_CELL_LINE = "gene_cell_line"
    GENE_LINEAGE = "gene_lineage"

    @property
    def role(self) -> str:
        return f"{self.value}_effect"

    @property
    def column_dim(self) -> str:
        return "cell_line" if self is MatrixKind.GENE_CELL_LINE else "lineage"


class MatrixStat(StrEnum):
    """Which statistic of each matrix cell to read."""

    MEAN = "mean"
    SD = "sd"
    HDI_LOW = HDI_LOW
    HDI_HIGH = HDI_HIGH
    P_BELOW = "p_below"


MATRIX_COLUMNS: tuple[str, ...] = tuple(s.value for s in MatrixStat)
GENE_COLUMNS: tuple[str, ...] = ("mean", "sd", HDI_LOW, HDI_HIGH, "p_below", "r_hat", "ess_bulk", "ess_tail")


@dataclass
class VariableStats:
    """Per-element statistics of one posterior variable, filled block by block."""

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    with_p_below: bool
    columns: dict[str, np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        names = [*STAT_COLUMNS, "p_below"] if self.with_p_below else list(STAT_COLUMNS)
        self.columns = {c: np.full(self.shape, np.nan) for c in names}

    def fill(self, where: tuple[slice, ...], stats: ElementStats, block_shape: tuple[int, ...]) -> None:
        values = {
            "mean": stats.mean, "sd": stats.sd, HDI_LOW: stats.hdi_low, HDI_HIGH: stats.hdi_high,
            "r_hat": stats.r_hat, "ess_bulk": stats.ess_bulk, "ess_tail": stats.ess_tail, "p_below": stats.p_below,
        }
        for name, target in self.columns.items():
            target[where] = np.asarray(values[name]).reshape(block_shape)

    def flat(self, name: str) -> np.ndarray:
        return self.columns[name].reshape(-1)


def _dictionary(indices: np.ndarray, labels: Sequence[str], mask: np.ndarray | None = None) -> pa.DictionaryArray:
    idx = pa.array(indices.astype(np.int32), mask=mask)
    return pa.DictionaryArray.from_arrays(idx, pa.array(list(labels), type=pa.string()))


def _element_indices(shape: tuple[int, ...], axis: int) -> np.ndarray:
    """Index along ``axis`` of every element of an array of ``shape``, in C order."""
    view = [1] * len(shape)
    view[axis] = shape[axis]
    return np.broadcast_to(np.arange(shape[axis]).reshape(view), shape).reshape(-1)


def summary_dims(variables: Sequence[VariableStats]) -> list[str]:
    present = {d for v in variables for d in v.dims}
    return [d for d in KNOWN_DIMS if d in present] + sorted(present - set(KNOWN_DIMS))


def write_summary(path: Path, variables: Sequence[VariableStats], labels: dict[str, list[str]]) -> list[str]:
    """Write the per-element table, row group i holding variable i; returns the variables in that order."""
    dims = summary_dims(variables)
    names = [v.name for v in variables]
    schema = pa.schema(
        [pa.field("variable", pa.dictionary(pa.int32(), pa.string()))]
        + [pa.field(d, pa.dictionary(pa.int32(), pa.string())) for d in dims]
        + [pa.field(c, pa.float64()) for c in STAT_COLUMNS]
    )
    with pq.ParquetWriter(path, schema, compression="zstd", write_page_checksum=True,
                          use_dictionary=["variable", *dims]) as writer:
        for i, var in enumerate(variables):
            n = int(np.prod(var.shape, dtype=np.int64))
            arrays: list[pa.Array] = [_dictionary(np.full(n, i), names)]
            for d in dims:
                if d in var.dims:
                    arrays.append(_dictionary(_element_indices(var.shape, var.dims.index(d)), labels[d]))
                else:
                    arrays.append(_dictionary(np.zeros(n), labels[d], mask=np.ones(n, dtype=bool)))
            arrays += [pa.array(var.flat(c)) for c in STAT_COLUMNS]
            # One row group per variable, so a page asking for a few variables reads only those.
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema), row_group_size=max(n, 1))
    return names


def write_gene_summary(path: Path, var: VariableStats, genes: list[str]) -> None:
    """The gene-level effect, one row per gene."""
    table = pa.table({"gene": pa.array(genes, type=pa.string()), **{c: pa.array(var.flat(c)) for c in GENE_COLUMNS}})
    pq.write_table(table, path, compression="zstd", write_page_checksum=True, use_dictionary=["gene"])


def write_matrix(path: Path, var: VariableStats, kind: MatrixKind, labels: dict[str, list[str]]) -> None:
    """Gene × cell line (or lineage) cells in gene-major order: gene, column label, then MATRIX_COLUMNS."""
    other = kind.column_dim
    order = (var.dims.index("gene"), var.dims.index(other))
    n_gene, n_other = var.shape[order[0]], var.shape[order[1]]
    table = pa.table(
        {
            "gene": _dictionary(np.repeat(np.arange(n_gene), n_other), labels["gene"]),
            other: _dictionary(np.tile(np.arange(n_other), n_gene), labels[other]),
            **{c: pa.array(np.transpose(var.columns[c], order).reshape(-1)) for c in MATRIX_COLUMNS},
        }
    )
    pq.write_table(table, path, compression="zstd", write_page_checksum=True, use_dictionary=["gene", other],
                   row_group_size=1 << 22)


def worst_elements(variables: Sequence[VariableStats], labels: dict[str, list[str]], k: int = WORST_K) -> dict[str, Any]:
    """The k elements with the highest R-hat and the lowest bulk / tail ESS over every variable."""

    def describe(var: VariableStats, flat_index: int, value: float) -> dict[str, Any]:
        where = np.unravel_index(flat_index, var.shape) if var.shape else ()
        coords = {d: labels[d][int(i)] for d, i in zip(var.dims, where, strict=True)}
        return {"variable": var.name, "coords": coords, "value": float(value)}

    out: dict[str, Any] = {}
    for column, largest in (("r_hat", True), ("ess_bulk", False), ("ess_tail", False)):
        candidates: list[tuple[float, dict[str, Any]]] = []
        for var in variables:
            values = var.flat(column)
            finite = np.flatnonzero(np.isfinite(values))
            if finite.size == 0:
                continue
            keyed = -values[finite] if largest else values[finite]
            take = finite[np.argsort(keyed, kind="stable")[:k]]
            candidates += [(float(-values[i] if largest else values[i]), describe(var, int(i), values[i])) for i in take]
        candidates.sort(key=lambda item: item[0])
        out[column] = [c[1] for c in candidates[:k]]
    return out


def headline(variables: Sequence[VariableStats]) -> dict[str, float | None]:
    """Worst R-hat and smallest ESS over every element (None when undefined, e.g. one chain)."""

    def reduce(column: str, fn: Any) -> float | None:
        vals = [fn(v.flat(column)) for v in variables if np.isfinite(v.flat(column)).any()]
        return float(fn(np.array(vals))) if vals else None

    return {
        "max_r_hat": reduce("r_hat", np.nanmax),
        "min_ess_bulk": reduce("ess_bulk", np.nanmin),
        "min_ess_tail": reduce("ess_tail", np.nanmin),
        "hdi_prob": HDI_PROB,
        "p_below_threshold": P_BELOW_THRESHOLD,
    }
