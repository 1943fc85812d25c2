"""analysis.covariates: regression lines on the model's covariate transform."""

from __future__ import annotations

import numpy as np
import xarray as xr

from speclet_core.analysis import covariates, readings
from speclet_core.data.screen import load_screen
from speclet_core.data.selection import select_screen


def test_regression_lines_follow_the_models_covariate_transform(screen_file) -> None:  # type: ignore[no-untyped-def]
    path, _ = screen_file
    sel = select_screen(load_screen(path))
    request = {"data_path": str(path), "data_fingerprint": sel.fingerprint, "selection": {}}
    table = readings.load_readings(request, n_readings=sel.n_rows)
    for slope, z_col in (("rna_slope", "rna_expr_z"), ("cn_slope", "gene_cn_z")):
        info = covariates.COVARIATES[slope]
        scale = covariates.covariate_scale(table, info)
        genes = ["KRAS", "BRAF"]
        points = covariates.covariate_points(table, info, genes)
        x_range = {g: (float(p["x"].min()), float(p["x"].max())) for g, p in points.groupby("gene")}
        a = xr.DataArray(np.tile([[[-1.0, 0.2]]], (2, 50, 1)), dims=("chain", "draw", "gene"), coords={"gene": genes})
        b = xr.DataArray(np.tile([[[-0.5, 0.3]]], (2, 50, 1)), dims=("chain", "draw", "gene"), coords={"gene": genes})
        band, lines = covariates.regression_lines(a, b, scale, x_range, info, n_grid=5, n_lines=4)
        assert len(band) == 10 and len(lines) == 2 * 4 * 5
        np.testing.assert_allclose(band["low"], band["mean"]) and np.testing.assert_allclose(band["high"], band["mean"])
        # at each observed x, the line's height is intercept + slope × the model's own covariate value
        kras = table[table["gene"] == "KRAS"]
        x_obs = covariates.covariate_points(kras, info, ["KRAS"])["x"].to_numpy()
        z_line = np.interp(x_obs, band.loc[band["gene"] == "KRAS", "x"], (band.loc[band["gene"] == "KRAS", "mean"] + 1.0) / -0.5)
        inner = (x_obs > np.quantile(x_obs, 0.1)) & (x_obs < np.quantile(x_obs, 0.9))  # linear there (no clipping)
        np.testing.assert_allclose(z_line[inner], kras[z_col].to_numpy()[inner], atol=1e-9)
