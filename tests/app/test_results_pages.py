"""AppTests for the result pages (forest, heatmap, rankings, covariates, predictive checks, compare).

Most tests store posteriors made from a synthetic screen's known truth (truth + noise, no PyMC), so every
number on a page can be checked against the truth and the stored draws; one test uses a real fit.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from model_store import ModelStore
from speclet_core.analysis import ranking, sentences
from speclet_core.data.demo import write_synthetic
from speclet_core.data.screen import load_screen
from speclet_core.data.selection import select_screen
from speclet_core.data.synthetic import SyntheticScreen, simulate_screen
from speclet_core.records import FitRequest, SamplerSettings, Selection

RESULT_PAGES = ["forest", "heatmap", "rankings", "covariates", "ppc", "compare"]
CONVERGED = {"max_rhat": 1.004, "min_ess_bulk": 410.0, "min_ess_tail": 380.0, "divergences": 0, "bfmi_min": 0.9,
             "treedepth_hits": 0, "verdict": "converged", "reasons": [], "approximate": False}
GL_ROLES = {"gene_effect": "gene_effect", "gene_lineage_effect": "gene_lineage_effect",
            "gene_cell_line_effect": "gene_cell_line_effect", "hyperparameters": ["mu_gene", "sigma_gene", "sigma"],
            "covariate_slopes": []}
RNA_ROLES = {"gene_effect": "gene_effect", "gene_lineage_effect": None, "gene_cell_line_effect": None,
             "hyperparameters": ["mu_gene", "sigma_gene", "sigma"], "covariate_slopes": ["rna_slope"]}
GENE_ROLES = {**RNA_ROLES, "covariate_slopes": []}
NOISE = 0.08  # posterior sd around (truth + an offset of the same size): intervals cover the truth as they should


# --------------------------------------------------------------------------- truthful stored fits


def _screen() -> SyntheticScreen:
    return simulate_screen(n_genes=8, n_cell_lines=18, n_lineages=3, seed=11, sgrnas_per_gene=(2, 3),
                           n_pan_essential=1, n_lineage_selective=1)


class TruthfulFits:
    """Stores posteriors of a synthetic screen centred near its truth, for any role layout."""

    def __init__(self, data_dir: Path) -> None:
        self.screen = _screen()
        self.path, _ = write_synthetic(self.screen, data_dir / "screens" / "tiny.parquet")
        self.sel = select_screen(load_screen(self.path))
        self.store = ModelStore(data_dir / "fits")
        t = self.screen.truth
        genes, lins, cells = list(self.sel.genes), list(self.sel.lineages), list(self.sel.cell_lines)
        value = lambda p, idx, cols=None: (t[t.parameter == p].pivot_table(index=idx, columns=cols, values="value")  # noqa: E731
                                           if cols else t[t.parameter == p].set_index(idx)["value"])
        self.truth = {
            "gene_effect": value("gene_effect", "gene").loc[genes].to_numpy(),
            "gene_lineage_effect": value("gene_lineage_effect", "gene", "lineage").loc[genes, lins].to_numpy(),
            "gene_cell_line_effect": value("gene_cell_line_effect", "gene", "cell_line").loc[genes, cells].to_numpy(),
            "rna_slope": value("rna_slope", "gene").loc[genes].to_numpy(),
        }
        d = self.sel.data
        g, c = self.sel.index("hugo_symbol"), self.sel.index("depmap_id")
        sg = value("sgrna_effect", "sgrna").loc[d["sgrna"].astype(str)].to_numpy()
        cl = value("cell_line_effect", "cell_line").loc[d["depmap_id"].astype(str)].to_numpy()
        from speclet_core.data.covariates import prepare_covariates

        z = prepare_covariates(d)[0]
        cn = value("cn_slope", "gene").loc[genes].to_numpy()
        self.mean_full = (self.truth["gene_cell_line_effect"][g, c] + sg + cl + self.truth["rna_slope"][g]
                          * z["rna_expr_z"].to_numpy() + cn[g] * z["gene_cn_z"].to_numpy())
        self.mean_gene_only = self.truth["gene_effect"][g]
        self.planted = t[t.parameter == "lineage_selective"][["gene", "lineage"]].iloc[0].tolist()
        self.pan = t[(t.parameter == "pan_essential") & (t.value == 1)]["gene"].iloc[0]

    def put(self, *, roles: dict[str, Any], model: str, seed: int, predictive: str = "full", quick: bool = False,
            log_likelihood: bool = True, constant_data: bool = False) -> str:
        rng = np.random.default_rng(seed)
        chains, draws = 2, 150
        genes, lins, cells = list(self.sel.genes), list(self.sel.lineages), list(self.sel.cell_lines)

        def around(x: np.ndarray) -> np.ndarray:
            centre = x + rng.normal(0, NOISE, x.shape)
            return centre + rng.normal(0, NOISE, (chains, draws, *x.shape))

        posterior = {"mu_gene": rng.normal(-0.3, 0.05, (chains, draws)),
                     "sigma_gene": np.abs(rng.normal(0.6, 0.05, (chains, draws))),
                     "sigma": np.abs(rng.normal(0.3, 0.01, (chains, draws))),
                     "gene_effect": around(self.truth["gene_effect"])}
        dims = {"gene_effect": ["gene"], "lfc": ["reading"]}
        for role, dim in (("gene_lineage_effect", ["gene", "lineage"]), ("gene_cell_line_effect", ["gene", "cell_line"])):
            if roles.get(role):
                posterior[role] = around(self.truth[role])
                dims[role] = dim
        for slope in roles.get("covariate_slopes") or []:
            posterior[slope] = around(self.truth[slope])
            dims[slope] = ["gene"]
        y = self.sel.data["lfc"].to_numpy(np.float64)
        mean, sigma = (self.mean_full, 0.3) if predictive == "full" else (self.mean_gene_only, 0.15)
        n = y.size
        groups: dict[str, Any] = {
            "posterior_predictive": {"lfc": mean + rng.normal(0, sigma, (chains, 100, n))},
            "prior_predictive": {"lfc": rng.normal(0, 2.0, (1, 40, n))},
            "observed_data": {"lfc": y},
        }
        if constant_data:  # as speclet_core.fitting.engine stores them: each reading's labels and model-scale covariates
            d = self.sel.data
            from speclet_core.data.covariates import prepare_covariates

            groups["constant_data"] = {
                "gene": d["hugo_symbol"].astype(str).to_numpy(dtype=object),
                "sgrna": d["sgrna"].astype(str).to_numpy(dtype=object),
                "cell_line": d["depmap_id"].astype(str).to_numpy(dtype=object),
                "lineage": d["lineage"].astype(str).to_numpy(dtype=object),
                "rna_expr_z": prepare_covariates(d)[0]["rna_expr_z"].to_numpy(),
            }
            dims.update({k: ["reading"] for k in groups["constant_data"]})
        if log_likelihood:
            mu = mean + rng.normal(0, 0.02, (chains, draws, n))
            groups["log_likelihood"] = {"lfc": -0.5 * ((y - mu) / sigma) ** 2 - np.log(sigma * np.sqrt(2 * np.pi))}
        idata = az.from_dict(posterior=posterior, coords={"gene": genes, "lineage": lins, "cell_line": cells,
                                                          "reading": np.arange(n)}, dims=dims, **groups)
        request = FitRequest(data_path=str(self.path), data_fingerprint=self.sel.fingerprint, selection=Selection(),
                             model=model, model_version="1", seed=seed,
                             sampler=SamplerSettings(method="quick" if quick else "nuts", chains=chains, draws=draws))
        diagnostics = {**CONVERGED, "approximate": quick, "verdict": "look_closer" if quick else "converged"}
        self.store.put(request.fit_id, idata, request=request.model_dump(mode="json"), roles=roles,
                       diagnostics=diagnostics, timings={"total_s": 1.0})
        return request.fit_id


@pytest.fixture
def fits(data_dir: Path) -> TruthfulFits:
    return TruthfulFits(data_dir)


@pytest.fixture
def gl_fit(fits: TruthfulFits) -> str:
    return fits.put(roles=GL_ROLES, model="gene_lineage", seed=1)


# --------------------------------------------------------------------------- reading what a page drew


def charts_data(at: AppTest) -> dict[str, pd.DataFrame]:
    """Every chart's rows (all its datasets together) keyed by its title."""
    out: dict[str, pd.DataFrame] = {}
    for el in at.get("vega_lite_chart"):
        spec = json.loads(el.proto.spec)
        title = spec.get("title", "")
        title = title.get("text", "") if isinstance(title, dict) else title
        frames = [pa.ipc.open_stream(ds.data.data).read_all().to_pandas() for ds in el.proto.datasets]
        frames += [pd.DataFrame(rows) for rows in spec.get("datasets", {}).values()]
        out[str(title)] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return out


def chart(at: AppTest, title_part: str) -> pd.DataFrame:
    data = charts_data(at)
    hits = [t for t in data if title_part in t]
    assert hits, f"no chart titled {title_part!r}; charts: {list(data)}"
    return data[hits[0]]


def text_of(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
                     + [w.value for w in at.warning] + [e.value for e in at.error])


# --------------------------------------------------------------------------- forest


def test_forest_overlays_the_truth_and_reports_recovery(open_page: Callable[..., AppTest], fits: TruthfulFits,
                                                        gl_fit: str) -> None:
    at = open_page("forest", fit=gl_fit)
    rows = chart(at, "Gene-level effect")
    assert len(rows) == 8 and rows["truth"].notna().all()
    truth = dict(zip(fits.sel.genes, fits.truth["gene_effect"], strict=True))
    for r in rows.itertuples():
        assert r.truth == pytest.approx(truth[r.label])
    assert rows.sort_values("order")["label"].iloc[0] == fits.pan  # sorted by mean: the pan-essential gene on top
    # the recovery sentence counts genes whose stored 89% HDI holds the truth, as arviz computes it
    draws = fits.store.get(gl_fit).draws("gene_effect")
    hdi = az.hdi(draws.to_dataset(), hdi_prob=0.89)["gene_effect"]
    inside = sum(hdi.sel(gene=g, hdi="lower") <= truth[g] <= hdi.sel(gene=g, hdi="higher") for g in fits.sel.genes)
    assert f"inside the 89% interval for {int(inside)} of 8 genes" in text_of(at)
    assert "known only for synthetic screens" in text_of(at)


def test_forest_url_restores_searched_genes_and_interval(open_page: Callable[..., AppTest], gl_fit: str) -> None:
    at = open_page("forest", fit=gl_fit, forest_how="Search by name", forest_genes=["MYC", "KRAS"], forest_inner="80%",
                   forest_sort="name")
    rows = chart(at, "Gene-level effect").sort_values("order")
    assert rows["label"].tolist() == ["KRAS", "MYC"]  # sorted by name
    width_inner = rows["inner_high"] - rows["inner_low"]
    width_outer = rows["outer_high"] - rows["outer_low"]
    assert (width_inner < width_outer).all() and (width_inner > 0.5 * width_outer).all()  # 80% vs 89%


def test_forest_one_gene_across_lineages_puts_the_planted_lineage_first(open_page: Callable[..., AppTest],
                                                                         fits: TruthfulFits, gl_fit: str) -> None:
    gene, lineage = fits.planted
    at = open_page("forest", fit=gl_fit, forest_view="One gene across lineages", forest_gene=gene)
    rows = chart(at, f"One gene across lineages: {gene}").sort_values("order")
    assert rows["label"].iloc[0] == lineage and len(rows) == 3 and rows["truth"].notna().all()
    at = open_page("forest", fit=gl_fit, forest_view="One gene across cell lines", forest_gene=gene)
    rows = chart(at, f"One gene across cell lines: {gene}")
    lineage_of = fits.sel.data.drop_duplicates("depmap_id").set_index("depmap_id")["lineage"].astype(str)
    assert len(rows) == 18 and all(lineage_of[r.label] == r.lineage for r in rows.itertuples())


def test_forest_compares_two_fits_side_by_side(open_page: Callable[..., AppTest], fits: TruthfulFits,
                                               gl_fit: str) -> None:
    other = fits.put(roles=GENE_ROLES, model="gene", seed=2)
    at = open_page("forest", fit=gl_fit)
    at.selectbox(key="forest_compare").set_value(other).run()
    rows = chart(at, "Gene-level effect")
    assert rows["fit"].nunique() == 2 and len(rows) == 16
    assert "narrower interval than the other fit for" in text_of(at)


# --------------------------------------------------------------------------- heatmap


def test_heatmap_cells_match_the_stored_matrix_and_lineages(open_page: Callable[..., AppTest], fits: TruthfulFits,
                                                           gl_fit: str) -> None:
    at = open_page("heatmap", fit=gl_fit)
    cells = chart(at, "Gene × cell line: posterior mean")
    heat = cells[cells["gene"].notna()] if "gene" in cells else cells
    assert len(heat) == 8 * 18
    stored = fits.store.get(gl_fit)
    mean, low, high = (stored.matrix("gene_cell_line", s) for s in ("mean", "hdi_5.5%", "hdi_94.5%"))
    lineage_of = fits.sel.data.drop_duplicates("depmap_id").set_index("depmap_id")["lineage"].astype(str)
    for r in heat.itertuples():
        assert r.value == pytest.approx(mean.loc[r.gene, r.column])
        assert r.lineage == lineage_of[r.column]
        excludes_zero = low.loc[r.gene, r.column] > 0 or high.loc[r.gene, r.column] < 0
        assert r.certainty == (1.0 if excludes_zero else 0.0)
    assert "Faded cells are uncertain" in text_of(at)
    at = open_page("heatmap", fit=gl_fit, heat_kind="Gene × lineage", heat_stat="P(effect < −0.5)")
    cells = chart(at, "Gene × lineage: P(effect < −0.5)")
    gene, lineage = fits.planted
    planted = cells[(cells["gene"] == gene) & (cells["column"] == lineage)]
    assert planted["value"].iloc[0] == pytest.approx(stored.matrix("gene_lineage", "p_below").loc[gene, lineage])


def test_heatmap_explains_when_the_model_has_no_matrix(open_page: Callable[..., AppTest], fits: TruthfulFits) -> None:
    fit_id = fits.put(roles=GENE_ROLES, model="gene", seed=3)
    at = open_page("heatmap", fit=fit_id)
    assert not at.get("vega_lite_chart") and "estimates one effect per gene only" in text_of(at)


# --------------------------------------------------------------------------- rankings


def test_rankings_table_contrast_finds_the_planted_gene(open_page: Callable[..., AppTest], fits: TruthfulFits,
                                                        gl_fit: str) -> None:
    gene, lineage = fits.planted
    at = open_page("rankings", fit=gl_fit, rank_contrast=lineage, rank_k="3", rank_min_p="0.5")
    expected = ranking.rank_genes(fits.store.get(gl_fit).draws("gene_effect"), top_k=3)
    table = at.dataframe[0].value
    pd.testing.assert_frame_equal(table.reset_index(drop=True), expected, check_exact=False, rtol=1e-6)
    # the planted gene is the clearest selective dependency, though only just below −0.5 in this tiny screen
    listed, contrast = at.dataframe[1].value, at.dataframe[2].value
    assert contrast["gene"].iloc[0] == gene and contrast["p_stronger"].iloc[0] > 0.99
    assert listed["gene"].iloc[0] == gene and listed["p_selective"].iloc[0] >= 0.5
    top = contrast.iloc[0]
    assert sentences.describe_selective(gene, lineage, p_dependency=top["p_dependency"], p_stronger=top["p_stronger"],
                                        mean_in_lineage=top["mean_in_lineage"]) in text_of(at)
    assert "Expected false discovery proportion" in text_of(at)
    pairs = chart(at, "P(row gene is a stronger dependency)")
    top = expected["gene"].iloc[0]
    assert pairs[pairs["gene_a"] == top]["p_a_stronger"].min() > 0.5
    assert f"{top} is a stronger dependency than" in text_of(at)
    assert at.get("download_button")


def test_rankings_within_a_lineage_and_without_lineage_effects(open_page: Callable[..., AppTest],
                                                               fits: TruthfulFits, gl_fit: str) -> None:
    gene, lineage = fits.planted
    at = open_page("rankings", fit=gl_fit, rank_scope=lineage)
    assert at.dataframe[0].value["gene"].iloc[0] in {gene, fits.pan}  # the two strongest in that lineage
    assert chart(at, "Rank intervals")["gene"].nunique() == 8
    plain = fits.put(roles=GENE_ROLES, model="gene", seed=4)
    at = open_page("rankings", fit=plain)
    assert "cannot say which dependencies are lineage-selective" in text_of(at)


# --------------------------------------------------------------------------- covariates


def test_covariates_draw_regression_lines_and_true_slopes(open_page: Callable[..., AppTest], fits: TruthfulFits) -> None:
    fit_id = fits.put(roles=RNA_ROLES, model="gene_rna", seed=5)
    at = open_page("covariates", fit=fit_id, cov_genes=["KRAS", "MYC"])
    slopes = chart(at, "rna_slope: posterior mean")
    truth = dict(zip(fits.sel.genes, fits.truth["rna_slope"], strict=True))
    assert len(slopes) == 8 and all(r.truth == pytest.approx(truth[r.label]) for r in slopes.itertuples())
    scatter = chart(at, "posterior regression lines")
    points = scatter[scatter["lineage"].notna()]
    d = fits.sel.data
    assert len(points) == int(d["hugo_symbol"].isin(["KRAS", "MYC"]).sum())
    np.testing.assert_allclose(np.sort(points["x"]), np.sort(d.loc[d["hugo_symbol"].isin(["KRAS", "MYC"]), "rna_expr"]))
    band = scatter[scatter["low"].notna()] if "low" in scatter else pd.DataFrame()
    assert len(band) == 2 * 40 and (band["low"] <= band["high"]).all()
    at = open_page("covariates", fit=fits.put(roles=GL_ROLES, model="gene_lineage", seed=6))
    assert "has no RNA-expression or copy-number slope" in text_of(at)


# --------------------------------------------------------------------------- predictive checks


def test_ppc_accepts_the_true_model_and_flags_a_too_simple_one(open_page: Callable[..., AppTest], fits: TruthfulFits,
                                                               gl_fit: str) -> None:
    at = open_page("ppc", fit=gl_fit)
    hist = chart(at, "all readings")
    assert "prior_mean" in hist and len(hist) == 40
    width = hist["bin_high"] - hist["bin_low"]
    assert float((hist["observed"] * width).sum()) == pytest.approx(1.0)
    assert "no sign of misfit" in text_of(at)
    per_gene = chart(at, "per gene")
    assert per_gene["group"].nunique() == 6
    counts = fits.sel.data["hugo_symbol"].astype(str).value_counts()
    for g, n in per_gene.groupby("group")["n_readings"].first().items():
        assert n == counts[g]
    simple = fits.put(roles=GENE_ROLES, model="gene", seed=7, predictive="gene_only")
    at = open_page("ppc", fit=simple)
    text = text_of(at)
    assert "The model does not reproduce the observed" in text and "sd (observed 0.5" in text


def test_ppc_without_the_screen_table_still_shows_the_overall_check(open_page: Callable[..., AppTest],
                                                                   fits: TruthfulFits, gl_fit: str) -> None:
    shutil.move(fits.path, fits.path.with_suffix(".moved"))
    at = open_page("ppc", fit=gl_fit)
    assert chart(at, "all readings") is not None
    assert "Per-gene and per-lineage checks are not available" in text_of(at) and "is not on this server" in text_of(at)


def test_per_reading_views_of_big_fits_wait_to_be_asked_for(open_page: Callable[..., AppTest], gl_fit: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from pages import widgets

    monkeypatch.setattr(widgets, "AUTO_READINGS_MAX", 100)  # the tiny fit has 342 readings: "big"
    at = open_page("ppc", fit=gl_fit)
    assert at.toggle(key="ppc_split").value is False
    assert len(charts_data(at)) == 1  # the overall check only: the screen table was not reloaded
    at.toggle(key="ppc_split").set_value(True).run()
    assert chart(at, "per gene")["group"].nunique() == 6


def test_labels_stored_with_the_fit_replace_the_screen_table(open_page: Callable[..., AppTest],
                                                             fits: TruthfulFits) -> None:
    fit_id = fits.put(roles={**GL_ROLES, "covariate_slopes": ["rna_slope"]}, model="gene_lineage_rna", seed=10,
                      constant_data=True)
    shutil.move(fits.path, fits.path.with_suffix(".moved"))  # nothing to reload: the fit must do on its own
    at = open_page("ppc", fit=fit_id)
    counts = fits.sel.data["hugo_symbol"].astype(str).value_counts()
    per_gene = chart(at, "per gene")
    assert all(n == counts[g] for g, n in per_gene.groupby("group")["n_readings"].first().items())
    at = open_page("covariates", fit=fit_id, cov_genes=["KRAS"])
    scatter = chart(at, "z-score of expression within the gene")
    points = scatter[scatter["lineage"].notna()]
    from speclet_core.data.covariates import prepare_covariates

    z = prepare_covariates(fits.sel.data)[0]
    np.testing.assert_allclose(np.sort(points["x"]), np.sort(z.loc[z["hugo_symbol"] == "KRAS", "rna_expr_z"]))
    at = open_page("heatmap", fit=fit_id)
    heat = chart(at, "Gene × cell line")
    lineage_of = fits.sel.data.drop_duplicates("depmap_id").set_index("depmap_id")["lineage"].astype(str)
    assert all(lineage_of[r.column] == r.lineage for r in heat[heat["gene"].notna()].itertuples())


# --------------------------------------------------------------------------- compare


def test_compare_ranks_fits_by_loo_and_shows_rank_changes(open_page: Callable[..., AppTest], fits: TruthfulFits,
                                                          gl_fit: str) -> None:
    simple = fits.put(roles=GENE_ROLES, model="gene", seed=8, predictive="gene_only")
    at = open_page("compare", fit=gl_fit)
    loo = chart(at, "ELPD (LOO)")
    best = loo.sort_values("rank")["fit"].iloc[0]
    assert best.startswith("gene_lineage") and "a clear difference" in text_of(at)
    manifests = {m.fit_id: m for m in fits.store.list()}
    assert set(at.multiselect(key="compare_fits").value) == {gl_fit, simple} and len(manifests) == 2
    slopes = chart(at, "Expected rank of each gene")
    assert slopes["fit"].nunique() == 2 and slopes.groupby("fit")["gene"].nunique().eq(8).all()  # top 15 of 8 genes
    wide = at.dataframe[-1].value
    names = [c.removeprefix("rank: ") for c in wide.columns if c.startswith("rank: ")]
    assert len(wide) == 8 and names[0].startswith("gene_lineage")
    np.testing.assert_allclose(wide["rank change"], wide[f"rank: {names[1]}"] - wide[f"rank: {names[0]}"])
    expected = ranking.rank_genes(fits.store.get(gl_fit).draws("gene_effect"))
    assert dict(zip(wide["gene"], wide[f"rank: {names[0]}"], strict=True)) == pytest.approx(
        dict(zip(expected["gene"], expected["expected_rank"].rank(), strict=True)))
    assert "rank correlation" in text_of(at)


def test_compare_needs_another_fit_of_the_same_readings(open_page: Callable[..., AppTest], gl_fit: str) -> None:
    at = open_page("compare", fit=gl_fit)
    assert "Only this fit was made on these readings" in text_of(at)


# --------------------------------------------------------------------------- every page


@pytest.mark.parametrize("page", RESULT_PAGES)
def test_approximate_fits_are_labelled_on_every_results_page(open_page: Callable[..., AppTest], fits: TruthfulFits,
                                                             page: str) -> None:
    fit_id = fits.put(roles=GL_ROLES, model="gene_lineage", seed=9, quick=True)
    at = open_page(page, fit=fit_id)
    assert any("Approximate posterior (ADVI) — first look only" in w.value for w in at.warning)


@pytest.mark.parametrize("page", RESULT_PAGES)
def test_results_pages_without_an_open_fit_point_to_the_fit_page(open_page: Callable[..., AppTest], page: str) -> None:
    at = open_page(page)
    assert "No fit is open" in text_of(at) and not at.get("vega_lite_chart")


# --------------------------------------------------------------------------- a real fit


@pytest.fixture
def real_fit_id(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session's real NUTS fit of the demo screen (tests/conftest.py), or a skip while no engine exists."""
    pytest.importorskip("speclet_core.fitting.engine", reason="the fitting engine (speclet_core/fitting/engine.py) is not there yet")
    data_dir, fit_id = request.getfixturevalue("real_fit")
    monkeypatch.setenv("SPECLET_DATA_DIR", str(data_dir))
    return fit_id


@pytest.mark.slow
def test_result_pages_on_a_real_fit(open_page: Callable[..., AppTest], real_fit_id: str) -> None:
    from speclet_core.analysis import forest
    from speclet_core.settings import Settings

    stored = ModelStore(Settings.from_env().fits_dir).get(real_fit_id)
    truth = forest.load_truth(stored.manifest.request.data_path)
    planted = truth[truth["parameter"] == "lineage_selective"]

    at = open_page("forest", fit=real_fit_id)
    rows = chart(at, "Gene-level effect")
    assert len(rows) == 30 and rows["truth"].notna().all()
    rec = forest.recovery(rows)
    assert rec["inside_outer"] >= 0.7 and rec["rmse"] < 0.3  # the model recovers the demo's gene effects

    lineage = str(planted["lineage"].iloc[0])
    at = open_page("rankings", fit=real_fit_id, rank_contrast=lineage)
    contrast = at.dataframe[2].value  # every gene's numbers (dataframe[1] is the list above a P(selective) cut)
    assert contrast["gene"].iloc[0] in set(planted.loc[planted["lineage"] == lineage, "gene"])

    at = open_page("heatmap", fit=real_fit_id, heat_n="30")
    cells = chart(at, "Gene × cell line")
    heat = cells[cells["gene"].notna()]
    mean = stored.matrix("gene_cell_line", "mean")
    assert len(heat) == 30 * 120 and all(r.value == pytest.approx(mean.loc[r.gene, r.column])
                                         for r in heat.sample(50, random_state=0).itertuples())
    assert heat["lineage"].nunique() == 6  # lineages known (stored coordinate or the screen table)

    at = open_page("ppc", fit=real_fit_id)
    assert len(chart(at, "all readings")) == 40 and chart(at, "per gene")["group"].nunique() == 6
    for page in ("covariates", "compare"):
        at = open_page(page, fit=real_fit_id)
        assert at.title[0].value in {"Covariates", "Compare models"}
