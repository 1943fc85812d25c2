"""gene_biomarker and gene_batch: marker and batch columns, identifiability, recovery of planted truth.

Recovery fits are real NUTS fits through ``run_fit`` on small synthetic screens:

- a marker-dependent dependency planted in one gene is found (P(stronger dependency when marked)
  high, its HDI covers the planted difference), while a lineage-selective gene whose lineage holds
  most marked cell lines is not mistaken for one (a naive marked-vs-unmarked mean would be);
- a planted screen shift is recovered by the batch term, and the marker contrast stays unbiased
  although marked cell lines were screened by the shifted screen only.
"""

from __future__ import annotations

from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest

from model_store.stats import HDI_PROB
from speclet_core.analysis.biomarker import contrast_biomarker, marked_cell_lines
from speclet_core.data.covariates import BATCH, MARKED, MARKER_X, marker_covariate
from speclet_core.data.screen import load_screen, screen_from_frame
from speclet_core.data.selection import select_screen
from speclet_core.data.synthetic import simulate_screen
from speclet_core.errors import ModelError, SelectionError
from speclet_core.fitting.engine import FitResult, run_fit
from speclet_core.fitting.request import apply_options, load_request, prepare_request
from speclet_core.models.biomarker import residual_projection
from speclet_core.models.spec import get_model
from speclet_core.records import ModelOptions, SamplerSettings
from speclet_core.settings import Settings

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "depmap_crc_subsample.csv"
# ≈ 12 s compile + 45 s sampling per fit on an idle 2-core machine (about twice that under load)
SAMPLER = SamplerSettings(backend="pymc", chains=2, tune=300, draws=300, target_accept=0.95)
PLANTED = -1.0


def _planted_screen(seed: int = 3) -> tuple[pd.DataFrame, str, str]:
    """Two lineages, most marked cell lines in the first; one gene loses ``PLANTED`` more when marked.

    Returns the table, the planted gene and the lineage-selective gene.
    """
    sim = simulate_screen(10, 24, 2, seed=seed, covariates=False, sgrnas_per_gene=(3, 3), n_pan_essential=1,
                          n_lineage_selective=1, sd_gene_cell_line=0.1)
    data = sim.data.copy()
    selective = sim.truth_values("lineage_selective")
    sel_gene, sel_lineage = selective["gene"].iloc[0], selective["lineage"].iloc[0]
    cells = data[["depmap_id", "lineage"]].drop_duplicates().sort_values("depmap_id")
    marked = {}
    for lineage, group in cells.groupby("lineage"):
        share = 0.75 if lineage == sel_lineage else 0.25  # marker and lineage go together
        ids = list(group["depmap_id"])
        n = max(1, min(len(ids) - 1, round(share * len(ids))))
        marked.update({c: i < n for i, c in enumerate(ids)})
    data["kras_status"] = np.where(data["depmap_id"].map(marked), "mutated", "wild_type")
    roles = sim.truth_values("pan_essential").set_index("gene")["value"]
    planted = next(g for g in roles.index if roles[g] == 0 and g != sel_gene)
    hit = (data["hugo_symbol"] == planted) & data["depmap_id"].map(marked)
    data.loc[hit, "lfc"] += PLANTED
    return data, planted, sel_gene


def _fit(data: pd.DataFrame, tmp_path: Path, model: str = "gene_biomarker", **options: str) -> FitResult:
    path = tmp_path / f"{model}-{'-'.join(options.values())}.csv"
    data.to_csv(path, index=False)
    settings = Settings(data_dir=tmp_path)
    request = prepare_request(path, model, sampler=SAMPLER, seed=20261203, settings=settings, options=options)
    return run_fit(request, settings=settings)


def _hdi(result: FitResult, var: str) -> pd.DataFrame:
    hdi = az.hdi(result.idata.posterior[var], hdi_prob=HDI_PROB)[var]
    return pd.DataFrame({"low": hdi.sel(hdi="lower").to_series(), "high": hdi.sel(hdi="higher").to_series()})


# --------------------------------------------------------------------------- marker and batch columns


def test_marker_is_centred_within_lineage_and_the_deviation_is_orthogonal_to_it() -> None:
    marked = np.array([1, 1, 0, 1, 0, 0, 0], dtype=float)
    lineage_of = np.array([0, 0, 0, 1, 1, 1, 2])
    x = marker_covariate(marked, lineage_of, 3)
    np.testing.assert_allclose(x, [1 / 3, 1 / 3, -2 / 3, 2 / 3, -1 / 3, -1 / 3, 0.0])
    member = np.eye(3)[lineage_of]
    proj = residual_projection(member, x)
    np.testing.assert_allclose(proj @ proj, proj, atol=1e-12)  # a projection
    np.testing.assert_allclose(member.T @ proj, 0, atol=1e-12)  # zero-sum within every lineage
    np.testing.assert_allclose(proj @ x, 0, atol=1e-12)  # no marker trend: the contrast lives in marker_effect only


def test_marker_choices_on_the_real_colorectal_table(tmp_path: Path) -> None:
    if not REAL.exists():
        pytest.skip("../shared/data is not here")
    settings = Settings(data_dir=tmp_path)
    screen = load_screen(REAL)
    spec = get_model("gene_biomarker")
    sel = select_screen(screen)
    kras = apply_options(spec, screen, sel, ModelOptions(biomarker="is_mutated:KRAS", batch="screen"))
    per_cell = kras.data.groupby("depmap_id", observed=True)[MARKED].first()
    truth = screen.data[screen.data["hugo_symbol"] == "KRAS"].groupby("depmap_id")["is_mutated"].first() == "TRUE"
    assert (per_cell.astype(bool) == truth.loc[per_cell.index]).all()
    assert 0 < per_cell.sum() < len(per_cell)
    assert set(kras.data[BATCH]) == {"broad", "sanger"}
    per_cell_x = kras.data.groupby("depmap_id", observed=True)[MARKER_X].first()
    np.testing.assert_allclose(per_cell_x.sum(), 0.0, atol=1e-9)  # one lineage: centred over its cell lines
    plain = prepare_request(REAL, "gene_biomarker", settings=settings, options={"biomarker": "is_mutated:KRAS"})
    braf = prepare_request(REAL, "gene_biomarker", settings=settings, options={"biomarker": "is_mutated:BRAF"})
    assert len({plain.fit_id, braf.fit_id, plain.data_fingerprint, braf.data_fingerprint}) == 4
    # the worker's side recomputes the same marked selection and fingerprint
    spec2, again = load_request(plain, settings)
    assert spec2 is spec and again.fingerprint == plain.data_fingerprint
    # a fit without options keeps the id it had before options existed
    gene = prepare_request(REAL, "gene", settings=settings)
    assert "options" not in gene.identity()

    with pytest.raises(SelectionError, match=r"differs between rows of the same cell line.*is_mutated:KRAS"):
        apply_options(spec, screen, sel, ModelOptions(biomarker="is_mutated"))
    with pytest.raises(SelectionError, match=r"'nope' is not a column.*columns that can: .*is_mutated:GENE"):
        apply_options(spec, screen, sel, ModelOptions(biomarker="nope"))
    with pytest.raises(SelectionError, match=r"not true/false.*primary_or_metastasis=VALUE"):
        apply_options(spec, screen, sel, ModelOptions(biomarker="primary_or_metastasis"))
    meta = apply_options(spec, screen, sel, ModelOptions(biomarker="primary_or_metastasis=metastasis"))
    assert meta.data.groupby("depmap_id", observed=True)[MARKED].first().sum() == 2
    with pytest.raises(ModelError, match=r"needs the biomarker option.*is_mutated:GENE"):
        apply_options(spec, screen, sel, ModelOptions())
    with pytest.raises(ModelError, match="model 'gene' has no biomarker option; models that have: gene_biomarker"):
        apply_options(get_model("gene"), screen, sel, ModelOptions(biomarker="is_mutated:KRAS"))
    with pytest.raises(SelectionError, match=r"batch column 'nope'.*screen, pdna_batch"):
        apply_options(spec, screen, sel, ModelOptions(biomarker="is_mutated:KRAS", batch="nope"))


def test_a_marker_with_no_contrast_within_any_lineage_is_refused() -> None:
    sim = simulate_screen(4, 8, 2, seed=1, covariates=False)
    data = sim.data.assign(flag=sim.data["lineage"] == sim.data["lineage"].iloc[0])
    screen = screen_from_frame(data)
    with pytest.raises(SelectionError, match="no lineage has both marked and unmarked cell lines"):
        apply_options(get_model("gene_biomarker"), screen, select_screen(screen), ModelOptions(biomarker="flag"))


# --------------------------------------------------------------------------- recovery (real NUTS fits)


@pytest.mark.slow
def test_recovers_a_planted_marker_dependent_dependency(tmp_path: Path) -> None:
    data, planted, selective = _planted_screen()
    result = _fit(data, tmp_path, biomarker="kras_status=mutated")
    d = result.diagnostics
    assert d["divergences"] == 0 and d["max_rhat"] <= 1.05, d
    table = contrast_biomarker(result.idata.posterior, biomarker="kras_status=mutated").set_index("gene")
    assert table.index[0] == planted
    assert table.loc[planted, "p_stronger_when_marked"] >= 0.95
    hdi = _hdi(result, "marker_effect")
    assert hdi.loc[planted, "low"] <= PLANTED <= hdi.loc[planted, "high"]
    nulls = [g for g in table.index if g != planted]
    # chance differences between the screened cell lines stay small next to the planted one
    assert (table.loc[nulls, "mean_diff"].abs() < abs(PLANTED) / 3).all(), table.loc[nulls, "mean_diff"]
    covered = ((hdi.loc[nulls, "low"] <= 0) & (0 <= hdi.loc[nulls, "high"])).sum()
    assert covered >= len(nulls) - 2, hdi.loc[nulls]
    # the lineage-selective gene: a naive marked-vs-unmarked mean confuses lineage with marker, the model does not
    rows = data[data["hugo_symbol"] == selective]
    naive = rows.groupby(rows["kras_status"] == "mutated")["lfc"].mean()
    assert abs(naive[True] - naive[False]) > 0.5
    assert hdi.loc[selective, "low"] <= 0 <= hdi.loc[selective, "high"]
    marked, unmarked = marked_cell_lines(result.idata.posterior)
    truth = data.groupby("depmap_id")["kras_status"].first() == "mutated"
    assert sorted(marked) == sorted(truth.index[truth]) and sorted(unmarked) == sorted(truth.index[~truth])


def _two_screens(seed: int = 5, shift: float = 0.6) -> pd.DataFrame:
    """Unmarked cell lines screened twice (broad, sanger), marked ones by sanger only; sanger reads ``shift`` higher."""
    sim = simulate_screen(8, 16, 1, seed=seed, covariates=False, sgrnas_per_gene=(3, 3), n_lineage_selective=0)
    data = sim.data.copy()
    cells = sorted(data["depmap_id"].unique())
    marked = {c: i % 2 == 0 for i, c in enumerate(cells)}
    data["marker"] = data["depmap_id"].map(marked)
    rng = np.random.default_rng(seed)
    sanger = data.copy()
    sanger["screen"] = "sanger"
    sanger["lfc"] = sanger["lfc"] + shift + rng.normal(0, 0.1, len(sanger))
    broad = data[~data["marker"]].assign(screen="broad")
    return pd.concat([broad, sanger], ignore_index=True)


@pytest.mark.slow
def test_recovers_a_planted_screen_shift(tmp_path: Path) -> None:
    shift = 0.6
    data = _two_screens(shift=shift)
    with_batch = _fit(data, tmp_path, biomarker="marker", batch="screen")
    d = with_batch.diagnostics
    assert d["divergences"] == 0 and d["max_rhat"] <= 1.05, d
    b = with_batch.idata.posterior["batch_effect"]
    diff = (b.sel(batch="sanger") - b.sel(batch="broad")).values.ravel()
    assert abs(diff.mean() - shift) < 0.1, diff.mean()
    mu = with_batch.idata.posterior["mu_marker"].values.ravel()
    assert abs(mu.mean()) < 0.15, mu.mean()
    # without the batch term the marked cell lines (sanger only) look less dependent on every gene
    without = _fit(data, tmp_path, biomarker="marker")
    biased = without.idata.posterior["mu_marker"].values.ravel().mean()
    assert biased > shift / 4, biased  # ≈ shift / 2 expected
