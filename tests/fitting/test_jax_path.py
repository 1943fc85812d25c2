"""The JAX path (``SPECLET_NUTPIE_BACKEND=jax``): same posterior as numba, on CPU, on a small screen.

Both fits are real nutpie NUTS fits of the same request; the posterior means of every gene
effect and hyper-parameter agree within their Monte Carlo errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speclet_core.data.synthetic import simulate_screen
from speclet_core.errors import SettingsError
from speclet_core.fitting.engine import run_fit
from speclet_core.fitting.request import prepare_request
from speclet_core.records import SamplerSettings
from speclet_core.settings import Settings

pytest.importorskip("jax")
pytestmark = pytest.mark.slow


def _mcse(da) -> np.ndarray:
    """Monte Carlo standard error of the mean of each element (sd / sqrt(bulk ESS))."""
    from model_store.stats import rhat_ess

    draws = da.transpose(..., "chain", "draw").values.reshape(-1, da.sizes["chain"], da.sizes["draw"])
    _, bulk, _ = rhat_ess(draws)
    return draws.reshape(draws.shape[0], -1).std(axis=1) / np.sqrt(bulk)


def test_jax_backend_gives_the_numba_posterior(tmp_path: Path) -> None:
    sim = simulate_screen(8, 12, 1, seed=5, covariates=False, sgrnas_per_gene=(2, 3))
    path = tmp_path / "screen.csv"
    sim.data.to_csv(path, index=False)
    sampler = SamplerSettings(chains=2, tune=300, draws=400)
    fits = {}
    for backend in ("numba", "jax"):
        settings = Settings(data_dir=tmp_path / backend, nutpie_backend=backend)
        request = prepare_request(path, "gene_cell_line", sampler=sampler, seed=7, settings=settings)
        fits[backend] = run_fit(request, settings=settings)
    assert fits["jax"].provenance["notes"]["nutpie_backend"] == "jax"
    assert fits["numba"].provenance["notes"]["nutpie_backend"] == "numba"
    for result in fits.values():
        # a stray divergence or two in 800 draws of a 12-cell-line screen: either backend, same geometry
        assert result.diagnostics["divergences"] <= 2 and result.diagnostics["max_rhat"] < 1.05, result.diagnostics
    for var in ("gene_effect", "cell_line_effect", "mu_gene", "sigma_gene", "sigma"):
        a, b = fits["numba"].idata.posterior[var], fits["jax"].idata.posterior[var]
        diff = np.abs(a.mean(("chain", "draw")).values - b.mean(("chain", "draw")).values).ravel()
        allowed = 4.0 * np.sqrt(_mcse(a) ** 2 + _mcse(b) ** 2)
        assert np.all(diff <= allowed), (var, diff, allowed)


def test_unknown_backend_is_refused_with_the_choices() -> None:
    with pytest.raises(SettingsError, match="expected numba .* or jax"):
        Settings.from_env({"SPECLET_NUTPIE_BACKEND": "cuda"})
