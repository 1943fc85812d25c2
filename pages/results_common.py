"""Helpers shared by the result pages (forest, heatmap, rankings, covariates, checks, compare).

Caches live here, beside ``pages/common.py``: ``st.cache_data`` for the small tables the pages
chart (keyed by fit id and options; the open ``StoredFit`` is passed as an unhashed ``_fit``),
``st.cache_resource`` for large read-only arrays (heatmap matrices, a fit's readings and
predictions), which would otherwise be copied on every rerun.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from model_store import StoredFit
from pages import common
from speclet_core.analysis import ranking, results
from speclet_core.errors import SpecletError

# --------------------------------------------------------------------------- cached reads of one fit


@st.cache_resource(max_entries=8, show_spinner=False)
def other_fit(fit_id: str) -> StoredFit:
    """Another stored fit (for comparisons), kept open like the open fit."""
    return common.get_store().get(fit_id)


def get_fit(fit_id: str, current: StoredFit) -> StoredFit:
    return current if fit_id == current.fit_id else other_fit(fit_id)


@st.cache_data(max_entries=16, show_spinner=False)
def gene_summary(fit_id: str, _fit: StoredFit) -> pd.DataFrame:
    return _fit.gene_summary()


@st.cache_resource(max_entries=4, show_spinner="Reading the posterior matrices…")
def matrices(fit_id: str, _fit: StoredFit, kind: str) -> dict[str, pd.DataFrame]:
    """Every statistic of a gene × cell-line / gene × lineage matrix (read-only: shared between sessions)."""
    return {s: _fit.matrix(kind, s) for s in ("mean", "sd", "hdi_5.5%", "hdi_94.5%", "p_below")}


@st.cache_data(max_entries=16, show_spinner="Ordering the heatmap…")
def heatmap(fit_id: str, _fit: StoredFit, kind: str, genes: tuple[str, ...], stat: str, order: str
            ) -> results.HeatmapView:
    mapping = lineage_of(fit_id, _fit) if kind == "gene_cell_line" else None
    return results.heatmap_view(matrices(fit_id, _fit, kind), genes, stat=stat, order=order, column_lineage=mapping)


@st.cache_data(max_entries=8, show_spinner=False)
def truth(data_path: str | None) -> pd.DataFrame | None:
    return results.load_truth(data_path)


@st.cache_resource(max_entries=2, show_spinner="Reloading the fit's readings from its screen table…")
def readings(fit_id: str, _fit: StoredFit) -> pd.DataFrame:
    """The fit's readings with labels and covariates (read-only): stored with the fit, else reloaded from its
    screen table; ``AnalysisError`` when neither is available."""
    observed = _fit.dataset("observed_data")["lfc"].to_numpy()
    if "constant_data" in (_fit.manifest.get("groups") or {}):
        post = _fit.dataset("posterior")
        coords = {d: [str(x) for x in post[d].values] for d in results.READING_LABELS if d in post.coords}
        table = results.readings_from_constant_data(_fit.dataset("constant_data"), observed, coords)
        if table is not None:
            return table
    return results.load_readings(_fit.manifest.get("request") or {}, n_readings=observed.size, observed=observed)


@st.cache_data(max_entries=16, show_spinner=False)
def lineage_of(fit_id: str, _fit: StoredFit) -> dict[str, str]:
    """Cell line → lineage: from the posterior's coordinate, else from the screen table (else empty)."""
    mapping = results.cell_line_lineages(_fit.dataset("posterior"))
    cells = _fit.manifest.get("cell_lines") or []
    if not mapping and cells:
        try:
            mapping = results.cell_line_lineages_from_table((_fit.manifest.get("request") or {}).get("data_path"), cells)
        except SpecletError:
            mapping = {}
    if not mapping and cells:  # the table is gone: the labels stored with the fit (slower for huge fits)
        table, _ = try_readings(_fit)
        mapping = results.cell_line_lineages(None, table)
    return mapping


@st.cache_data(max_entries=32, show_spinner="Computing intervals…")
def forest(fit_id: str, _fit: StoredFit, var: str, along: str, genes: tuple[str, ...], inner: float, outer: float,
           sort: str) -> pd.DataFrame:
    """Forest rows of ``var`` for ``genes`` (along gene), or of one gene along lineage / cell line."""
    if along == "gene":
        draws = _fit.draws(var, gene=list(genes))
        mapping = None
    else:
        draws = _fit.draws(var, gene=genes[0])
        mapping = lineage_of(fit_id, _fit) if along == "cell_line" else None
    return results.forest_rows(draws, along, inner=inner, outer=outer, sort=sort, lineage_of=mapping)


@st.cache_data(max_entries=16, show_spinner="Ranking genes in every posterior draw…")
def ranking_table(fit_id: str, _fit: StoredFit, lineage: str | None, top_k: int, threshold: float,
                  hdi_prob: float) -> pd.DataFrame:
    var = roles(_fit)["gene_lineage_effect"] if lineage else roles(_fit)["gene_effect"]
    return ranking.rank_genes(_fit.draws(var, load=False), lineage=lineage, top_k=top_k, threshold=threshold,
                              hdi_prob=hdi_prob)


@st.cache_data(max_entries=16, show_spinner="Contrasting lineages…")
def contrast_table(fit_id: str, _fit: StoredFit, lineage: str, versus: str | None, top_k: int, threshold: float,
                   hdi_prob: float) -> pd.DataFrame:
    draws = _fit.draws(roles(_fit)["gene_lineage_effect"], load=False)
    return ranking.contrast_lineage(draws, lineage, versus=versus, top_k=top_k, threshold=threshold, hdi_prob=hdi_prob)


@st.cache_data(max_entries=16, show_spinner=False)
def pairwise(fit_id: str, _fit: StoredFit, genes: tuple[str, ...], lineage: str | None,
             hdi_prob: float) -> ranking.PairwiseComparison:
    var = roles(_fit)["gene_lineage_effect"] if lineage else roles(_fit)["gene_effect"]
    return ranking.compare_pairs(_fit.draws(var, gene=list(genes)), list(genes), lineage=lineage, hdi_prob=hdi_prob)


@st.cache_resource(max_entries=2, show_spinner="Reading posterior predictions…")
def predictions(fit_id: str, _fit: StoredFit) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(observed, predicted (sample, reading), prior or None) as float32, thinned to ``PPC_CACHE_VALUES``."""
    groups = _fit.manifest.get("groups") or {}
    observed = np.asarray(_fit.dataset("observed_data")["lfc"].values, dtype=np.float32).ravel()

    def thinned(group: str) -> np.ndarray | None:
        if "lfc" not in groups.get(group, {}):
            return None
        da = _fit.dataset(group)["lfc"]
        n_chain, n_draw = da.sizes["chain"], da.sizes["draw"]
        chains = max(1, min(n_chain, PPC_CACHE_VALUES // max(observed.size, 1)))
        per_chain = max(1, min(n_draw, PPC_CACHE_VALUES // max(observed.size * chains, 1)))
        da = da.isel(chain=slice(0, chains), draw=np.unique(np.linspace(0, n_draw - 1, per_chain).round().astype(int)))
        return np.asarray(da.transpose("chain", "draw", "reading").values, dtype=np.float32).reshape(-1, observed.size)

    return observed, thinned("posterior_predictive"), thinned("prior_predictive")


@st.cache_data(max_entries=8, show_spinner="Comparing observed and predicted readings…")
def ppc_overall(fit_id: str, _fit: StoredFit) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(histogram, statistics) over every reading (every k-th beyond ``results.PPC_MAX_VALUES`` values)."""
    observed, predicted, prior = predictions(fit_id, _fit)
    step = results.reading_stride(predicted.shape[0], observed.size)
    hist = results.ppc_histogram(observed[::step], predicted[:, ::step],
                                 prior=None if prior is None else prior[:, ::step])
    hist.attrs["stride"] = step
    return hist, results.ppc_statistics(observed[::step], predicted[:, ::step])


@st.cache_data(max_entries=16, show_spinner="Comparing observed and predicted readings…")
def ppc_groups(fit_id: str, _fit: StoredFit, by: str, chosen: tuple[str, ...]) -> pd.DataFrame:
    observed, predicted, _ = predictions(fit_id, _fit)
    table = readings(fit_id, _fit)
    return results.ppc_by_group(observed, predicted, table[by], list(chosen))


@st.cache_data(max_entries=16, show_spinner="Drawing posterior regression lines…")
def covariate_view(fit_id: str, _fit: StoredFit, slope: str, genes: tuple[str, ...]
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """(points, band, lines, x-axis title) of LFC against the covariate of ``slope`` for ``genes``."""
    info = results.COVARIATES[slope]
    table = readings(fit_id, _fit)
    scale = results.covariate_scale(table, info)
    points = results.covariate_points(table, info, genes)
    x_range = {str(g): (float(p["x"].min()), float(p["x"].max())) for g, p in points.groupby("gene", observed=True)}
    band, lines = results.regression_lines(_fit.draws(roles(_fit)["gene_effect"], gene=list(genes)),
                                           _fit.draws(slope, gene=list(genes)), scale, x_range, info)
    return points, band, lines, results.covariate_title(table, info)


@st.cache_data(max_entries=8, show_spinner="Computing leave-one-out scores (PSIS-LOO)…")
def loo(fit_ids: tuple[str, ...], _fits: tuple[StoredFit, ...]) -> pd.DataFrame:
    return results.loo_table({results.fit_label(f.manifest): f.open_idata() for f in _fits})


# Widgets and page furniture live in results_panels (no caching there); re-exported for the pages' ``rc.`` calls.
from pages.results_panels import (  # noqa: E402
    APPROXIMATE_NOTE,
    AUTO_READINGS_MAX,
    PPC_CACHE_VALUES,
    fit_picker,
    gene_choice,
    n_readings,
    open_results_page,
    readings_wanted,
    roles,
    stop_with,
    try_readings,
)

__all__ = [
    "APPROXIMATE_NOTE", "AUTO_READINGS_MAX", "PPC_CACHE_VALUES", "fit_picker", "gene_choice", "n_readings",
    "open_results_page", "readings_wanted", "roles", "stop_with", "try_readings",
]
