"""analysis.ppc: predictive-check histograms, statistics, groups and thinning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from speclet_core.analysis import ppc, sentences
from speclet_core.errors import AnalysisError


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
