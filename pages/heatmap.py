"""Heatmap: gene × cell-line (or gene × lineage) posterior, cell lines grouped by lineage."""

import streamlit as st

from model_store.stats import HDI_PROB
from model_store.summaries import P_BELOW_THRESHOLD  # the one dependency threshold (ranking.DEFAULT_THRESHOLD)
from pages import adapter, presentation, widgets
from speclet_core import charts
from speclet_core.analysis import cell_lines, heatmap
from speclet_core.analysis.escaping import escape_markdown

THRESHOLD = charts.threshold_text(P_BELOW_THRESHOLD)  # typeset minus, as in the chart titles
fit = widgets.open_results_page("Heatmap")
roles = adapter.roles(fit)
kinds = {}
if roles.get("gene_cell_line_effect"):
    kinds["gene_cell_line"] = "Gene × cell line"
if roles.get("gene_lineage_effect"):
    kinds["gene_lineage"] = "Gene × lineage"
if not kinds:
    adapter.stop_with(f"Model **{escape_markdown(fit.manifest.model)}** estimates one effect per gene only, so there is no gene × "
                 "cell-line matrix to draw. Fit a model with lineage or cell-line effects (e.g. gene_lineage) on the "
                 "Fit page, or look at the Forest plot.")

kind = st.segmented_control("Matrix", list(kinds), format_func=kinds.get, default=next(iter(kinds)),
                            key="heat_kind", bind="query-params") or next(iter(kinds))
c1, c2 = st.columns(2)
stat = c1.radio("Colour shows", [s.value for s in heatmap.HeatStat], horizontal=True, key="heat_stat",
                bind="query-params",
                format_func={"mean": "posterior mean", "sd": "uncertainty (sd)",
                             "p_below": f"P(effect < {THRESHOLD})"}.get)
order = c2.radio("Order genes by", [o.value for o in heatmap.GeneOrder], horizontal=True, key="heat_order",
                 bind="query-params",
                 format_func={"cluster": "similar profiles (clustering)", "mean": "mean (strongest first)",
                              "name": "name"}.get)
summary = adapter.gene_summary(fit.fit_id, fit)
n_columns = len(fit.manifest.cell_lines if kind == "gene_cell_line" else fit.manifest.lineages)
genes = widgets.gene_choice(summary, key="heat", default_n=heatmap.default_heatmap_genes(n_columns),
                            max_n=heatmap.MAX_HEATMAP_GENES)
view = adapter.guarded(adapter.heatmap, fit.fit_id, fit, kind, tuple(genes), stat, order)
if kind == "gene_cell_line":
    view = heatmap.with_column_labels(view, cell_lines.cell_line_labels(fit))  # names where the screen gave them

captions = {
    "mean": "Red: knocking the gene out lowers fitness in that cell line (a dependency); blue: cells grow; white: "
            "no effect. Faded cells are uncertain: their " f"{HDI_PROB:.0%} interval includes 0.",
    "sd": "Darker: the posterior is wider, i.e. the data say less about that cell (few or noisy readings).",
    "p_below": f"The probability, under the model, that the effect is below {THRESHOLD} (a clear loss of fitness): dark red "
               "means almost certainly a dependency.",
}
hover = "gene, cell line, its lineage" if kind == "gene_cell_line" else "gene, lineage"
st.caption(f"{captions[stat]} Hover a cell for {hover}, the posterior mean and its {HDI_PROB:.0%} interval.")
if kind == "gene_cell_line":
    st.caption("Cell lines are grouped by lineage (coloured band on top) and, within a lineage, ordered from the "
               "strongest dependency to the weakest over the genes shown.")
    if set(view.bands["lineage"]) == {"unknown"}:
        st.warning("The cell lines' lineages are not stored with this fit and its screen table is not available, "
                   "so the lineage bands are missing.")
if view.per_column > 1:
    st.info(f"{view.n_columns_total:,} cell lines × {len(view.genes):,} genes is more than a browser draws "
            f"comfortably, so each column averages up to {view.per_column} neighbouring cell lines of the same "
            "lineage (hover to see which). Show fewer genes to see single cell lines.", icon=":material/info:")
column_title = "cell line" if kind == "gene_cell_line" else "lineage"
chart = charts.lineage_heatmap(view, column_title=column_title, title=f"{kinds[kind]}: {charts.HEAT_STAT_TITLES[stat]}")
presentation.show_chart(chart, view.cells, f"heatmap_{kind}_{stat}", key="heatmap", fit=fit)
