"""Biomarker: which genes are stronger dependencies in marked cell lines (e.g. KRAS-mutant) than in unmarked ones."""

import streamlit as st

from model_store.stats import HDI_PROB
from pages import adapter, widgets
from speclet_core import charts
from speclet_core.analysis import biomarker, cell_lines, ranking, sentences
from speclet_core.analysis.escaping import escape_markdown
from speclet_core.labels import interval_text, join_labels

fit = widgets.open_results_page("Biomarker-dependent dependencies")
posterior = adapter.biomarker_posterior(fit.fit_id, fit)
if not all(v in posterior for v in biomarker.BIOMARKER_VARIABLES):
    st.info(f"Model **{escape_markdown(fit.manifest.model)}** has no biomarker term, so it cannot say which genes are "
            "stronger dependencies in marked cell lines. Fit gene_biomarker with a marker column, e.g. "
            "`fit --model gene_biomarker --biomarker is_mutated:KRAS`.")
    st.stop()
marker = str(fit.manifest.request.options.get("biomarker", "the marker"))
marked, unmarked = biomarker.marked_cell_lines(posterior)
names = cell_lines.cell_line_labels(fit)  # "HT-29 (ACH-000552)" where the screen named the cell line
marked, unmarked = [names.get(c, c) for c in marked], [names.get(c, c) for c in unmarked]
fields = ranking.RankingOptions.model_fields
st.caption(
    f"Marker **{escape_markdown(marker)}**: {len(marked)} marked cell lines ({escape_markdown(join_labels(marked, 6))}), "
    f"{len(unmarked)} unmarked ({escape_markdown(join_labels(unmarked, 6))}). The difference is marked minus unmarked "
    "cell lines of the same lineage (lineage differences are kept apart), so a negative difference means the knockout "
    "hurts more where the marker is present."
)
c1, c2, c3 = st.columns(3)
threshold = float(c1.number_input("Dependency threshold (LFC)", -5.0, 0.0, ranking.DEFAULT_THRESHOLD, step=0.1,
                                  key="bm_threshold", bind="query-params", help=fields["threshold"].description))
hdi = float(c2.select_slider("Interval", [0.5, 0.8, HDI_PROB, 0.95], value=HDI_PROB, key="bm_hdi",
                             format_func="{:.0%}".format, bind="query-params", help=fields["hdi_prob"].description))
min_p = float(c3.select_slider("List genes with P(stronger dependency when marked) ≥", [0.5, 0.8, 0.9, 0.95, 0.99],
                               value=0.9, key="bm_min_p", bind="query-params"))
table = adapter.guarded(biomarker.contrast_biomarker, posterior, biomarker=marker, threshold=threshold, hdi_prob=hdi)
listed = adapter.guarded(biomarker.biomarker_list, table, min_p)

st.subheader("Stronger dependencies when marked")
st.caption(f"A gene is a stronger dependency when marked when it is a dependency in marked cell lines (effect below "
           f"{threshold:g}) **and** its effect there is lower than in unmarked cell lines of the same lineage. "
           "P(stronger dependency when marked) is the share of posterior draws in which both hold at once.")
widgets.bullet_list(biomarker.biomarker_sentences(listed) or biomarker.biomarker_sentences(table, limit=3))
if "mu_marker" in posterior:
    st.caption(escape_markdown(biomarker.describe_common_shift(posterior["mu_marker"], marker, hdi_prob=hdi)))
st.caption(escape_markdown(sentences.describe_list_error(
    len(listed), listed.attrs["expected_fdp"], f"stronger dependencies when marked ({marker})")))

shown = table.head(30)
rows = adapter.guarded(biomarker.biomarker_forest_rows, posterior, shown["gene"].tolist(), outer=hdi)
chart = charts.forest_chart(rows, label_title="gene (highest P first)", value_title="marked minus unmarked (LFC)",
                            title=f"Marker difference of the top {len(shown)} genes by P(stronger dependency when marked)")
widgets.chart_with_data(chart, table, "biomarker", key="bm-chart", fit=fit)
st.caption(f"Dot: posterior mean difference; thick line: 50% interval; thin line: {hdi:.0%} interval. Left of 0: "
           "lower effect (stronger dependency) in marked cell lines.")
# short headers (the full meaning in each header's tooltip) so the table fits a laptop screen without scrolling
columns = {
    "gene": ("gene", "The gene (highest P(stronger dependency when marked) first)."),
    "p_stronger_when_marked": ("P(stronger when marked)",
                               f"Posterior probability that the gene's effect is lower (a stronger dependency) in cell "
                               f"lines marked by {marker} than in unmarked ones."),
    "mean_diff": ("difference", "Posterior mean of the effect when marked minus the effect when unmarked (LFC)."),
    "interval": (f"{hdi:.0%} interval", f"{hdi:.0%} highest-density interval of the difference."),
    "mean_marked": ("marked", "Posterior mean effect (LFC) in marked cell lines."),
    "mean_unmarked": ("unmarked", "Posterior mean effect (LFC) in unmarked cell lines."),
    "p_dependency_marked": (f"P(< {threshold:g} marked)",
                            f"Posterior probability that the effect in marked cell lines is below {threshold:g} "
                            "(a dependency there)."),
    "lfsr": ("lfsr", "Local false sign rate of the difference: the probability that its sign is wrong."),
}
shown_table = table.assign(interval=[interval_text(lo, hi) for lo, hi in zip(table["hdi_low"], table["hdi_high"], strict=True)])
st.dataframe(
    shown_table[list(columns)], hide_index=True, width="stretch", height="auto",  # at most ten rows, scrolls beyond
    column_config={c: (st.column_config.ProgressColumn(t, help=h, min_value=0.0, max_value=1.0, format="%.2f")
                       if c.startswith("p_") else st.column_config.NumberColumn(t, help=h, format="%+.2f")
                       if c.startswith("mean") else st.column_config.NumberColumn(t, help=h, format="%.2f")
                       if c == "lfsr" else st.column_config.TextColumn(t, help=h))
                   for c, (t, h) in columns.items()},
)
widgets.csv_download(table, "biomarker", key="csv-biomarker", what="every gene", fit=fit)
