"""analysis.forest: intervals, forest rows, label picking, truth overlay and recovery, shrinkage."""

from __future__ import annotations

from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from analysis_helpers import GENES, _draws

from speclet_core.analysis import forest, sentences
from speclet_core.errors import AnalysisError


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
