"""Rankings: which genes are the strongest dependencies, how sure we are of their order, lineage-selective ones."""

import streamlit as st

from model_store.stats import HDI_PROB
from pages import adapter, widgets
from speclet_core import charts
from speclet_core.analysis import pairs, ranking, sentences
from speclet_core.analysis.escaping import escape_markdown

ALL = "all lineages"
fit = widgets.open_results_page("Rankings")
roles = adapter.roles(fit)
lineages = list(fit.manifest.lineages)
has_lineage = bool(roles.get("gene_lineage_effect")) and len(lineages) > 0
fields = ranking.RankingOptions.model_fields
st.caption(
    "Genes are ranked by how strongly knocking them out lowers fitness (rank 1 = strongest dependency). The ranking is "
    "done in every posterior draw, so each gene gets a distribution of ranks: its expected rank, a rank interval, "
    "and P(top-k), the share of draws in which it ranks k or better."
)

c1, c2, c3, c4 = st.columns([1, 1, 1, 2])
top_k = int(c1.number_input("k for P(top-k)", 1, 500, ranking.DEFAULT_TOP_K, key="rank_k", bind="query-params",
                            help=fields["top_k"].description))
threshold = float(c2.number_input("Threshold (LFC)", -5.0, 0.0, ranking.DEFAULT_THRESHOLD, step=0.1,
                                  key="rank_threshold", bind="query-params", help=fields["threshold"].description))
hdi = float(c3.select_slider("Interval", [0.5, 0.8, HDI_PROB, 0.95], value=HDI_PROB, key="rank_hdi",
                             format_func="{:.0%}".format, bind="query-params", help=fields["hdi_prob"].description))
scope = None
if has_lineage:
    picked_scope = c4.selectbox("Rank within", [ALL, *lineages], key="rank_scope", bind="query-params",
                                help="All lineages ranks the gene-level effect; a lineage ranks the gene × lineage effect.")
    scope = None if picked_scope == ALL else picked_scope

table = adapter.guarded(adapter.ranking_table, fit.fit_id, fit, scope, top_k, threshold, hdi)
where = f" in {scope}" if scope else ""
st.subheader(f"Ranking{escape_markdown(where)}")
shown = table.head(40)
chart = charts.rank_interval_chart(shown, top_k=top_k, title=f"Rank intervals ({hdi:.0%}) of the top {len(shown)} genes")
widgets.chart_with_data(chart, table, f"ranking{('_' + scope) if scope else ''}", key="rank-chart")
st.caption(f"Dot: expected rank; line: the {hdi:.0%} rank interval. A long line means the data cannot pin down the "
           f"gene's place. Colour: P(top-{top_k}). The CSV holds all {len(table):,} genes.")
st.dataframe(
    table, hide_index=True, width="stretch", height=360,
    column_config={
        "mean": st.column_config.NumberColumn("mean effect", format="%.2f"),
        "sd": st.column_config.NumberColumn(format="%.2f"),
        "hdi_low": st.column_config.NumberColumn(f"{hdi:.0%} low", format="%.2f"),
        "hdi_high": st.column_config.NumberColumn(f"{hdi:.0%} high", format="%.2f"),
        "expected_rank": st.column_config.NumberColumn("expected rank", format="%.1f"),
        "rank_low": st.column_config.NumberColumn("rank low", format="%.0f"),
        "rank_high": st.column_config.NumberColumn("rank high", format="%.0f"),
        "p_top_k": st.column_config.ProgressColumn(f"P(top-{top_k})", min_value=0.0, max_value=1.0, format="%.2f"),
        "p_below_threshold": st.column_config.ProgressColumn(f"P(effect < {threshold:g})", min_value=0.0,
                                                             max_value=1.0, format="%.2f"),
    },
)

st.subheader("Which gene is the stronger dependency?")
by_rank = table["gene"].tolist()
picked = st.multiselect(f"Genes to compare (up to {pairs.MAX_PAIRWISE_SHOWN}; default: the top 8)", by_rank,
                        default=by_rank[: min(8, len(by_rank))], key="rank_pairs", bind="query-params",
                        max_selections=pairs.MAX_PAIRWISE_SHOWN)
if len(picked) >= 2:
    ordered = tuple(g for g in by_rank if g in set(picked))
    comparison = adapter.guarded(adapter.pairwise, fit.fit_id, fit, ordered, scope, hdi)
    cells = pairs.pairwise_cells(comparison)
    widgets.chart_with_data(charts.pairwise_chart(cells, ordered, title=f"P(row gene is a stronger dependency{where})"),
                           cells, "pairwise", key="pairwise")
    st.caption("Each cell: the share of posterior draws in which the row gene's effect is more negative than the "
               "column gene's. Red: the row gene is the stronger dependency; blue: the column gene is; white: a toss-up.")
    widgets.bullet_list(sentences.pairwise_sentences(comparison))
else:
    st.caption("Pick at least two genes.")

st.subheader("Lineage-selective dependencies")
if not has_lineage or len(lineages) < 2:
    st.info(f"Model **{escape_markdown(fit.manifest.model)}** has no gene × lineage effect fitted to several lineages, so it "
            "cannot say which dependencies are lineage-selective. Fit gene_lineage (or the flagship model) to two or "
            "more lineages.")
    st.stop()
c1, c2 = st.columns(2)
lineage = c1.selectbox("Dependencies selective for", lineages, key="rank_contrast", bind="query-params")
versus = c2.selectbox("Compared with", [None, *[x for x in lineages if x != lineage]], key="rank_versus",
                      format_func=lambda x: "the average of the other lineages" if x is None else x)
contrast = adapter.guarded(adapter.contrast_table, fit.fit_id, fit, lineage, versus, top_k, threshold, hdi)
st.caption(f"Difference = the gene's effect in {escape_markdown(lineage)} minus its effect in "
           f"{escape_markdown(versus) if versus else 'the other lineages (each lineage counts once)'}. P(selective) "
           f"is the share of draws in which the difference is negative: the gene hurts {escape_markdown(lineage)} "
           "more. Sorted by P(selective), then by the difference.")
widgets.bullet_list(sentences.contrast_sentences(contrast))
st.dataframe(
    contrast.drop(columns=["lineage", "versus"]), hide_index=True, width="stretch", height=320,
    column_config={c: st.column_config.NumberColumn(format="%.2f")
                   for c in ("mean_in_lineage", "mean_versus", "mean_diff", "sd_diff", "hdi_low", "hdi_high",
                             "p_selective", "p_strongest", "expected_rank", "p_top_k", "p_below_threshold")},
)
widgets.csv_download(contrast, f"contrast_{lineage}", key="csv-contrast", what="the lineage contrast")
