"""Sampling keeps only what is stored: stored names compiled, float32 draws, per-draw statistics only,
a thinned float32 posterior predictive, one BLAS thread per chain, screened diagnostics that find the worst.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import arviz as az
import numpy as np
import pymc as pm
import pytest
import xarray as xr

from speclet_core.data.screen import screen_from_frame
from speclet_core.data.selection import select_screen
from speclet_core.data.synthetic import simulate_screen
from speclet_core.diagnostics import compute
from speclet_core.fitting import derived, nutpie_sampler
from speclet_core.fitting.engine import run_fit
from speclet_core.fitting.nutpie_sampler import DRAW_DTYPE, compile_model, read_draws
from speclet_core.fitting.request import prepare_request
from speclet_core.models.spec import get_model, public_variables
from speclet_core.records import SamplerSettings
from speclet_core.settings import Settings

# --------------------------------------------------------------------------- diagnostics screen


def _ar_draws(rng: np.random.Generator, shape: tuple[int, ...], phi: float = 0.5) -> np.ndarray:
    e = rng.normal(size=shape).astype(np.float32)
    x = np.empty_like(e)
    x[:, 0] = e[:, 0]
    for t in range(1, shape[1]):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


def _idata(x: np.ndarray) -> az.InferenceData:
    return az.InferenceData(posterior=xr.Dataset(
        {"gene_cell_line_effect": (["chain", "draw", "gene", "cell_line"], x)},
        coords={"gene": [f"G{i}" for i in range(x.shape[2])], "cell_line": [f"C{i}" for i in range(x.shape[3])]},
    ))


def test_screened_diagnostics_find_planted_bad_elements_exactly() -> None:
    rng = np.random.default_rng(1)
    x = _ar_draws(rng, (4, 400, 3000))
    x[0, :, 123] += 1.5  # one chain elsewhere
    x[:, :, 2345] = np.cumsum(rng.normal(size=(4, 400)), axis=1) * 0.1  # a slowly wandering element
    heavy = rng.standard_t(1.5, size=(4, 400)).astype(np.float32)
    x[:, :, 777] = heavy  # heavy tails
    x[:, :, 5] = 0.0  # a constant element: never the worst
    x = x.reshape(4, 400, 60, 50)
    assert 60 * 50 > compute.SCREEN_ABOVE_ELEMENTS
    screened = compute.compute_diagnostics(_idata(x))
    exact_rhat, exact_bulk, exact_tail = compute.diagnose_elements(_idata(x).posterior["gene_cell_line_effect"])
    assert screened["max_rhat"] == pytest.approx(float(np.nanmax(exact_rhat)))
    assert screened["min_ess_bulk"] == pytest.approx(float(np.nanmin(exact_bulk)))
    assert screened["min_ess_tail"] == pytest.approx(float(np.nanmin(exact_tail)))
    assert screened["max_rhat_at"] in ("gene_cell_line_effect[G2, C23]", "gene_cell_line_effect[G46, C45]")
    assert screened["verdict"] == "do_not_trust"


def test_screened_diagnostics_keep_elements_holding_nan() -> None:
    x = _ar_draws(np.random.default_rng(2), (2, 200, 2500)).reshape(2, 200, 50, 50)
    x[1, 17, 3, 4] = np.nan
    rhat, bulk, tail = compute.diagnose_variable(_idata(x).posterior["gene_cell_line_effect"])
    assert np.isnan(rhat[3, 4]) and np.isfinite(rhat).sum() >= compute.SCREEN_CANDIDATES
    assert np.isfinite(rhat).sum() < 0.5 * rhat.size, "only candidates get the exact statistics"


# --------------------------------------------------------------------------- draws and predictive


def test_read_draws_is_float32_and_exact_to_float32() -> None:
    rng = np.random.default_rng(3)
    source = xr.Dataset({"gene_effect": (["chain", "draw", "gene"], rng.normal(size=(3, 20, 4)))},
                        coords={"gene": list("ABCD")})
    out = read_draws(source, ["gene_effect"])
    assert out["gene_effect"].dtype == DRAW_DTYPE and list(out["gene_effect"].coords["gene"].values) == list("ABCD")
    np.testing.assert_array_equal(out["gene_effect"].values, source["gene_effect"].values.astype(np.float32))


def test_posterior_predictive_is_thinned_by_values_and_float32(monkeypatch) -> None:
    sim = simulate_screen(3, 8, 1, seed=4, covariates=False)
    sel = select_screen(screen_from_frame(sim.data))
    spec = get_model("gene")
    rng = np.random.default_rng(0)
    posterior = xr.Dataset(
        {"gene_effect": (["chain", "draw", "gene"], rng.normal(size=(2, 100, 3)).astype(np.float32)),
         "sigma": (["chain", "draw"], np.full((2, 100), 0.3, dtype=np.float32))},
        coords={"chain": [0, 1], "draw": np.arange(100), "gene": list(sel.genes)},
    )
    monkeypatch.setattr(derived, "POSTERIOR_PREDICTIVE_MAX_VALUES", 20 * sel.n_rows)
    monkeypatch.setattr(derived, "PREDICT_BLOCK_VALUES", 3 * sel.n_rows)  # several blocks
    pp = derived.posterior_predictive(spec, posterior, sel, seed=1)
    assert pp["lfc"].dtype == np.float32
    assert pp.sizes["chain"] * pp.sizes["draw"] <= 20 and pp.sizes["draw"] == 10
    mean = derived.predict_mean(spec, posterior, sel, draws=pp.coords["draw"].values)
    resid = (pp["lfc"].values - mean) / 0.3
    assert abs(resid.mean()) < 0.1 and 0.9 < resid.std() < 1.1


# --------------------------------------------------------------------------- a real nutpie fit


def test_compile_keeps_only_the_stored_names() -> None:
    with pm.Model() as model:
        mu = pm.Normal("mu")
        pm.Deterministic("helper_raw", mu * 2)
        pm.Deterministic("kept", mu + 1)
        pm.Normal("y", mu, 1.0, observed=[0.1, -0.2])
    compiled = compile_model(model, ("probe", "1", "x"), ["mu", "kept"])
    names = list(compiled.shape_info[0])
    assert "kept" in names and "helper_raw" not in names


@pytest.mark.slow
def test_nutpie_fit_streams_float32_with_one_blas_thread(tmp_path: Path, monkeypatch) -> None:
    from threadpoolctl import threadpool_info

    sim = simulate_screen(6, 10, 1, seed=6, covariates=False)
    path = tmp_path / "screen.csv"
    sim.data.to_csv(path, index=False)
    settings = Settings(data_dir=tmp_path)
    request = prepare_request(path, "sgrna_gene_cell_line", sampler=SamplerSettings(chains=2, tune=100, draws=100),
                              seed=3, settings=settings)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    blas_threads: set[int] = set()
    real_read = nutpie_sampler.read_draws

    def read_and_record(source, names):  # runs inside the sampler's thread limit, as the chains did
        blas_threads.update(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")
        return real_read(source, names)

    monkeypatch.setattr(nutpie_sampler, "read_draws", read_and_record)
    result = run_fit(request, settings=settings)
    idata = result.idata
    model = get_model("sgrna_gene_cell_line").build(select_screen(screen_from_frame(sim.data)))
    assert set(idata.posterior.data_vars) == set(public_variables(model))
    assert all(idata.posterior[v].dtype == np.float32 for v in idata.posterior.data_vars)
    assert idata.posterior_predictive["lfc"].dtype == np.float32
    assert all(set(idata.sample_stats[v].dims) <= {"chain", "draw"} for v in idata.sample_stats.data_vars)
    assert {"diverging", "energy", "n_steps", "depth"} <= set(idata.sample_stats.data_vars)
    assert idata.sample_stats.sizes["draw"] == 100, "warm-up is not kept"
    notes = result.provenance["notes"]  # the cost record: gradient evaluations count warm-up's steps too
    assert notes["nutpie_gradient_evals"] > int(idata.sample_stats["n_steps"].sum()) > 0
    assert notes["nutpie_sample_cpu_s"] > 0 and notes["nutpie_mass_matrix"] == "diag"
    assert not list((tmp_path / "tmp").glob("speclet-nutpie-*")), "the temporary zarr store is removed"
    assert [p for p in threadpool_info() if p["user_api"] == "blas"], "numpy's BLAS is loaded"
    assert blas_threads == {1}, blas_threads
    # float32 draws are the same fit: predictions and the log-likelihood stay finite and consistent
    assert np.isfinite(idata.log_likelihood["lfc"].values).all()
