"""Data explorer: pick genes and lineages, look at the raw readings; the selection carries to Fit."""

import streamlit as st

from pages import adapter, import_panel, widgets
from speclet_core import charts
from speclet_core.analysis.escaping import escape_markdown
from speclet_core.data import cell_lines as annotations
from speclet_core.data import explore

st.title("Data explorer")
key, path, screen = adapter.active_screen()
st.caption(f"{escape_markdown(adapter.describe_screen(key))} · {len(screen.data):,} readings · {len(screen.genes):,} genes · "
           f"{len(screen.cell_lines):,} cell lines · {len(screen.lineages)} lineages")

genes, lineages, cell_lines = widgets.selection_widgets(screen)
sub = adapter.guarded(explore.select_rows, screen, genes, lineages, cell_lines)

c1, c2 = st.columns(2)
with c1:
    counts = explore.count_cell_lines(sub)
    widgets.chart_with_data(charts.bar_counts(counts, "lineage", "cell_lines", "Cell lines per lineage"),
                           counts, "cell_lines_per_lineage", key="cl-counts")
with c2:
    sg = explore.count_sgrnas(sub)
    shown = sg.head(60)
    title = "sgRNAs per gene" + (f" (first 60 of {len(sg)})" if len(sg) > 60 else "")
    widgets.chart_with_data(charts.bar_counts(shown, "gene", "sgrnas", title), sg, "sgrnas_per_gene", key="sg-counts")

st.subheader("Mean LFC per gene and lineage")
st.caption("Red: knocking the gene out kills cells of that lineage (negative LFC); blue: cells grow.")
gl = explore.summarise_gene_lineage(sub)
gene_order = gl.groupby("gene")["mean_lfc"].mean().sort_values().index.tolist()
heat = charts.effect_heatmap(
    gl, x="lineage", y="gene", color="mean_lfc", color_title="mean LFC",
    tooltip=["gene", "lineage", charts.number("mean_lfc"), charts.number("sd_lfc"), "readings"],
    y_sort=gene_order, x_title="lineage", y_title="gene (strongest dependency first)",
)
widgets.chart_with_data(heat, gl, "gene_lineage_mean_lfc", key="gl-heatmap")

st.subheader("LFC distributions by lineage")
chosen = genes[:12] if genes else gene_order[:8]
if not genes:
    st.caption("Showing the 8 strongest dependencies; pick genes above to choose.")
box = explore.summarise_lfc_distribution(sub, chosen)
widgets.chart_with_data(charts.box_from_stats(box, title="LFC by lineage (box: 25–75%, whiskers: 5–95%)"),
                       box, "lfc_by_lineage", key="box")

st.subheader("Cell lines by annotation")
table = screen.cell_line_table
choices = annotations.grouping_choices(table, screen.data)
by = st.selectbox("Colour and group cell lines by", list(choices), format_func=choices.get, key="colour_by",
                  bind="query-params", help="Annotations the screen table gives for each cell line; 'mutated in the "
                                            "gene' groups each gene's panel by whether that gene is mutated there.")
per_cell = adapter.guarded(annotations.summarise_cell_lines, sub, table, chosen, by)
widgets.chart_with_data(
    charts.cell_line_strip(per_cell, group_title=choices[by], title=f"Mean LFC per cell line, by {choices[by]}"),
    per_cell, f"cell_lines_by_{by}", key="cl-strip")
st.caption("Each dot is one cell line: the mean of its readings for that gene (the raw data, not a fitted model). "
           "Left of the dashed zero line: knocking the gene out lowers fitness there (a dependency). "
           f"Cell lines the table gives no value for are grouped as '{annotations.UNKNOWN}'.")
if not annotations.has_names(table):
    st.caption("This screen table names no cell lines, so they show as DepMap ids: add a `cell_line_name` column, "
               "or import from a DepMap release (its Model.csv names them).")
st.dataframe(annotations.summarise_groups(per_cell), hide_index=True, width="stretch", column_config={
    "group": choices[by], "cell_lines": "cell lines",
    "mean_lfc": st.column_config.NumberColumn("mean of cell-line means", format="%.3f"),
    "median_lfc": st.column_config.NumberColumn("median of cell-line means", format="%.3f")})

shown_cells = sorted(set(per_cell["cell_line"]))
with st.expander(f"The {len(shown_cells):,} cell lines shown, with what the table says about them"):
    st.dataframe(table.loc[shown_cells].reset_index(), hide_index=True, width="stretch",
                 column_config={"depmap_id": "DepMap id", **annotations.TABLE_LABELS})

if screen.covariates:
    st.subheader("LFC against covariates")
    names = {"rna_expr": "RNA expression (log2 TPM+1)", "gene_cn": "copy number"}
    cov = st.radio("Covariate", screen.covariates, format_func=names.get, horizontal=True, key="covariate",
                   bind="query-params")
    pts = explore.sample_covariate_points(sub, cov, chosen)
    widgets.chart_with_data(
        charts.scatter(pts, x=cov, y="lfc", color="lineage", x_title=names[cov], y_title="log2 fold change",
                       tooltip=["gene", "cell_line", "lineage", cov, "lfc"], title=f"LFC vs {names[cov]}"),
        pts, f"lfc_vs_{cov}", key="cov-scatter",
    )

# the link carries the screen and the selection (also when they came from a shared link): the fit covers them
st.page_link("pages/fit.py", label="Fit a model to this selection", icon=":material/play_arrow:",
             query_params=adapter.shared_params(genes=genes, lineages=lineages, cells=cell_lines))

if adapter.get_settings().allowed_data_dirs:
    st.divider()
    import_panel.render_import_panel(adapter.get_settings())
