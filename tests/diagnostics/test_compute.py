"""Convergence diagnostics of a fit: the worst R-hat/ESS and where, divergences, BFMI, the stored verdict."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest
import xarray as xr

from speclet_core.diagnostics.compute import compute_diagnostics, diagnose_elements


def _fake_idata(offset: float, n_div: int = 0, seed: int = 0) -> az.InferenceData:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(4, 1000, 3))
    x[0] += offset  # one chain stuck elsewhere
    diverging = np.zeros((4, 1000), dtype=bool)
    diverging.flat[:n_div] = True
    energy = rng.normal(size=(4, 1000)).cumsum(axis=1) * 0.05 + rng.normal(size=(4, 1000))
    post = xr.Dataset({"gene_effect": (("chain", "draw", "gene"), x)}, coords={"gene": ["A", "B", "C"]})
    stats = xr.Dataset({"diverging": (("chain", "draw"), diverging), "energy": (("chain", "draw"), energy)})
    return az.InferenceData(posterior=post, sample_stats=stats)


def test_diagnostics_pass_a_well_mixed_fit() -> None:
    d = compute_diagnostics(_fake_idata(0.0))
    assert d["max_rhat"] < 1.01 and d["min_ess_bulk"] > 2000 and d["divergences"] == 0
    assert d["verdict"] == "converged" and d["reasons"] == []


def test_diagnostics_flag_disagreeing_chains_and_divergences() -> None:
    d = compute_diagnostics(_fake_idata(3.0))
    assert d["max_rhat"] > 1.05 and d["verdict"] == "do_not_trust"
    assert d["max_rhat_at"].startswith("gene_effect[")
    d = compute_diagnostics(_fake_idata(0.0, n_div=3))
    assert d["divergences"] == 3 and d["verdict"] == "look_closer"
    assert any("3 divergent transitions" in r for r in d["reasons"])


@pytest.mark.parametrize("n_draws", [1000, 333, 25, 7])
def test_vectorised_rhat_and_ess_equal_arviz(n_draws: int) -> None:
    """The fast estimators give ArviZ's numbers (AR(1) chains, a stuck chain, a constant, ties)."""
    rng = np.random.default_rng(1)
    phi = rng.uniform(0.0, 0.95, 30)
    x = np.zeros((4, n_draws, 30))
    noise = rng.normal(size=x.shape)
    for t in range(1, n_draws):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    x[0, :, :5] += 0.7
    x[:, :, 10] = 2.0
    x[:, :, 11] = np.round(x[:, :, 11])
    da = xr.DataArray(x.reshape(4, n_draws, 5, 6), dims=("chain", "draw", "a", "b"))
    rhat, bulk, tail = diagnose_elements(da)
    assert rhat.shape == bulk.shape == tail.shape == (5, 6)
    ds = xr.Dataset({"v": (("chain", "draw", "k"), x)})
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = (az.rhat(ds)["v"].values, az.ess(ds, method="bulk")["v"].values,
                    az.ess(ds, method="tail")["v"].values)
    for got, want in zip((rhat, bulk, tail), expected, strict=True):
        np.testing.assert_allclose(got.ravel(), want, rtol=1e-9, equal_nan=True)


def test_bfmi_is_the_lowest_chain_as_arviz() -> None:
    idata = _fake_idata(0.0, seed=4)
    d = compute_diagnostics(idata)
    assert d["bfmi_min"] == pytest.approx(float(np.min(az.bfmi(idata))), rel=1e-12)


def test_constant_and_short_variables_warn_nothing() -> None:
    """Constant elements (a lineage with one cell line) and very short chains need no warning filter."""
    rng = np.random.default_rng(6)
    for n_draws in (1000, 7):
        x = rng.normal(size=(4, n_draws, 3))
        x[:, :, 1] = 0.0
        post = xr.Dataset({"gene_effect": (("chain", "draw", "gene"), x), "sigma": (("chain", "draw"), x[:, :, 0])})
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            d = compute_diagnostics(az.InferenceData(posterior=post))
        assert d["max_rhat_at"] is not None and "gene_effect[1]" not in str(d["max_rhat_at"])
        assert d["bfmi_min"] is None and d["divergences"] is None


def test_approximate_fit_is_a_first_look_only() -> None:
    d = compute_diagnostics(_fake_idata(0.0), approximate=True, method="ADVI")
    assert d["verdict"] == "look_closer" and d["approximate"] is True and d["max_rhat"] is None
    assert len(d["reasons"]) == 1 and "ADVI" in d["reasons"][0]
