"""Parameter recovery on simulated screens with known truth (full NUTS fits; slow, run in CI).

- Models whose structure matches the generator recover the gene effects: correlation with
  the truth ≥ 0.95, and the 89% intervals cover 80–97% of genes (more means too wide).
- A small RNA-slope screen with widely spread cell lines (5 genes, 20 cell lines, 3 readings,
  μ_α = −1, σ_α = 1, μ_γ = 0, σ_γ = 3, μ_β = −1, σ_β = 2, σ = 0.3) is recovered.
- Partial pooling beats no pooling on thinly read gene × cell-line effects (shrinkage).
"""

from __future__ import annotations

from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from model_store.stats import HDI_PROB
from speclet_core.data.covariates import prepare_covariates
from speclet_core.data.synthetic import simulate_screen
from speclet_core.fitting.engine import FitResult, run_fit
from speclet_core.fitting.request import prepare_request
from speclet_core.records import SamplerSettings
from speclet_core.settings import Settings

pytestmark = pytest.mark.slow

SAMPLER = SamplerSettings(chains=4, tune=400, draws=300)


def _fit(data: pd.DataFrame, model: str, tmp_path: Path, sampler: SamplerSettings = SAMPLER) -> FitResult:
    path = tmp_path / f"{model}.csv"
    data.to_csv(path, index=False)
    settings = Settings(data_dir=tmp_path)
    return run_fit(prepare_request(path, model, sampler=sampler, seed=20261123, settings=settings), settings=settings)


def _compare(result: FitResult, var: str, truth: pd.Series, dim: str = "gene") -> tuple[float, float]:
    """(correlation of posterior means with the truth, share of 89% HDIs that cover it)."""
    post = result.idata.posterior[var]
    mean = post.mean(("chain", "draw")).to_series()
    hdi = az.hdi(post, hdi_prob=HDI_PROB)[var]
    lo = hdi.sel(hdi="lower").to_series()
    hi = hdi.sel(hdi="higher").to_series()
    t = truth.loc[mean.index]
    corr = float(np.corrcoef(t, mean)[0, 1])
    coverage = float(((lo <= t) & (t <= hi)).mean())
    return corr, coverage


def _assert_sampled_well(result: FitResult) -> None:
    """No divergence and no gross R-hat (short chains: the largest of thousands of R-hats wanders above 1.01)."""
    d = result.diagnostics
    assert d["divergences"] == 0, d
    assert d["max_rhat"] <= 1.05, d


@pytest.mark.parametrize("model", ["gene_lineage", "sgrna_gene_lineage"])
def test_lineage_models_recover_gene_effects(model: str, tmp_path: Path) -> None:
    sim = simulate_screen(60, 30, 4, seed=7, covariates=False)
    result = _fit(sim.data, model, tmp_path)
    _assert_sampled_well(result)
    truth = sim.truth_values("gene_effect").set_index("gene")["value"]
    corr, coverage = _compare(result, "gene_effect", truth)
    assert corr >= 0.95, corr
    assert 0.80 <= coverage <= 0.97, coverage
    gl_truth = sim.truth_values("gene_lineage_effect").set_index(["gene", "lineage"])["value"]
    if model == "gene_lineage":  # no lineage-wide term: its gene × lineage means carry the lineage shift
        shift = sim.truth_values("lineage_effect").set_index("lineage")["value"]
        gl_truth = gl_truth + shift.reindex(gl_truth.index.get_level_values("lineage")).to_numpy()
    gl = result.idata.posterior["gene_lineage_effect"].mean(("chain", "draw")).to_series()
    assert np.corrcoef(gl_truth.loc[gl.index], gl)[0, 1] >= 0.95


@pytest.mark.parametrize("model", ["gene", "gene_cell_line"])
def test_intercept_models_recover_gene_effects(model: str, tmp_path: Path) -> None:
    """Without lineage structure in the generator, the intercept models match it."""
    sim = simulate_screen(60, 30, 3, seed=8, covariates=False, sd_lineage=0.0, sd_gene_lineage=0.0,
                          n_lineage_selective=0)
    result = _fit(sim.data, model, tmp_path)
    _assert_sampled_well(result)
    truth = sim.truth_values("gene_effect").set_index("gene")["value"]
    corr, coverage = _compare(result, "gene_effect", truth)
    assert corr >= 0.95, corr
    assert 0.80 <= coverage <= 0.97, coverage
    if model == "gene_cell_line":
        cl_truth = sim.truth_values("cell_line_effect").set_index("cell_line")["value"]
        cl = result.idata.posterior["cell_line_effect"].mean(("chain", "draw")).to_series()
        assert np.corrcoef(cl_truth.loc[cl.index], cl)[0, 1] >= 0.9


def _rna_slope_screen(seed: int = 4) -> tuple[pd.DataFrame, dict]:
    """Gene and cell-line intercepts + gene slopes on RNA, cell lines spread widely (σ_γ = 3)."""
    rng = np.random.default_rng(seed)
    n_genes, n_cells, n_reads = 5, 20, 3
    alpha = rng.normal(-1.0, 1.0, n_genes)
    gamma = rng.normal(0.0, 3.0, n_cells)
    beta = rng.normal(-1.0, 2.0, n_genes)
    genes = [f"GENE{g + 1}" for g in range(n_genes)]
    cells = [f"ACH-{c + 1:06d}" for c in range(n_cells)]
    rna = rng.normal(0.0, 1.0, (n_genes, n_cells))
    g, c, r = (a.ravel() for a in np.meshgrid(np.arange(n_genes), np.arange(n_cells), np.arange(n_reads),
                                              indexing="ij"))
    data = pd.DataFrame({
        "sgrna": [f"{genes[i]}_sg{k + 1}" for i, k in zip(g, r, strict=True)],
        "hugo_symbol": np.asarray(genes)[g],
        "depmap_id": np.asarray(cells)[c],
        "lineage": np.where(c % 2 == 0, "colorectal", "lung"),
        "rna_expr": rna[g, c],
    })
    # the model sees expression z-scored within gene, so the truth is generated on that scale
    x = prepare_covariates(data)[0]["rna_expr_z"].to_numpy()
    data.insert(4, "lfc", alpha[g] + gamma[c] + beta[g] * x + rng.normal(0.0, 0.3, len(g)))
    return data, {"alpha": alpha, "gamma": gamma, "beta": beta, "genes": genes, "cells": cells}


def test_rna_slope_screen_is_recovered(tmp_path: Path) -> None:
    data, truth = _rna_slope_screen()
    result = _fit(data, "gene_rna", tmp_path, SamplerSettings(chains=4, tune=1000, draws=1000))
    d = result.diagnostics
    assert d["divergences"] == 0 and d["max_rhat"] <= 1.01 and d["min_ess_bulk"] >= 400, d
    post = result.idata.posterior

    def check(var: str, true: np.ndarray, labels: list[str] | None = None) -> None:
        da = post[var]
        mean = da.mean(("chain", "draw")).values
        sd = da.std(("chain", "draw")).values
        z = np.abs(mean - true) / sd
        assert np.all(z < 3.0), f"{var}: {mean} vs truth {true} (z {z})"

    # cell-line shifts are zero-sum in the model, so their mean moves into the gene effects
    shift = truth["gamma"].mean()
    check("gene_effect", truth["alpha"] + shift)
    check("cell_line_effect", truth["gamma"] - shift)
    check("rna_slope", truth["beta"])
    assert np.corrcoef(post["rna_slope"].mean(("chain", "draw")), truth["beta"])[0, 1] > 0.99
    assert np.corrcoef(post["cell_line_effect"].mean(("chain", "draw")), truth["gamma"])[0, 1] > 0.99
    # hyper-parameters: the generating values lie inside the 99% intervals (5 genes say little about them)
    generating = {"mu_gene": -1.0 + shift, "sigma_gene": 1.0, "sigma_cell_line": 3.0, "mu_rna_slope": -1.0,
                  "sigma_rna_slope": 2.0, "sigma": 0.3}
    for var, value in generating.items():
        lo, hi = az.hdi(post[var], hdi_prob=0.99)[var].values
        assert lo <= value <= hi, f"{var}: 99% interval [{lo:.3f}, {hi:.3f}] misses {value}"
    assert abs(float(post["sigma"].mean()) - 0.3) < 0.03


def test_partial_pooling_shrinks_noisy_cells_towards_their_lineage(tmp_path: Path) -> None:
    """gene_lineage vs its no-pooling counterpart on thinly read gene × cell-line effects."""
    sim = simulate_screen(8, 40, 4, seed=9, covariates=False, sgrnas_per_gene=(2, 2), sigma=0.5)
    sampler = SamplerSettings(chains=2, tune=500, draws=500)
    pooled = _fit(sim.data, "gene_lineage", tmp_path, sampler)
    nopool = _fit(sim.data, "gene_cell_line_nopool", tmp_path, sampler)
    # both models' gene × cell-line effect includes the cell line's own shift (neither separates it)
    gc = sim.truth_values("gene_cell_line_effect").set_index(["gene", "cell_line"])["value"]
    cl = sim.truth_values("cell_line_effect").set_index("cell_line")["value"]
    target = gc + cl.reindex(gc.index.get_level_values("cell_line")).to_numpy()

    def rmse(result: FitResult) -> float:
        est = result.idata.posterior["gene_cell_line_effect"].mean(("chain", "draw")).to_series()
        return float(np.sqrt(((est - target.loc[est.index]) ** 2).mean()))

    def spread(result: FitResult) -> float:
        """Spread of the cell estimates around their gene × lineage mean."""
        post = result.idata.posterior
        gc_mean = post["gene_cell_line_effect"].mean(("chain", "draw"))
        gl_mean = post["gene_lineage_effect"].mean(("chain", "draw"))
        lineage_of = sim.data.drop_duplicates("depmap_id").set_index("depmap_id")["lineage"]
        lin = lineage_of.loc[gc_mean.coords["cell_line"].values].to_numpy()
        return float((gc_mean - gl_mean.sel(lineage=xr.DataArray(lin, dims="cell_line"))).std())

    assert rmse(pooled) < 0.8 * rmse(nopool), (rmse(pooled), rmse(nopool))
    assert spread(pooled) < spread(nopool)

