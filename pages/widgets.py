"""The widgets and page furniture every page shares (no caching here: that is ``pages/adapter.py``).

Pickers bound to the URL, the sidebar, the worker banner and queue, the result pages' header,
charts with their data as CSV, and the Data page's DepMap import panel.

User-derived text (names, screen keys, file names, messages quoting them) goes into Markdown only
through ``escape_markdown``; every CSV download goes through ``csv_download`` (``escaping.csv_text``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from model_store import FitManifest, StoredFit
from pages import adapter
from pages.adapter import get_queue, get_settings, guarded, open_fit_id, screen_key, set_open_fit, stop_with
from speclet_core.analysis import fitview
from speclet_core.analysis.escaping import code_span, csv_text, escape_markdown
from speclet_core.analysis.forest import MAX_FOREST_ROWS, Pick, pick_labels
from speclet_core.analysis.glossary import GLOSSARY
from speclet_core.data.paths import resolve_allowed_path
from speclet_core.data.screen import Screen
from speclet_core.data.sources import describe_screen_key
from speclet_core.depmap.importer import ReleaseInfo, import_depmap, inspect_release
from speclet_core.depmap.output import save_import
from speclet_core.depmap.release import Library
from speclet_core.depmap.selection import parse_gene_list
from speclet_core.errors import SpecletError
from speclet_core.queue.jobs import worker_status
from speclet_core.settings import Settings

APPROXIMATE_NOTE = ("**Approximate posterior (ADVI) — first look only.** A quick variational fit: its intervals are "
                    "usually too narrow. Refit with full NUTS on the Fit page before drawing conclusions.")
# Beyond this many readings, reloading the screen table takes seconds: per-reading views wait to be asked for.
AUTO_READINGS_MAX = 200_000


def chart_with_data(chart: alt.TopLevelMixin, data: pd.DataFrame, name: str, *, key: str | None = None) -> None:
    """Show a chart (its ⋯ menu exports PNG/SVG) and offer its data as CSV."""
    st.altair_chart(chart, width="stretch", key=key)
    csv_download(data, name, key=f"csv-{key or name}")


def csv_download(data: pd.DataFrame, name: str, *, key: str, what: str = "data") -> None:
    """A download button for ``data`` as CSV, formula-looking text cells neutralised (as ``rank --out``)."""
    st.download_button(f"Download {what} (CSV, {len(data):,} rows)", csv_text(data).encode(),
                       file_name=f"{name}.csv", mime="text/csv", key=key, icon=":material/download:")


def bullet_list(lines: Sequence[object]) -> None:
    """Plain-text lines (sentences, notes that may quote names) as Markdown list items, escaped."""
    for line in lines:
        st.markdown(f"- {escape_markdown(line)}")


def selection_widgets(screen: Screen) -> tuple[list[str], list[str], list[str]]:
    """Gene / lineage / cell-line pickers bound to the URL and kept across pages (empty = all)."""
    # the same keys on every page, so a selection made on one page is the selection on the next
    shared: dict[str, Any] = {"bind": "query-params", "persist_state": "session"}
    c1, c2 = st.columns([3, 2])
    genes = c1.multiselect(f"Genes ({len(screen.genes):,} in the screen; type to search, empty = all)", screen.genes,
                           key="genes", placeholder="All genes", **shared)
    lineages = c2.multiselect("Lineages (empty = all)", screen.lineages, key="lineages", placeholder="All lineages",
                              **shared)
    with st.expander("Filter cell lines (optional)"):
        cell_lines = st.multiselect("Cell lines (DepMap ids; empty = all in the chosen lineages)", screen.cell_lines,
                                    key="cells", **shared)
    return list(genes), list(lineages), list(cell_lines)


def worker_banner() -> None:
    """A clear banner when no live worker is seen (fits would wait forever)."""
    settings = get_settings()
    if settings.read_only:
        return
    status = worker_status(settings)
    if not status.get("alive"):
        st.warning(
            "**No fitting worker is running**, so new fits will wait in the queue. Start one in a terminal with "
            "`python -m speclet_core worker` (or use `make run`, which starts it for you).",
            icon=":material/warning:",
        )


def queue_panel() -> None:
    """The job queue with live progress; polls only while a job is queued or running."""
    from speclet_core.analysis.fitview import jobs_table

    queue = get_queue()
    active = any(j.active for j in queue.list(limit=50))

    @st.fragment(run_every=1.0 if active else None)
    def _panel() -> None:
        jobs = queue.list(limit=50)
        st.subheader("Queue")
        if not jobs:
            st.caption("No fits submitted yet.")
            return
        table = jobs_table(jobs)
        st.dataframe(
            table.drop(columns=["fit_id"]), hide_index=True, width="stretch",
            column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0)},
        )
        running = [j for j in jobs if j.active]
        if running:
            c1, c2 = st.columns([3, 1])
            target = c1.selectbox("Active fit", [j.job_id for j in running],
                                  format_func=lambda i: f"{i[:12]} · {next(j for j in running if j.job_id == i).request.model}",
                                  key="cancel_target")
            if c2.button("Cancel this fit", icon=":material/cancel:") and target:
                guarded(queue.cancel, target)
                st.rerun()
        elif active:
            st.rerun()  # the last active job just finished: refresh stored fits and stop polling
        done = [j for j in jobs if str(j.status) == "done"]
        if done and st.button(f"Open the newest finished fit ({done[0].job_id[:12]})", key="open_newest"):
            set_open_fit(done[0].job_id)
            st.rerun()

    _panel()


def sidebar() -> None:
    """Shared sidebar: active screen, open fit, worker status, glossary."""
    settings = get_settings()
    with st.sidebar:
        key = screen_key()
        st.caption(f"**Screen:** {escape_markdown(describe_screen_key(key))}")
        fit_id = open_fit_id()
        if fit_id:  # from the URL: anything a link may hold
            st.caption(f"**Open fit:** {code_span(fit_id[:12])}")
        if settings.read_only:
            st.caption(":material/visibility: Read-only demo mode: browsing stored fits only.")
        with st.expander("Glossary", icon=":material/menu_book:"):
            for term, text in GLOSSARY.items():  # speclet_core.analysis.glossary
                st.markdown(f"**{term}**: {text}")


# --------------------------------------------------------------------------- result pages


def open_results_page(title: str) -> StoredFit:
    """Title, the open fit (or a pointer to open one), its caption and the approximate-fit note."""
    st.title(title)
    fit = adapter.require_open_fit()
    st.caption(fitview.fit_caption(fit.manifest))
    if fitview.is_approximate(fit.manifest):
        st.warning(APPROXIMATE_NOTE, icon=":material/warning:")
    return fit


def readings_wanted(fit: StoredFit, label: str, *, key: str) -> bool:
    """A toggle for views that reload the screen table: on by default only for fits with few readings."""
    n = adapter.n_readings(fit)
    return st.toggle(label, value=n <= AUTO_READINGS_MAX, key=key, bind="query-params",
                     help=f"Reads the labels of the fit's {n:,} readings (once per server; for millions of readings "
                          "this takes several seconds).")


def fit_picker(label: str, manifests: Sequence[FitManifest], *, key: str, multi: bool = False,
               default: Sequence[str] = ()) -> Any:
    """Pick stored fits by a readable label (values are fit ids)."""
    names = {m.fit_id: fitview.fit_label(m) for m in manifests}
    if multi:
        return st.multiselect(label, list(names), default=[d for d in default if d in names],
                              format_func=names.get, key=key)
    return st.selectbox(label, list(names), format_func=names.get, key=key, index=None,
                        placeholder="Choose a fit")


def gene_choice(summary: pd.DataFrame, *, key: str, default_n: int = 30, max_n: int = MAX_FOREST_ROWS,
                allow_page: bool = True) -> list[str]:
    """Strongest / weakest N genes (with paging) or genes typed by name, bound to the URL."""
    c1, c2, c3 = st.columns([2, 1, 1])
    how = c1.segmented_control(
        "Genes", [p.value for p in Pick], default=Pick.STRONGEST.value, key=f"{key}_how",
        format_func={"strongest": "Strongest dependencies", "weakest": "Weakest / positive",
                     "chosen": "Search by name"}.get, bind="query-params")
    if how == Pick.CHOSEN.value:
        chosen = st.multiselect("Genes to show (type to search)", summary["gene"].tolist(), key=f"{key}_genes",
                                bind="query-params", max_selections=max_n, placeholder="e.g. KRAS")
        if not chosen:
            stop_with("Type one or more gene names above.")
        return list(chosen)
    n = c2.number_input("How many", 1, max_n, min(default_n, len(summary)), key=f"{key}_n", bind="query-params")
    pages = max(1, -(-len(summary) // int(n)))
    page = (c3.number_input(f"Page (of {pages})", 1, pages, 1, key=f"{key}_page", bind="query-params")
            if allow_page and pages > 1 else 1)
    return pick_labels(summary, "gene", how or Pick.STRONGEST, int(n), page=int(page) - 1)


# --------------------------------------------------------------------------- DepMap import (Data page)

# One import at a time per server: an import of many genes × all lineages holds a few hundred MiB.
_IMPORT_LOCK = threading.Lock()
LAYOUT_TEXT = {"current": "current (22Q2 onward)", "legacy": "legacy (20Q–21Q Achilles)"}
PHASE_TEXT = {
    "maps": "Reading the guide, screen and cell-line maps",
    "cache": "Building the columnar cache (first cached import only)",
    "lfc": "Reading log-fold changes",
    "expression": "Joining expression",
    "copy_number": "Joining copy number",
    "done": "Done",
}


def render_import_panel(settings: Settings) -> None:
    """The "Import a DepMap release" section of the Data page."""
    if settings.read_only or not settings.allowed_data_dirs:
        st.caption("Importing DepMap releases from server folders is switched off; the administrator can allow "
                   "folders with `SPECLET_ALLOWED_DATA_DIRS`.")
        return
    st.subheader("Import a DepMap release")
    _last_import_note()
    st.caption(
        "Turn a DepMap release folder on this server (the CSV files from depmap.org: guide-level log-fold changes, "
        "guide map, screen map, cell-line metadata, expression, copy number) into a screen table for the chosen genes "
        "and lineages. Allowed folders: " + ", ".join(f"`{d}`" for d in settings.allowed_data_dirs)
    )
    c1, c2 = st.columns([4, 1])
    typed = c1.text_input("Release folder (absolute, or relative to the first allowed folder)", key="dmi-dir")
    library = c2.selectbox("Library", [m.value for m in Library], key="dmi-library",
                           help="avana: Broad Achilles; ky: Sanger Project Score (current layout only)")
    if not typed.strip():
        return
    try:
        folder = resolve_allowed_path(typed, settings.allowed_data_dirs)
        info = _inspect(folder, library, settings)
    except SpecletError as exc:
        adapter.show_error(exc)
        return

    _show_release(info)
    genes, lineages, cache = _choices(info, settings)
    label = f"Import {len(genes)} gene{'s' if len(genes) != 1 else ''}"
    if st.button(label, type="primary", disabled=not genes, key="dmi-import", icon=":material/download:"):
        _run_import(info, genes, lineages, cache, settings)


def _last_import_note() -> None:
    last = st.session_state.get("dmi-last")
    if not last or st.session_state.get("screen_key") != last["key"]:
        return
    c = last["counts"]
    st.success(
        f"Imported {c['rows']:,} readings ({c['genes']} genes, {c['sgrnas']} sgRNAs, {c['cell_lines']} cell lines, "
        f"{c['lineages']} lineages) from {code_span(last['release'])} in {last['seconds']:.1f} s; it is now the active screen.",
        icon=":material/check_circle:",
    )
    if last["warnings"]:
        with st.expander(f"{len(last['warnings'])} note(s) from the import"):
            bullet_list(last["warnings"])


def _inspect(folder: Path, library: str, settings: Settings) -> ReleaseInfo:
    """``inspect_release``, remembered in this session until the folder's files change."""
    if not folder.is_dir():
        raise SpecletError(f"{folder}: not a folder; give the folder that holds the release's CSV files")
    stamp = tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()))
    memo_key = (str(folder), library, stamp)
    memo = st.session_state.get("dmi-inspected")
    if memo is not None and memo[0] == memo_key:
        return memo[1]
    with st.spinner(f"Reading the maps of {escape_markdown(folder.name)}…"):
        info = inspect_release(folder, library, settings=settings)
    st.session_state["dmi-inspected"] = (memo_key, info)
    return info


def _show_release(info: ReleaseInfo) -> None:
    cols = st.columns(4)
    cols[0].metric("Layout", LAYOUT_TEXT.get(str(info.layout), str(info.layout)))
    cols[1].metric("Sequences in the LFC matrix", f"{info.n_sequences:,}")
    cols[2].metric("Genes with usable guides", f"{len(info.genes):,}")
    cols[3].metric("Cache", "ready" if info.cache_ready else "not built")
    missing = [k for k in ("expression", "copy_number") if not info.files.get(k)]
    if missing:
        st.caption("No " + " or ".join(m.replace("_", " ") for m in missing) + " file in this release: those "
                   "covariates will be missing.")
    with st.expander(f"{len(info.lineages)} lineages (cell lines with a QC-passing screen)"):
        table = pd.DataFrame({"lineage": list(info.lineages), "cell lines": list(info.lineages.values())})
        st.dataframe(table, hide_index=True, width="stretch")


def _choices(info: ReleaseInfo, settings: Settings) -> tuple[list[str], list[str], bool]:
    c1, c2 = st.columns(2)
    typed = c1.text_area("Genes (commas or new lines; `#` starts a comment)", key="dmi-genes-text", height=100,
                         placeholder="KRAS, BRAF\nTP53")
    picked = c2.multiselect(f"…or pick genes ({len(info.genes):,} with usable guides)", info.genes,
                            key="dmi-genes-pick")
    genes = list(dict.fromkeys([*parse_gene_list(typed or ""), *picked]))
    if len(genes) > settings.max_genes:
        st.error(f"{len(genes):,} genes asked for; one fit may use at most {settings.max_genes:,} "
                 "(`SPECLET_MAX_GENES`). Import fewer genes.")
        genes = []
    lineages = st.multiselect(
        "Lineages (empty = all)", list(info.lineages), key="dmi-lineages",
        format_func=lambda name: f"{name} ({info.lineages[name]} cell lines)", placeholder="All lineages",
    )
    cache = st.checkbox(
        "Use the cache", value=info.cache_ready, key="dmi-cache",
        help="Keep a columnar copy of the log-fold-change matrix (in the release folder, or in the data folder when "
        "the release is read-only). The first import builds it (a few times slower); later imports of any genes "
        "take seconds.",
    )
    return genes, list(lineages), cache


def _run_import(info: ReleaseInfo, genes: list[str], lineages: list[str], cache: bool, settings: Settings) -> None:
    if not _IMPORT_LOCK.acquire(blocking=False):
        st.warning("Another import is running on this server; try again when it has finished.")
        return
    try:
        bar = st.progress(0.0, text="Starting the import…")

        def progress(phase: str, fraction: float, message: str) -> None:
            text = escape_markdown(f"{PHASE_TEXT.get(phase, phase)}: {message}")
            bar.progress(min(max(fraction, 0.0), 1.0), text=text)

        try:
            result = import_depmap(info.root, genes, lineages or "all", library=info.library, cache=cache,
                                   progress=progress, settings=settings)
            key, _ = save_import(result, settings)
        except SpecletError as exc:
            bar.empty()
            adapter.show_error(exc)
            return
        except MemoryError:
            bar.empty()
            st.error("The import ran out of memory; import fewer genes or lineages.")
            return
    finally:
        _IMPORT_LOCK.release()
    meta: dict[str, Any] = result.metadata
    st.session_state["dmi-last"] = {
        "key": key, "counts": meta["counts"], "warnings": list(result.warnings), "release": info.root.name,
        "seconds": meta["timings"]["total_s"],
    }
    st.session_state.pop("dmi-inspected", None)  # the import may have built the cache
    adapter.set_screen_key(key)
    st.rerun()
