"""The Data page's "Import a DepMap release" panel: pick a release folder, genes and lineages, import with progress."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from pages import adapter
from pages.widgets import bullet_list
from speclet_core.analysis.escaping import code_span, escape_markdown
from speclet_core.data.paths import resolve_allowed_path
from speclet_core.depmap.importer import ReleaseInfo, import_depmap, inspect_release
from speclet_core.depmap.output import save_import
from speclet_core.depmap.release import Library
from speclet_core.depmap.selection import parse_gene_list
from speclet_core.errors import SpecletError
from speclet_core.settings import Settings

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
        st.error(f"{len(genes):,} genes asked for, more than this server's ceiling of {settings.max_genes:,} genes "
                 "for one fit (`SPECLET_MAX_GENES`). Import fewer genes; below the ceiling the Fit page says, from "
                 "its estimate, whether this machine's memory and disk hold the fit.")
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
