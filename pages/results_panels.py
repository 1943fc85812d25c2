"""Widgets and page furniture of the result pages (caching stays in results_common)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from model_store import StoredFit
from pages import common
from pages import results_common as cache
from speclet_core.analysis import fitview, results
from speclet_core.errors import SpecletError

APPROXIMATE_NOTE = ("**Approximate posterior (ADVI) — first look only.** A quick variational fit: its intervals are "
                    "usually too narrow. Refit with full NUTS on the Fit page before drawing conclusions.")
PPC_CACHE_VALUES = 20_000_000  # predicted values kept in memory per fit (float32: 80 MB)
# Beyond this many readings, reloading the screen table takes seconds: per-reading views wait to be asked for.
AUTO_READINGS_MAX = 200_000


def open_results_page(title: str) -> StoredFit:
    """Title, the open fit (or a pointer to open one), its caption and the approximate-fit note."""
    st.title(title)
    fit = common.require_open_fit()
    st.caption(fitview.fit_caption(fit.manifest))
    if results.is_approximate(fit.manifest):
        st.warning(APPROXIMATE_NOTE, icon=":material/warning:")
    return fit


def roles(fit: StoredFit) -> dict[str, Any]:
    return dict(fit.manifest.get("roles") or {})


def stop_with(message: str) -> None:
    st.info(message)
    st.stop()


def n_readings(fit: StoredFit) -> int:
    shape = ((fit.manifest.get("groups") or {}).get("observed_data") or {}).get("lfc", {}).get("shape") or [0]
    return int(np.prod(shape))


def readings_wanted(fit: StoredFit, label: str, *, key: str) -> bool:
    """A toggle for views that reload the screen table: on by default only for fits with few readings."""
    n = n_readings(fit)
    return st.toggle(label, value=n <= AUTO_READINGS_MAX, key=key, bind="query-params",
                     help=f"Reads the labels of the fit's {n:,} readings (once per server; for millions of readings "
                          "this takes several seconds).")


def try_readings(fit: StoredFit) -> tuple[pd.DataFrame | None, str | None]:
    """(readings, None) or (None, why not): pages that can do without them say so instead of stopping."""
    try:
        return cache.readings(fit.fit_id, fit), None
    except SpecletError as exc:
        return None, str(exc)


def fit_picker(label: str, manifests: Sequence[dict[str, Any]], *, key: str, multi: bool = False,
               default: Sequence[str] = ()) -> Any:
    """Pick stored fits by a readable label (values are fit ids)."""
    names = {m["fit_id"]: results.fit_label(m) for m in manifests}
    if multi:
        return st.multiselect(label, list(names), default=[d for d in default if d in names],
                              format_func=names.get, key=key)
    return st.selectbox(label, list(names), format_func=names.get, key=key, index=None,
                        placeholder="Choose a fit")


def gene_choice(summary: pd.DataFrame, *, key: str, default_n: int = 30, max_n: int = results.MAX_FOREST_ROWS,
                allow_page: bool = True) -> list[str]:
    """Strongest / weakest N genes (with paging) or genes typed by name, bound to the URL."""
    c1, c2, c3 = st.columns([2, 1, 1])
    how = c1.segmented_control(
        "Genes", [p.value for p in results.Pick], default=results.Pick.STRONGEST.value, key=f"{key}_how",
        format_func={"strongest": "Strongest dependencies", "weakest": "Weakest / positive",
                     "chosen": "Search by name"}.get, bind="query-params")
    if how == results.Pick.CHOSEN.value:
        chosen = st.multiselect("Genes to show (type to search)", summary["gene"].tolist(), key=f"{key}_genes",
                                bind="query-params", max_selections=max_n, placeholder="e.g. KRAS")
        if not chosen:
            stop_with("Type one or more gene names above.")
        return list(chosen)
    n = c2.number_input("How many", 1, max_n, min(default_n, len(summary)), key=f"{key}_n", bind="query-params")
    pages = max(1, -(-len(summary) // int(n)))
    page = (c3.number_input(f"Page (of {pages})", 1, pages, 1, key=f"{key}_page", bind="query-params")
            if allow_page and pages > 1 else 1)
    return results.pick_labels(summary, "gene", how or results.Pick.STRONGEST, int(n), page=int(page) - 1)
