"""Widgets and panels shared by several pages (no caching here: that is pages/common.py)."""

from __future__ import annotations

import streamlit as st

from pages.common import get_queue, get_settings, guarded, open_fit_id, screen_key, set_open_fit
from speclet_core.analysis.glossary import GLOSSARY
from speclet_core.data.screen import Screen
from speclet_core.data.sources import describe_screen_key
from speclet_core.queue.jobs import worker_status


def selection_widgets(screen: Screen) -> tuple[list[str], list[str], list[str]]:
    """Gene / lineage / cell-line pickers bound to the URL and kept across pages (empty = all)."""
    c1, c2 = st.columns([3, 2])
    with c1:
        genes = st.multiselect(
            f"Genes ({len(screen.genes):,} in the screen; type to search, empty = all)",
            screen.genes,
            key="genes",
            bind="query-params",
            persist_state="session",
            placeholder="All genes",
        )
    with c2:
        lineages = st.multiselect(
            "Lineages (empty = all)",
            screen.lineages,
            key="lineages",
            bind="query-params",
            persist_state="session",
            placeholder="All lineages",
        )
    with st.expander("Filter cell lines (optional)"):
        cell_lines = st.multiselect(
            "Cell lines (DepMap ids; empty = all in the chosen lineages)",
            screen.cell_lines,
            key="cells",
            bind="query-params",
            persist_state="session",
        )
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


# --------------------------------------------------------------------------- open-fit readers (cached by fit id)


def sidebar() -> None:
    """Shared sidebar: active screen, open fit, worker status, glossary."""
    settings = get_settings()
    with st.sidebar:
        key = screen_key()
        st.caption(f"**Screen:** {describe_screen_key(key)}")
        fit_id = open_fit_id()
        if fit_id:
            st.caption(f"**Open fit:** `{fit_id[:12]}`")
        if settings.read_only:
            st.caption(":material/visibility: Read-only demo mode: browsing stored fits only.")
        with st.expander("Glossary", icon=":material/menu_book:"):
            for term, text in GLOSSARY.items():  # speclet_core.analysis.glossary
                st.markdown(f"**{term}**: {text}")
