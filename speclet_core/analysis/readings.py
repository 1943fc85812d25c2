"""A fit's readings (gene, cell line, lineage, LFC, covariates) in model order, for per-reading views.

From the labels stored with the fit (``constant_data``), or reloaded from the screen table the
fit's request names and checked against the fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from model_store import StoredFit
from speclet_core.errors import AnalysisError, SpecletError

# sgRNA labels are not read back: no page needs them per reading, and millions of strings are slow to read
READING_LABELS = ("gene", "cell_line", "lineage")


def readings_from_constant_data(const: xr.Dataset | None, observed: np.ndarray,
                                coords: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame | None:
    """The fit's readings from the labels stored with it (``constant_data``), or None when it has none.

    ``constant_data`` holds, along ``reading``, each reading's ``gene``, ``cell_line`` and ``lineage``
    as labels, or as integer positions in the posterior's ``coords``, and the covariates as the
    model used them (``rna_expr_z``, ``gene_cn_z``).
    """
    if const is None or not all(d in const.data_vars for d in READING_LABELS):
        return None
    obs = np.asarray(observed, dtype=np.float64).ravel()
    out: dict[str, Any] = {}
    for dim in READING_LABELS:
        if dim not in const.data_vars:
            continue
        values = np.asarray(const[dim].values)
        if values.shape != obs.shape:
            raise AnalysisError(f"the fit stores {values.size:,} {dim} labels for {obs.size:,} readings; the fit is "
                                "damaged, refit it")
        if values.dtype.kind in "iu":
            labels = list((coords or {}).get(dim) or [])
            if not labels or values.min(initial=0) < 0 or values.max(initial=0) >= len(labels):
                raise AnalysisError(f"the fit stores {dim} positions without matching {dim} labels; refit it")
            out[dim] = pd.Categorical.from_codes(values, categories=pd.Index(labels).astype(str))
        else:
            out[dim] = pd.Categorical(values.astype(str))
    out["lfc"] = obs
    for col in ("rna_expr", "rna_expr_z", "gene_cn", "gene_cn_z"):
        if col in const.data_vars:
            out[col] = np.asarray(const[col].values, dtype=np.float64)
    return pd.DataFrame(out)



def load_readings(request: Mapping[str, Any], *, n_readings: int, observed: np.ndarray | None = None) -> pd.DataFrame:
    """The fit's readings in model order (reading i = row i), reloaded from the screen table it names.

    The table is re-selected exactly as at fit time and checked against the fit: same fingerprint,
    same number of readings and (when ``observed`` is given) the same LFC values, so labels can
    never be attached to the wrong readings.

    Returns
    -------
    DataFrame
        gene, cell_line, lineage, sgrna, lfc, and the covariates with their model-scale
        columns (``rna_expr``/``rna_expr_z``, ``gene_cn``/``gene_cn_z``) when the table has them.
    """
    from speclet_core.data.covariates import prepare_covariates
    from speclet_core.data.screen import load_screen
    from speclet_core.data.selection import select_screen

    path = request.get("data_path")
    fit_hint = "per-reading views (per-gene predictive checks, covariates) need the screen table the fit was made from"
    if not path or not Path(path).is_file():
        raise AnalysisError(f"the screen table {path!r} of this fit is not on this server; {fit_hint}. "
                            "Copy the table back to that path, or refit on this server")
    selection = request.get("selection") or {}
    try:
        sel = select_screen(load_screen(path), selection.get("genes", "all"), selection.get("lineages", "all"),
                            selection.get("cell_lines", "all"))
    except SpecletError as exc:
        raise AnalysisError(f"the screen table {path} no longer matches this fit's selection ({exc}); {fit_hint}") from None
    if sel.fingerprint != request.get("data_fingerprint") or sel.n_rows != n_readings:
        raise AnalysisError(
            f"the screen table {path} changed since this fit was made (fingerprint {sel.fingerprint[:12]} vs the fit's "
            f"{str(request.get('data_fingerprint'))[:12]}, {sel.n_rows:,} vs {n_readings:,} readings); {fit_hint}. "
            "Restore the original table or refit"
        )
    data = sel.data
    if observed is not None:
        obs = np.asarray(observed, dtype=np.float64).reshape(-1)
        if obs.shape[0] != len(data) or not np.allclose(obs, data["lfc"].to_numpy(np.float64), rtol=1e-5, atol=1e-5):
            raise AnalysisError(f"the readings of {path} are not in the order this fit stored them; {fit_hint}, in the "
                                "order speclet_core.data.selection.select_screen gives. Refit to store them again")
    prepared, _ = prepare_covariates(data)
    # categorical columns, as select_screen made them: millions of readings, few distinct labels
    out = pd.DataFrame({
        "gene": data["hugo_symbol"].array, "cell_line": data["depmap_id"].array,
        "lineage": data["lineage"].array, "sgrna": data["sgrna"].array,
        "lfc": data["lfc"].to_numpy(np.float64),
    })
    for col in ("rna_expr", "rna_expr_z", "gene_cn", "gene_cn_z"):
        if col in prepared.columns:
            out[col] = prepared[col].to_numpy(np.float64)
    return out


def fit_readings(fit: StoredFit) -> pd.DataFrame:
    """A stored fit's readings with labels and covariates: stored with the fit, else reloaded from its screen table.

    Raises ``AnalysisError`` when neither is available (the table moved or changed since the fit).
    """
    observed = fit.dataset("observed_data")["lfc"].to_numpy()
    if fit.manifest.has_group("constant_data"):
        post = fit.dataset("posterior")
        coords = {d: [str(x) for x in post[d].values] for d in READING_LABELS if d in post.coords}
        table = readings_from_constant_data(fit.dataset("constant_data"), observed, coords)
        if table is not None:
            return table
    return load_readings(fit.manifest.request.model_dump(), n_readings=observed.size, observed=observed)
