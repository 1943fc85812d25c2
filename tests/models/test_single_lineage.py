"""``sgrna_gene_cell_line``: the one-lineage genome-wide model — refusal, identifiability, recovery.

The recovery fit is a real NUTS fit (nutpie, 4 chains × (300 + 300)) of a synthetic one-lineage
screen with known truth, small enough to finish in well under a minute with the compile.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pymc as pm
import pytest
from pytensor.graph.traversal import ancestors

from model_store.stats import HDI_PROB, hdi
from speclet_core.data.screen import screen_from_frame
from speclet_core.data.selection import select_screen
from speclet_core.data.synthetic import simulate_screen
from speclet_core.errors import ModelError
from speclet_core.fitting.engine import run_fit
from speclet_core.fitting.request import prepare_request
from speclet_core.models.blocks import CENTRED_MIN_READINGS, is_data_rich
from speclet_core.models.spec import get_model
from speclet_core.records import SamplerSettings
from speclet_core.settings import Settings

NAME = "sgrna_gene_cell_line"


def test_refuses_several_lineages_and_names_the_flagship() -> None:
    sim = simulate_screen(4, 12, 3, seed=1, covariates=False)
    sel = select_screen(screen_from_frame(sim.data))
    with pytest.raises(ModelError) as err:
        get_model(NAME).build(sel)
    msg = str(err.value)
    assert "one lineage at a time" in msg and "the selection has 3" in msg
    assert "select a single lineage" in msg and "'sgrna_gene_lineage'" in msg
    assert get_model(NAME).to_dict()["max_lineages"] == 1


def test_every_deviation_sums_to_zero_within_its_parent() -> None:
    """The gene effect is the gene's average over guides and cell lines; shift and deviation are apart."""
    sim = simulate_screen(6, 10, 1, seed=2, covariates=False, sgrnas_per_gene=(1, 4))
    sel = select_screen(screen_from_frame(sim.data))
    model = get_model(NAME).build(sel)
    assert "lineage" not in model.coords
    gene, sgrna, cell, gc = pm.draw(
        [model[v] for v in ("gene_effect", "sgrna_effect", "cell_line_effect", "gene_cell_line_effect")],
        draws=5, random_seed=3, mode="FAST_COMPILE",
    )
    for g in range(len(sel.genes)):
        np.testing.assert_allclose(sgrna[:, sel.sgrna_gene == g].sum(axis=1), 0, atol=1e-9)
    np.testing.assert_allclose(cell.sum(axis=1), 0, atol=1e-9)
    np.testing.assert_allclose(gc.mean(axis=2), gene, atol=1e-9)
    # the deviations are not zero-sum over genes: their common part is drawn given the cell-line total
    assert np.abs((gc - gene[:, :, None]).mean(axis=1)).max() > 1e-6


def test_levels_are_centred_by_how_often_they_are_read() -> None:
    assert is_data_rich(np.repeat(np.arange(5), CENTRED_MIN_READINGS), 5)
    assert not is_data_rich(np.repeat(np.arange(5), CENTRED_MIN_READINGS - 1), 5)
    sim = simulate_screen(4, 12, 1, seed=4, covariates=False, sgrnas_per_gene=(2, 3))
    sel = select_screen(screen_from_frame(sim.data))
    model = get_model(NAME).build(sel)
    # 2-3 guides per gene and cell line: the gene × cell-line level is non-centred (its free values do not
    # depend on their spread); each guide is read in 12 cell lines: the sgRNA level is centred
    def spreads_in_prior(var: str) -> set[str]:
        logp = model.logp(vars=[model[var]], sum=True)
        return {v.name for v in ancestors([logp]) if v.name and v.name.startswith("sigma_")}

    assert "sigma_gene_cell_line_log__" not in spreads_in_prior("gene_cell_line_effect_raw")
    assert "sigma_sgrna_log__" in spreads_in_prior("sgrna_effect_raw")
    assert "sigma_gene_log__" in spreads_in_prior("gene_effect")

@pytest.mark.slow
def test_recovers_gene_effects_of_a_single_lineage_screen(tmp_path: Path) -> None:
    sim = simulate_screen(80, 16, 1, seed=21, covariates=False, sgrnas_per_gene=(2, 4))
    path = tmp_path / "one_lineage.csv"
    sim.data.to_csv(path, index=False)
    settings = Settings(data_dir=tmp_path)
    sampler = SamplerSettings(chains=4, tune=300, draws=300)
    request = prepare_request(path, NAME, sampler=sampler, seed=20261203, settings=settings)
    result = run_fit(request, settings=settings)
    d = result.diagnostics
    assert d["divergences"] == 0 and d["max_rhat"] <= 1.05, d
    post = result.idata.posterior["gene_effect"]
    truth = sim.truth_values("gene_effect").set_index("gene")["value"].loc[list(post.coords["gene"].values)]
    mean = post.mean(("chain", "draw")).values
    draws = post.transpose("gene", "chain", "draw").values
    lo, hi = hdi(draws, HDI_PROB)
    covered = (lo <= truth.values) & (truth.values <= hi)
    n = len(truth)
    sd = np.sqrt(HDI_PROB * (1 - HDI_PROB) / n)  # binomial spread of the share covered
    assert abs(covered.mean() - HDI_PROB) <= 3 * sd, (covered.mean(), n)
    rmse = float(np.sqrt(np.mean((mean - truth.values) ** 2)))
    assert rmse < 0.06, rmse
    assert np.corrcoef(mean, truth.values)[0, 1] > 0.98
    cl_truth = sim.truth_values("cell_line_effect").set_index("cell_line")["value"]
    cl = result.idata.posterior["cell_line_effect"].mean(("chain", "draw")).to_series()
    assert np.corrcoef(cl_truth.loc[cl.index], cl)[0, 1] > 0.8
