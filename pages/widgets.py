"""The widgets and page furniture every page shares (no caching here: that is ``pages/adapter.py``).

Pickers bound to the URL, the sidebar, the worker banner and queue, the result pages' header,
charts with their data as CSV (the Data page's DepMap import panel is ``pages/import_panel.py``).

User-derived text (names, screen keys, file names, messages quoting them) goes into Markdown only
through ``escape_markdown``; every CSV download goes through ``csv_download`` (``escaping.csv_text``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from model_store import FitManifest, StoredFit
from pages import adapter
from pages.adapter import get_queue, get_settings, guarded, open_fit_id, screen_key, set_open_fit, stop_with
from speclet_core.analysis import fitview, sentences, subsets
from speclet_core.analysis.escaping import code_span, csv_text, escape_markdown
from speclet_core.analysis.forest import MAX_FOREST_ROWS, Pick
from speclet_core.analysis.glossary import GLOSSARY
from speclet_core.data.cell_lines import cell_line_labels
from speclet_core.data.screen import Screen
from speclet_core.diagnostics import verdict
from speclet_core.errors import SpecletError
from speclet_core.labels import describe_unknown

APPROXIMATE_NOTE = ("**Approximate posterior (ADVI) — first look only.** A quick variational fit: its intervals are "
                    "usually too narrow. Refit with full NUTS on the Fit page before drawing conclusions.")
SYNTHETIC_NOTE = fitview.SYNTHETIC_NOTE
# The Fits tables' columns: wide enough that a screen's or lineages' names are not cut.
FITS_COLUMNS = {
    "screen": st.column_config.TextColumn("screen", width="medium"),
    "lineages": st.column_config.TextColumn("lineages", width="medium"),
    "fit time (s)": st.column_config.NumberColumn("fit time (s)", width="small"),
}
# Beyond this many readings, reloading the screen table takes seconds: per-reading views wait to be asked for.
AUTO_READINGS_MAX = 200_000


def chart_with_data(chart: alt.TopLevelMixin, data: pd.DataFrame, name: str, *, key: str | None = None,
                    fit: StoredFit | FitManifest | None = None) -> None:
    """Show a chart (its ⋯ menu exports PNG/SVG) and offer its data as CSV.

    With ``fit``, a fit that is not converged says so in the chart's subtitle (so an exported
    figure carries it) and in the download's caption and file name.
    """
    st.altair_chart(with_verdict_subtitle(chart, fit), width="stretch", key=key)
    csv_download(data, name, key=f"csv-{key or name}", fit=fit)


def csv_download(data: pd.DataFrame, name: str, *, key: str, what: str = "data",
                 fit: StoredFit | FitManifest | None = None) -> None:
    """A download button for ``data`` as CSV, formula-looking text cells neutralised (as ``rank --out``)."""
    note = verdict_note(fit)
    suffix = "" if not note else "_" + verdict.verdict_of(_manifest(fit)).level.value.replace("_", "-")  # type: ignore[arg-type]
    st.download_button(f"Download {what} (CSV, {len(data):,} rows)", csv_text(data).encode(),
                       file_name=f"{name}{suffix}.csv", mime="text/csv", key=key, icon=":material/download:",
                       help=note or None)
    if note:
        st.caption(f":material/warning: The download comes from a fit that {note}")
    manifest = _manifest(fit)
    if manifest is not None and fitview.screen_of(manifest)[1]:
        st.caption(f":material/science: {SYNTHETIC_NOTE}.")


def _manifest(fit: StoredFit | FitManifest | None) -> FitManifest | None:
    return fit.manifest if isinstance(fit, StoredFit) else fit


def verdict_note(fit: StoredFit | FitManifest | None) -> str:
    """'' for a converged fit (or none); else a short clause with the Diagnostics page's verdict, for captions."""
    manifest = _manifest(fit)
    if manifest is None:
        return ""
    judged = verdict.verdict_of(manifest)
    if judged.level == "converged":
        return ""
    return f"did not pass its diagnostics: {verdict.verdict_line(manifest)}."


def with_verdict_subtitle(chart: alt.TopLevelMixin, fit: StoredFit | FitManifest | None) -> alt.TopLevelMixin:
    """The chart with the verdict of a non-converged fit as its subtitle (its title kept)."""
    manifest = _manifest(fit)
    if manifest is None:
        return chart
    judged = verdict.verdict_of(manifest)
    synthetic = fitview.screen_of(manifest)[1]
    if judged.level == "converged" and not synthetic:
        return chart
    lines = [] if judged.level == "converged" else [verdict.verdict_line(manifest)]
    if synthetic:
        lines.append(SYNTHETIC_NOTE)
    title = chart.title if isinstance(chart.title, str) else getattr(chart.title, "text", "")
    if title is alt.Undefined:
        title = ""
    return chart.properties(title=alt.TitleParams(text=title, subtitle=lines, subtitleColor="#b45309"))


def verdict_banner(manifest: FitManifest, *, show_converged: bool = False) -> None:
    """The fit's one verdict (``diagnostics.verdict``), headline and reasons, as on the Diagnostics page.

    Results pages show it only when the fit is not converged; Diagnostics always shows it. An
    approximate fit's verdict is the approximate-fit note (``open_results_page`` shows it).
    """
    judged = verdict.verdict_of(manifest)
    if judged.level == "converged" and not show_converged:
        return
    show = {"converged": st.success, "look_closer": st.warning, "do_not_trust": st.error}[judged.level]
    reasons = judged.reasons if judged.level != "converged" else (*judged.reasons, verdict.CONVERGED_NOTE)
    # reasons name parameter elements (``gene_effect[<a gene's name>]``): escaped like every user-derived string
    text = f"**{judged.headline}**\n\n" + "\n".join(f"- {escape_markdown(r)}" for r in reasons)
    if not show_converged:
        text += "\n\nEvery number and chart on this page comes from this fit; see the Diagnostics page before relying on them."
    show(text)


def bullet_list(lines: Sequence[object]) -> None:
    """Plain-text lines (sentences, notes that may quote names) as Markdown list items, escaped."""
    for line in lines:
        st.markdown(f"- {escape_markdown(line)}")


def selection_widgets(screen: Screen) -> tuple[list[str], list[str], list[str]]:
    """Gene / lineage / cell-line pickers bound to the URL and kept across pages (empty = all).

    Genes are found by name (``gene_search``): a genome-wide screen's 18,000 names never go to the browser.
    """
    # the same keys on every page, so a selection made on one page is the selection on the next
    shared: dict[str, Any] = {"bind": "query-params", "persist_state": "session"}
    adapter.take_carried_selection({"genes": screen.genes, "lineages": screen.lineages, "cells": screen.cell_lines})
    c1, c2 = st.columns([3, 2])
    with c1:
        genes = gene_search(screen.genes, key="genes", label=f"Genes ({len(screen.genes):,} in the screen; empty = all)",
                            placeholder="All genes", where="this screen", persist_state="session")
    lineages = c2.multiselect("Lineages (empty = all)", screen.lineages, key="lineages", placeholder="All lineages",
                              **shared)
    with st.expander("Filter cell lines (optional)"):
        names = cell_line_labels(screen.cell_line_table)
        cell_lines = st.multiselect("Cell lines (empty = all in the chosen lineages)", screen.cell_lines,
                                    format_func=lambda c: names.get(c, c), key="cells", **shared)
    return list(genes), list(lineages), list(cell_lines)


def gene_search(labels: Sequence[str], *, key: str, label: str, suggestions: Sequence[str] = (),
                default: Sequence[str] = (), max_n: int | None = None, placeholder: str = "Choose genes", where: str = "this fit",
                persist_state: Any = None) -> list[str]:
    """Genes found by name: a search box over every label, and a picker (bound to the URL as ``key=…``, starting
    with ``default``) offering the chosen genes, the search's best matches and ``suggestions`` (never every label:
    18,000 would go to the browser on every rerun). Names a link or a person typed that ``labels`` lacks are dropped with a message.
    """
    current = [str(g) for g in st.session_state.get(key) or []]
    if len(labels) <= subsets.OFFER_ALL_MAX:  # a short list is offered whole, as it is
        query, found = "", subsets.search_labels((), "")
        options = list(dict.fromkeys([*labels, *current]))
    else:
        query = st.text_input(f"Find genes by name ({len(labels):,} in {where})", key=f"{key}_find",
                              placeholder="part of a name, e.g. RAS", help="Searches every gene; the best "
                              f"{subsets.SEARCH_LIMIT} matches are offered in the list below (exact name first).")
        found = subsets.search_labels(labels, query)
        options = list(dict.fromkeys([*current, *found.matches, *suggestions, *default]))
    chosen = st.multiselect(label, options, default=list(default) or None, key=key, bind="query-params",
                            accept_new_options=True,
                            max_selections=max_n, placeholder=placeholder, persist_state=persist_state)
    if query.strip():
        if not found.n_matches:
            st.caption(f"No gene in {escape_markdown(where)} contains “{escape_markdown(query.strip())}”.")
        else:
            more = f" (the best {len(found.matches)} are listed)" if found.truncated else ""
            st.caption(f"{found.n_matches:,} gene{'s' if found.n_matches != 1 else ''} match "
                       f"“{escape_markdown(query.strip())}”{more}: open the list above to add them.")
    known = set(labels) if not isinstance(labels, set) else labels
    unknown = [g for g in chosen if g not in known]
    if unknown:
        st.warning(escape_markdown(describe_unknown(unknown, list(labels), "gene", where)) + " They are left out.",
                   icon=":material/warning:")
    return [g for g in chosen if g in known]


def model_option_inputs(spec: Any, screen: Screen) -> Any:
    """Inputs for the options a model reads (a biomarker column, a batch column), bound to the URL; their
    ``ModelOptions`` (a required option left empty stays ``None``: the page says what to choose)."""
    from speclet_core.data.covariates import marker_columns
    from speclet_core.records import ModelOptions

    fields = ModelOptions.model_fields
    chosen: dict[str, str | None] = {}
    if "biomarker" in spec.options:
        usable = marker_columns(screen.data)
        examples = ", ".join(f"`{escape_markdown(u)}`" for u in list(usable.values())[:6]) or "none found"
        text = st.text_input("Biomarker: which cell lines are marked", key="biomarker", bind="query-params",
                             placeholder="e.g. is_mutated:KRAS", help=f"{fields['biomarker'].description}")
        st.caption(f"Columns of this screen that can mark cell lines: {examples}.")
        chosen["biomarker"] = text.strip() or None
    if "batch" in spec.options:
        candidates = [c for c in ("screen", "pdna_batch") if c in screen.data.columns and screen.data[c].nunique() > 1]
        pick = st.selectbox("Batch shifts", ["(none)", *candidates], key="batch", bind="query-params",
                            help=fields["batch"].description)
        chosen["batch"] = None if pick == "(none)" else pick
    return ModelOptions(**chosen)


def worker_banner() -> None:
    """A clear banner when the queue cannot be read, or when no live worker is seen (fits would wait forever)."""
    status = adapter.queue_status()
    if status is None or get_settings().read_only:
        return
    if not status.get("alive"):
        st.warning(
            "**No fitting worker is running**, so new fits will wait in the queue. Start one in a terminal with "
            "`python -m speclet_core worker` (or use `make run`, which starts it for you).",
            icon=":material/warning:",
        )


def queue_panel() -> None:
    """The job queue with live progress; polls only while a job is queued or running."""
    from speclet_core.analysis.fitview import jobs_table

    listed = adapter.read_queue(lambda q: q.list(limit=50))
    active = any(j.active for j in listed or [])
    who = adapter.submitter()

    @st.fragment(run_every=1.0 if active else None)
    def _panel() -> None:
        jobs = adapter.read_queue(lambda q: q.list(limit=50))
        st.subheader("Queue")
        if jobs is None:
            st.caption(adapter.QUEUE_GONE_NOTE)
            return
        if not jobs:
            st.caption("No fits submitted yet.")
            return
        table = jobs_table(jobs)
        st.dataframe(
            table.drop(columns=["fit_id"]), hide_index=True, width="stretch",
            column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0),
                           # "compiling · 1 min" must not be cut to "compili"
                           "phase": st.column_config.TextColumn("phase", width="medium"),
                           "ETA": st.column_config.TextColumn("ETA", width="medium")},
        )
        running = [j for j in jobs if j.active]
        if active and not running:
            st.rerun()  # the last active job just finished: refresh stored fits and stop polling
        mine = [j for j in running if get_queue().may_cancel(j, who)]  # the queue's own rule: never offer a refused cancel
        if mine:
            c1, c2 = st.columns([3, 1])
            target = c1.selectbox("Active fit", [j.job_id for j in mine],
                                  format_func=lambda i: f"{i[:12]} · {next(j for j in mine if j.job_id == i).request.model}",
                                  key="cancel_target")
            if c2.button("Cancel this fit", icon=":material/cancel:") and target:
                guarded(get_queue().cancel, target, by=who)
                st.rerun()
        if running and not get_settings().read_only:
            rights = "as an administrator, you can cancel any fit" if who.admin else \
                "only a fit's submitter (or an administrator) can cancel it"
            st.caption(f"You submit as `{_plain(who.name)}`; {rights}.")
        done = [j for j in jobs if str(j.status) == "done"]
        if done and st.button(f"Open the newest finished fit ({done[0].job_id[:12]})", key="open_newest"):
            set_open_fit(done[0].job_id)
            st.rerun()

    _panel()


def _plain(text: str) -> str:
    """``text`` safe inside a Markdown code span (no backticks to close it)."""
    return text.replace("`", "'")


def sidebar() -> None:
    """Shared sidebar: active screen, open fit, worker status, glossary."""
    settings = get_settings()
    with st.sidebar:
        key = screen_key()
        fit_id = open_fit_id()
        manifest = _open_manifest(fit_id)
        if manifest is not None:  # the screen the open fit was made on, from its manifest (not the active screen)
            name, synthetic = fitview.screen_of(manifest)
            st.caption(f"**Open fit:** {code_span(fit_id[:12])} · **screen:** {escape_markdown(name)}"
                       + (" · :orange-badge[synthetic data]" if synthetic else ""))
            st.caption(f"New fits use: {escape_markdown(adapter.describe_screen(key))}")
        else:
            st.caption(f"**Screen:** {escape_markdown(adapter.describe_screen(key))}")
            if fit_id:  # from the URL: anything a link may hold
                st.caption(f"**Open fit:** {code_span(fit_id[:12])}")
        if settings.read_only:
            st.caption(":material/visibility: Read-only demo mode: browsing stored fits only.")
        with st.expander("Glossary", icon=":material/menu_book:"):
            for term, text in GLOSSARY.items():  # speclet_core.analysis.glossary
                st.markdown(f"**{term}**: {text}")


def _open_manifest(fit_id: str | None) -> FitManifest | None:
    """The open fit's manifest, or None (no fit, a bad id, a deleted fit: the page itself says why)."""
    if not fit_id:
        return None
    try:
        store = adapter.get_store()
        return store.get(fit_id).manifest if store.exists(fit_id) else None
    except (SpecletError, OSError, ValueError):  # a bad id is reported by the page, never by the sidebar
        return None


# --------------------------------------------------------------------------- result pages


def open_results_page(title: str, *, diagnostics: bool = False) -> StoredFit:
    """Title, the open fit (or a pointer to open one), its verdict banner, its caption and the approximate-fit note.

    ``diagnostics``: the Diagnostics page, which shows the verdict whatever it is.
    """
    st.title(title)
    fit = adapter.require_open_fit()
    approximate = fitview.is_approximate(fit.manifest)
    if diagnostics or not approximate:
        verdict_banner(fit.manifest, show_converged=diagnostics)
    st.caption(fitview.fit_caption(fit.manifest))
    note = adapter.auto_opened_note()
    if note:
        st.caption(f":material/auto_awesome: {note}")
    if approximate:
        st.warning(APPROXIMATE_NOTE, icon=":material/warning:")
    return fit


def recovery_note(rec: dict[str, float], inner: float, outer: float, what: str, *, lead: str) -> None:
    """The recovery sentence: with a tick when coverage is what the intervals promise, else a warning saying why not."""
    text = sentences.describe_recovery(rec, inner, outer, what)
    if not text:
        return
    problems = sentences.recovery_problems(rec, inner, outer)
    if problems:
        st.warning(f"{lead} {escape_markdown(text)}\n\n" + "\n".join(f"- {escape_markdown(p)}" for p in problems),
                   icon=":material/warning:")
    else:
        st.markdown(f":material/verified: {lead} {escape_markdown(text)}")


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
    """Strongest / weakest N genes (a page at a time) or genes found by name, bound to the URL; a caption says
    which genes are shown out of how many, and by which rule (``subsets.describe_subset``)."""
    c1, c2, c3 = st.columns([2, 1, 1])
    how = c1.segmented_control(
        "Genes", [p.value for p in Pick], default=Pick.STRONGEST.value, key=f"{key}_how",
        format_func={"strongest": "Strongest dependencies", "weakest": "Weakest / positive",
                     "chosen": "Search by name"}.get, bind="query-params") or Pick.STRONGEST.value
    n_total = len(summary)
    if how == Pick.CHOSEN.value:
        chosen = gene_search(summary["gene"].tolist(), key=f"{key}_genes", label=f"Genes to show (up to {max_n})",
                             suggestions=subsets.top_genes(summary, min(20, n_total)), max_n=max_n,
                             placeholder="e.g. KRAS")
        if not chosen:
            stop_with("Type part of a gene's name above, then pick genes from the list (the strongest dependencies "
                      "are offered first).")
        st.caption(f"Showing {subsets.describe_subset(len(chosen), n_total, how=Pick.CHOSEN)}.")
        return list(chosen)
    n = int(c2.number_input("How many", 1, max_n, min(default_n, n_total, max_n), key=f"{key}_n", bind="query-params"))
    pages = max(1, -(-n_total // n))
    page = (int(c3.number_input(f"Page (of {pages:,})", 1, pages, 1, key=f"{key}_page", bind="query-params"))
            if allow_page and pages > 1 else 1)
    genes = subsets.top_genes(summary, n, how=how, page=page - 1)
    st.caption(f"Showing {subsets.describe_subset(len(genes), n_total, how=how, page=page - 1, per_page=n)}.")
    return genes


def gene_pick_one(labels: Sequence[str], *, key: str, label: str, suggestions: Sequence[str],
                  where: str = "this fit", help: str | None = None) -> str:
    """One gene, found by name (``gene_search``'s search box) or taken from ``suggestions`` (the first is the
    default), bound to the URL as ``key=…``; a name the fit lacks falls back to the default with a message."""
    current = st.session_state.get(key)
    if len(labels) <= subsets.OFFER_ALL_MAX:  # a short list is offered whole, suggestions first
        query, found = "", subsets.search_labels((), "")
        options = list(dict.fromkeys([*suggestions, *labels]))
    else:
        query = st.text_input(f"Find a gene by name ({len(labels):,} in {where})", key=f"{key}_find",
                              placeholder="part of a name, e.g. RAS")
        found = subsets.search_labels(labels, query)
        options = list(dict.fromkeys([*found.matches, *([str(current)] if current else []), *suggestions]))
    picked = st.selectbox(label, options, key=key, bind="query-params", accept_new_options=True, help=help)
    if query.strip():
        st.caption(f"{found.n_matches:,} gene{'s' if found.n_matches != 1 else ''} match "
                   f"“{escape_markdown(query.strip())}”" + (f" (the best {len(found.matches)} are listed)"
                                                            if found.truncated else "") + ".")
    if picked is None or str(picked) not in set(labels):
        if picked is not None:
            st.warning(escape_markdown(describe_unknown([str(picked)], list(labels), "gene", where))
                       + f" Showing {escape_markdown(suggestions[0])} instead.", icon=":material/warning:")
        return str(suggestions[0])
    return str(picked)


def table_page(table: pd.DataFrame, *, key: str, per_page: int = subsets.TABLE_PAGE_ROWS, what: str = "rows"
               ) -> pd.DataFrame:
    """One page of a long table (page number bound to the URL as ``key=…``), with a caption saying which rows."""
    pages = max(1, -(-len(table) // per_page))
    page = int(st.number_input(f"Page of the table (of {pages:,})", 1, pages, 1, key=key, bind="query-params"))\
        if pages > 1 else 1
    start = (page - 1) * per_page
    shown = table.iloc[start : start + per_page]
    if pages > 1:
        st.caption(f"Rows {start + 1:,}–{start + len(shown):,} of {len(table):,} {what}; the CSV holds all of them.")
    return shown
