"""Shared by the analysis tests: gene labels and synthetic posterior draws along one labelled dim."""

from __future__ import annotations

import numpy as np
import xarray as xr

GENES = ["KRAS", "BRAF", "MYC", "TP53", "SOX10"]


def _draws(means: np.ndarray, sd: float | np.ndarray, along: str, labels: list[str], seed: int = 0,
           chains: int = 2, draws: int = 400) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    values = np.asarray(means) + rng.normal(0, 1, (chains, draws, len(labels))) * np.asarray(sd)
    return xr.DataArray(values, dims=("chain", "draw", along), coords={along: labels}, name="gene_effect")
