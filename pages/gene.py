"""Gene: everything the open fit says about one gene (overall, per lineage, per cell line, guides, rank, references)."""

import streamlit as st

from model_store.stats import HDI_PROB
from pages import adapter, presentation, widgets
from speclet_core import charts
from speclet_core.analysis import forest, gene, ranking
from speclet_core.analysis.escaping import escape_markdown
from speclet_core.analysis.glossary import GLOSSARY
from speclet_core.labels import describe_unknown, match_labels

fit = widgets.open_results_page("Gene")
summary = adapter.gene_summary(fit.fit_id, fit)
by_strength = summary.sort_values("mean")["gene"].astype(str).tolist()
asked = st.query_params.get("gene")
if asked and asked not in by_strength:  # ?gene=kras opens KRAS (the one label matcher); an unknown name says so
    matched, _ = match_labels([asked], by_strength)
    if matched:
        st.session_state["gene"] = matched[0]
    else:
        st.warning(escape_markdown(describe_unknown([asked], by_strength, "gene", "this fit")) + "; showing "
                   f"**{escape_markdown(by_strength[0])}**, the strongest dependency, instead.")
        del st.query_params["gene"]
fields = ranking.RankingOptions.model_fields
c1, c2, c3 = st.columns([2, 1, 1])
picked = c1.selectbox(f"Gene ({len(by_strength):,} in this fit, strongest dependency first; type to search)",
                      by_strength, key="gene", bind="query-params")
threshold = float(c2.number_input("Dependency threshold (LFC)", -5.0, 0.0, ranking.DEFAULT_THRESHOLD, step=0.1,
                                  key="gene_threshold", bind="query-params", help=fields["threshold"].description))
hdi = float(c3.select_slider("Interval", [0.5, 0.8, HDI_PROB, 0.95], value=HDI_PROB, key="gene_hdi",
                             format_func="{:.0%}".format, bind="query-params", help=fields["hdi_prob"].description))
view = adapter.guarded(adapter.gene_view, fit.fit_id, fit, picked, threshold, hdi)
name = escape_markdown(view.gene)

st.subheader(f"{name}: overall")
m1, m2, m3 = st.columns(3)
m1.metric("Mean effect (LFC)", f"{view.overall['mean']:+.2f}",
          help=f"{hdi:.0%} HDI {view.overall['hdi_low']:+.2f} to {view.overall['hdi_high']:+.2f}")
m2.metric(f"P(effect < {threshold:g})", f"{view.overall['p_dependency']:.2f}", help=GLOSSARY["P(dependency)"])
if view.rank:
    m3.metric("Expected rank", f"{view.rank['expected_rank']:.1f} of {len(by_strength):,}",
              help=f"{hdi:.0%} rank interval {view.rank['rank_low']:.0f} to {view.rank['rank_high']:.0f}")
widgets.bullet_list([view.overall_sentence, view.rank_sentence])

st.subheader("Compared with reference genes")
widgets.bullet_list([view.reference_sentence])
if view.reference_check is not None:
    show = st.success if view.reference_check.passed else st.warning
    show(escape_markdown(view.reference_check_sentence), icon=":material/rule:")
st.caption("Reference genes: common-essential (CEGv2) and non-essential (NEGv1) genes of Hart et al., as BAGEL uses "
           "them; see the glossary.")

st.subheader("Per lineage")
if view.lineages is None:
    st.info(escape_markdown(view.lineage_sentence))
else:
    widgets.bullet_list([view.lineage_sentence])
    presentation.show_chart(
        charts.forest_chart(view.lineages, label_title="lineage", title=f"{view.gene} in each lineage"),
        view.lineages, f"gene_{view.gene}_lineages", key="gene-lineages", fit=fit)

st.subheader("Per cell line")
if view.cell_lines is None:
    st.info(escape_markdown(view.cell_line_sentence))
else:
    rows = view.cell_lines
    widgets.bullet_list([view.cell_line_sentence])
    shown = rows
    if len(rows) > forest.MAX_FOREST_ROWS:
        st.caption(f"{len(rows):,} cell lines: the chart shows the {forest.MAX_FOREST_ROWS} strongest; the table and "
                   "the CSV hold all of them.")
        shown = forest.subset_rows(rows, forest.pick_labels(rows, "label", "strongest", forest.MAX_FOREST_ROWS))
    presentation.show_chart(
        charts.forest_chart(shown, label_title="cell line (strongest first)",
                            title=f"{view.gene} in each cell line"),
        rows, f"gene_{view.gene}_cell_lines", key="gene-cells", fit=fit)
    st.caption(f"Dot: posterior mean; thick line: {rows.attrs['inner']:.0%} interval; thin line: {hdi:.0%} interval. "
               "Left of the dashed zero line: the cell line depends on the gene.")

st.subheader("Guides (sgRNAs)")
if view.guides is None:
    st.info(escape_markdown(view.guide_sentences[0]))
else:
    widgets.bullet_list(view.guide_sentences)
    labels = {"sgrna": "guide", "disagrees": "disagrees", "mean_deviation": "deviation (LFC)",
              "hdi_low": f"{hdi:.0%} low", "hdi_high": f"{hdi:.0%} high", "p_weaker": "P(weakens the gene)",
              "p_large": f"P(|deviation| > {gene.LARGE_GUIDE_DEVIATION:g})", "guide_effect": "own effect"}
    st.dataframe(view.guides[list(labels)], hide_index=True, width="stretch", column_config={
        c: (st.column_config.ProgressColumn(t, min_value=0.0, max_value=1.0, format="%.2f") if c.startswith("p_")
            else st.column_config.CheckboxColumn(t) if c == "disagrees"
            else st.column_config.NumberColumn(t, format="%+.2f") if c != "sgrna" else t)
        for c, t in labels.items()})
    st.caption("A guide's deviation is its difference from the gene's effect (the deviations of one gene's guides sum "
               "to 0). It disagrees when its interval excludes 0 on the side that weakens the gene's effect.")
