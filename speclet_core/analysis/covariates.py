"""Covariate views: observed LFC against RNA expression or copy number, with posterior regression lines.

The plotted axis is the raw covariate when the readings carry it (copy number in log2); the
model's slope acts on ``data.covariates.prepare_covariates``'s transformed value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from model_store import StoredFit
from model_store.stats import HDI_PROB
from speclet_core.analysis.draws import hdi_columns, sample_matrix
from speclet_core.errors import AnalysisError

MAX_SCATTER_POINTS = 20_000


@dataclass(frozen=True)
class CovariateInfo:
    """How a model's covariate slope relates to a screen column (the transform of ``data.prepare_covariates``).

    ``column`` is the raw screen column, ``z_column`` the value the model multiplies the slope by.
    """

    slope: str
    column: str
    z_column: str
    title: str
    model_scale: str


COVARIATES: dict[str, CovariateInfo] = {
    "rna_slope": CovariateInfo("rna_slope", "rna_expr", "rna_expr_z", "RNA expression (log2 TPM+1)",
                               "z-score of expression within the gene"),
    "cn_slope": CovariateInfo("cn_slope", "gene_cn", "gene_cn_z", "copy number (log2)",
                              "log2 copy number centred within the gene"),
}


def covariate_on_raw_scale(readings: pd.DataFrame, info: CovariateInfo) -> bool:
    """True when the readings carry the raw covariate (plots in its units), False for the model's scale only."""
    if info.column in readings.columns:
        return True
    if info.z_column in readings.columns:
        return False
    raise AnalysisError(f"the fit's readings have neither {info.column!r} nor {info.z_column!r}, so the "
                        f"{info.slope} cannot be drawn against them")


def covariate_title(readings: pd.DataFrame, info: CovariateInfo) -> str:
    """Axis title: the raw units, or the model's scale when only that is stored."""
    return info.title if covariate_on_raw_scale(readings, info) else f"{info.title.split(' (')[0]} ({info.model_scale})"


def covariate_scale(readings: pd.DataFrame, info: CovariateInfo) -> pd.DataFrame:
    """Per gene, how the plotted covariate maps to the model's scale (``data.prepare_covariates``'s transform).

    Returns
    -------
    DataFrame
        index gene: centre, scale, clip (model x = clip((raw' - centre) / scale, ±clip), where
        raw' is the expression itself or log2 of the copy number); the identity when the readings
        carry only the model's scale.
    """
    from speclet_core.data.covariates import CN_CLIP, CN_FLOOR, RNA_CLIP

    if not covariate_on_raw_scale(readings, info):
        genes = pd.Index(pd.unique(readings["gene"].astype(str)), name="gene")
        return pd.DataFrame({"centre": 0.0, "scale": 1.0, "clip": np.inf}, index=genes)
    raw = readings[info.column].astype(np.float64)
    if info.column == "gene_cn":
        x = np.log2(raw.clip(lower=CN_FLOOR))
        centre = x.groupby(readings["gene"]).mean()
        return pd.DataFrame({"centre": centre, "scale": 1.0, "clip": CN_CLIP})
    centre = raw.groupby(readings["gene"]).mean()
    scale = raw.groupby(readings["gene"]).std().fillna(0.0)
    return pd.DataFrame({"centre": centre, "scale": scale, "clip": RNA_CLIP})


def _to_axis(raw: np.ndarray, info: CovariateInfo) -> np.ndarray:
    """Raw covariate → the plotted axis (copy number in log2, expression as it is)."""
    from speclet_core.data.covariates import CN_FLOOR

    return np.log2(np.clip(raw, CN_FLOOR, None)) if info.column == "gene_cn" else raw


def _axis_to_model(x: np.ndarray, centre: float, scale: float, clip: float) -> np.ndarray:
    if not scale > 0:
        return np.zeros_like(x)
    return np.clip((x - centre) / scale, -clip, clip)


def covariate_points(readings: pd.DataFrame, info: CovariateInfo, genes: Sequence[str], *,
                     max_points: int = MAX_SCATTER_POINTS, seed: int = 0) -> pd.DataFrame:
    """Observed LFC against the covariate for the chosen genes (a fixed random subset beyond ``max_points``)."""
    raw = covariate_on_raw_scale(readings, info)
    column = info.column if raw else info.z_column
    sub = readings[readings["gene"].isin(list(genes)) & readings[column].notna()]
    if sub.empty:
        raise AnalysisError(f"no readings of {', '.join(genes)} have a {column} value")
    if len(sub) > max_points:
        sub = sub.sample(n=max_points, random_state=seed).sort_index()
    out = sub[[c for c in ("gene", "cell_line", "lineage", "sgrna", "lfc") if c in sub.columns]].copy()
    values = sub[column].to_numpy(np.float64)
    out["x"] = _to_axis(values, info) if raw else values
    return out.reset_index(drop=True)


def regression_lines(
    intercept: xr.DataArray,
    slope: xr.DataArray,
    scale: pd.DataFrame,
    x_range: Mapping[str, tuple[float, float]],
    info: CovariateInfo,
    *,
    hdi_prob: float = HDI_PROB,
    n_grid: int = 40,
    n_lines: int = 20,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Posterior regression lines LFC = gene_effect + slope × x per gene, on the plotted axis.

    The cell-line shifts sum to zero, so this is the line of an average cell line.

    Returns
    -------
    (band, lines)
        band: gene, x, mean, low, high (HDI of the line's height at each x); lines: gene, draw,
        x, lfc for ``n_lines`` evenly spaced posterior draws.
    """
    a_all, genes = sample_matrix(intercept, "gene")
    b_all, genes_b = sample_matrix(slope, "gene")
    if genes != genes_b or a_all.shape != b_all.shape:
        raise AnalysisError("intercept and slope draws must cover the same genes and draws")
    pick = np.unique(np.linspace(0, a_all.shape[0] - 1, min(n_lines, a_all.shape[0])).round().astype(int))
    bands, lines = [], []
    for gi, gene in enumerate(genes):
        if gene not in scale.index or gene not in x_range:
            raise AnalysisError(f"no covariate values for gene {gene!r}")
        lo, hi = x_range[gene]
        grid = np.linspace(lo, hi, n_grid)
        z = _axis_to_model(grid, *scale.loc[gene, ["centre", "scale", "clip"]].astype(float))
        heights = a_all[:, gi, None] + b_all[:, gi, None] * z[None, :]  # (sample, grid)
        low, high = hdi_columns(heights, hdi_prob)
        bands.append(pd.DataFrame({"gene": gene, "x": grid, "mean": heights.mean(axis=0), "low": low, "high": high}))
        lines.append(pd.DataFrame({"gene": gene, "draw": np.repeat(pick, n_grid), "x": np.tile(grid, len(pick)),
                                   "lfc": heights[pick].ravel()}))
    return pd.concat(bands, ignore_index=True), pd.concat(lines, ignore_index=True)


def covariate_view(fit: StoredFit, readings: pd.DataFrame, slope: str, genes: Sequence[str]
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """(points, band, lines, x-axis title) of LFC against the covariate of ``slope`` for ``genes`` of a stored fit."""
    info = COVARIATES[slope]
    scale = covariate_scale(readings, info)
    points = covariate_points(readings, info, genes)
    x_range = {str(g): (float(p["x"].min()), float(p["x"].max())) for g, p in points.groupby("gene", observed=True)}
    gene_effect = fit.manifest.roles.gene_effect
    band, lines = regression_lines(fit.draws(gene_effect, gene=list(genes)), fit.draws(slope, gene=list(genes)),
                                   scale, x_range, info)
    return points, band, lines, covariate_title(readings, info)
