"""The vectorised statistics give ArviZ's numbers, element by element."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest

from model_store.stats import bfmi, ess, hdi, hdi_sorted, rhat_ess, summarise_draws


def _ar1(rng: np.random.Generator, n_elem: int, chains: int, draws: int) -> np.ndarray:
    """Autocorrelated chains from anti-correlated (-0.6) to sticky (0.98), so Geyer's sequence stops at many lags."""
    phi = np.linspace(-0.6, 0.98, n_elem)[:, None]
    x = np.zeros((n_elem, chains, draws))
    noise = rng.normal(size=x.shape)
    for t in range(1, draws):
        x[:, :, t] = phi * x[:, :, t - 1] + noise[:, :, t]
    return x


@pytest.mark.parametrize(("chains", "draws"), [(2, 100), (4, 101), (1, 60), (3, 7), (2, 5)])
def test_matches_arviz_element_by_element(chains: int, draws: int) -> None:
    rng = np.random.default_rng(chains * 1000 + draws)
    x = _ar1(rng, 30, chains, draws)
    x[1] = np.round(x[1])  # many ties: ranks are averaged
    x[2] = 3.0  # constant element
    x[3, 0] += 2.0  # one chain elsewhere: R-hat must be large
    x[4, 0, 0] = np.nan
    got = summarise_draws(x, threshold=-0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(len(x)):
            a = x[i]
            expected = {
                "ess_bulk": az.ess(a, method="bulk"),
                "ess_tail": az.ess(a, method="tail"),
                "r_hat": az.rhat(a, method="rank"),
            }
            for name, value in expected.items():
                np.testing.assert_allclose(getattr(got, name)[i], value, rtol=1e-9, equal_nan=True,
                                           err_msg=f"{name} of element {i}")
            if i != 4:
                low, high = az.hdi(a.ravel(), hdi_prob=0.89)
                assert (got.hdi_low[i], got.hdi_high[i]) == (low, high)
                np.testing.assert_allclose(got.mean[i], a.mean(), rtol=1e-12)
                np.testing.assert_allclose(got.sd[i], a.std(ddof=1), rtol=1e-12)
                assert got.p_below is not None
                assert got.p_below[i] == pytest.approx((a < -0.5).mean())
    if chains >= 2 and draws >= 50:
        assert got.r_hat[3] > 1.2
    assert got.ess_bulk[2] == chains * 2 * (draws // 2)  # a constant: every (split) draw counts


def test_float32_draws_and_hdi_match_arviz() -> None:
    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, 1.0, size=(50, 2, 200)).astype(np.float32)  # skewed: HDI differs from the central interval
    low, high = hdi(x)
    got = summarise_draws(x)
    for i in range(len(x)):
        expected = az.hdi(x[i].ravel(), hdi_prob=0.89)
        assert (low[i], high[i]) == tuple(expected)
        assert (got.hdi_low[i], got.hdi_high[i]) == tuple(expected)
    central = np.quantile(x.reshape(50, -1), [0.055, 0.945], axis=1)
    assert np.mean(high - low) < np.mean(central[1] - central[0])  # narrowest interval, not the central one


def test_summary_table_matches_arviz_summary() -> None:
    rng = np.random.default_rng(5)
    draws = rng.normal(size=(2, 300, 4)).cumsum(axis=1) * 0.05 + rng.normal(size=(2, 300, 4))
    idata = az.from_dict(posterior={"beta": draws})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = az.summary(idata, hdi_prob=0.89)
    got = summarise_draws(np.moveaxis(draws, 2, 0))
    np.testing.assert_allclose(got.mean, table["mean"], atol=5e-4)  # az.summary rounds to 3 decimals
    np.testing.assert_allclose(got.sd, table["sd"], atol=5e-4)
    np.testing.assert_allclose(got.hdi_low, table["hdi_5.5%"], atol=5e-4)
    np.testing.assert_allclose(got.hdi_high, table["hdi_94.5%"], atol=5e-4)
    np.testing.assert_allclose(got.r_hat, table["r_hat"], atol=5e-3)
    np.testing.assert_allclose(got.ess_bulk, table["ess_bulk"], atol=0.5)
    np.testing.assert_allclose(got.ess_tail, table["ess_tail"], atol=0.5)


def test_first_lags_and_fft_give_the_same_ess() -> None:
    """Few direct lags send most elements to the FFT fallback; all lags decide every element directly."""
    x = _ar1(np.random.default_rng(11), 200, 4, 400)
    few, every = ess(x, direct_lags=4), ess(x, direct_lags=10_000)
    np.testing.assert_allclose(few, every, rtol=1e-10)
    assert np.ptp(every) > 1000  # from sticky to anti-correlated chains


@pytest.mark.parametrize("n_draws", [1000, 333, 25, 7])
def test_rhat_ess_match_arviz_in_blocks(n_draws: int) -> None:
    """AR(1) chains, a stuck chain, a constant and ties; blocks of a few elements give the same numbers."""
    rng = np.random.default_rng(1)
    x = _ar1(rng, 30, 4, n_draws)
    x[:5, 0] += 0.7
    x[10] = 2.0
    x[11] = np.round(x[11])
    rhat, bulk, tail = rhat_ess(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = [np.array([f(a) for a in x]) for f in (
            lambda a: az.rhat(a, method="rank"),
            lambda a: az.ess(a, method="bulk"),
            lambda a: az.ess(a, method="tail"),
        )]
    for got, want in zip((rhat, bulk, tail), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, equal_nan=True)
    blocked = rhat_ess(x, block_values=7 * 4 * n_draws)  # 5 blocks, the last one short
    for got, whole in zip(blocked, (rhat, bulk, tail), strict=True):
        np.testing.assert_array_equal(got, whole)
    assert np.isnan(rhat[10]) and bulk[10] == 4 * 2 * (n_draws // 2)


def test_bfmi_matches_arviz() -> None:
    rng = np.random.default_rng(2)
    energy = rng.normal(size=(4, 500)).cumsum(axis=1) * 0.05 + rng.normal(size=(4, 500))
    energy[3] = rng.normal(size=500).cumsum()  # a chain whose energy explores poorly
    got = bfmi(energy)
    np.testing.assert_allclose(got, az.bfmi(energy), rtol=1e-12)
    assert got.shape == (4,) and got[3] < 0.2 < got[:3].min()
    with pytest.raises(ValueError, match="chain, draw"):
        bfmi(energy.ravel())


def test_hdi_sorted_takes_any_leading_shape() -> None:
    x = np.sort(np.random.default_rng(4).gamma(2.0, 1.0, size=(3, 5, 400)), axis=-1)
    low, high = hdi_sorted(x, 0.8)
    assert low.shape == high.shape == (3, 5)
    for i, j in np.ndindex(3, 5):
        assert (low[i, j], high[i, j]) == tuple(az.hdi(x[i, j], hdi_prob=0.8))
