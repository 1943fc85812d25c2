"""Pan-cancer atlas: one fit per lineage, compared: where is each gene a dependency, and where selectively stronger."""

import streamlit as st

from model_store.stats import HDI_PROB
from pages import adapter, widgets
from speclet_core import charts
from speclet_core.analysis import atlas, contrasts, glossary, ranking, sentences
from speclet_core.analysis.escaping import code_span, escape_markdown
from speclet_core.errors import AnalysisError

# genes × lineages cells in the chart stay under the browser's mark budget (see NOTES: ~50k)
MAX_CELLS = 40_000

st.title("Pan-cancer atlas")
st.caption(
    "An atlas is one fit per lineage of a screen (`python -m speclet_core atlas --data FILE --model "
    "sgrna_gene_cell_line`). The fits saw disjoint cell lines, so their posteriors are independent and their draws "
    "can be paired: every probability here is a share of those paired draws."
)
settings = adapter.get_settings()
records = {r.atlas_id: r for r in atlas.list_atlases(settings.data_dir)}
if not records:
    adapter.stop_with("No atlas is stored yet. Submit one with "
                      f"{code_span('python -m speclet_core atlas --data FILE --model sgrna_gene_cell_line --wait')}; "
                      "it appears here once submitted, and can be compared once all its fits are stored.")
chosen = st.selectbox(
    "Atlas", list(records), key="atlas", bind="query-params",
    format_func=lambda a: f"{records[a].model} · {len(records[a].fits)} lineages · {a[:12]}",
)
record = records[chosen]
queue = adapter.read_queue(lambda q: q)
members = atlas.atlas_status(record, adapter.get_store(), None if queue is None else queue.find)
st.dataframe(
    [{"lineage": m.lineage, "fit": m.fit_id[:12], "state": m.state.value, "diagnostics": m.badge or "—",
      "message": m.error} for m in members],
    hide_index=True, width="stretch", height=min(300, 40 + 35 * len(members)),
)
try:
    atlas.check_members(record.atlas_id, members, allow_flagged=True)
except AnalysisError as exc:
    adapter.stop_with(escape_markdown(str(exc)))

fields = ranking.RankingOptions.model_fields
c1, c2, c3 = st.columns(3)
threshold = float(c1.number_input("Dependency threshold (LFC)", -5.0, 0.0, ranking.DEFAULT_THRESHOLD, step=0.1,
                                  key="atlas_threshold", bind="query-params", help=fields["threshold"].description))
hdi = float(c2.select_slider("Interval", [0.5, 0.8, HDI_PROB, 0.95], value=HDI_PROB, key="atlas_hdi",
                             format_func="{:.0%}".format, bind="query-params", help=fields["hdi_prob"].description))
min_p = float(c3.select_slider("List genes with P(selective dependency) ≥", [0.5, 0.8, 0.9, 0.95, 0.99],
                               value=contrasts.DEFAULT_LIST_PROB, key="atlas_min_p", bind="query-params",
                               help=glossary.GLOSSARY["selective dependency"]))
stored = tuple(m.fit_id for m in members)
result = adapter.guarded(adapter.atlas_comparison, record.atlas_id, stored, threshold, hdi, ranking.DEFAULT_TOP_K)
table = result.table

# the verdict: one banner for the worst member fit, and every flagged lineage named
worst = None
if result.flagged:
    worst_member = next(m for m in result.flagged if m.verdict_word == result.atlas_verdict)
    worst = adapter.get_store().manifest(worst_member.fit_id)
    named = ", ".join(f"{m.lineage} ({m.badge})" for m in result.flagged)
    st.warning(f"**{len(result.flagged)} of {len(members)} lineage fits did not pass their diagnostics**: "
               f"{escape_markdown(named)}. Every lineage's comparison uses all the fits (the others are "
               "\"elsewhere\"), so every number below rests on them too; the CSV carries the verdicts in each row.",
               icon=":material/warning:")
    if any(m.verdict_word == atlas.APPROXIMATE for m in result.flagged):
        st.warning(widgets.APPROXIMATE_NOTE, icon=":material/warning:")
    widgets.verdict_banner(worst)
if result.missing_genes:
    shown = ", ".join(f"{g} (not in {', '.join(lins)})" for g, lins in list(result.missing_genes.items())[:10])
    st.info(f"{len(result.missing_genes):,} genes are not in every lineage's fit and are left out: "
            f"{escape_markdown(shown)}{' …' if len(result.missing_genes) > 10 else ''}")
st.caption(
    f"{table['gene'].nunique():,} genes × {len(record.fits)} lineages, {result.n_samples:,} paired draws. Each "
    "lineage's screen-wide shift (its median gene, in every draw) is taken out first: a lineage whose guides all "
    "deplete more does not make every gene look stronger there (`rank --atlas … --no-align` keeps it)."
)

st.subheader("Where is each gene a dependency?")
n_lineages = len(record.fits)
max_genes = max(1, MAX_CELLS // n_lineages)
n_genes = int(st.number_input(f"Genes shown (those with the highest P(dependency) anywhere; up to {max_genes:,})",
                              1, max_genes, min(40, table["gene"].nunique(), max_genes), key="atlas_genes",
                              bind="query-params"))
cells = atlas.dependency_matrix(table, max_genes=n_genes)
chart = charts.effect_heatmap(
    cells, x="lineage", y="gene", color="value", color_title=f"P(effect < {threshold:g})", diverging=False,
    domain=(0.0, 1.0), y_sort=cells.attrs["genes"], x_sort=list(record.fits), x_title="lineage", y_title="gene",
    tooltip=["gene:N", "lineage:N", charts.number("value", "P(dependency)"),
             charts.number("mean_in_lineage", "mean effect")],
    title=f"P(dependency) in each lineage, top {len(cells.attrs['genes'])} genes",
)
widgets.chart_with_data(chart, cells, "atlas_p_dependency", key="atlas-heatmap", fit=worst)
st.caption(f"Each cell: the share of posterior draws in which the gene's effect in that lineage is below {threshold:g} "
           "(a dependency: knocking the gene out lowers fitness). Dark red: a dependency there.")

st.subheader("Lineage-selective dependencies")
lineage = st.selectbox("Dependencies selective for", list(record.fits), key="atlas_lineage", bind="query-params")
rows = atlas.lineage_rows(table, lineage)
listed = adapter.guarded(contrasts.selective_list, rows, min_p)
st.caption(f"A gene is a selective dependency of {escape_markdown(lineage)} when it is a dependency there (effect below "
           f"{threshold:g}) **and** stronger there than the average of the other lineages (each lineage counts once), "
           "in the same posterior draw; P(strongest) is the share of draws in which it is stronger there than in "
           "every other lineage. A gene whose mean effect there is not negative is never listed.")
widgets.bullet_list(sentences.contrast_sentences(listed))
labels = glossary.ranking_labels(threshold=threshold, hdi_prob=hdi, top_k=ranking.DEFAULT_TOP_K, lineage=lineage)
columns = ["gene", "mean_in_lineage", "mean_versus", "p_dependency", "p_stronger", "p_strongest", "p_selective", "lfsr"]
st.dataframe(
    listed[columns], hide_index=True, width="stretch", height=min(320, 40 + 35 * max(len(listed), 1)),
    column_config={c: (st.column_config.ProgressColumn(labels[c], min_value=0.0, max_value=1.0, format="%.2f")
                       if c.startswith("p_") else st.column_config.NumberColumn(labels[c], format="%.2f")
                       if c != "gene" else labels[c]) for c in columns},
)
st.caption(escape_markdown(sentences.describe_list_error(len(listed), listed.attrs["expected_fdp"],
                                                         f"selective dependencies of {lineage}")))
widgets.csv_download(table, f"atlas_{record.atlas_id[:12]}", key="csv-atlas",
                     what="every gene in every lineage", fit=worst)
