"""The model catalog: registry, declared roles and dims, zero-sum building blocks, predictors.

Every registered model is fitted once on a tiny synthetic screen (quick mode: it runs the
whole ``run_fit`` pipeline in seconds) and stored, so the declared variables, dims and labels
are checked on a real result; the NUTS samplers are covered in ``tests/fitting/test_engine.py``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
import xarray as xr

from speclet_core.data.demo import write_synthetic
from speclet_core.data.screen import screen_from_frame
from speclet_core.data.selection import select_screen
from speclet_core.data.synthetic import simulate_screen
from speclet_core.errors import ModelError
from speclet_core.fitting.derived import predict_mean
from speclet_core.fitting.engine import run_fit
from speclet_core.fitting.request import apply_options, prepare_request
from speclet_core.models.blocks import GroupedZeroSum
from speclet_core.models.spec import (
    DIM_COLUMNS,
    MODELS,
    ModelSpec,
    get_model,
    list_models,
    public_variables,
    register_model,
)
from speclet_core.records import ModelOptions, SamplerSettings
from speclet_core.settings import Settings

MODEL_NAMES = [s.name for s in list_models()]
EXPECTED_DIMS = {
    "gene_effect": ("gene",),
    "gene_lineage_effect": ("gene", "lineage"),
    "gene_cell_line_effect": ("gene", "cell_line"),
    "rna_slope": ("gene",),
    "cn_slope": ("gene",),
    "sgrna_effect": ("sgrna",),
    "cell_line_effect": ("cell_line",),
    "lineage_effect": ("lineage",),
}


# options a model needs to be fitted at all (the tiny screen's ``marker`` column marks every other cell line)
REQUIRED_OPTIONS = {"biomarker": "marker"}


def options_for(spec: ModelSpec) -> dict[str, str]:
    return {k: REQUIRED_OPTIONS[k] for k in spec.required_options}


def with_marker(data):
    cells = sorted(data["depmap_id"].unique())
    return data.assign(marker=data["depmap_id"].map({c: i % 2 == 0 for i, c in enumerate(cells)}))


def prepared(spec: ModelSpec, selection):
    """The selection with the columns the model's options add (none for most models)."""
    screen = screen_from_frame(selection.data.drop(columns=["marker"], errors="ignore").pipe(with_marker))
    return apply_options(spec, screen, selection, ModelOptions(**options_for(spec)))


@pytest.fixture(scope="module")
def tiny_sim():
    sim = simulate_screen(5, 12, 3, seed=11, sgrnas_per_gene=(1, 4))
    return dataclasses.replace(sim, data=with_marker(sim.data))


@pytest.fixture(scope="module")
def tiny_selection(tiny_sim):
    return select_screen(screen_from_frame(tiny_sim.data))


def _fit_selection(name: str, selection):
    """The tiny selection, cut to its largest lineage for a model that fits one lineage at a time."""
    if get_model(name).max_lineages != 1:
        return selection
    counts = selection.data["lineage"].value_counts()
    return select_screen(screen_from_frame(selection.data.astype({"lineage": str})), lineages=counts.index[0])


@pytest.fixture(scope="module")
def tiny_path(tiny_sim, tmp_path_factory) -> Path:
    path, _ = write_synthetic(tiny_sim, tmp_path_factory.mktemp("models") / "tiny.csv")
    return path


# --------------------------------------------------------------------------- registry


def test_catalog_has_the_issue_models() -> None:
    for name in ("gene", "gene_cell_line", "gene_rna", "gene_cn", "gene_lineage", "sgrna_gene_lineage",
                 "gene_cell_line_nopool", "gene_biomarker", "gene_batch"):
        spec = get_model(name)
        assert spec.name == name and spec.version
        assert len(spec.description) > 200, "a plain-language paragraph"
        assert r"\begin{aligned}" in spec.equation and r"\mathrm{lfc}" in spec.equation
    assert get_model(" Gene_Lineage ").name == "gene_lineage"


def test_unknown_model_lists_known_names() -> None:
    with pytest.raises(ModelError) as err:
        get_model("hierarchical")
    assert "unknown model 'hierarchical'" in str(err.value)
    for name in MODEL_NAMES:
        assert name in str(err.value)


def test_names_are_unique_and_snake_case() -> None:
    spec = get_model("gene")
    with pytest.raises(ModelError, match="registered twice"):
        register_model(spec)
    bad = ModelSpec(**{**spec.__dict__, "name": "Gene-Model"})
    with pytest.raises(ModelError, match="snake_case"):
        register_model(bad)
    assert "Gene-Model" not in MODELS


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_roles_are_declared(name: str) -> None:
    spec = get_model(name)
    roles = spec.roles()
    assert set(roles) == {"gene_effect", "gene_lineage_effect", "gene_cell_line_effect", "hyperparameters",
                          "covariate_slopes"}
    assert roles["gene_effect"] == "gene_effect"
    assert "sigma" in roles["hyperparameters"]
    assert spec.to_dict()["roles"] == roles
    # every predictor term and every term explained is a stored variable of the same name everywhere
    for term in spec.predictor:
        assert not term.variable.endswith("_raw")
        assert all(d in DIM_COLUMNS for d in term.dims)


def test_nopool_points_at_its_pooled_counterpart() -> None:
    nopool = get_model("gene_cell_line_nopool")
    pooled = get_model(nopool.pooled_counterpart)
    assert nopool.roles()["gene_cell_line_effect"] == pooled.roles()["gene_cell_line_effect"]
    assert nopool.roles()["gene_lineage_effect"] == pooled.roles()["gene_lineage_effect"]


def test_model_needs_its_columns_and_lineages(tiny_sim) -> None:
    data = tiny_sim.data.drop(columns=["rna_expr"])
    sel = select_screen(screen_from_frame(data))
    with pytest.raises(ModelError, match="needs column 'rna_expr'"):
        get_model("gene_rna").build(sel)
    one_lineage = select_screen(screen_from_frame(tiny_sim.data), lineages=tiny_sim.data["lineage"].iloc[0])
    with pytest.raises(ModelError, match="at least 2 lineages"):
        get_model("sgrna_gene_lineage").build(one_lineage)
    missing = tiny_sim.data.assign(gene_cn=np.nan)
    with pytest.raises(ModelError, match="every value of it is missing"):
        get_model("gene_cn").build(select_screen(screen_from_frame(missing)))


# --------------------------------------------------------------------------- zero-sum building block


def test_grouped_zero_sum_is_an_exact_ragged_zero_sum_normal() -> None:
    groups = np.array([2, 0, 1, 0, 2, 2, 0, 3, 1, 2])  # sizes 3, 2, 4, 1
    zs = GroupedZeroSum(groups, 4)
    assert zs.n_free == len(groups) - 4
    x = pt.matrix("x")
    basis = pytensor.function([x], zs(x))(np.eye(zs.n_free))  # item × free
    # orthonormal columns: iid N(0, s) free values give iid-like values on the zero-sum space
    np.testing.assert_allclose(basis.T @ basis, np.eye(zs.n_free), atol=1e-12)
    for k in range(4):
        np.testing.assert_allclose(basis[groups == k].sum(axis=0), 0.0, atol=1e-12)
    # covariance = within-group centring projection, i.e. exactly ZeroSumNormal per group
    centring = np.eye(len(groups))
    for k in range(4):
        m = groups == k
        centring[np.ix_(m, m)] -= 1.0 / m.sum()
    np.testing.assert_allclose(basis @ basis.T, centring, atol=1e-12)
    assert np.all(basis[groups == 3] == 0), "a group of one is always zero"


# --------------------------------------------------------------------------- built models


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_built_model_has_declared_dims_and_real_labels(name: str, tiny_selection) -> None:
    spec = get_model(name)
    tiny_selection = _fit_selection(name, tiny_selection)
    model = spec.build(prepared(spec, tiny_selection))
    public = public_variables(model)
    for var in ["gene_effect", *(v for v in (spec.gene_lineage_effect, spec.gene_cell_line_effect) if v),
                *spec.covariate_slopes, *spec.hyperparameters]:
        assert var in public, f"{name}: {var} is declared but not a stored variable"
    for var, dims in EXPECTED_DIMS.items():
        if var in model.named_vars:
            assert tuple(model.named_vars_to_dims[var]) == dims, f"{name}.{var}"
    assert tuple(model.named_vars_to_dims["lfc"]) == ("reading",)
    assert list(model.coords["gene"]) == list(tiny_selection.genes)
    for dim in ("cell_line", "lineage", "sgrna"):
        if dim in model.coords:
            assert list(model.coords[dim]) == list(tiny_selection.coords[dim])
    assert set(spec.terms) <= set(public), f"{name}: terms explain variables that are not stored"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_declared_predictor_matches_the_model_graph(name: str, tiny_selection) -> None:
    """The numpy predictor (used for predictive checks and LOO) is the model's own mean, at a random point."""
    from pymc.pytensorf import join_nonshared_inputs

    from speclet_core.data.covariates import prepare_covariates
    from speclet_core.fitting.sampling import dataset_from_draws

    spec = get_model(name)
    tiny_selection = _fit_selection(name, tiny_selection)
    sel = prepared(spec, tiny_selection)
    sel = dataclasses.replace(sel, data=prepare_covariates(sel.data)[0])
    model = spec.build(sel)
    public = public_variables(model)
    mean_graph = model["lfc"].owner.inputs[2]
    outs = model.replace_rvs_by_values([mean_graph, *(model[n] for n in public)])
    point = model.initial_point()
    joined, flat = join_nonshared_inputs(point, outs, model.value_vars)
    fn = pytensor.function([flat], joined, mode="FAST_COMPILE")
    rng = np.random.default_rng(3)
    x = rng.normal(0, 0.7, size=sum(np.size(v) for v in point.values()))
    mean, *values = fn(x)
    posterior = dataset_from_draws(model, {n: np.asarray(v)[None, None] for n, v in zip(public, values, strict=True)})
    np.testing.assert_allclose(predict_mean(spec, posterior, sel)[0, 0], mean, rtol=1e-10, atol=1e-10)


def test_sgrna_model_effects_sum_to_zero_within_parents(tiny_selection) -> None:
    """gene_effect is the gene's average over its guides and lineages: every deviation is zero-sum."""
    model = get_model("sgrna_gene_lineage").build(tiny_selection)
    draws = pm.draw([model[v] for v in ("gene_effect", "sgrna_effect", "lineage_effect", "cell_line_effect",
                                        "gene_lineage_effect", "gene_cell_line_effect")], draws=5, random_seed=1,
                    mode="FAST_COMPILE")
    gene, sgrna, lineage, cell, gl, gc = draws
    sel = tiny_selection
    for g in range(len(sel.genes)):
        np.testing.assert_allclose(sgrna[:, sel.sgrna_gene == g].sum(axis=1), 0, atol=1e-9)
    np.testing.assert_allclose(lineage.sum(axis=1), 0, atol=1e-9)
    np.testing.assert_allclose(gl.mean(axis=2), gene, atol=1e-9)
    for lin in range(len(sel.lineages)):
        cells = sel.cell_line_lineage == lin
        np.testing.assert_allclose(cell[:, cells].mean(axis=1), lineage[:, lin], atol=1e-9)
        np.testing.assert_allclose(gc[:, :, cells].mean(axis=2), gl[:, :, lin], atol=1e-9)


# --------------------------------------------------------------------------- one real fit per model


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_fits_stores_and_loads(name: str, tiny_path: Path, tiny_selection, tmp_path: Path) -> None:
    """build → short fit on a tiny screen → declared variables with declared dims and labels → store → load."""
    model_store = pytest.importorskip("model_store")
    spec = get_model(name)
    tiny_selection = _fit_selection(name, tiny_selection)
    settings = Settings(data_dir=tmp_path)
    request = prepare_request(tiny_path, name, sampler=SamplerSettings(method="quick"), seed=2, settings=settings,
                              lineages=list(tiny_selection.lineages), options=options_for(spec))
    result = run_fit(request, settings=settings)
    post = result.idata.posterior
    assert result.spec is spec and result.approximate
    assert result.diagnostics["verdict"] != "converged"
    assert result.provenance["approximate"] == "true"
    for role in ("gene_effect", "gene_lineage_effect", "gene_cell_line_effect"):
        var = spec.roles()[role]
        if var is None:
            continue
        assert post[var].dims[2:] == EXPECTED_DIMS[role]
        for dim in EXPECTED_DIMS[role]:
            assert list(post[var].coords[dim].values) == list(tiny_selection.coords[dim])
        assert np.isfinite(post[var].values).all()
    assert not [v for v in post.data_vars if v.endswith(("_raw", "__"))], "sampler internals are not stored"
    assert result.idata.log_likelihood["lfc"].shape == (1, post.sizes["draw"], tiny_selection.n_rows)
    assert result.idata.posterior_predictive.sizes["draw"] <= 200
    assert result.idata.prior_predictive["lfc"].shape[-1] == tiny_selection.n_rows

    store = model_store.ModelStore(tmp_path / "fits")
    manifest = store.put(request.fit_id, result.idata, request=request.model_dump(mode="json"),
                         roles=spec.roles(), diagnostics=result.diagnostics, timings=result.timings,
                         provenance=result.provenance)
    assert manifest.fit_id == request.fit_id
    stored = store.get(request.fit_id)
    assert stored.fit_id == request.fit_id
    with xr.open_dataset(stored.posterior_path) as root:
        assert root.attrs["approximate"] == "true" and root.attrs["fit_id"] == request.fit_id
    np.testing.assert_allclose(stored.draws("gene_effect").values, post["gene_effect"].values, rtol=1e-6)
    stored.close()
