"""A stored fit's cell lines: their names and annotations, and the labels every page shows them by.

A fit keeps its cell lines' lineage, name and annotations (the ``cell_line_annotations`` group written
by the fitting engine from the screen table, ``speclet_core.data.cell_lines``). Fits stored before
that group existed, or of tables without names, fall back to the bare DepMap id.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from model_store import StoredFit
from speclet_core.data.cell_lines import (
    CELL_LINE_GROUP,
    grouping_columns,
    table_from_dataset,
)
from speclet_core.data.cell_lines import (
    cell_line_labels as table_labels,
)


def fit_cell_line_table(fit: StoredFit) -> pd.DataFrame:
    """One row per cell line of the fit (index the DepMap id, in the fit's order): lineage and annotations.

    Empty of columns when the fit stored none (then every label is the bare id).
    """
    cells = [str(c) for c in fit.manifest.cell_lines]
    if fit.manifest.has_group(CELL_LINE_GROUP):
        table = table_from_dataset(fit.dataset(CELL_LINE_GROUP))
        if not cells:
            return table
        return table.reindex(pd.Index(cells, name=table.index.name)).astype(object).where(lambda t: t.notna(), None)
    return pd.DataFrame(index=pd.Index(cells, name="depmap_id"))


def cell_line_labels(fit: StoredFit) -> dict[str, str]:
    """DepMap id → ``"NAME (ACH-…)"`` for every cell line of the fit; the bare id where no name is known."""
    return table_labels(fit_cell_line_table(fit))


def annotation_columns(fit: StoredFit) -> dict[str, str]:
    """Columns the fit's cell lines can be coloured or grouped by (lineage, subtype, site, sex), with labels."""
    return grouping_columns(fit_cell_line_table(fit))


def relabel_rows(rows: pd.DataFrame, labels: Mapping[str, str], *, column: str = "label",
                 sort_by_label: bool = False) -> pd.DataFrame:
    """``rows`` with the cell-line ids in ``column`` shown by their labels, the ids kept in ``depmap_id``.

    Ids without a label stay as they are. With ``sort_by_label`` the ``order`` column (forest rows) follows
    the labels, so sorting "by name" sorts by the names shown. Attrs are kept.
    """
    out = rows.copy()
    ids = [str(v) for v in out[column]]
    out[column] = [labels.get(i, i) for i in ids]
    if "depmap_id" not in out.columns:
        out.insert(list(out.columns).index(column) + 1, "depmap_id", ids)
    if sort_by_label and "order" in out.columns:
        out = out.sort_values(column, kind="stable", ignore_index=True)
        out["order"] = range(len(out))
    out.attrs.update(rows.attrs)
    return out
