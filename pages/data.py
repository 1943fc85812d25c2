"""Data explorer: pick genes and lineages, look at the raw readings; the selection carries to Fit."""

import streamlit as st

from pages import adapter, import_panel, widgets
from speclet_core import charts
from speclet_core.analysis.escaping import escape_markdown
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
