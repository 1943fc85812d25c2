"""Rankings: which genes are the strongest dependencies, how sure we are of their order, lineage-selective ones."""

import streamlit as st

from model_store.stats import HDI_PROB
from pages import adapter, presentation, widgets
from speclet_core import charts
from speclet_core.analysis import contrasts, glossary, pairs, ranking, sentences, subsets
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
top_k = int(c1.number_input("k for P(top-k)", 1, 500, ranking.default_top_k(len(fit.manifest.genes)), key="rank_k",
                            bind="query-params",
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
chart = charts.rank_interval_chart(shown, top_k=top_k, title=f"Rank intervals ({hdi:.0%}) of the top {len(shown)} of "
                                   f"{len(table):,} genes")
presentation.show_chart(chart, table, f"ranking{('_' + scope) if scope else ''}", key="rank-chart", fit=fit)
st.caption(f"Dot: expected rank; line: the {hdi:.0%} rank interval. A long line means the data cannot pin down the "
           f"gene's place. Colour: P(top-{top_k}). The CSV holds all {len(table):,} genes.")
labels = glossary.ranking_labels(threshold=threshold, hdi_prob=hdi, top_k=top_k)
prob = lambda c: st.column_config.ProgressColumn(labels[c], min_value=0.0, max_value=1.0, format="%.2f")  # noqa: E731
number = lambda c, f="%.2f": st.column_config.NumberColumn(labels[c], format=f)  # noqa: E731
# sd and P(not a dependency) (= 1 − P(dependency)) stay in the CSV: on the page the table fits a 1280-px screen
by_rank = table["gene"].tolist()
focus = widgets.gene_search(by_rank, key="rank_genes", label="Show these genes' rows (empty = every gene, a page at a "
                            "time)", suggestions=by_rank[:20], placeholder="Every gene")
if focus:
    page_rows = table[table["gene"].isin(set(focus))]
    st.caption(f"{subsets.describe_subset(len(page_rows), len(table), how='chosen')}; their ranks are "
               f"among all {len(table):,}.")
else:
    page_rows = widgets.table_page(table, key="rank_page", what="genes, by expected rank")
st.dataframe(
    page_rows, hide_index=True, width="stretch", height=360,
    column_order=[c for c in table.columns if c not in {"sd", "p_not_dependency"}],
    column_config={
        "gene": labels["gene"], "mean": number("mean"), "sd": number("sd"), "hdi_low": number("hdi_low"),
        "hdi_high": number("hdi_high"), "expected_rank": number("expected_rank", "%.1f"),
        "rank_low": number("rank_low", "%.0f"), "rank_high": number("rank_high", "%.0f"), "p_top_k": prob("p_top_k"),
        "p_below_threshold": prob("p_below_threshold"), "p_not_dependency": number("p_not_dependency"),
        "lfsr": number("lfsr"),
    },
)
top = table.head(len(shown))
st.caption(escape_markdown(sentences.describe_list_error(
    len(top), ranking.expected_false_discovery(top["p_not_dependency"]),
    f"top genes read as dependencies (effect < {threshold:g})")))

st.subheader("Which gene is the stronger dependency?")
picked = widgets.gene_search(by_rank, key="rank_pairs", label=f"Genes to compare (up to {pairs.MAX_PAIRWISE_SHOWN}; "
                             "default: the top 8)", suggestions=by_rank[: pairs.MAX_PAIRWISE_SHOWN],
                             default=by_rank[: min(8, len(by_rank))], max_n=pairs.MAX_PAIRWISE_SHOWN)
if len(picked) >= 2:
    chosen = set(picked)
    ordered = tuple(g for g in by_rank if g in chosen)
    comparison = adapter.guarded(adapter.pairwise, fit.fit_id, fit, ordered, scope, hdi)
    cells = pairs.pairwise_cells(comparison)
    presentation.show_chart(charts.pairwise_chart(cells, ordered, title=f"P(row gene is a stronger dependency{where})"),
                           cells, "pairwise", key="pairwise", fit=fit)
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
c1, c2, c3 = st.columns(3)
lineage = c1.selectbox("Dependencies selective for", lineages, key="rank_contrast", bind="query-params")
versus = c2.selectbox("Compared with", [None, *[x for x in lineages if x != lineage]], key="rank_versus",
                      format_func=lambda x: "the average of the other lineages" if x is None else x)
min_p = float(c3.select_slider("List genes with P(selective dependency) ≥", [0.5, 0.8, 0.9, 0.95, 0.99],
                               value=contrasts.DEFAULT_LIST_PROB, key="rank_min_p", bind="query-params",
                               help=glossary.GLOSSARY["selective dependency"]))
contrast = adapter.guarded(adapter.contrast_table, fit.fit_id, fit, lineage, versus, top_k, threshold, hdi)
listed = adapter.guarded(contrasts.selective_list, contrast, min_p)
elsewhere = escape_markdown(versus) if versus else "the other lineages (each lineage counts once)"
st.caption(f"A gene is a selective dependency of {escape_markdown(lineage)} when it is a dependency there (effect below "
           f"{threshold:g}) **and** stronger there than in {elsewhere}. P(selective dependency) is the share of "
           "posterior draws in which both hold at once; a gene whose mean effect there is not negative is never listed. "
           "Sorted by P(selective dependency).")
widgets.bullet_list(sentences.contrast_sentences(listed))
labels = glossary.ranking_labels(threshold=threshold, hdi_prob=hdi, top_k=top_k, lineage=lineage)
# the intervals are in the CSV and the table below: without them the list fits a 1280-px projector uncut
columns = ["gene", "mean_in_lineage", "mean_versus", "p_dependency", "p_stronger", "p_selective", "lfsr"]
st.dataframe(
    listed[columns], hide_index=True, width="stretch", height=min(320, 40 + 35 * max(len(listed), 1)),
    column_config={c: (st.column_config.ProgressColumn(labels[c], min_value=0.0, max_value=1.0, format="%.2f")
                       if c in {"p_dependency", "p_stronger", "p_selective"}
                       else st.column_config.NumberColumn(labels[c], format="%.2f") if c != "gene" else labels[c])
                   for c in columns},
)
fdp_text = sentences.describe_list_error(len(listed), listed.attrs["expected_fdp"],
                                         f"selective dependencies of {lineage}")
st.caption(escape_markdown(fdp_text))
widgets.csv_download(listed, f"selective_{lineage}", key="csv-selective", what="this list", fit=fit)
with st.expander(f"Every gene's numbers for {escape_markdown(lineage)} ({len(contrast):,} genes)"):
    contrast_rows = widgets.table_page(contrast, key="rank_contrast_page", what="genes")
    st.dataframe(contrast_rows.drop(columns=["lineage", "versus"]), hide_index=True, width="stretch", height=320,
                 column_config={c: st.column_config.NumberColumn(labels.get(c, c), format="%.2f")
                                for c in contrast.columns if c not in {"gene", "lineage", "versus"}})
    widgets.csv_download(contrast, f"contrast_{lineage}", key="csv-contrast", what="every gene", fit=fit)
