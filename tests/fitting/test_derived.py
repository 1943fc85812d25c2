"""Derived quantities: the numpy log-likelihood is PyMC's, and an unknown likelihood family is an error."""

from __future__ import annotations

import dataclasses

import arviz as az
import numpy as np
import pymc as pm
import pytensor
import pytest
import xarray as xr

from speclet_core.data.covariates import prepare_covariates
from speclet_core.data.screen import screen_from_frame
from speclet_core.data.selection import select_screen
from speclet_core.data.synthetic import simulate_screen
from speclet_core.errors import ModelError
from speclet_core.fitting.derived import log_likelihood, posterior_predictive
from speclet_core.fitting.request import apply_options
from speclet_core.fitting.sampling import dataset_from_draws
from speclet_core.models.spec import get_model, list_models, public_variables
from speclet_core.records import ModelOptions

MODEL_NAMES = [s.name for s in list_models()]


@pytest.fixture(scope="module")
def selection():
    sim = simulate_screen(5, 12, 3, seed=11, sgrnas_per_gene=(1, 4))
    sel = select_screen(screen_from_frame(sim.data))
    return dataclasses.replace(sel, data=prepare_covariates(sel.data)[0])


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_numpy_log_likelihood_is_pymcs_pointwise_logp(name: str, selection) -> None:
    """At a random point, the stored log-likelihood equals PyMC's log density of each observed reading."""
    from pymc.pytensorf import join_nonshared_inputs

    spec = get_model(name)
    if spec.max_lineages == 1:  # a one-lineage model: its largest lineage
        data = selection.data.astype({"lineage": str})
        sel = select_screen(screen_from_frame(data), lineages=data["lineage"].value_counts().index[0])
        selection = dataclasses.replace(sel, data=prepare_covariates(sel.data)[0])
    if spec.options:  # the marker / batch columns its options add; every other cell line marked
        cells = sorted(selection.data["depmap_id"].astype(str).unique())
        marker = selection.data["depmap_id"].astype(str).map({c: i % 2 == 0 for i, c in enumerate(cells)})
        screen = screen_from_frame(selection.data.assign(marker=marker))
        options = ModelOptions(biomarker="marker" if "biomarker" in spec.required_options else None)
        selection = apply_options(spec, screen, selection, options)
    model = spec.build(selection)
    public = public_variables(model)
    pointwise = model.logp(vars=[model["lfc"]], sum=False)[0]
    outs = [pointwise, *model.replace_rvs_by_values([model[n] for n in public])]
    point = model.initial_point()
    joined, flat = join_nonshared_inputs(point, outs, model.value_vars)
    fn = pytensor.function([flat], joined, mode="FAST_COMPILE")
    x = np.random.default_rng(5).normal(0, 0.7, size=sum(np.size(v) for v in point.values()))
    expected, *values = fn(x)
    posterior = dataset_from_draws(model, {n: np.asarray(v)[None, None] for n, v in zip(public, values, strict=True)})
    got = log_likelihood(spec, posterior, selection)["lfc"].values[0, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_log_likelihood_of_a_fit_matches_pymc(selection) -> None:
    """For a short fit, every draw's stored log-likelihood is what ``pm.compute_log_likelihood`` gives."""
    spec = get_model("gene")  # every variable of this model is stored, so PyMC can evaluate the posterior
    model = spec.build(selection)
    with model:
        idata = pm.sample(draws=40, tune=40, chains=1, random_seed=3, progressbar=False,
                          compute_convergence_checks=False)
    expected = pm.compute_log_likelihood(az.InferenceData(posterior=idata.posterior), model=model,
                                         extend_inferencedata=False, progressbar=False)
    got = log_likelihood(spec, idata.posterior, selection)["lfc"]
    np.testing.assert_allclose(got.values, expected["lfc"].values, rtol=1e-5, atol=1e-5)


def test_an_unknown_likelihood_family_is_a_clear_error(selection) -> None:
    spec = dataclasses.replace(get_model("gene"), likelihood="student_t")
    with pytest.raises(ModelError, match="declares likelihood 'student_t'.*model builder"):
        spec.build(selection)
    genes = list(selection.genes)
    posterior = xr.Dataset(
        {"gene_effect": (("chain", "draw", "gene"), np.zeros((1, 1, len(genes)))),
         "sigma": (("chain", "draw"), np.ones((1, 1)))},
        coords={"chain": [0], "draw": [0], "gene": genes},
    )
    with pytest.raises(ModelError, match="declares likelihood 'student_t'.*log-likelihood"):
        log_likelihood(spec, posterior, selection)
    with pytest.raises(ModelError, match="declares likelihood 'student_t'.*posterior predictive"):
        posterior_predictive(spec, posterior, selection, seed=1)
