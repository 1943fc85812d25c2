"""analysis.compare: LOO table, same-readings check, ranking changes between fits."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
from analysis_helpers import GENES, _draws

from model_store.manifest import FitManifest
from speclet_core.analysis import compare, sentences
from speclet_core.analysis.ranking import rank_genes
from speclet_core.diagnostics import verdict
from speclet_core.errors import AnalysisError
from speclet_core.records import Verdict


def test_loo_table_prefers_the_model_that_generated_the_data() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(0, 1, 80)
    mu_good = rng.normal(0, 0.05, (2, 300, 1))
    mu_bad = 2.0 + rng.normal(0, 0.05, (2, 300, 1))

    def idata(mu: np.ndarray) -> az.InferenceData:
        ll = -0.5 * (y - mu) ** 2 - 0.5 * np.log(2 * np.pi)
        return az.from_dict(posterior={"mu": mu[..., 0]}, log_likelihood={"lfc": ll}, observed_data={"lfc": y})

    fits = {"good": idata(mu_good), "bad": idata(mu_bad)}
    table = compare.loo_table(fits)
    assert table["fit"].tolist() == ["good", "bad"] and table["rank"].tolist() == [1, 2]
    assert table.loc[0, "elpd_loo"] == pytest.approx(float(az.loo(fits["good"]).elpd_loo))
    assert table.loc[1, "elpd_diff"] == pytest.approx(table.loc[0, "elpd_loo"] - table.loc[1, "elpd_loo"])
    assert table["weight"].sum() == pytest.approx(1.0)
    converged = verdict.FitVerdict(level="converged", headline=verdict.HEADLINES[Verdict.CONVERGED])
    text = sentences.describe_loo(table, {"good": converged, "bad": converged})
    assert text[0].startswith("good predicts held-out readings best") and "a clear difference" in text[1]
    with pytest.raises(AnalysisError, match="stored no log-likelihood"):
        compare.loo_table({"x": az.from_dict(posterior={"mu": mu_good[..., 0]})})
    with pytest.raises(AnalysisError, match="different readings"):
        compare.check_same_data([_manifest_on("a" * 64), _manifest_on("b" * 64)])
    compare.check_same_data([_manifest_on("a" * 64), _manifest_on("a" * 64)])  # same readings: no error


def _manifest_on(fingerprint: str) -> FitManifest:
    """A minimal stored-fit manifest of a fit made on the readings with this fingerprint."""
    request = {"data_fingerprint": fingerprint, "model": "gene", "model_version": "1"}
    return FitManifest.model_validate({"fit_id": fingerprint, "model": "gene", "request": request,
                                       "roles": {"gene_effect": "gene_effect"}})


def test_ranking_changes_between_fits() -> None:
    a = rank_genes(_draws(np.array([-2.0, -1.0, 0.0, -0.5, 0.5]), 0.05, "gene", GENES, seed=1))
    b = rank_genes(_draws(np.array([-1.0, -2.0, 0.0, -0.5, 0.5]), 0.05, "gene", GENES, seed=2))
    wide, long = compare.ranking_changes({"A": a, "B": b}, top_n=2)
    w = wide.set_index("gene")
    assert w.loc["KRAS", "rank: A"] == 1 and w.loc["KRAS", "rank: B"] == 2 and w.loc["KRAS", "rank change"] == 1
    assert w.loc["BRAF", "rank change"] == -1 and w.loc["MYC", "rank change"] == 0
    assert set(long["gene"]) == {"KRAS", "BRAF"} and set(long["fit"]) == {"A", "B"}
    text = compare.rank_agreement(wide, ["A", "B"], top_n=2)[0]
    assert text == "B vs A: rank correlation 0.90; 2 of the top 2 genes are the same."
