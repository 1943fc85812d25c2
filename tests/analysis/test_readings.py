"""analysis.readings: the fit's readings from the screen table or from the stored constant data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from speclet_core.analysis import covariates, heatmap, readings
from speclet_core.data.covariates import prepare_covariates
from speclet_core.data.screen import load_screen
from speclet_core.data.selection import select_screen
from speclet_core.errors import AnalysisError


def test_load_readings_matches_the_selection_and_refuses_a_changed_table(screen_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, screen = screen_file
    sel = select_screen(load_screen(path), ["KRAS", "BRAF"], "all")
    request = {"data_path": str(path), "data_fingerprint": sel.fingerprint,
               "selection": {"genes": ["BRAF", "KRAS"], "lineages": "all", "cell_lines": "all"}}
    table = readings.load_readings(request, n_readings=sel.n_rows, observed=sel.data["lfc"].to_numpy(np.float32))
    assert table["gene"].tolist() == sel.data["hugo_symbol"].astype(str).tolist()
    assert table["cell_line"].tolist() == sel.data["depmap_id"].astype(str).tolist()
    np.testing.assert_allclose(table["rna_expr_z"], prepare_covariates(sel.data)[0]["rna_expr_z"])
    with pytest.raises(AnalysisError, match="changed since this fit was made"):
        readings.load_readings({**request, "data_fingerprint": "0" * 64}, n_readings=sel.n_rows)
    with pytest.raises(AnalysisError, match="not in the order"):
        readings.load_readings(request, n_readings=sel.n_rows, observed=sel.data["lfc"].to_numpy()[::-1])
    with pytest.raises(AnalysisError, match="is not on this server"):
        readings.load_readings({**request, "data_path": str(tmp_path / "gone.csv")}, n_readings=sel.n_rows)


def test_readings_stored_with_the_fit_as_labels_or_positions() -> None:
    genes, cells = ["BRAF", "KRAS"], ["ACH-000001", "ACH-000002", "ACH-000003"]
    g, c = np.array([1, 0, 1, 1]), np.array([0, 2, 1, 0])
    lineage = np.array(["skin", "blood", "blood", "skin"])
    observed = np.array([-1.0, 0.1, -0.8, -1.2], dtype=np.float32)
    as_labels = xr.Dataset({"gene": ("reading", np.array(genes, dtype=object)[g]),
                            "cell_line": ("reading", np.array(cells, dtype=object)[c]),
                            "lineage": ("reading", lineage.astype(object)), "rna_expr_z": ("reading", [0.5, 0, -1, 2])})
    as_codes = xr.Dataset({"gene": ("reading", g.astype(np.int32)), "cell_line": ("reading", c.astype(np.int32)),
                           "lineage": ("reading", np.array([1, 0, 0, 1]))})
    a = readings.readings_from_constant_data(as_labels, observed)
    b = readings.readings_from_constant_data(as_codes, observed, {"gene": genes, "cell_line": cells,
                                                                "lineage": ["blood", "skin"]})
    for table in (a, b):
        assert table["gene"].astype(str).tolist() == ["KRAS", "BRAF", "KRAS", "KRAS"]
        assert table["cell_line"].astype(str).tolist() == ["ACH-000001", "ACH-000003", "ACH-000002", "ACH-000001"]
        assert table["lineage"].astype(str).tolist() == lineage.tolist()
        np.testing.assert_allclose(table["lfc"], observed)
    assert a["rna_expr_z"].tolist() == [0.5, 0, -1, 2] and "rna_expr_z" not in b
    assert heatmap.cell_line_lineages(None, a) == {"ACH-000001": "skin", "ACH-000003": "blood", "ACH-000002": "blood"}
    assert readings.readings_from_constant_data(as_labels.drop_vars("lineage"), observed) is None
    with pytest.raises(AnalysisError, match="4 gene labels for 3 readings|stores 4 gene labels for 3 readings"):
        readings.readings_from_constant_data(as_labels, observed[:3])
    with pytest.raises(AnalysisError, match="positions without matching gene labels"):
        readings.readings_from_constant_data(as_codes, observed, {"gene": ["KRAS"]})

    # only the model's scale stored: the covariate is drawn on it, and the line is gene effect + slope × z exactly
    info = covariates.COVARIATES["rna_slope"]
    assert not covariates.covariate_on_raw_scale(a, info)
    assert covariates.covariate_title(a, info) == "RNA expression (z-score of expression within the gene)"
    points = covariates.covariate_points(a, info, ["KRAS"])
    assert sorted(points["x"]) == [-1.0, 0.5, 2.0]
    scale = covariates.covariate_scale(a, info)
    draws = lambda v: xr.DataArray(np.full((1, 4, 1), v), dims=("chain", "draw", "gene"), coords={"gene": ["KRAS"]})  # noqa: E731
    band, _ = covariates.regression_lines(draws(-1.0), draws(-0.5), scale, {"KRAS": (-1.0, 2.0)}, info, n_grid=4)
    np.testing.assert_allclose(band["mean"], -1.0 - 0.5 * band["x"])
