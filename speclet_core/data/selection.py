"""Choosing genes, lineages and cell lines of a screen into a ``ScreenSelection`` for a model.

A selection has stable, sorted categories (so ``.cat.codes`` are the model's indices) and a content
fingerprint, the data part of every cache key. Labels match by the one rule of ``speclet_core.labels``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from speclet_core.data.columns import NAME_COLUMNS
from speclet_core.data.fingerprint import fingerprint_frame, sort_canonical
from speclet_core.data.screen import Screen
from speclet_core.errors import SelectionError
from speclet_core.labels import ALL, describe_unknown, match_labels, parse_labels


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

    def _parent_index(self, child: str, parent: str) -> np.ndarray:
        """For each category of ``child``, the code of the one ``parent`` it belongs to."""
        pairs = self.data[[child, parent]].drop_duplicates(child)
        out = np.empty(len(self.data[child].cat.categories), dtype=np.int64)
        out[pairs[child].cat.codes.to_numpy()] = pairs[parent].cat.codes.to_numpy()
        return out

    @cached_property
    def sgrna_gene(self) -> np.ndarray:
        """For each sgRNA (in ``sgrnas`` order), the index of its gene."""
        return self._parent_index("sgrna", "hugo_symbol")

    @cached_property
    def cell_line_lineage(self) -> np.ndarray:
        """For each cell line (in ``cell_lines`` order), the index of its lineage."""
        return self._parent_index("depmap_id", "lineage")

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
    """Requested labels as the screen spells them; unknown ones raise ``SelectionError`` with close matches."""
    matched, unknown = match_labels(requested, available)
    if unknown:
        raise SelectionError(
            f"{describe_unknown(unknown, available, what, 'the screen')}; "
            f"the screen has {len(available)} {what}s"
        )
    return matched


def select_screen(
    screen: Screen,
    genes: str | Sequence[str] | None = None,
    lineages: str | Sequence[str] | None = None,
    cell_lines: str | Sequence[str] | None = None,
) -> ScreenSelection:
    """Select genes and lineages (``None``, ``"all"``, ``"*"`` or empty: everything), optionally cell lines.

    Unknown labels raise ``SelectionError`` with close matches; labels match case-insensitively.
    """
    d = screen.data
    mask = np.ones(len(d), dtype=bool)
    requested: dict[str, Any] = {}
    for key, column, value, available, what in (
        ("genes", "hugo_symbol", genes, screen.genes, "gene"),
        ("lineages", "lineage", lineages, screen.lineages, "lineage"),
        ("cell_lines", "depmap_id", cell_lines, screen.cell_lines, "cell line"),
    ):
        wanted = parse_labels(value)
        if wanted == []:
            raise SelectionError(f"no {what}s selected; pick at least one {what} (or all)")
        requested[key] = sorted(set(wanted)) if wanted is not None else ALL
        if wanted is not None:
            mask &= d[column].isin(select_labels(wanted, available, what)).to_numpy()
    sub = d.loc[mask].copy()
    if sub.empty:
        raise SelectionError(
            "the selection has no readings (the chosen genes were not screened in the chosen "
            "lineages / cell lines); widen the selection"
        )
    for col in NAME_COLUMNS:
        sub[col] = pd.Categorical(sub[col].astype(str), categories=sorted(sub[col].astype(str).unique()))
    sub = sort_canonical(sub).reset_index(drop=True)
    return ScreenSelection(
        data=sub,
        genes=tuple(sub["hugo_symbol"].cat.categories),
        sgrnas=tuple(sub["sgrna"].cat.categories),
        cell_lines=tuple(sub["depmap_id"].cat.categories),
        lineages=tuple(sub["lineage"].cat.categories),
        fingerprint=fingerprint_frame(sub),
        requested=requested,
    )
