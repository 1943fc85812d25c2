"""The one Streamlit adapter of the pages: settings, caches, URL state and error display.

Settings are read once (``get_settings``). ``st.cache_resource`` holds handles (store, queue,
screens, open fits) and large read-only values (summaries, heatmap matrices, a fit's readings and
predictions), which would otherwise be copied on every rerun; ``st.cache_data`` holds the small
tables the pages chart, keyed by fit id and options (the open ``StoredFit`` is passed unhashed as
``_fit``). Every function here makes one core call; the pages only read widgets and render.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import streamlit as st

from model_store import ModelStore, StoredFit
from speclet_core.analysis import covariates, ppc
from speclet_core.analysis.biomarker import BIOMARKER_VARIABLES, CELL_LINE_MARKED
from speclet_core.analysis.compare import check_same_data, loo_table
from speclet_core.analysis.contrasts import contrast_lineage
from speclet_core.analysis.escaping import escape_markdown
from speclet_core.analysis.fitview import fit_label
from speclet_core.analysis.forest import forest_rows, load_truth
from speclet_core.analysis.heatmap import HEATMAP_STATS, HeatmapView, fit_cell_line_lineages
from speclet_core.analysis.heatmap import heatmap_view as build_heatmap
from speclet_core.analysis.pairs import PairwiseComparison, compare_pairs
from speclet_core.analysis.ranking import rank_genes
from speclet_core.analysis.readings import fit_readings
from speclet_core.data.bounded import load_screen_bounded
from speclet_core.data.screen import Screen
from speclet_core.data.sources import default_screen_key, describe_screen_key, resolve_screen_path
from speclet_core.errors import DataValidationError, SpecletError
from speclet_core.queue.access import Submitter, identify_submitter, new_session_name
from speclet_core.queue.jobs import JobQueue, worker_status
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


def submitter() -> Submitter:
    """This browser session's submitter: the user an authenticating proxy names in ``SPECLET_USER_HEADER``,
    else an anonymous id kept for this session (a reload starts a new session, and a new id)."""
    name = st.session_state.get("submitter_session")
    if not name:
        name = st.session_state["submitter_session"] = new_session_name()
    return identify_submitter(st.context.headers, name, get_settings())


def _load_screen_cached(path: str) -> Screen:
    """The screen at ``path``, read in a bounded child process; the core caches successes and failures by
    (path, size, modification time), so this process holds only validated tables and a bad link is read once."""
    return load_screen_bounded(path, get_settings(), name=Path(path).name)


def screen_key() -> str:
    """The active screen's key: URL first, then this session, then the default; always written back to the URL,
    so that a link copied from any page (after any navigation) names its screen."""
    key = st.query_params.get("screen") or st.session_state.get("screen_key") or default_screen_key(get_settings())
    st.session_state["screen_key"] = key
    if st.query_params.get("screen") != key:
        st.query_params["screen"] = key
    return key


def describe_screen(key: str) -> str:
    """The active screen's display name (an upload by its original file name, as every session sees it)."""
    return describe_screen_key(key, get_settings())


SHARED_PARAMS = ("screen", "fit", "genes", "lineages", "cells")  # what every page's links carry to the next page


def shared_params(**selection: list[str]) -> dict[str, str | list[str]]:
    """The URL state a link to another page keeps: the screen, the open fit and the selection.

    Widget-bound parameters are not readable through ``st.query_params``: pass the pickers' values as
    ``genes=…, lineages=…, cells=…``.
    """
    out: dict[str, str | list[str]] = {}
    for key in SHARED_PARAMS:
        values = selection.get(key) or st.query_params.get_all(key)
        if values:
            # Streamlit drops a parameter bound to a widget of the page being left when the next page opens, so
            # the pickers' values travel under their own names and are handed to the pickers there
            # (``take_carried_selection``)
            picked = key in PICKER_PARAMS
            out[CARRIED_PREFIX + key if picked else key] = list(values) if picked else values[0]
    return out


PICKER_PARAMS = ("genes", "lineages", "cells")
CARRIED_PREFIX = "carried_"


def take_carried_selection(choices: dict[str, list[str]]) -> None:
    """Before the pickers are drawn: a selection a link carried (``carried_genes=…``) becomes the pickers' value
    (only names the screen has), and the carried parameters leave the URL (the pickers' own ``genes=…`` replace it)."""
    for key in PICKER_PARAMS:
        name = CARRIED_PREFIX + key
        if name in st.query_params:
            known = set(choices[key])
            st.session_state[key] = [v for v in st.query_params.get_all(name) if v in known]
            del st.query_params[name]


def flash(message: str) -> None:
    """A success message (Markdown, names escaped) to show once, after the rerun that follows an action."""
    st.session_state["flash"] = message


def show_flash() -> None:
    message = st.session_state.pop("flash", None)
    if message:
        st.success(message, icon=":material/check_circle:")


def set_screen_key(key: str) -> None:
    st.session_state["screen_key"] = key
    st.query_params["screen"] = key


def active_screen() -> tuple[str, Path, Screen]:
    """(key, path, validated screen) of the active screen; shows the problem and stops the page on error."""
    key = screen_key()
    try:
        path = resolve_screen_path(key, get_settings())
        screen = _load_screen_cached(str(path))
    except SpecletError as exc:
        show_error(exc)
        if key != "demo" and st.button("Go back to the demo screen"):
            set_screen_key("demo")
            st.rerun()
        st.stop()
    return key, path, screen


def open_fit_id() -> str | None:
    """The open fit from ``?fit=``; kept in the URL when moving between pages.

    With no fit open, the first fit opens by itself (``_auto_open_fit``): a new user sees results without a click.
    """
    fit = st.query_params.get("fit")
    if fit:
        st.session_state["fit_id"] = fit
    elif st.session_state.get("fit_id"):
        st.query_params["fit"] = st.session_state["fit_id"]
    else:
        _auto_open_fit()
    return st.session_state.get("fit_id")


def _auto_open_fit() -> None:
    """Open the newest stored fit when it is the store's only one, or when this session waited for the first fit."""
    try:
        stored = get_store().list()
    except SpecletError:
        return
    if len(stored) == 1 or (stored and st.session_state.get("awaiting_first_fit")):
        st.session_state.pop("awaiting_first_fit", None)
        st.session_state["auto_opened"] = stored[0].fit_id
        set_open_fit(stored[0].fit_id)


def auto_opened_note() -> str | None:
    """Markdown saying the open fit was opened automatically (None when the user chose it)."""
    fit_id = st.session_state.get("fit_id")
    if not fit_id or st.session_state.get("auto_opened") != fit_id:
        return None
    return (f"Fit `{fit_id[:12]}` opened automatically (the first stored fit). Open another one on the Home or "
            "Fit models page.")


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
        if follow_first_fit():
            st.stop()  # the fragment reruns the page when the first fit is stored
        st.info("No fit is open. Open one on the **Fit models** page (or the Home page's recent fits).")
        st.page_link("pages/fit.py", label="Go to Fit models", icon=":material/play_arrow:", query_params=shared_params())
        st.stop()
    try:
        if len(fit_id) < 64 and re.fullmatch(r"[0-9a-f]{12,63}", fit_id):
            # the 12-character id the pages show (or any longer unique start): the URL gets the full id
            fit_id = get_store().resolve(fit_id)
            set_open_fit(fit_id)
        if not get_store().exists(fit_id):
            _stored_fit.clear()
            get_store().get(fit_id)  # raises the store's "not found" / "invalid id" message
        fit = _stored_fit(fit_id)
    except SpecletError as exc:
        show_error(exc)
        st.stop()
    return fit


FIRST_POLL_S = 2.0  # how often a page following the first fit looks again


def first_start_state() -> tuple[int, list[Any] | None, bool]:
    """(stored fits, jobs or None when the queue cannot be read, following the first fit?).

    Following: nothing is stored yet and a fit is queued or running (``serve`` queues the demo fit before
    the dashboard answers, so a first visit already sees it). This session then opens the first fit that
    is stored (``_auto_open_fit``).
    """
    n_stored = len(get_store().list())
    jobs = read_queue(lambda q: q.list(limit=20))
    following = not n_stored and any(j.active for j in jobs or [])
    if following:
        st.session_state["awaiting_first_fit"] = True
    return n_stored, jobs, following


def follow_first_fit(*, on_home: bool = False) -> bool:
    """While the first fit is queued or running: say what it is doing, refresh every ``FIRST_POLL_S`` and rerun
    the whole page once it is stored (which opens it). Silent, and no refreshing, when no first fit is coming.

    Returns whether it is following (the caller then leaves out its "nothing yet" text).
    """
    from speclet_core.analysis.fitview import first_start_message, first_start_progress

    _, _, following = first_start_state()
    if not following:
        return False

    @st.fragment(run_every=FIRST_POLL_S)
    def _follow() -> None:
        n_stored, jobs, still = first_start_state()
        if n_stored or not still:
            st.rerun(scope="app")  # the fit is stored (or gone): the whole page reruns and opens it
        message = first_start_message(n_stored, jobs or [], on_home=on_home)
        if message:
            st.info(message, icon=":material/hourglass_top:")
            fraction, text = first_start_progress(jobs or [])
            st.progress(fraction, text=text)

    _follow()
    return True


def show_error(exc: Exception) -> None:
    """A readable message for a core error (never a traceback); messages quote user input, so they are escaped."""
    if isinstance(exc, DataValidationError):
        st.error(f"**{escape_markdown(exc.source)}** has {len(exc.problems)} problem(s):\n\n"
                 + "\n".join(f"- {escape_markdown(p)}" for p in exc.problems))
    else:
        st.error(escape_markdown(exc))


def guarded(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a core function; on a ``SpecletError`` show it and stop the page."""
    try:
        return func(*args, **kwargs)
    except SpecletError as exc:
        show_error(exc)
        st.stop()
        raise  # unreachable: st.stop() raises


QUEUE_UNAVAILABLE = ("**The job queue cannot be read**, so fits cannot be submitted or followed for now; stored fits "
                     "still open on every page.")
QUEUE_GONE_NOTE = "The job queue cannot be read just now (see the message at the top); stored fits open as usual."


def queue_status() -> dict[str, Any] | None:
    """The workers and queue counts, or None after showing why the queue cannot be read (damaged, unreadable)."""
    try:
        return worker_status(get_settings())
    except SpecletError as exc:
        st.error(f"{QUEUE_UNAVAILABLE}\n\n{exc}", icon=":material/error:")
        return None


def read_queue(func: Callable[[JobQueue], T]) -> T | None:
    """``func(queue)``, or None when the queue cannot be read (``queue_status``, on every page, shows why)."""
    try:
        return func(get_queue())
    except SpecletError:
        return None


@st.cache_resource(max_entries=4)
def _selection_cached(path: str, mtime_ns: int, genes: tuple, lineages: tuple, cells: tuple) -> Any:
    from speclet_core.data.selection import select_screen

    screen = _load_screen_cached(path)
    return select_screen(screen, list(genes) or None, list(lineages) or None, list(cells) or None)


def selection_for(key: str, path: Path, genes: list[str], lineages: list[str], cells: list[str]) -> Any:
    """The validated ``ScreenSelection`` (with fingerprint) of the current widgets."""
    return _selection_cached(str(path), path.stat().st_mtime_ns, tuple(genes), tuple(lineages), tuple(cells))


def _model_selection(model: str, key: str, genes: tuple, lineages: tuple, cells: tuple, options_json: str) -> Any:
    """The selection a model is built on: the pickers' readings plus the columns its options add (marker, batch)."""
    from speclet_core.fitting.request import apply_options
    from speclet_core.models.spec import get_model
    from speclet_core.records import ModelOptions

    path = resolve_screen_path(key, get_settings())
    selection = selection_for(key, path, list(genes), list(lineages), list(cells))
    spec = get_model(model)
    if not spec.options:
        return selection
    return apply_options(spec, _load_screen_cached(str(path)), selection, ModelOptions.model_validate_json(options_json))


@st.cache_data(max_entries=32, show_spinner="Building the model graph…")
def _model_graph(model: str, key: str, fingerprint: str, genes: tuple, lineages: tuple, cells: tuple,
                 options_json: str) -> str:
    from speclet_core.analysis.fitview import model_graph_source

    return model_graph_source(model, _model_selection(model, key, genes, lineages, cells, options_json))


def model_graph(model: str, key: str, fingerprint: str, genes: list, lineages: list, cells: list,
                options: Any = None) -> str:
    """Graphviz source of the model on this selection (``options``: the model's ``ModelOptions``, if it has any)."""
    return _model_graph(model, key, fingerprint, tuple(genes), tuple(lineages), tuple(cells), _options_json(options))


def _options_json(options: Any) -> str:
    return options.model_dump_json() if options is not None else "{}"


@st.cache_data(max_entries=64, show_spinner=False)
def _fit_cost(model: str, key: str, fingerprint: str, genes: tuple, lineages: tuple, cells: tuple,
              sampler_json: str, options_json: str) -> Any:
    from speclet_core.fitting.cost import estimate_cost
    from speclet_core.records import SamplerSettings

    selection = _model_selection(model, key, genes, lineages, cells, options_json)
    return estimate_cost(selection, model, SamplerSettings.model_validate_json(sampler_json))


def fit_cost(model: str, key: str, fingerprint: str, genes: list, lineages: list, cells: list, sampler: Any,
             options: Any = None) -> Any:
    """The fitting engine's ``CostEstimate`` (rows × parameters → time and memory): shown before submitting, and
    kept with the job for its ETA while it compiles."""
    return _fit_cost(model, key, fingerprint, tuple(genes), tuple(lineages), tuple(cells), sampler.model_dump_json(),
                     _options_json(options))


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


# --------------------------------------------------------------------------- the open fit's manifest


def roles(fit: StoredFit) -> dict[str, Any]:
    """The model's roles: which variable is the gene effect, the gene × lineage effect, the slopes, …"""
    return fit.manifest.roles.to_dict()


def n_readings(fit: StoredFit) -> int:
    return int(np.prod(fit.manifest.shape_of("observed_data", "lfc") or (0,)))


def stop_with(message: str) -> None:
    """Say why the rest of the page cannot be shown, and stop it (``message`` is Markdown: escape names in it)."""
    st.info(message)
    st.stop()


# --------------------------------------------------------------------------- cached reads of one fit


@st.cache_resource(max_entries=8, show_spinner=False)
def other_fit(fit_id: str) -> StoredFit:
    """Another stored fit (for comparisons), kept open like the open fit."""
    return get_store().get(fit_id)


def get_fit(fit_id: str, current: StoredFit) -> StoredFit:
    return current if fit_id == current.fit_id else other_fit(fit_id)


@st.cache_data(max_entries=16, show_spinner=False)
def gene_summary(fit_id: str, _fit: StoredFit) -> pd.DataFrame:
    return _fit.gene_summary()


@st.cache_resource(max_entries=4, show_spinner="Reading the posterior matrices…")
def matrices(fit_id: str, _fit: StoredFit, kind: str) -> dict[str, pd.DataFrame]:
    """Every statistic of a gene × cell-line / gene × lineage matrix (read-only: shared between sessions)."""
    return {s: _fit.matrix(kind, s) for s in HEATMAP_STATS}


@st.cache_data(max_entries=16, show_spinner="Ordering the heatmap…")
def heatmap(fit_id: str, _fit: StoredFit, kind: str, genes: tuple[str, ...], stat: str, order: str) -> HeatmapView:
    mapping = lineage_of(fit_id, _fit) if kind == "gene_cell_line" else None
    return build_heatmap(matrices(fit_id, _fit, kind), genes, stat=stat, order=order, column_lineage=mapping)


@st.cache_data(max_entries=8, show_spinner=False)
def truth(data_path: str | None) -> pd.DataFrame | None:
    return load_truth(data_path)


@st.cache_resource(max_entries=2, show_spinner="Reloading the fit's readings from its screen table…")
def readings(fit_id: str, _fit: StoredFit) -> pd.DataFrame:
    """The fit's readings with labels and covariates (read-only: shared between sessions)."""
    return fit_readings(_fit)


def try_readings(fit: StoredFit) -> tuple[pd.DataFrame | None, str | None]:
    """(readings, None) or (None, why not): pages that can do without them say so instead of stopping."""
    try:
        return readings(fit.fit_id, fit), None
    except SpecletError as exc:
        return None, str(exc)


@st.cache_data(max_entries=16, show_spinner=False)
def lineage_of(fit_id: str, _fit: StoredFit) -> dict[str, str]:
    """Cell line → lineage of the fit's cell lines (empty when nothing says)."""
    return fit_cell_line_lineages(_fit, lambda: try_readings(_fit)[0])


@st.cache_data(max_entries=32, show_spinner="Computing intervals…")
def forest(fit_id: str, _fit: StoredFit, var: str, along: str, genes: tuple[str, ...], inner: float, outer: float,
           sort: str) -> pd.DataFrame:
    """Forest rows of ``var`` for ``genes`` (along gene), or of one gene along lineage / cell line."""
    if along == "gene":
        draws = _fit.draws(var, gene=list(genes))
        mapping = None
    else:
        draws = _fit.draws(var, gene=genes[0])
        mapping = lineage_of(fit_id, _fit) if along == "cell_line" else None
    return forest_rows(draws, along, inner=inner, outer=outer, sort=sort, lineage_of=mapping)


@st.cache_data(max_entries=16, show_spinner="Ranking genes in every posterior draw…")
def ranking_table(fit_id: str, _fit: StoredFit, lineage: str | None, top_k: int, threshold: float,
                  hdi_prob: float) -> pd.DataFrame:
    var = roles(_fit)["gene_lineage_effect"] if lineage else roles(_fit)["gene_effect"]
    return rank_genes(_fit.draws(var, load=False), lineage=lineage, top_k=top_k, threshold=threshold,
                      hdi_prob=hdi_prob)


@st.cache_data(max_entries=16, show_spinner="Contrasting lineages…")
def contrast_table(fit_id: str, _fit: StoredFit, lineage: str, versus: str | None, top_k: int, threshold: float,
                   hdi_prob: float) -> pd.DataFrame:
    draws = _fit.draws(roles(_fit)["gene_lineage_effect"], load=False)
    return contrast_lineage(draws, lineage, versus=versus, top_k=top_k, threshold=threshold, hdi_prob=hdi_prob)


@st.cache_data(max_entries=16, show_spinner="Contrasting marked and unmarked cell lines…")
def biomarker_posterior(fit_id: str, _fit: StoredFit) -> dict[str, Any]:
    """The small draws a biomarker page needs (gene-level contrasts and the marked cell lines), loaded once."""
    names = [v for v in (*BIOMARKER_VARIABLES, CELL_LINE_MARKED, "mu_marker")
             if v in _fit.manifest.groups.get("posterior", {})]
    return {v: _fit.draws(v) for v in names}


@st.cache_data(max_entries=16, show_spinner=False)
def pairwise(fit_id: str, _fit: StoredFit, genes: tuple[str, ...], lineage: str | None,
             hdi_prob: float) -> PairwiseComparison:
    var = roles(_fit)["gene_lineage_effect"] if lineage else roles(_fit)["gene_effect"]
    return compare_pairs(_fit.draws(var, gene=list(genes)), list(genes), lineage=lineage, hdi_prob=hdi_prob)


@st.cache_resource(max_entries=2, show_spinner="Reading posterior predictions…")
def predictions(fit_id: str, _fit: StoredFit) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(observed, predicted (sample, reading) or None, prior or None), thinned (read-only: shared between sessions)."""
    return ppc.fit_predictions(_fit)


@st.cache_data(max_entries=8, show_spinner="Comparing observed and predicted readings…")
def ppc_overall(fit_id: str, _fit: StoredFit) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(histogram, statistics) over every reading (every k-th beyond ``ppc.PPC_MAX_VALUES`` values)."""
    observed, predicted, prior = predictions(fit_id, _fit)
    return ppc.ppc_overall(observed, predicted, prior)


@st.cache_data(max_entries=16, show_spinner="Comparing observed and predicted readings…")
def ppc_groups(fit_id: str, _fit: StoredFit, by: str, chosen: tuple[str, ...]) -> pd.DataFrame:
    observed, predicted, _ = predictions(fit_id, _fit)
    table = readings(fit_id, _fit)
    return ppc.ppc_by_group(observed, predicted, table[by], list(chosen))


@st.cache_data(max_entries=16, show_spinner="Drawing posterior regression lines…")
def covariate_view(fit_id: str, _fit: StoredFit, slope: str, genes: tuple[str, ...]
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """(points, band, lines, x-axis title) of LFC against the covariate of ``slope`` for ``genes``."""
    return covariates.covariate_view(_fit, readings(fit_id, _fit), slope, genes)


@st.cache_data(max_entries=8, show_spinner="Computing leave-one-out scores (PSIS-LOO)…")
def loo(fit_ids: tuple[str, ...], _fits: tuple[StoredFit, ...]) -> pd.DataFrame:
    check_same_data([f.manifest for f in _fits])
    return loo_table({fit_label(f.manifest): f.open_idata() for f in _fits})


@st.cache_data(max_entries=8, show_spinner="Comparing the atlas's lineages in every posterior draw…")
def atlas_comparison(atlas_id: str, stored: tuple[str, ...], threshold: float, hdi_prob: float, top_k: int) -> Any:
    """``analysis.atlas.compare_atlas`` of a fully stored atlas (``stored``, its fit ids, keys the cache)."""
    from speclet_core.analysis.atlas import compare_atlas, read_atlas

    record = read_atlas(get_settings().data_dir, atlas_id)
    return compare_atlas(record, get_store(), allow_flagged=True, threshold=threshold, hdi_prob=hdi_prob, top_k=top_k)


@st.cache_data(max_entries=4, show_spinner="Reading the fit's guides…")
def guides_by_gene(fit_id: str, _fit: StoredFit) -> dict[str, tuple[str, ...]]:
    """Gene → its guides (sgRNAs) in the fit."""
    from speclet_core.analysis.gene import guides_by_gene as read_guides

    return read_guides(_fit)


@st.cache_data(max_entries=32, show_spinner="Reading everything this fit says about the gene…")
def gene_view(fit_id: str, _fit: StoredFit, gene: str, threshold: float, hdi_prob: float) -> Any:
    """The gene page's ``GeneView`` (with the fit's cached ranking, cell-line lineages and guides)."""
    from speclet_core.analysis.gene import SGRNA_VARIABLE
    from speclet_core.analysis.gene import gene_view as read_gene
    from speclet_core.analysis.ranking import default_top_k

    ranked = ranking_table(fit_id, _fit, None, default_top_k(len(_fit.manifest.genes)), threshold, hdi_prob)
    has_guides = SGRNA_VARIABLE in _fit.manifest.groups.get("posterior", {})
    mapping = lineage_of(fit_id, _fit) if roles(_fit).get("gene_cell_line_effect") else None
    return read_gene(_fit, gene, threshold=threshold, hdi_prob=hdi_prob, ranking=ranked, lineage_of=mapping,
                     guides=guides_by_gene(fit_id, _fit) if has_guides else None)


@st.cache_data(max_entries=16, show_spinner="Checking the fit's reference genes…")
def reference_check(fit_id: str, _fit: StoredFit) -> tuple[Any, str]:
    """(``ReferenceCheck`` or None, its sentence): common-essential vs non-essential genes of the fit."""
    from speclet_core.analysis.reference import fit_reference_check

    return fit_reference_check(_fit)
