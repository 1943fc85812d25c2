"""The tables behind the result pages (analysis.forest, heatmap, readings, ppc, covariates, compare, sentences), checked against direct computations."""

from __future__ import annotations

import json
from pathlib import Path

import altair as alt
import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from model_store.manifest import FitManifest, StoredRequest
from speclet_core import charts
from speclet_core.analysis import compare, covariates, fitview, forest, heatmap, pairs, ppc, readings, sentences
from speclet_core.analysis.pairs import compare_pairs
from speclet_core.analysis.ranking import rank_genes
from speclet_core.data.covariates import prepare_covariates
from speclet_core.data.demo import write_synthetic
from speclet_core.data.screen import load_screen
from speclet_core.data.selection import select_screen
from speclet_core.data.synthetic import simulate_screen
from speclet_core.errors import AnalysisError

GENES = ["KRAS", "BRAF", "MYC", "TP53", "SOX10"]


def _draws(means: np.ndarray, sd: float | np.ndarray, along: str, labels: list[str], seed: int = 0,
           chains: int = 2, draws: int = 400) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    values = np.asarray(means) + rng.normal(0, 1, (chains, draws, len(labels))) * np.asarray(sd)
    return xr.DataArray(values, dims=("chain", "draw", along), coords={along: labels}, name="gene_effect")


# --------------------------------------------------------------------------- forest


def test_interval_table_matches_arviz_hdi_and_means() -> None:
    da = _draws(np.array([-1.5, -0.2, 0.3, -0.8, 0.0]), np.array([0.1, 0.3, 0.2, 0.5, 0.05]), "gene", GENES)
    table = forest.interval_table(da, "gene", inner=0.5, outer=0.89)
    assert table["gene"].tolist() == GENES
    for prob, lo, hi in ((0.5, "inner_low", "inner_high"), (0.89, "outer_low", "outer_high")):
        expected = az.hdi(da.to_dataset(), hdi_prob=prob)["gene_effect"]
        np.testing.assert_allclose(table[lo], expected.sel(hdi="lower").values, rtol=1e-12)
        np.testing.assert_allclose(table[hi], expected.sel(hdi="higher").values, rtol=1e-12)
    np.testing.assert_allclose(table["mean"], da.mean(("chain", "draw")).values)
    np.testing.assert_allclose(table["sd"], da.std(("chain", "draw"), ddof=1).values)
    assert ((table["outer_low"] <= table["inner_low"]) & (table["inner_high"] <= table["outer_high"])).all()


@pytest.mark.parametrize(("inner", "outer"), [(0.89, 0.5), (0.5, 0.5), (0.0, 0.5), (0.5, 1.0)])
def test_interval_masses_must_be_ordered(inner: float, outer: float) -> None:
    da = _draws(np.zeros(5), 0.1, "gene", GENES)
    with pytest.raises(AnalysisError, match="0 < inner < outer < 1"):
        forest.interval_table(da, "gene", inner=inner, outer=outer)


def test_interval_table_rejects_damaged_or_misshaped_draws() -> None:
    da = _draws(np.zeros(5), 0.1, "gene", GENES)
    bad = da.copy()
    bad[0, 3, 1] = np.nan
    with pytest.raises(AnalysisError, match="NaN"):
        forest.interval_table(bad, "gene")
    with pytest.raises(AnalysisError, match="no 'lineage' dim"):
        forest.interval_table(da, "lineage")
    two = xr.concat([da, da], dim="lineage")
    with pytest.raises(AnalysisError, match="extra dims"):
        forest.interval_table(two, "gene")


def test_forest_rows_sorting_and_lineage_colour() -> None:
    cells = ["ACH-000001", "ACH-000002", "ACH-000003"]
    da = _draws(np.array([0.2, -1.0, -0.3]), 0.05, "cell_line", cells)
    by_mean = forest.forest_rows(da, "cell_line", lineage_of={"ACH-000001": "skin", "ACH-000002": "blood"})
    assert by_mean["label"].tolist() == ["ACH-000002", "ACH-000003", "ACH-000001"]
    assert by_mean["lineage"].tolist() == ["blood", "unknown", "skin"]
    assert by_mean["order"].tolist() == [0, 1, 2]
    by_name = forest.forest_rows(da, "cell_line", sort="name")
    assert by_name["label"].tolist() == cells and set(by_name["lineage"]) == {"all"}
    lin = forest.forest_rows(_draws(np.array([0.0, -1.0]), 0.1, "lineage", ["skin", "blood"]), "lineage")
    assert lin["lineage"].tolist() == lin["label"].tolist() == ["blood", "skin"]
    with pytest.raises(AnalysisError, match="unknown sort"):
        forest.forest_rows(da, "cell_line", sort="size")


def test_pick_labels_top_bottom_pages_and_search() -> None:
    table = pd.DataFrame({"gene": GENES, "mean": [-1.5, -0.2, 0.3, -0.8, 0.0]})
    assert forest.pick_labels(table, "gene", "strongest", 2) == ["KRAS", "TP53"]
    assert forest.pick_labels(table, "gene", "strongest", 2, page=1) == ["BRAF", "SOX10"]
    assert forest.pick_labels(table, "gene", "strongest", 2, page=2) == ["MYC"]
    assert forest.pick_labels(table, "gene", "weakest", 2) == ["MYC", "SOX10"]
    assert forest.pick_labels(table, "gene", "chosen", 0, chosen=["MYC", "KRAS", "MYC"]) == ["MYC", "KRAS"]
    with pytest.raises(AnalysisError, match=r"'KRSA' \(did you mean KRAS\?\)"):
        forest.pick_labels(table, "gene", "chosen", 0, chosen=["KRSA"])
    rows = pd.DataFrame({"label": [f"G{i}" for i in range(300)], "mean": np.linspace(1, -1, 300)})
    assert len(forest.pick_labels(rows, "label", "chosen", 0, chosen=rows["label"])) == forest.MAX_FOREST_ROWS


@pytest.fixture(scope="module")
def screen_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    screen = simulate_screen(n_genes=6, n_cell_lines=12, n_lineages=3, seed=5, sgrnas_per_gene=(2, 2))
    path, _ = write_synthetic(screen, tmp_path_factory.mktemp("screen") / "tiny.csv")
    return path, screen


def test_truth_overlay_and_recovery_numbers(screen_file) -> None:  # type: ignore[no-untyped-def]
    path, screen = screen_file
    truth = forest.load_truth(path)
    values = forest.truth_values(truth, "gene_effect", "gene")
    expected = screen.truth_values("gene_effect").set_index("gene")["value"]
    pd.testing.assert_series_equal(values.sort_index(), expected.sort_index(), check_names=False)
    gl = forest.truth_values(truth, "gene_lineage_effect", "lineage", gene="KRAS")
    assert len(gl) == 3 and set(gl.index) == set(screen.data["lineage"].unique())

    genes = list(values.index)
    # intervals centred 0.1 off the truth with half-widths 0.05 (inner) and 0.2 (outer): inner misses, outer holds
    rows = pd.DataFrame({"label": genes, "mean": values.to_numpy() + 0.1})
    rows["inner_low"], rows["inner_high"] = rows["mean"] - 0.05, rows["mean"] + 0.05
    rows["outer_low"], rows["outer_high"] = rows["mean"] - 0.2, rows["mean"] + 0.2
    rows.loc[0, ["outer_low", "outer_high"]] = [5.0, 6.0]  # one outer interval misses too
    rec = forest.recovery(forest.add_truth(rows, values))
    assert rec["n"] == 6 and rec["inside_inner"] == 0.0 and rec["inside_outer"] == pytest.approx(5 / 6)
    assert rec["rmse"] == pytest.approx(0.1) and rec["bias"] == pytest.approx(0.1)
    text = sentences.describe_recovery(rec, 0.5, 0.89)
    assert "inside the 89% interval for 5 of 6 genes (83%)" in text and "inside the 50% interval for 0" in text
    assert forest.load_truth(path.with_name("no_such_screen.csv")) is None
    assert forest.truth_values(None, "gene_effect", "gene").empty


def test_damaged_truth_table_is_reported(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text("x\n1\n")
    (tmp_path / "s.truth.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(AnalysisError, match="has no column parameter, value"):
        forest.load_truth(tmp_path / "s.csv")


def test_shrinkage_between_partial_and_no_pooling() -> None:
    rng = np.random.default_rng(3)
    true = rng.normal(-0.5, 0.4, 20)
    labels = [f"G{i}" for i in range(20)]
    raw = true + rng.normal(0, 0.4, 20)
    pooled_centre = raw.mean() + 0.5 * (raw - raw.mean())  # partial pooling halves the spread
    a = forest.forest_rows(_draws(pooled_centre, 0.15, "gene", labels, seed=1), "gene")
    b = forest.forest_rows(_draws(raw, 0.4, "gene", labels, seed=2), "gene")
    table = forest.shrinkage_table(a, b)
    assert len(table) == 20 and (table["width_ratio"] < 1).all()
    np.testing.assert_allclose(table["shift"], table["mean_a"] - table["mean_b"])
    text = sentences.describe_shrinkage(table, "partial", "none")
    assert "for 20 of 20 (100%)" in text and "closer together" in text and "partial pooling" in text
    both = forest.combine_forests({"partial": a, "none": b})
    assert len(both) == 40 and both.groupby("label")["fit"].nunique().eq(2).all()
    assert both.drop_duplicates("label")["label"].tolist() == a["label"].tolist()  # first fit's order
    with pytest.raises(AnalysisError, match="share no labels"):
        forest.combine_forests({"a": a, "b": b.assign(label="X" + b["label"])})


# --------------------------------------------------------------------------- heatmap


def _matrices(mean: np.ndarray, sd: np.ndarray, genes: list[str], cols: list[str]) -> dict[str, pd.DataFrame]:
    frame = lambda x: pd.DataFrame(x, index=pd.Index(genes, name="gene"), columns=cols)  # noqa: E731
    return {"mean": frame(mean), "sd": frame(sd), "hdi_5.5%": frame(mean - 1.6 * sd), "hdi_94.5%": frame(mean + 1.6 * sd),
            "p_below": frame((mean < -0.5).astype(float))}


def test_heatmap_cells_groups_lineages_and_fades_uncertain_cells() -> None:
    genes = ["A", "B", "C", "D"]
    cols = ["c1", "c2", "c3", "c4", "c5"]
    lineage = {"c1": "skin", "c2": "blood", "c3": "skin", "c4": "blood", "c5": "skin"}
    mean = np.array([[-1.0, 0.1, -2.0, 0.0, -0.5],
                     [0.5, 0.5, 0.5, 0.5, 0.5],
                     [-1.1, 0.1, -2.1, 0.0, -0.4],  # like A: clustering puts them together
                     [0.4, 0.7, 0.5, 0.4, 0.6]])  # mean 0.52: just weaker than B
    sd = np.full_like(mean, 0.2)
    sd[0, 4] = 1.0  # A in c5: interval includes 0
    view = heatmap.heatmap_view(_matrices(mean, sd, genes, cols), genes, column_lineage=lineage, order="cluster")
    assert view.per_column == 1 and len(view.cells) == 20
    # blood first (alphabetical), then skin; within a lineage strongest (most negative column mean) first
    assert view.columns == ("c4", "c2", "c3", "c1", "c5")
    assert view.bands["lineage"].tolist() == ["blood", "blood", "skin", "skin", "skin"]
    cells = view.cells.set_index(["gene", "column"])
    assert cells.loc[("A", "c3"), "value"] == -2.0 and cells.loc[("A", "c3"), "lineage"] == "skin"
    assert cells.loc[("A", "c5"), "certainty"] == 0.0 and cells.loc[("A", "c3"), "certainty"] == 1.0
    assert cells.loc[("B", "c1"), "certainty"] == 1.0 and cells.loc[("A", "c4"), "certainty"] == 0.0
    order = list(view.genes)
    assert abs(order.index("A") - order.index("C")) == 1 and abs(order.index("B") - order.index("D")) == 1
    assert heatmap.heatmap_view(_matrices(mean, sd, genes, cols), genes, order="mean",
                                column_lineage=lineage).genes == ("C", "A", "B", "D")
    sd_view = heatmap.heatmap_view(_matrices(mean, sd, genes, cols), ["A"], stat="sd", column_lineage=lineage)
    assert sd_view.cells.set_index("column").loc["c5", "value"] == 1.0
    with pytest.raises(AnalysisError, match=r"'Z' \(did you mean|1 gene not in this fit"):
        heatmap.heatmap_view(_matrices(mean, sd, genes, cols), ["Z"], column_lineage=lineage)


def test_heatmap_averages_neighbouring_cell_lines_of_a_lineage_beyond_the_cell_budget() -> None:
    rng = np.random.default_rng(0)
    genes = [f"G{i}" for i in range(50)]
    cols = [f"ACH-{i:06d}" for i in range(300)]
    lineage = {c: ("blood", "skin", "lung")[i % 3] for i, c in enumerate(cols)}
    mean = rng.normal(-0.3, 0.6, (50, 300))
    mats = _matrices(mean, np.full_like(mean, 0.3), genes, cols)
    view = heatmap.heatmap_view(mats, genes, column_lineage=lineage, max_cells=5_500)
    assert view.per_column == 3 and len(view.cells) == 50 * 3 * 34  # 100 cell lines per lineage: 34 columns each
    assert view.bands["n_cell_lines"].sum() == 300 and view.n_columns_total == 300
    cells = view.cells
    for _, row in cells.sample(25, random_state=1).iterrows():
        members = [m for m in row["cell_lines"].split(", ")]
        assert len(members) == row["n_cell_lines"] and {lineage[m] for m in members} == {row["lineage"]}
        assert row["mean"] == pytest.approx(mats["mean"].loc[row["gene"], members].mean())
        inside = ((mats["hdi_5.5%"].loc[row["gene"], members] > 0) | (mats["hdi_94.5%"].loc[row["gene"], members] < 0))
        assert row["certainty"] == pytest.approx(inside.mean())
    chart = charts.lineage_heatmap(view, column_title="cell line")
    with alt.data_transformers.enable("default", max_rows=None):  # Streamlit ships every row itself
        spec = chart.to_dict()
    assert spec["vconcat"][1]["encoding"]["opacity"]["field"] == "certainty"
    assert spec["vconcat"][1]["encoding"]["x"]["axis"]["labels"] is False  # 100 columns: the band labels lineages


# --------------------------------------------------------------------------- readings and predictive checks


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


def test_cell_line_lineages_from_the_table_or_the_posterior(screen_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, screen = screen_file
    truth = screen.truth_values("cell_line_effect").set_index("cell_line")["lineage"].to_dict()
    cells = sorted(truth)[:5]
    assert heatmap.cell_line_lineages_from_table(path, cells) == {c: truth[c] for c in cells}
    assert heatmap.cell_line_lineages_from_table(tmp_path / "gone.csv", cells) == {}
    post = xr.Dataset(coords={"cell_line": cells, "cell_line_lineage": ("cell_line", [truth[c] for c in cells])})
    assert heatmap.cell_line_lineages(post) == {c: truth[c] for c in cells}


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


def test_ppc_histogram_densities_and_band() -> None:
    rng = np.random.default_rng(1)
    observed = rng.normal(-0.3, 1.0, 4000)
    predicted = rng.normal(-0.3, 1.0, (60, 4000))
    prior = rng.normal(0.0, 3.0, (20, 4000))
    hist = ppc.ppc_histogram(observed, predicted, prior=prior)
    width = hist["bin_high"] - hist["bin_low"]
    for col in ("observed", "predicted_mean"):
        assert float((hist[col] * width).sum()) == pytest.approx(1.0)
    # the window is the data's and the fit's: the wide prior's mass beyond it is left out, not piled on the edges
    low, high = hist["bin_low"].iloc[0], hist["bin_high"].iloc[-1]
    assert float((hist["prior_mean"] * width).sum()) == pytest.approx(float(((prior >= low) & (prior < high)).mean()))
    assert observed.min() < low  # observed outliers do go to the edge bins
    assert (hist["predicted_low"] <= hist["predicted_high"]).all() and (hist["prior_low"] <= hist["prior_high"]).all()
    # the prior (sd 3) is wider than the posterior predictive (sd 1): its band is lower in the middle
    middle = hist["bin_mid"].abs().idxmin()
    assert hist.loc[middle, "prior_mean"] < hist.loc[middle, "predicted_mean"]
    inside = (hist["observed"] >= hist["predicted_low"]) & (hist["observed"] <= hist["predicted_high"])
    assert inside.mean() > 0.75  # the same distribution: the observed histogram lies mostly in the band
    assert hist.attrs["n_draws"] == 60 and hist.attrs["n_readings"] == 4000
    with pytest.raises(AnalysisError, match="predictions cover 10 readings but 4,000"):
        ppc.ppc_histogram(observed, predicted[:, :10])


def test_ppc_statistics_flag_a_model_that_is_too_narrow() -> None:
    rng = np.random.default_rng(2)
    observed = rng.normal(0, 1.0, 2000)
    centre = observed.mean()  # a fitted model's predictions centre on the data
    good = ppc.ppc_statistics(observed, rng.normal(centre, observed.std(), (200, 2000)))
    narrow = ppc.ppc_statistics(observed, rng.normal(centre, 0.6, (200, 2000)))
    assert not good["surprising"].any()
    flagged = narrow.set_index("statistic")["surprising"]
    assert flagged["sd"] and flagged["5% quantile"] and flagged["95% quantile"] and not flagged["mean"]
    assert narrow.set_index("statistic").loc["sd", "p_predicted_above"] == 0.0
    assert "no sign of misfit" in sentences.describe_ppc(good)
    assert "does not reproduce the observed sd" in sentences.describe_ppc(narrow)


def test_ppc_by_group_uses_each_groups_readings_on_shared_bins() -> None:
    rng = np.random.default_rng(4)
    groups = np.repeat(["KRAS", "MYC", "TP53"], [300, 200, 100])
    observed = np.where(groups == "KRAS", -2.0, 0.0) + rng.normal(0, 0.3, 600)
    predicted = observed + rng.normal(0, 0.3, (40, 600))
    table = ppc.ppc_by_group(observed, predicted, groups, ["KRAS", "TP53"])
    assert set(table["group"]) == {"KRAS", "TP53"}
    assert table.groupby("group")["n_readings"].first().to_dict() == {"KRAS": 300, "TP53": 100}
    kras = table[table["group"] == "KRAS"]
    assert float((kras["observed"] * kras["bin_mid"] * (kras["bin_high"] - kras["bin_low"])).sum()) == pytest.approx(
        observed[groups == "KRAS"].mean(), abs=0.05)
    np.testing.assert_array_equal(kras["bin_low"], table.loc[table["group"] == "TP53", "bin_low"])  # shared edges
    thinned = ppc.ppc_by_group(observed, predicted, groups, ["KRAS"], max_values=40 * 100)
    assert thinned["n_readings"].iloc[0] == 100
    with pytest.raises(AnalysisError, match="'BRAF'"):
        ppc.ppc_by_group(observed, predicted, groups, ["BRAF"])


def test_thin_predictions_keeps_first_chains_and_evenly_spaced_draws() -> None:
    n_chain, n_draw, n_reading = 4, 101, 50
    # each value spells its (chain, draw, reading), so the kept positions can be read back
    values = (np.arange(n_chain)[:, None, None] * 1e6 + np.arange(n_draw)[None, :, None] * 1e3
              + np.arange(n_reading)[None, None, :])
    da = xr.DataArray(values, dims=("chain", "draw", "reading")).transpose("reading", "draw", "chain")
    everything = ppc.thin_predictions(da, n_reading, max_values=10**9)
    assert everything.dtype == np.float32 and everything.shape == (n_chain * n_draw, n_reading)
    np.testing.assert_array_equal(everything, values.reshape(-1, n_reading).astype(np.float32))
    thin = ppc.thin_predictions(da, n_reading, max_values=n_chain * 11 * n_reading)  # 11 draws of every chain fit
    assert thin.shape == (n_chain * 11, n_reading)
    chains, draws = np.divmod(thin[:, 0].astype(np.int64) // 1000, 1000)
    np.testing.assert_array_equal(chains, np.repeat(np.arange(n_chain), 11))
    np.testing.assert_array_equal(draws[:11], np.linspace(0, n_draw - 1, 11).round())  # first and last draw kept
    np.testing.assert_array_equal(thin[:, 7] - thin[:, 0], 7)  # readings stay in order
    few = ppc.thin_predictions(da, n_reading, max_values=2 * n_reading)  # room for two draws: the first two chains
    np.testing.assert_array_equal(few[:, 0], [0, 1e6])
    one = ppc.thin_predictions(da, n_reading, max_values=1)  # never less than one draw
    assert one.shape == (1, n_reading)


def test_ppc_overall_histograms_every_kth_reading_beyond_the_budget() -> None:
    rng = np.random.default_rng(5)
    observed = rng.normal(0, 1, 1000)
    predicted = observed + rng.normal(0, 0.3, (40, 1000))
    hist, stats = ppc.ppc_overall(observed, predicted, max_values=40 * 250)
    assert hist.attrs["stride"] == 4 and hist.attrs["n_readings"] == 250 and hist.attrs["n_draws"] == 40
    expected = ppc.ppc_statistics(observed[::4], predicted[:, ::4])
    pd.testing.assert_frame_equal(stats, expected)
    full, _ = ppc.ppc_overall(observed, predicted)
    assert full.attrs["stride"] == 1 and "prior_mean" not in full.columns


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


# --------------------------------------------------------------------------- rankings and comparison


def test_pairwise_and_contrast_sentences() -> None:
    da = _draws(np.array([-2.0, -1.0, 0.0, -1.02, 0.5]), 0.1, "gene", GENES)
    comparison = compare_pairs(da, ["KRAS", "BRAF", "TP53"])
    said = sentences.pairwise_sentences(comparison)
    assert said[0] == "KRAS is a stronger dependency than BRAF in all 800 posterior draws"
    assert said[1].startswith("no clear difference between BRAF and TP53")
    cells = pairs.pairwise_cells(comparison)
    assert len(cells) == 6 and cells.set_index(["gene_a", "gene_b"]).loc[("BRAF", "KRAS"), "p_a_stronger"] == 0.0
    spec = charts.pairwise_chart(cells, comparison.genes).to_dict()
    assert spec["layer"][0]["encoding"]["color"]["scale"]["domainMid"] == 0.5


def test_loo_table_prefers_the_model_that_generated_the_data() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(0, 1, 80)
    mu_good = rng.normal(0, 0.05, (2, 300, 1))
    mu_bad = 2.0 + rng.normal(0, 0.05, (2, 300, 1))

    def idata(mu: np.ndarray) -> az.InferenceData:
        ll = -0.5 * (y - mu) ** 2 - 0.5 * np.log(2 * np.pi)
        return az.from_dict(posterior={"mu": mu[..., 0]}, log_likelihood={"lfc": ll}, observed_data={"lfc": y})

    fits = {"good": idata(mu_good), "bad": idata(mu_bad)}
    table = compare.loo_table(fits)
    assert table["fit"].tolist() == ["good", "bad"] and table["rank"].tolist() == [0, 1]
    assert table.loc[0, "elpd_loo"] == pytest.approx(float(az.loo(fits["good"]).elpd_loo))
    assert table.loc[1, "elpd_diff"] == pytest.approx(table.loc[0, "elpd_loo"] - table.loc[1, "elpd_loo"])
    assert table["weight"].sum() == pytest.approx(1.0)
    text = sentences.describe_loo(table)
    assert text[0].startswith("good predicts held-out readings best") and "a clear difference" in text[1]
    with pytest.raises(AnalysisError, match="stored no log-likelihood"):
        compare.loo_table({"x": az.from_dict(posterior={"mu": mu_good[..., 0]})})
    with pytest.raises(AnalysisError, match="different readings"):
        compare.check_same_data([_manifest_on("a" * 64), _manifest_on("b" * 64)])
    compare.check_same_data([_manifest_on("a" * 64), _manifest_on("a" * 64)])  # same readings: no error


def _manifest_on(fingerprint: str) -> FitManifest:
    """A minimal stored-fit manifest of a fit made on the readings with this fingerprint."""
    request = {"data_fingerprint": fingerprint, "model": "gene", "model_version": "1"}
    return FitManifest.model_validate({"fit_id": fingerprint, "model": "gene", "request": request,
                                       "roles": {"gene_effect": "gene_effect"}})


def test_ranking_changes_between_fits() -> None:
    a = rank_genes(_draws(np.array([-2.0, -1.0, 0.0, -0.5, 0.5]), 0.05, "gene", GENES, seed=1))
    b = rank_genes(_draws(np.array([-1.0, -2.0, 0.0, -0.5, 0.5]), 0.05, "gene", GENES, seed=2))
    wide, long = compare.ranking_changes({"A": a, "B": b}, top_n=2)
    w = wide.set_index("gene")
    assert w.loc["KRAS", "rank: A"] == 1 and w.loc["KRAS", "rank: B"] == 2 and w.loc["KRAS", "rank change"] == 1
    assert w.loc["BRAF", "rank change"] == -1 and w.loc["MYC", "rank change"] == 0
    assert set(long["gene"]) == {"KRAS", "BRAF"} and set(long["fit"]) == {"A", "B"}
    text = compare.rank_agreement(wide, ["A", "B"], top_n=2)[0]
    assert text == "B vs A: rank correlation 0.90; 2 of the top 2 genes are the same."


def test_is_approximate_and_fit_label() -> None:
    request = {"data_fingerprint": "f" * 64, "model": "gene", "model_version": "1", "sampler": {"method": "quick"}}
    manifest = FitManifest.model_validate({"fit_id": "ab" * 32, "model": "gene", "genes": GENES,
                                           "diagnostics": {"approximate": False}, "request": request,
                                           "roles": {"gene_effect": "gene_effect"}})
    assert fitview.is_approximate(manifest)
    nuts = manifest.model_copy(update={"request": StoredRequest(**{**request, "sampler": {"method": "nuts"}})})
    assert not fitview.is_approximate(nuts)
    assert fitview.fit_label(manifest) == "gene · 5 genes · quick · abababab"


def test_forest_chart_shows_truth_and_compares_fits() -> None:
    da = _draws(np.array([-1.5, -0.2, 0.3, -0.8, 0.0]), 0.1, "gene", GENES)
    rows = forest.add_truth(forest.forest_rows(da, "gene"), pd.Series({"KRAS": -1.4, "MYC": 0.3}))
    spec = charts.forest_chart(rows, label_title="gene").to_dict()
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in spec["layer"]]
    assert marks == ["rule", "rule", "rule", "point", "point"]  # zero, outer, inner, mean, truth
    assert spec["layer"][4]["mark"]["shape"] == "diamond"
    both = forest.combine_forests({"a": rows, "b": rows})
    spec2 = json.loads(charts.forest_chart(both, label_title="gene", compare=True).to_json())
    assert spec2["layer"][1]["encoding"]["yOffset"]["field"] == "fit"
    with pytest.raises(ValueError, match="too many for the browser"):
        charts.forest_chart(pd.concat([rows] * 12_000, ignore_index=True), label_title="gene")
