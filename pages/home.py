"""Home: what speclet is, the active screen, the worker, recent fits."""

import streamlit as st

from pages import adapter, widgets
from speclet_core.analysis import fitview
from speclet_core.analysis.escaping import escape_markdown
from speclet_core.data.sources import resolve_screen_path, save_upload
from speclet_core.errors import SpecletError

settings = adapter.get_settings()
st.title("speclet")
st.markdown(
    "speclet finds the genes a cancer lineage depends on in CRISPR knockout screens such as DepMap. "
    "It fits hierarchical Bayesian models that pool information across sgRNAs, genes, cell lines and lineages, "
    "in a background worker. Every result comes with its uncertainty: how strongly each knockout hurts the cells, "
    "in which lineages, and how sure we are."
)

key, path, screen = adapter.active_screen()
summary = screen.summarise()
with st.container(border=True):
    st.subheader(f"Active screen: {escape_markdown(adapter.describe_screen(key))}")
    cols = st.columns(6)
    for col, (label, value) in zip(
        cols,
        [("Readings", summary["rows"]), ("Genes", summary["genes"]), ("sgRNAs", summary["sgrnas"]),
         ("Cell lines", summary["cell_lines"]), ("Lineages", summary["lineages"]),
         ("Missing LFC dropped", summary["dropped_missing_lfc"])],
        strict=True,
    ):
        col.metric(label, f"{value:,}")
    if summary["covariates"]:
        st.caption("Covariates available: " + ", ".join(map(escape_markdown, summary["covariates"])))

    tabs = st.tabs(["Use the demo", "Upload a table", "Open a file on this server"])
    with tabs[0]:
        st.caption("A synthetic screen (30 genes, 120 cell lines, 6 lineages) with known true effects, so you can "
                   "see whether a model recovers them.")
        if key != "demo" and st.button("Switch to the demo screen"):
            adapter.set_screen_key("demo")
            st.rerun()
    with tabs[1]:
        if settings.read_only or not settings.allow_uploads:
            st.info("Uploads are switched off on this server.")
        else:
            st.caption(
                "A tidy table with one row per sgRNA reading: columns `sgrna`, `hugo_symbol`, `depmap_id`, `lineage`, "
                f"`lfc` (optional `rna_expr`, `gene_cn`, …). CSV, TSV (optionally gzip'd) or Parquet, up to "
                f"{settings.upload_limit_mb} MiB."
            )
            upload = st.file_uploader("Screen table", type=["csv", "tsv", "txt", "gz", "parquet"], key="upload")
            if upload is not None and st.button("Validate and use this table", type="primary"):
                try:
                    new_key, new_screen = save_upload(upload.name, upload.getvalue(), settings)
                except SpecletError as exc:
                    st.error("This table cannot be used yet. Fix these problems and upload it again:")
                    adapter.show_error(exc)
                else:
                    adapter.set_screen_key(new_key)
                    n = new_screen.summarise()
                    counts = ", ".join(fitview.plural(n[k], w) for k, w in
                                       [("rows", "reading"), ("genes", "gene"), ("cell_lines", "cell line"),
                                        ("lineages", "lineage")])
                    adapter.flash(f"Uploaded **{escape_markdown(upload.name)}**: {counts}. "
                                  "It is now the active screen for the Data explorer and new fits.")
                    st.rerun()
            adapter.show_flash()
    with tabs[2]:
        if not settings.allowed_data_dirs:
            st.info("Opening server files is switched off (the administrator can allow folders with "
                    "`SPECLET_ALLOWED_DATA_DIRS`).")
        else:
            st.caption("Allowed folders: " + ", ".join(f"`{d}`" for d in settings.allowed_data_dirs))
            server_path = st.text_input("Path of a screen table inside an allowed folder", key="server_path")
            if server_path and st.button("Open this file"):
                candidate = f"path:{server_path}"
                try:
                    resolve_screen_path(candidate, settings)
                except SpecletError as exc:
                    adapter.show_error(exc)
                else:
                    adapter.set_screen_key(candidate)
                    st.rerun()

st.subheader("Stored fits")
store = adapter.get_store()
jobs = adapter.read_queue(lambda q: q.list(limit=20))
if jobs is None:
    st.caption(adapter.QUEUE_GONE_NOTE)
following = adapter.follow_first_fit(on_home=True)  # refreshes itself until the first fit is stored, then opens it
opened = adapter.auto_opened_note()
if opened:
    st.success(opened, icon=":material/auto_awesome:")
stored = store.list()
recent = fitview.recent_fits_table(stored[:10])
if recent.empty:
    if not following:
        st.caption("No stored fits yet. Start one on the **Fit models** page.")
else:
    event = st.dataframe(
        recent.drop(columns=["fit_id"]), hide_index=True, on_select="rerun", selection_mode="single-row",
        key="recent-fits", width="stretch", column_config=widgets.FITS_COLUMNS,
    )
    rows = event.selection.rows if event else []
    if rows:
        chosen = recent.iloc[rows[0]]["fit_id"]
        adapter.set_open_fit(chosen)
        st.success(f"Opened fit `{chosen[:12]}`: see Diagnostics first, then the Results pages.")
    else:
        st.caption("Select a row to open that fit on every page.")

widgets.queue_panel()  # below the stored fits; Cancel only for this session's own fits
