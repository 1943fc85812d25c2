"""Forest plot: posterior mean and intervals of the gene-level effect, or of one gene across lineages / cell lines."""

import streamlit as st

from model_store.stats import HDI_PROB
from pages import adapter, presentation, widgets
from speclet_core import charts
from speclet_core.analysis import cell_lines, fitview, forest, recovery, sentences, subsets
from speclet_core.analysis.escaping import escape_markdown

fit = widgets.open_results_page("Forest plot")
roles = adapter.roles(fit)
st.caption(
    "Each row is one posterior: the dot is its mean, the thick line the inner interval and the thin line the outer "
    "interval (highest-density intervals: under the model, the true value lies inside with that probability). "
    "Left of the dashed zero line means knocking the gene out lowers fitness: a dependency."
)

views = {"gene": "Gene-level effect"}
if roles.get("gene_lineage_effect"):
    views["lineage"] = "One gene across lineages"
if roles.get("gene_cell_line_effect"):
    views["cell_line"] = "One gene across cell lines"
view = st.segmented_control("Show", list(views), format_func=views.get, default="gene", key="forest_view",
                            bind="query-params") or "gene"
c1, c2, c3 = st.columns(3)
inner = c1.select_slider("Inner interval", [0.25, 0.5, 0.68, 0.8], value=forest.INNER_PROB, format_func="{:.0%}".format,
                         key="forest_inner", bind="query-params")
outer = c2.select_slider("Outer interval", [0.8, HDI_PROB, 0.9, 0.95, 0.99], value=HDI_PROB, format_func="{:.0%}".format,
                         key="forest_outer", bind="query-params")
sort = c3.radio("Sort by", [s.value for s in forest.ForestSort], horizontal=True, key="forest_sort",
                format_func={"mean": "posterior mean (strongest first)", "name": "name"}.get, bind="query-params")
adapter.guarded(forest.check_interval_probs, inner, outer)

summary = adapter.gene_summary(fit.fit_id, fit)
role = {"gene": "gene_effect", "lineage": "gene_lineage_effect", "cell_line": "gene_cell_line_effect"}[view]
if view == "gene":
    genes = adapter.guarded(widgets.gene_choice, summary, key="forest")
    rows = adapter.guarded(adapter.forest, fit.fit_id, fit, roles[role], "gene", tuple(genes), inner, outer, sort)
    label_title, gene = "gene", None
else:
    gene = widgets.gene_pick_one(summary["gene"].tolist(), key="forest_gene", label="Gene",
                                 suggestions=subsets.top_genes(summary, min(subsets.OFFER_ALL_MAX, len(summary))),
                                 help="The strongest dependencies are listed first; find any other gene by name above.")
    rows = adapter.guarded(adapter.forest, fit.fit_id, fit, roles[role], view, (gene,), inner, outer, sort)
    label_title = view.replace("_", " ")
    if view == "cell_line":
        lineages = sorted(rows["lineage"].unique())
        picked = st.multiselect("Lineages (empty = all)", lineages, key="forest_lineages", bind="query-params")
        if picked:
            rows = forest.subset_rows(rows, rows.loc[rows["lineage"].isin(picked), "label"])
        if len(rows) > forest.MAX_FOREST_ROWS:
            st.caption(f"{len(rows):,} cell lines: showing the {forest.MAX_FOREST_ROWS} strongest; pick lineages "
                       "to see the others.")
            rows = forest.subset_rows(rows, forest.pick_labels(rows, "label", "strongest", forest.MAX_FOREST_ROWS))

# Truth overlay: only synthetic screens have a truth table beside them.
truth_table = adapter.guarded(adapter.truth, fit.manifest.request.data_path)
# the truth of exactly what this fit saw (its lineages, cell lines and guides), not of the whole screen
truth = recovery.truth_for_fit(truth_table, fit.manifest, role, view, gene=gene)
if not truth.empty:
    rows = forest.add_truth(rows, truth)

# cell lines by name ("HT-29 (ACH-000552)") where the screen table or the DepMap release named them
names = cell_lines.cell_line_labels(fit) if view == "cell_line" else {}
if names:
    rows = cell_lines.relabel_rows(rows, names, sort_by_label=sort == forest.ForestSort.NAME)

# Compare with another stored fit of the same genes (e.g. partial vs no pooling: shrinkage).
others = [m for m in adapter.get_store().list() if m.fit_id != fit.fit_id
          and set(m.genes) & set(rows["label"] if view == "gene" else [gene])
          and m.roles.variable_of(role)]
other_id = widgets.fit_picker("Compare with another fit (optional)", others, key="forest_compare") if others else None

what = {"gene": "genes", "lineage": "lineages", "cell_line": "cell lines"}[view]
title = f"{views[view]}" + (f": {gene}" if gene else "")
if other_id:
    other = adapter.get_fit(other_id, fit)
    labels = tuple(rows["label"]) if view == "gene" else (gene,)
    shared = tuple(g for g in labels if g in set(other.manifest.genes)) if view == "gene" else labels
    rows_b = adapter.guarded(adapter.forest, other_id, other, other.manifest.roles.variable_of(role), view, shared, inner, outer,
                             sort)
    if names:
        other_names = {**cell_lines.cell_line_labels(other), **names}
        rows_b = cell_lines.relabel_rows(rows_b, other_names, sort_by_label=sort == forest.ForestSort.NAME)
    name_a, name_b = fitview.fit_label(fit.manifest), fitview.fit_label(other.manifest)
    both = adapter.guarded(forest.combine_forests, {name_a: rows, name_b: rows_b})
    presentation.show_chart(charts.forest_chart(both, label_title=label_title, title=title, compare=True), both,
                           f"forest_compare_{view}", key="forest-compare", fit=fit)
    shrink = adapter.guarded(forest.shrinkage_table, rows, rows_b)
    st.markdown(escape_markdown(sentences.describe_shrinkage(shrink, "This fit", "the other fit")))
    st.caption("Side by side, one row per fit. A fit that pools information (partial pooling) usually gives "
               "narrower intervals and pulls noisy estimates towards their group: that is shrinkage.")
else:
    presentation.show_chart(charts.forest_chart(rows, label_title=label_title, title=title), rows, f"forest_{view}",
                           key="forest", fit=fit)

if "truth" in rows.columns:
    widgets.recovery_note(forest.recovery(rows), inner, outer, what,
                          lead="**Parameter recovery** (black diamonds are the true values of what this fit saw; "
                               "known only for synthetic screens).")
