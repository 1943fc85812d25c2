"""Biomarker: which genes are stronger dependencies in marked cell lines (e.g. KRAS-mutant) than in unmarked ones."""

import streamlit as st

from model_store.stats import HDI_PROB
from pages import adapter, widgets
from speclet_core import charts
from speclet_core.analysis import biomarker, cell_lines, ranking, sentences
from speclet_core.analysis.escaping import escape_markdown
from speclet_core.labels import join_labels

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
labels = {
    "gene": "gene", "mean_diff": "difference (marked − unmarked)", "hdi_low": f"{hdi:.0%} low",
    "hdi_high": f"{hdi:.0%} high", "p_stronger_when_marked": "P(stronger dependency when marked)",
    "p_dependency_marked": f"P(effect < {threshold:g} when marked)", "mean_marked": "effect when marked",
    "mean_unmarked": "effect when unmarked", "lfsr": "lfsr of the difference",
}
st.dataframe(
    table[list(labels)], hide_index=True, width="stretch", height=360,
    column_config={c: (st.column_config.ProgressColumn(t, min_value=0.0, max_value=1.0, format="%.2f")
                       if c.startswith("p_") else st.column_config.NumberColumn(t, format="%.2f") if c != "gene" else t)
                   for c, t in labels.items()},
)
widgets.csv_download(table, "biomarker", key="csv-biomarker", what="every gene", fit=fit)
