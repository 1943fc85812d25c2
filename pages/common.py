"""The one helper module every page uses: settings, caches, URL state, errors, glossary.

Streamlit caching lives only here: ``st.cache_resource`` for handles (store, queue,
screens, open fits), ``st.cache_data`` for small summaries keyed by fit id.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import altair as alt
import pandas as pd
import streamlit as st

from model_store import ModelStore, StoredFit
from speclet_core.data import Screen, load_screen
from speclet_core.errors import DataValidationError, SpecletError
from speclet_core.jobs import JobQueue, worker_status
from speclet_core.screens import default_screen_key, describe_screen_key, resolve_screen_path
from speclet_core.settings import Settings

T = TypeVar("T")

GLOSSARY = {
    "LFC": "log2 fold change of an sgRNA's abundance between the start and end of the screen. Strongly negative: "
    "cells lost when the gene is knocked out, i.e. the cells depend on it.",
    "sgRNA": "single guide RNA: the short sequence that directs Cas9 to cut one gene. Each gene is targeted by a few "
    "guides, which differ in how well they cut.",
    "lineage": "the tissue a cancer cell line comes from (colorectal, blood, skin, …). Lineage-selective dependencies "
    "are genes only some lineages need.",
    "posterior": "what the model believes about a quantity after seeing the data: not one number but a distribution, "
    "represented by thousands of draws.",
    "HDI": "highest-density interval: the narrowest range holding, e.g., 89% of the posterior. There is an 89% "
    "probability (under the model) that the true value lies inside.",
    "R-hat": "compares chains: near 1.00 means independent chains agree. Above 1.01 means the sampler has not settled "
    "and the numbers should not be trusted yet.",
    "ESS": "effective sample size: how many independent draws the correlated draws are worth. Below ~400 the "
    "intervals' edges are imprecise.",
    "divergence": "a warning from the sampler that it could not follow the posterior's shape in some region; even a "
    "few can bias the results. Fix by re-fitting with a higher target acceptance or a different model.",
}


@st.cache_resource
def get_settings() -> Settings:
    return Settings.from_env()


@st.cache_resource
def get_store() -> ModelStore:
    settings = get_settings()
    settings.fits_dir.mkdir(parents=True, exist_ok=True)
    return ModelStore(settings.fits_dir)


@st.cache_resource
def get_queue() -> JobQueue:
    return JobQueue.from_settings(get_settings())


@st.cache_resource(max_entries=8)
def _load_screen_cached(path: str, mtime_ns: int) -> Screen:
    return load_screen(path)


def screen_key() -> str:
    """The active screen's key: URL first, then this session, then the default."""
    key = st.query_params.get("screen") or st.session_state.get("screen_key") or default_screen_key(get_settings())
    st.session_state["screen_key"] = key
    return key


def set_screen_key(key: str) -> None:
    st.session_state["screen_key"] = key
    st.query_params["screen"] = key


def active_screen() -> tuple[str, Path, Screen]:
    """(key, path, validated screen) of the active screen; shows the problem and stops the page on error."""
    key = screen_key()
    try:
        path = resolve_screen_path(key, get_settings())
        screen = _load_screen_cached(str(path), path.stat().st_mtime_ns)
    except SpecletError as exc:
        show_error(exc)
        if key != "demo" and st.button("Go back to the demo screen"):
            set_screen_key("demo")
            st.rerun()
        st.stop()
    return key, path, screen


def open_fit_id() -> str | None:
    """The open fit from ``?fit=``; kept in the URL when moving between pages."""
    fit = st.query_params.get("fit")
    if fit:
        st.session_state["fit_id"] = fit
    elif st.session_state.get("fit_id"):
        st.query_params["fit"] = st.session_state["fit_id"]
    return st.session_state.get("fit_id")


def set_open_fit(fit_id: str) -> None:
    st.session_state["fit_id"] = fit_id
    st.query_params["fit"] = fit_id


@st.cache_resource(max_entries=16)
def _stored_fit(fit_id: str) -> StoredFit:
    return get_store().get(fit_id)  # stored fits never change; a deleted one is checked below


def require_open_fit() -> StoredFit:
    """The open fit, or a friendly pointer to where fits are opened (and stop the page)."""
    fit_id = open_fit_id()
    if not fit_id:
        st.info("No fit is open. Open one on the **Fit models** page (or the Home page's recent fits).")
        st.page_link("pages/fit.py", label="Go to Fit models", icon=":material/play_arrow:")
        st.stop()
    try:
        if not get_store().exists(fit_id):
            _stored_fit.clear()
            get_store().get(fit_id)  # raises the store's "not found" / "invalid id" message
        fit = _stored_fit(fit_id)
    except SpecletError as exc:
        show_error(exc)
        st.stop()
    return fit


def show_error(exc: Exception) -> None:
    """A readable message for a core error (never a traceback)."""
    if isinstance(exc, DataValidationError):
        st.error(f"**{exc.source}** has {len(exc.problems)} problem(s):\n\n" + "\n".join(f"- {p}" for p in exc.problems))
    else:
        st.error(str(exc))


def guarded(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a core function; on a ``SpecletError`` show it and stop the page."""
    try:
        return func(*args, **kwargs)
    except SpecletError as exc:
        show_error(exc)
        st.stop()
        raise  # unreachable: st.stop() raises


def chart_with_data(chart: alt.TopLevelMixin, data: pd.DataFrame, name: str, *, key: str | None = None) -> None:
    """Show a chart (its ⋯ menu exports PNG/SVG) and offer its data as CSV."""
    st.altair_chart(chart, width="stretch", key=key)
    st.download_button(
        f"Download data (CSV, {len(data):,} rows)",
        data.to_csv(index=False).encode(),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"csv-{key or name}",
        icon=":material/download:",
    )


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
            for term, text in GLOSSARY.items():
                st.markdown(f"**{term}**: {text}")


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


@st.cache_resource(max_entries=4)
def _selection_cached(path: str, mtime_ns: int, genes: tuple, lineages: tuple, cells: tuple) -> Any:
    from speclet_core.data import select_screen

    screen = _load_screen_cached(path, mtime_ns)
    return select_screen(screen, list(genes) or None, list(lineages) or None, list(cells) or None)


def selection_for(key: str, path: Path, genes: list[str], lineages: list[str], cells: list[str]) -> Any:
    """The validated ``ScreenSelection`` (with fingerprint) of the current widgets."""
    return _selection_cached(str(path), path.stat().st_mtime_ns, tuple(genes), tuple(lineages), tuple(cells))


@st.cache_data(max_entries=32, show_spinner="Building the model graph…")
def _model_graph(model: str, key: str, fingerprint: str, genes: tuple, lineages: tuple, cells: tuple) -> str:
    from speclet_core.fitview import model_graph_source

    path = resolve_screen_path(key, get_settings())
    selection = selection_for(key, path, list(genes), list(lineages), list(cells))
    return model_graph_source(model, selection)


def model_graph(model: str, key: str, fingerprint: str, genes: list, lineages: list, cells: list) -> str:
    return _model_graph(model, key, fingerprint, tuple(genes), tuple(lineages), tuple(cells))


@st.cache_data(max_entries=64, show_spinner=False)
def _fit_cost(model: str, key: str, fingerprint: str, genes: tuple, lineages: tuple, cells: tuple,
              sampler_json: str) -> str:
    from speclet_core.fitting import estimate_cost
    from speclet_core.records import SamplerSettings

    path = resolve_screen_path(key, get_settings())
    selection = selection_for(key, path, list(genes), list(lineages), list(cells))
    return estimate_cost(selection, model, SamplerSettings.model_validate_json(sampler_json)).describe()


def fit_cost(model: str, key: str, fingerprint: str, genes: list, lineages: list, cells: list, sampler: Any) -> str:
    """The fitting engine's cost estimate (rows × parameters → time and memory), as one sentence."""
    return _fit_cost(model, key, fingerprint, tuple(genes), tuple(lineages), tuple(cells), sampler.model_dump_json())


def queue_panel() -> None:
    """The job queue with live progress; polls only while a job is queued or running."""
    from speclet_core.fitview import jobs_table

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

DIM_COLUMNS = ("gene", "sgrna", "cell_line", "lineage")


def fit_caption(manifest: dict[str, Any]) -> str:
    from speclet_core.fitview import recent_fits_table

    row = recent_fits_table([manifest]).iloc[0]
    return (f"Model **{row['model']}** (v{manifest.get('model_version', '?')}) · genes {row['genes']} · lineages "
            f"{row['lineages']} · {row['method']} · fitted {row['created']} in {row['fit time (s)']} s · "
            f"fit `{manifest.get('fit_id', '')[:12]}`")


@st.cache_resource(max_entries=4, show_spinner="Reading the fit's summary…")
def fit_summary(fit_id: str) -> pd.DataFrame:
    """The stored per-element summary (one row per parameter element; millions for big fits).

    Cached as a resource (shared, not copied on every hit): treat it as read-only.
    """
    return get_store().get(fit_id).summary()


def style_diagnostics(df: pd.DataFrame) -> Any:
    """Numbers rounded; R-hat > 1.01 and ESS < 400 highlighted."""
    from speclet_core.fitcheck import ESS_MIN, RHAT_MAX

    shown = df.drop(columns=[c for c in DIM_COLUMNS if c in df.columns] + ["variable"], errors="ignore")
    bad = "background-color: #f8d7da"
    styler = shown.style.format(precision=3, subset=[c for c in shown.columns if shown[c].dtype.kind == "f"])
    if "r_hat" in shown:
        styler = styler.map(lambda v: bad if v > RHAT_MAX else "", subset=["r_hat"])
    ess_cols = [c for c in ("ess_bulk", "ess_tail") if c in shown]
    if ess_cols:
        styler = styler.map(lambda v: bad if v < ESS_MIN else "", subset=ess_cols)
    return styler


def element_choices(fit_id: str, hyper: list[str], k: int = 12) -> dict[str, tuple[str, dict[str, Any]]]:
    """Plot choices, label → (variable, selection): hyper-parameters first, then the ``k`` worst elements."""
    from speclet_core.fitcheck import element_selection, rank_worst

    summary = fit_summary(fit_id)
    rows = pd.concat([rank_worst(summary, k=50, variables=hyper), rank_worst(summary, k=k)])
    return {r["parameter"]: element_selection(r) for _, r in rows.drop_duplicates("parameter").iterrows()}


def sample_stats(fit: StoredFit) -> Any:
    return fit.dataset("sample_stats")


def sample_stat(fit: StoredFit, name: str) -> Any:
    """One sampler statistic (e.g. ``diverging``, ``energy``), or None when the fit has none."""
    if "sample_stats" not in (fit.manifest.get("groups") or {}):
        return None
    ds = fit.dataset("sample_stats")
    return ds[name].load() if name in ds else None
