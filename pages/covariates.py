"""Covariates: LFC against RNA expression or copy number per gene, with posterior regression lines."""

import streamlit as st

from model_store.stats import HDI_PROB
from pages import adapter, presentation, widgets
from speclet_core import charts
from speclet_core.analysis import covariates, forest, recovery
from speclet_core.analysis.escaping import escape_markdown

fit = widgets.open_results_page("Covariates")
roles = adapter.roles(fit)
slopes = [s for s in roles.get("covariate_slopes") or [] if s in covariates.COVARIATES]
if not slopes:
    adapter.stop_with(f"Model **{escape_markdown(fit.manifest.model)}** has no RNA-expression or copy-number slope. Fit gene_rna "
                 "(expression) or gene_cn (copy number) on the Fit page to see how the knockout effect depends on them.")
slope = slopes[0]
if len(slopes) > 1:
    slope = st.segmented_control("Covariate", slopes, default=slopes[0], key="cov_slope", bind="query-params") or slope
info = covariates.COVARIATES[slope]
explain = {
    "rna_slope": "A negative slope means the knockout hurts more in cell lines that express the gene more, which is "
                 "what a real dependency on the gene's product looks like.",
    "cn_slope": "A negative slope means cell lines with more copies of the gene lose more of it: Cas9 cutting "
                "amplified DNA kills cells whatever the gene does, so this flags a copy-number artefact.",
}[slope]
st.caption(f"The model adds a gene-specific slope on {info.model_scale}. {explain}")

st.subheader(f"Slopes per gene ({slope})")
summary = adapter.gene_summary(fit.fit_id, fit)
genes = widgets.gene_choice(summary, key="cov", default_n=20)
rows = adapter.guarded(adapter.forest, fit.fit_id, fit, slope, "gene", tuple(genes), forest.INNER_PROB,
                      HDI_PROB, "mean")
truth = recovery.truth_for_fit(adapter.truth(fit.manifest.request.data_path), fit.manifest, slope, "gene")
if not truth.empty:
    rows = forest.add_truth(rows, truth)
presentation.show_chart(charts.forest_chart(rows, label_title="gene", value_title=f"{slope} (per unit of {info.model_scale})",
                                           title=f"{slope}: posterior mean, {forest.INNER_PROB:.0%} and {HDI_PROB:.0%} intervals"),
                       rows, f"{slope}_forest", key="cov-forest", fit=fit)
if "truth" in rows.columns:
    widgets.recovery_note(forest.recovery(rows), forest.INNER_PROB, HDI_PROB, "genes",
                          lead="Black diamonds: the true slopes (known only for synthetic screens).")

st.subheader(f"LFC against {info.title}")
if not widgets.readings_wanted(fit, "Draw the readings and regression lines", key="cov_scatter"):
    st.stop()
readings, why = adapter.try_readings(fit)
if readings is None:
    adapter.stop_with(f"The scatter plots need the fit's readings: {escape_markdown(why)}.")
by_strength = summary.sort_values("mean")["gene"].tolist()
chosen = st.multiselect("Genes (up to 6)", by_strength, default=by_strength[:3], key="cov_genes", bind="query-params",
                        max_selections=6)
if not chosen:
    adapter.stop_with("Pick at least one gene.")
points, band, lines, x_title = adapter.guarded(adapter.covariate_view, fit.fit_id, fit, slope, tuple(chosen))
chart = charts.covariate_chart(points, band, lines, x_title=x_title, genes=chosen,
                               title=f"Observed LFC and posterior regression lines against {x_title}")
presentation.show_chart(chart, points, f"lfc_vs_{info.column}", key="cov-scatter", fit=fit)
st.caption("Dots: observed readings, coloured by lineage. Blue line: the posterior mean of gene effect + slope × "
           "covariate for an average cell line; blue band: its " f"{HDI_PROB:.0%} interval; grey lines: single posterior draws. "
           "The line flattens where the model clips extreme covariate values.")
