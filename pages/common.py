"""Settings, caches, URL state and error display shared by every page.

``st.cache_resource`` for handles (store, queue, screens, open fits, big summaries),
``st.cache_data`` for small values; the result pages' caches are in ``results_common.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import altair as alt
import pandas as pd
import streamlit as st

from model_store import ModelStore, StoredFit
from speclet_core.data.screen import Screen, load_screen
from speclet_core.data.sources import default_screen_key, resolve_screen_path
from speclet_core.errors import DataValidationError, SpecletError
from speclet_core.queue.jobs import JobQueue
from speclet_core.settings import Settings

T = TypeVar("T")


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
    st.download_button(f"Download data (CSV, {len(data):,} rows)", data.to_csv(index=False).encode(),
                       file_name=f"{name}.csv", mime="text/csv", key=f"csv-{key or name}", icon=":material/download:")


@st.cache_resource(max_entries=4)
def _selection_cached(path: str, mtime_ns: int, genes: tuple, lineages: tuple, cells: tuple) -> Any:
    from speclet_core.data.screen import select_screen

    screen = _load_screen_cached(path, mtime_ns)
    return select_screen(screen, list(genes) or None, list(lineages) or None, list(cells) or None)


def selection_for(key: str, path: Path, genes: list[str], lineages: list[str], cells: list[str]) -> Any:
    """The validated ``ScreenSelection`` (with fingerprint) of the current widgets."""
    return _selection_cached(str(path), path.stat().st_mtime_ns, tuple(genes), tuple(lineages), tuple(cells))


@st.cache_data(max_entries=32, show_spinner="Building the model graph…")
def _model_graph(model: str, key: str, fingerprint: str, genes: tuple, lineages: tuple, cells: tuple) -> str:
    from speclet_core.analysis.fitview import model_graph_source

    path = resolve_screen_path(key, get_settings())
    selection = selection_for(key, path, list(genes), list(lineages), list(cells))
    return model_graph_source(model, selection)


def model_graph(model: str, key: str, fingerprint: str, genes: list, lineages: list, cells: list) -> str:
    return _model_graph(model, key, fingerprint, tuple(genes), tuple(lineages), tuple(cells))


@st.cache_data(max_entries=64, show_spinner=False)
def _fit_cost(model: str, key: str, fingerprint: str, genes: tuple, lineages: tuple, cells: tuple,
              sampler_json: str) -> str:
    from speclet_core.fitting.engine import estimate_cost
    from speclet_core.records import SamplerSettings

    path = resolve_screen_path(key, get_settings())
    selection = selection_for(key, path, list(genes), list(lineages), list(cells))
    return estimate_cost(selection, model, SamplerSettings.model_validate_json(sampler_json)).describe()


def fit_cost(model: str, key: str, fingerprint: str, genes: list, lineages: list, cells: list, sampler: Any) -> str:
    """The fitting engine's cost estimate (rows × parameters → time and memory), as one sentence."""
    return _fit_cost(model, key, fingerprint, tuple(genes), tuple(lineages), tuple(cells), sampler.model_dump_json())


@st.cache_resource(max_entries=4, show_spinner="Reading the fit's summary…")
def fit_summary(fit_id: str) -> pd.DataFrame:
    """The stored per-element summary (one row per parameter element; millions for big fits).

    Cached as a resource (shared, not copied on every hit): treat it as read-only.
    """
    return get_store().get(fit_id).summary()


def element_choices(fit_id: str, hyper: list[str], k: int = 12) -> dict[str, tuple[str, dict[str, Any]]]:
    """Plot choices, label → (variable, selection): hyper-parameters first, then the ``k`` worst elements."""
    from speclet_core.diagnostics.checks import element_selection, rank_worst

    summary = fit_summary(fit_id)
    rows = pd.concat([rank_worst(summary, k=50, variables=hyper), rank_worst(summary, k=k)])
    return {r["parameter"]: element_selection(r) for _, r in rows.drop_duplicates("parameter").iterrows()}
