"""Presentation mode (a sidebar toggle, or ``?present=1`` in a link) and the figures every results page shows.

On: larger fonts and taller rows for a projector at 1280 × 720 (``charts.for_projector``), page
text and tables set larger by CSS, and the sidebar collapsed out of the way. On or off, a figure
carries its provenance line (model, fit id, screen, date) so an exported PNG or SVG says where it
came from, and it can be downloaded as SVG beside the chart menu's PNG.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from model_store import FitManifest, StoredFit
from pages import adapter, widgets
from speclet_core import charts

PARAM = "present"
ON_VALUES = frozenset({"1", "true", "yes", "on"})
_STATE = "presentation_mode"

# Streamlit's own text is 16 px; a projector needs it larger, and table cells and captions too.
PROJECTOR_CSS = """
<style>
  [data-testid="stMain"] { font-size: 20px; }
  [data-testid="stMain"] [data-testid="stMarkdownContainer"] p,
  [data-testid="stMain"] [data-testid="stMarkdownContainer"] li { font-size: 20px; line-height: 1.45; }
  [data-testid="stMain"] [data-testid="stCaptionContainer"] p { font-size: 18px; }
  [data-testid="stMain"] h1 { font-size: 40px; }
  [data-testid="stMain"] h2, [data-testid="stMain"] h3 { font-size: 30px; }
  [data-testid="stMain"] .block-container { padding-left: 2rem; padding-right: 2rem; max-width: 100%; }
  [data-testid="stMain"] label p { font-size: 18px; }
  /* the Fit page's model graph as large as its column allows */
  [data-testid="stMain"] [data-testid="stGraphVizChart"] svg { width: 100% !important; height: auto !important; }
</style>
"""

# Always: a long equation (the flagship's) scrolls inside its box instead of being cut off at the column's edge.
BASE_CSS = """
<style>
  [data-testid="stMain"] .katex-display { overflow-x: auto; overflow-y: hidden; padding: 2px 0 6px; }
</style>
"""


def is_on() -> bool:
    """Whether this session is in presentation mode (the URL's ``present=1`` or the toggle)."""
    if _STATE in st.session_state:
        return bool(st.session_state[_STATE])
    return str(st.query_params.get(PARAM, "")).strip().lower() in ON_VALUES


def setup() -> None:
    """The sidebar toggle, kept in the URL (``?present=1``) across pages, and the projector CSS when on.

    Called once per run from ``app.py``, after the shared sidebar.
    """
    if _STATE not in st.session_state:
        st.session_state[_STATE] = is_on()
    on = st.sidebar.toggle("Presentation mode", key=_STATE, help="Larger text and charts for a projector "
                           "(1280 × 720). A link with `?present=1` opens a page this way.")
    st.sidebar.markdown(BASE_CSS, unsafe_allow_html=True)
    if on:
        if st.query_params.get(PARAM) != "1":
            st.query_params[PARAM] = "1"
        st.sidebar.markdown(PROJECTOR_CSS, unsafe_allow_html=True)
    elif PARAM in st.query_params:
        del st.query_params[PARAM]


def provenance_line(fit: StoredFit | FitManifest) -> str:
    """model · fit id · screen (marked synthetic when it has a truth table) · fitting date, for a figure."""
    manifest = fit.manifest if isinstance(fit, StoredFit) else fit
    path = manifest.request.data_path
    screen = Path(path).name if path else "unknown screen"
    if path and adapter.truth(path) is not None:
        screen += " (synthetic, known truth)"
    return charts.provenance_text(model=manifest.model, fit_id=manifest.fit_id, screen=screen,
                                  date=(manifest.created_utc or "")[:10] or "unknown date")


def figure(chart: alt.TopLevelMixin, fit: StoredFit | FitManifest | None) -> alt.TopLevelMixin:
    """The chart as shown and exported: the fit's verdict (if not converged) and provenance, projector-sized when on."""
    out = widgets.with_verdict_subtitle(chart, fit)
    if fit is not None:
        out = charts.with_provenance(out, provenance_line(fit))
    return charts.for_projector(out) if is_on() else out


def show_chart(chart: alt.TopLevelMixin, data: pd.DataFrame, name: str, *, key: str,
               fit: StoredFit | FitManifest | None) -> None:
    """A results chart (``figure``) with its data as CSV (``widgets.csv_download``) and the figure as SVG."""
    shown = figure(chart, fit)
    st.altair_chart(shown, width="stretch", key=key)
    c1, c2 = st.columns(2)
    with c1:
        widgets.csv_download(data, name, key=f"csv-{key}", fit=fit)
    with c2:
        svg_download(shown, name, key=f"svg-{key}")


def svg_download(chart: alt.TopLevelMixin, name: str, *, key: str) -> None:
    """A download button for the chart as SVG, rendered on demand (the chart menu offers PNG only)."""
    st.download_button("Download figure (SVG)", lambda: charts.figure_svg(chart), file_name=f"{name}.svg",
                       mime="image/svg+xml", key=key, icon=":material/image:", on_click="ignore")


def home_alias() -> st.Page:
    """Home again, hidden from the menu, at ``/home``: Home itself is served at the app's root, so a bookmarked
    ``/home`` would otherwise say "Page not found"."""
    return st.Page("pages/home.py", title="Home", icon=":material/home:", url_path="home", visibility="hidden")
