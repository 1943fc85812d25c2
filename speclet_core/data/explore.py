"""Summaries of the raw screen for the Data explorer (small tables, computed server-side)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from speclet_core.data.screen import Screen
from speclet_core.data.selection import select_labels
from speclet_core.errors import SelectionError
from speclet_core.labels import parse_labels


def select_rows(
    screen: Screen,
    genes: Sequence[str] | None = None,
    lineages: Sequence[str] | None = None,
    cell_lines: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rows of the chosen genes / lineages / cell lines (``None``, empty or ``all``: all), for exploring."""
    d = screen.data
    mask = np.ones(len(d), dtype=bool)
    for column, labels, available, what in (
        ("hugo_symbol", genes, screen.genes, "gene"),
        ("lineage", lineages, screen.lineages, "lineage"),
        ("depmap_id", cell_lines, screen.cell_lines, "cell line"),
    ):
        wanted = parse_labels(labels)
        if wanted:  # exploring: nothing chosen shows everything
            mask &= d[column].isin(select_labels(wanted, available, what)).to_numpy()
    sub = d.loc[mask]
    if sub.empty:
        raise SelectionError("the selection has no readings; widen the gene, lineage or cell-line choice")
    return sub


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Categorical label columns as plain strings, so group-bys see only what is present."""
    out = df.copy()
    for col in ("hugo_symbol", "sgrna", "depmap_id", "lineage"):
        if col in out.columns and isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(str)
    return out


def count_cell_lines(df: pd.DataFrame) -> pd.DataFrame:
    """Cell lines per lineage, largest first."""
    d = _plain(df)
    out = d.groupby("lineage")["depmap_id"].nunique().rename("cell_lines").reset_index()
    return out.sort_values(["cell_lines", "lineage"], ascending=[False, True], ignore_index=True)


def count_sgrnas(df: pd.DataFrame) -> pd.DataFrame:
    """sgRNAs and readings per gene."""
    d = _plain(df)
    out = d.groupby("hugo_symbol").agg(sgrnas=("sgrna", "nunique"), readings=("lfc", "size")).reset_index()
    return out.rename(columns={"hugo_symbol": "gene"}).sort_values("gene", ignore_index=True)


def summarise_gene_lineage(df: pd.DataFrame) -> pd.DataFrame:
    """Mean LFC per gene and lineage (the explorer's heatmap), with the number of readings."""
    d = _plain(df)
    out = (
        d.groupby(["hugo_symbol", "lineage"])["lfc"]
        .agg(mean_lfc="mean", sd_lfc="std", readings="size")
        .reset_index()
        .rename(columns={"hugo_symbol": "gene"})
    )
    return out


def summarise_lfc_distribution(df: pd.DataFrame, genes: Sequence[str]) -> pd.DataFrame:
    """Box-plot statistics of LFC per gene and lineage (quantiles, not raw points)."""
    d = _plain(df)
    d = d[d["hugo_symbol"].isin(list(genes))]
    if d.empty:
        raise SelectionError("none of the chosen genes has readings in this selection")
    q = d.groupby(["hugo_symbol", "lineage"])["lfc"].quantile([0.05, 0.25, 0.5, 0.75, 0.95]).unstack()
    q.columns = ["q05", "q25", "median", "q75", "q95"]
    q["readings"] = d.groupby(["hugo_symbol", "lineage"]).size()
    return q.reset_index().rename(columns={"hugo_symbol": "gene"})


def sample_covariate_points(
    df: pd.DataFrame, covariate: str, genes: Sequence[str], max_points: int = 5_000, seed: int = 0
) -> pd.DataFrame:
    """LFC against a covariate for some genes, down-sampled evenly to at most ``max_points`` rows."""
    if covariate not in df.columns:
        raise SelectionError(f"this screen has no '{covariate}' column")
    d = _plain(df)
    d = d.loc[d["hugo_symbol"].isin(list(genes)) & d[covariate].notna(), ["hugo_symbol", "depmap_id", "lineage", covariate, "lfc"]]
    if len(d) > max_points:
        d = d.sample(n=max_points, random_state=np.random.default_rng(seed).integers(2**31))
    return d.rename(columns={"hugo_symbol": "gene", "depmap_id": "cell_line"}).reset_index(drop=True)
