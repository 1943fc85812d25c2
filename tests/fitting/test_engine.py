"""The fitting engine: requests, size caps, NUTS with nutpie and PyMC, progress, cancellation, diagnostics, provenance."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from speclet_core.data.demo import write_synthetic
from speclet_core.data.screen import screen_from_frame
from speclet_core.data.selection import select_screen
from speclet_core.data.synthetic import simulate_screen
from speclet_core.diagnostics.verdict import judge
from speclet_core.errors import FitError, ModelError, SelectionError, SpecletError
from speclet_core.fitting import derived
from speclet_core.fitting.cost import estimate_cost
from speclet_core.fitting.engine import FitResult, run_fit
from speclet_core.fitting.request import estimate_request, prepare_request
from speclet_core.fitting.sampling import FitProgress
from speclet_core.models.spec import count_parameters, get_model
from speclet_core.records import FitPhase, FitRequest, SamplerSettings
from speclet_core.settings import Settings

SHORT = SamplerSettings(chains=2, tune=150, draws=150)
SETTINGS = Settings()


def stored_attrs(request: FitRequest, result: FitResult, folder: Path) -> dict:
    """The root attrs of the fit's posterior file, as the store writes them with the fit's provenance."""
    from model_store import ModelStore

    store = ModelStore(folder / "fits")
    store.put(request.fit_id, result.idata, request=request.model_dump(mode="json"), roles=result.spec.roles(),
              diagnostics=result.diagnostics, timings=result.timings, provenance=result.provenance)
    with store.get(request.fit_id) as fit, xr.open_dataset(fit.posterior_path) as root:
        return dict(root.attrs)


@pytest.fixture(scope="module")
def sim():
    return simulate_screen(6, 16, 3, seed=3)


@pytest.fixture(scope="module")
def screen_path(sim, tmp_path_factory) -> Path:
    path, _ = write_synthetic(sim, tmp_path_factory.mktemp("fitting") / "screen.csv")
    return path


@pytest.fixture(scope="module")
def flagship_fit(screen_path):
    """One short nutpie fit of the flagship model, with every progress report it made."""
    request = prepare_request(screen_path, "sgrna_gene_lineage", sampler=SHORT, seed=7, settings=SETTINGS)
    events: list[FitProgress] = []
    result = run_fit(request, settings=SETTINGS, progress=events.append)
    return request, result, events


# --------------------------------------------------------------------------- requests


def test_prepare_request_names_the_data_and_model(screen_path: Path, sim) -> None:
    request = prepare_request(screen_path, "gene_lineage", genes="kras,BRAF", seed=4, settings=SETTINGS)
    assert request.model == "gene_lineage" and request.model_version == get_model("gene_lineage").version
    assert request.selection.genes == ("BRAF", "KRAS"), "matched labels, case-folded and sorted"
    assert request.selection.lineages == "all"
    assert Path(request.data_path).is_absolute()
    expected = select_screen(screen_from_frame(sim.data), ["BRAF", "KRAS"]).fingerprint
    assert request.data_fingerprint == expected
    same = prepare_request(screen_path, "gene_lineage", genes=["BRAF", "KRAS"], seed=4, settings=SETTINGS)
    assert same.fit_id == request.fit_id
    other_seed = prepare_request(screen_path, "gene_lineage", genes=["BRAF", "KRAS"], seed=5, settings=SETTINGS)
    assert other_seed.fit_id != request.fit_id
    assert FitRequest.model_validate(request.model_dump(mode="json")).fit_id == request.fit_id


def test_prepare_request_rejects_what_cannot_be_fitted(screen_path: Path, sim, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown model 'm8'"):
        prepare_request(screen_path, "m8", settings=SETTINGS)
    with pytest.raises(SelectionError, match="NOPE"):
        prepare_request(screen_path, "gene", genes="NOPE", settings=SETTINGS)
    one_lineage = str(sim.data["lineage"].iloc[0])
    with pytest.raises(ModelError, match="needs at least 2 lineages"):
        prepare_request(screen_path, "sgrna_gene_lineage", lineages=one_lineage, settings=SETTINGS)
    no_rna, _ = write_synthetic(simulate_screen(4, 8, 2, seed=1, covariates=False), tmp_path / "no_rna.csv")
    with pytest.raises(ModelError, match="needs column 'rna_expr'"):
        prepare_request(no_rna, "gene_rna", settings=SETTINGS)


def test_size_caps_give_a_clear_message(screen_path: Path, tmp_path: Path) -> None:
    small = Settings(data_dir=tmp_path, max_rows=100, max_genes=2)
    with pytest.raises(ModelError) as err:
        prepare_request(screen_path, "gene", settings=small)
    text = str(err.value)
    assert "more than the limit of 100 (SPECLET_MAX_ROWS)" in text
    assert "more than the limit of 2 (SPECLET_MAX_GENES)" in text
    assert "select fewer genes or lineages" in text


def test_run_fit_refuses_changed_data_and_old_versions(screen_path: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.csv"
    copy.write_bytes(screen_path.read_bytes())
    request = prepare_request(copy, "gene", sampler=SHORT, settings=SETTINGS)
    stale = request.model_copy(update={"model_version": "0"})
    with pytest.raises(FitError, match="is version 1 now, the request was for version 0"):
        run_fit(stale, settings=SETTINGS)
    table = pd.read_csv(copy)
    table.loc[0, "lfc"] += 1.0
    table.to_csv(copy, index=False)
    with pytest.raises(FitError, match="the data file changed since the fit was requested"):
        run_fit(request, settings=SETTINGS)
    copy.unlink()
    with pytest.raises(SpecletError, match="file not found"):
        run_fit(request, settings=SETTINGS)


def test_run_fit_checks_the_caps_of_the_settings_it_is_given(screen_path: Path, tmp_path: Path) -> None:
    request = prepare_request(screen_path, "gene", sampler=SHORT, settings=SETTINGS)
    with pytest.raises(ModelError, match="more than the limit of 100 \\(SPECLET_MAX_ROWS\\)"):
        run_fit(request, settings=Settings(data_dir=tmp_path, max_rows=100))


# --------------------------------------------------------------------------- nutpie


def test_nutpie_fit_has_every_group_and_provenance(flagship_fit, sim, tmp_path: Path) -> None:
    request, result, _ = flagship_fit
    idata = result.idata
    for group in ("posterior", "sample_stats", "observed_data", "constant_data", "log_likelihood",
                  "posterior_predictive", "prior", "prior_predictive"):
        assert group in idata.groups(), group
    post = idata.posterior
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 150
    n = len(sim.data)
    assert idata.log_likelihood["lfc"].shape == (2, 150, n)
    assert idata.posterior_predictive.sizes["chain"] * idata.posterior_predictive.sizes["draw"] <= 200
    assert idata.prior_predictive["lfc"].shape == (1, 100, n)
    assert set(post.coords) == {"chain", "draw", "gene", "sgrna", "lineage", "cell_line"}, "no internal dims"
    np.testing.assert_array_equal(np.sort(idata.observed_data["lfc"].values), np.sort(sim.data["lfc"].values))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pareto-k warnings: 150 draws of a tiny screen
        loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo) and loo.n_data_points == n
    assert set(idata.constant_data["gene"].values) == set(sim.data["hugo_symbol"])
    attrs = stored_attrs(request, result, tmp_path)
    assert attrs["fit_id"] == request.fit_id and attrs["model"] == "sgrna_gene_lineage"
    assert attrs["approximate"] == "false"
    assert json.loads(attrs["sampler"])["backend"] == "nutpie"
    assert json.loads(attrs["notes"])["log_likelihood"] == "stored"
    assert attrs["model_title"] == get_model("sgrna_gene_lineage").title
    assert attrs["data_path"] == request.data_path and json.loads(attrs["selection_counts"])["rows"] == n
    assert set(result.timings) == {"load_s", "compile_s", "sample_s", "postprocess_s", "total_s"}
    assert result.timings["total_s"] >= result.timings["compile_s"] + result.timings["sample_s"]
    # the fit is honest about its own quality: short chains are flagged, numbers are real
    d = result.diagnostics
    assert d["divergences"] == int(idata.sample_stats["diverging"].sum())
    assert 1.0 <= d["max_rhat"] < 1.2 and d["min_ess_bulk"] > 20
    assert d["verdict"] in {"converged", "look_closer", "do_not_trust"}
    assert d["verdict"] != "converged" or (d["max_rhat"] <= 1.01 and d["min_ess_bulk"] >= 400)


def test_nutpie_fit_recovers_gene_effects_roughly(flagship_fit, sim) -> None:
    _, result, _ = flagship_fit
    truth = sim.truth_values("gene_effect").set_index("gene")["value"]
    est = result.idata.posterior["gene_effect"].mean(("chain", "draw")).to_series()
    assert np.corrcoef(truth[est.index], est)[0, 1] > 0.95


def test_progress_reports_phases_in_order(flagship_fit) -> None:
    _, _, events = flagship_fit
    phases = [e.phase for e in events]
    assert phases[0] == FitPhase.LOADING and phases[-1] == FitPhase.SAVING
    order = [FitPhase.LOADING, FitPhase.COMPILING, FitPhase.TUNING, FitPhase.SAMPLING, FitPhase.SAVING]
    ranks = [order.index(p) for p in phases]
    assert ranks == sorted(ranks), phases
    assert {FitPhase.COMPILING, FitPhase.TUNING, FitPhase.SAMPLING} <= set(phases)
    total = 2 * (150 + 150)
    sampling = [e for e in events if e.phase in (FitPhase.TUNING, FitPhase.SAMPLING)]
    assert all(e.draws_total == total for e in sampling)
    done = [e.draws_done for e in sampling]
    assert done == sorted(done) and done[-1] == total


def test_same_seed_gives_the_same_draws(flagship_fit) -> None:
    request, result, _ = flagship_fit
    again = run_fit(request, settings=SETTINGS)  # the compiled model is reused within a process
    xr.testing.assert_equal(again.idata.posterior["gene_effect"], result.idata.posterior["gene_effect"])
    other = run_fit(request.model_copy(update={"seed": request.seed + 1}), settings=SETTINGS)
    assert not np.allclose(other.idata.posterior["gene_effect"].values, result.idata.posterior["gene_effect"].values)


def test_a_progress_callback_can_cancel_a_fit(flagship_fit) -> None:
    request, _, _ = flagship_fit

    class Cancelled(Exception):
        pass

    def cancel_when_sampling(p: FitProgress) -> None:
        if p.phase == FitPhase.TUNING:
            raise Cancelled("user cancelled")

    with pytest.raises(Cancelled):
        run_fit(request.model_copy(update={"sampler": SamplerSettings(chains=2, tune=5000, draws=5000)}),
                settings=SETTINGS, progress=cancel_when_sampling)


# --------------------------------------------------------------------------- PyMC and quick


def test_pymc_backend_fits_the_same_model(screen_path: Path, sim, tmp_path: Path) -> None:
    sampler = SamplerSettings(**{**SHORT.model_dump(), "backend": "pymc"})
    request = prepare_request(screen_path, "gene", sampler=sampler, seed=3, settings=SETTINGS)
    events: list[FitProgress] = []
    result = run_fit(request, settings=SETTINGS, progress=events.append)
    assert json.loads(stored_attrs(request, result, tmp_path)["sampler"])["backend"] == "pymc"
    assert result.diagnostics["method"] == "NUTS (pymc)"
    assert result.diagnostics["divergences"] == 0
    assert result.idata.posterior.sizes["draw"] == 150
    means = result.idata.posterior["gene_effect"].mean(("chain", "draw")).to_series()
    # without lineage or guide terms the gene effect is the gene's mean reading
    raw = sim.data.groupby("hugo_symbol")["lfc"].mean()
    np.testing.assert_allclose(means[raw.index], raw, atol=0.05)
    assert events[-1].phase == FitPhase.SAVING
    assert any(e.phase == FitPhase.SAMPLING and e.draws_done > 0 for e in events)


def test_quick_fit_is_marked_approximate(screen_path: Path) -> None:
    request = prepare_request(screen_path, "gene_cell_line", sampler=SamplerSettings(method="quick"), seed=3,
                              settings=SETTINGS)
    result = run_fit(request, settings=SETTINGS)
    assert result.approximate and result.provenance["approximate"] == "true"
    d = result.diagnostics
    assert d["approximate"] is True and d["verdict"] == "look_closer"
    assert d["reasons"][0].startswith("approximate: first look only")
    assert d["max_rhat"] is None and d["divergences"] is None
    assert "sample_stats" not in result.idata.groups()


def test_log_likelihood_is_skipped_over_the_cap(screen_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(derived, "LOG_LIKELIHOOD_MAX_VALUES", 1000)
    request = prepare_request(screen_path, "gene", sampler=SamplerSettings(method="quick"), seed=3, settings=SETTINGS)
    result = run_fit(request, settings=SETTINGS)
    assert "log_likelihood" not in result.idata.groups()
    assert result.provenance["notes"]["log_likelihood"].startswith("skipped:")


# --------------------------------------------------------------------------- verdict


@pytest.mark.parametrize(
    ("numbers", "verdict"),
    [
        ({"max_rhat": 1.005, "min_ess_bulk": 500, "min_ess_tail": 500, "divergences": 0}, "converged"),
        ({"max_rhat": 1.02, "min_ess_bulk": 500, "min_ess_tail": 500, "divergences": 0}, "look_closer"),
        ({"max_rhat": 1.005, "min_ess_bulk": 399, "min_ess_tail": 500, "divergences": 0}, "look_closer"),
        ({"max_rhat": 1.005, "min_ess_bulk": 500, "min_ess_tail": 500, "divergences": 1}, "look_closer"),
        ({"max_rhat": 1.06, "min_ess_bulk": 500, "min_ess_tail": 500, "divergences": 0}, "do_not_trust"),
        ({"max_rhat": 1.005, "min_ess_bulk": 80, "min_ess_tail": 500, "divergences": 0}, "do_not_trust"),
        ({"max_rhat": 1.005, "min_ess_bulk": 500, "min_ess_tail": 500, "divergences": 41}, "do_not_trust"),
        ({"max_rhat": 1.005, "min_ess_bulk": 500, "min_ess_tail": 500, "divergences": 0, "bfmi_min": 0.1},
         "do_not_trust"),
        ({"max_rhat": 1.005, "min_ess_bulk": 500, "min_ess_tail": 500, "divergences": 0, "treedepth_hits": 5},
         "look_closer"),
    ],
)
def test_verdict_rules(numbers: dict, verdict: str) -> None:
    assert judge(numbers, 4000).level == verdict


# --------------------------------------------------------------------------- cost


def test_estimate_cost_counts_parameters_and_scales(sim) -> None:
    sel = select_screen(screen_from_frame(sim.data))
    small = estimate_cost(sel, "sgrna_gene_lineage")
    assert small.parameters == count_parameters(get_model("sgrna_gene_lineage").build(sel))
    assert small.rows == len(sim.data)
    big_sim = simulate_screen(12, 30, 3, seed=3)
    big = estimate_cost(select_screen(screen_from_frame(big_sim.data)), "sgrna_gene_lineage")
    assert big.parameters > small.parameters and big.sampling_s > small.sampling_s
    # gene × cell-line effect: genes × cell lines values per kept draw, 4 chains × 1000 draws
    assert big.stored_values >= 4 * 1000 * 12 * 30
    quick = estimate_cost(sel, "sgrna_gene_lineage", SamplerSettings(method="quick"))
    assert quick.approximate and quick.total_s < small.total_s
    assert "readings" in small.describe() and "parameters" in small.describe()


def test_estimate_cost_from_a_request(screen_path: Path) -> None:
    request = prepare_request(screen_path, "gene", sampler=SHORT, settings=SETTINGS)
    cost = estimate_request(request)
    assert cost.rows == len(pd.read_csv(screen_path)) and cost.parameters == 6 + 3
    assert cost.stored_values == 2 * 150 * (6 + 3)
