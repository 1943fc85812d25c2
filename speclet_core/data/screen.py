"""The one door every screen table comes through: a validated ``Screen`` from a file or a DataFrame.

``load_screen`` reads CSV, TSV, gzip'd CSV/TSV or Parquet (``speclet_core.data.reading``), maps known
column aliases and validates every rule at once (``speclet_core.data.validation``), so a bad file is
reported completely and clearly at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from speclet_core.data.cell_lines import cell_line_table
from speclet_core.data.reading import TableLimits, canonicalise_columns, read_table
from speclet_core.data.validation import validate_screen
from speclet_core.errors import DataValidationError


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

    @cached_property
    def cell_line_table(self) -> pd.DataFrame:
        """One row per cell line: lineage, name and annotations (``speclet_core.data.cell_lines``)."""
        return cell_line_table(self.data)

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


def load_screen(path: str | Path, *, source: str | None = None, limits: TableLimits | None = None) -> Screen:
    """Read and validate a screen table file; raise ``DataValidationError`` listing every problem.

    ``source`` names the file in messages (default: the path); ``limits`` bound what is read (default: the
    ``SPECLET_*`` settings). In the shared server, use ``speclet_core.data.bounded.load_screen_bounded``,
    which does this in a child process with memory and time limits.
    """
    source = source or str(path)
    df = read_table(path, name=source, limits=limits)
    clean, report = validate_screen(df, source)
    if not report.ok:
        raise DataValidationError(source, list(report.problems))
    return Screen(clean, source, report.n_rows_read, report.n_missing_lfc)
