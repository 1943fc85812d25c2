"""Selective dependencies as a biologist means them, lfsr, expected FDP, verdict-aware LOO sentences, subset truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from model_store.manifest import FitManifest
from model_store.summaries import P_BELOW_THRESHOLD
from speclet_core.analysis import contrasts, glossary, ranking, recovery, sentences
from speclet_core.analysis.contrasts import contrast_lineage, selective_list
from speclet_core.analysis.forest import truth_values
from speclet_core.analysis.ranking import expected_false_discovery, rank_genes
from speclet_core.data.synthetic import simulate_screen
from speclet_core.diagnostics import verdict
from speclet_core.errors import AnalysisError
from speclet_core.records import Verdict

LINEAGES = ["colorectal", "blood", "pancreas"]


def _draws(means: dict[str, list[float]], sd: float = 0.1, n: int = 400, seed: int = 0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    genes = list(means)
    mu = np.array([means[g] for g in genes])
    values = (mu[None, None] + rng.normal(0, sd, (2, n, *mu.shape))).astype(np.float32)
    return xr.DataArray(values, dims=("chain", "draw", "gene", "lineage"),
                        coords={"gene": genes, "lineage": LINEAGES})


# KRAS: a dependency in colorectal only. TP53: a tumour suppressor, +0.19 in pancreas against +0.6 elsewhere
# (less positive there, never a dependency). PLK1: pan-essential (a dependency everywhere, not selective).
# MYC: stronger in pancreas but not below the threshold there (−0.3).
MEANS = {"KRAS": [-1.2, 0.0, -0.1], "TP53": [0.6, 0.6, 0.19], "PLK1": [-1.5, -1.5, -1.5], "MYC": [0.1, 0.0, -0.3]}


def test_one_dependency_threshold() -> None:
    assert ranking.DEFAULT_THRESHOLD == P_BELOW_THRESHOLD
    assert ranking.RankingOptions().threshold == P_BELOW_THRESHOLD


def test_a_tumour_suppressor_is_never_a_selective_dependency() -> None:
    table = contrast_lineage(_draws(MEANS), "pancreas").set_index("gene")
    tp53 = table.loc["TP53"]
    assert tp53["p_stronger"] > 0.99 and tp53["p_dependency"] == 0.0 and tp53["p_selective"] == 0.0
    assert tp53["mean_in_lineage"] == pytest.approx(0.19, abs=0.02)
    myc = table.loc["MYC"]
    assert myc["p_stronger"] > 0.99 and myc["p_selective"] < 0.05
    listed = selective_list(table.reset_index(), 0.5)
    assert "TP53" not in set(listed["gene"]) and "MYC" not in set(listed["gene"])
    text = sentences.describe_selective("TP53", "pancreas", p_dependency=tp53["p_dependency"],
                                        p_stronger=tp53["p_stronger"], mean_in_lineage=tp53["mean_in_lineage"])
    assert text.startswith("TP53 is not a dependency in pancreas (mean effect +0.19)")
    assert "less positive there" in text and "stronger dependency" not in text


def test_a_selective_dependency_is_listed_ranked_and_worded_with_both_probabilities() -> None:
    table = contrast_lineage(_draws(MEANS), "colorectal")
    assert table["gene"].iloc[0] == "KRAS"  # ranked by the joint probability
    kras = table.iloc[0]
    assert kras["p_dependency"] > 0.99 and kras["p_stronger"] > 0.99 and kras["p_selective"] > 0.99
    plk1 = table.set_index("gene").loc["PLK1"]
    assert plk1["p_dependency"] > 0.99 and 0.3 < plk1["p_stronger"] < 0.7  # equally strong everywhere
    assert plk1["p_selective"] <= min(plk1["p_dependency"], plk1["p_stronger"])
    listed = selective_list(table, 0.9)
    assert listed["gene"].tolist() == ["KRAS"]
    assert listed.attrs["expected_fdp"] == pytest.approx(1.0 - kras["p_selective"])
    assert sentences.contrast_sentences(listed) == [
        "KRAS is a dependency in colorectal (P > 0.99) and stronger there than in the other lineages (P > 0.99)"]


def test_joint_probability_is_not_the_product() -> None:
    # within a draw, the effect in L and its distance to the others move together: a lineage-wide shift
    rng = np.random.default_rng(3)
    shift = rng.normal(0, 0.5, 2000)
    x = np.stack([np.full(2000, 0.0), np.full(2000, 0.0), -0.5 + shift], axis=-1)[None, :, None, :]
    da = xr.DataArray(x.astype(np.float32), dims=("chain", "draw", "gene", "lineage"),
                      coords={"gene": ["G"], "lineage": LINEAGES})
    row = contrast_lineage(da, "pancreas").iloc[0]
    assert row["p_selective"] == pytest.approx(np.mean((-0.5 + shift < -0.5) & (-0.5 + shift < 0)), abs=1e-6)
    # here every draw that is a dependency is also stronger: the joint is P(dependency), the product far below
    assert row["p_selective"] == row["p_dependency"]
    assert row["p_selective"] - row["p_dependency"] * row["p_stronger"] > 0.05


def test_a_positive_threshold_is_refused_for_contrasts() -> None:
    with pytest.raises(AnalysisError, match="must be 0 or below"):
        contrast_lineage(_draws(MEANS), "pancreas", threshold=0.2)
    with pytest.raises(AnalysisError, match="minimum P"):
        selective_list(contrast_lineage(_draws(MEANS), "pancreas"), 0.0)


def test_a_gene_with_a_positive_mean_is_never_listed_even_at_threshold_zero() -> None:
    means = {"A": [0.5, 0.5, 0.02], "B": [0.0, 0.0, -1.0]}
    table = contrast_lineage(_draws(means, sd=0.3), "pancreas", threshold=0.0)
    a = table.set_index("gene").loc["A"]
    assert a["mean_in_lineage"] > 0 and a["p_selective"] > 0.3
    assert selective_list(table, 0.3)["gene"].tolist() == ["B"]


def test_rank_genes_reports_lfsr_and_p_not_dependency() -> None:
    rng = np.random.default_rng(1)
    values = np.stack([rng.normal(-1.0, 0.5, 1000), rng.normal(0.1, 0.5, 1000)], axis=-1)[None].astype(np.float32)
    da = xr.DataArray(values, dims=("chain", "draw", "gene"), coords={"gene": ["KRAS", "TP53"]})
    table = rank_genes(da).set_index("gene")
    for gene, j in (("KRAS", 0), ("TP53", 1)):
        v = values[0, :, j]
        assert table.loc[gene, "lfsr"] == min(np.mean(v >= 0), np.mean(v <= 0))
        assert table.loc[gene, "p_not_dependency"] == pytest.approx(1.0 - np.mean(v < -0.5))
    assert table.loc["KRAS", "lfsr"] < table.loc["KRAS", "p_not_dependency"]
    assert tuple(table.reset_index().columns) == ranking.RANKING_COLUMNS


def test_expected_false_discovery_is_the_mean_error_probability() -> None:
    assert expected_false_discovery([0.0, 0.1, 0.2]) == pytest.approx(0.1)
    assert expected_false_discovery(pd.Series([], dtype=float)) == 0.0
    with pytest.raises(AnalysisError, match="between 0 and 1"):
        expected_false_discovery([0.2, 1.5])
    text = sentences.describe_list_error(20, 0.05, "dependencies")
    assert "5.0%" in text and "about 1.0 of them" in text
    few = sentences.describe_list_error(6, 0.001, "dependencies")  # never "about 0.0 of them"
    assert "fewer than one of them is expected to be false (0.01 on average)" in few and "0.0 of them" not in few
    assert "empty" in sentences.describe_list_error(0, 0.0)


def test_every_column_has_a_human_label_and_the_terms_are_in_the_glossary() -> None:
    labels = glossary.ranking_labels(threshold=-0.5, hdi_prob=0.89, top_k=10, lineage="colorectal")
    assert set(ranking.RANKING_COLUMNS) | set(contrasts.CONTRAST_COLUMNS) - {"lineage", "versus"} <= set(labels)
    assert labels["p_selective"] == "P(selective dependency)" and labels["hdi_low"] == "89% low"
    for term in ("lfsr", "P(dependency)", "selective dependency", "expected FDP", "dependency"):
        assert term in glossary.GLOSSARY


def _verdict(level: Verdict) -> verdict.FitVerdict:
    return verdict.FitVerdict(level=level, headline=verdict.HEADLINES[level])


def test_loo_never_recommends_a_flagged_fit_silently() -> None:
    table = pd.DataFrame({"fit": ["gene_rna", "gene"], "rank": [0, 1], "elpd_loo": [-100.0, -140.0],
                          "se": [5.0, 5.0], "p_loo": [10.0, 5.0], "elpd_diff": [0.0, 40.0], "dse": [0.0, 6.0],
                          "weight": [0.9, 0.1], "share_bad_k": [0.0, 0.0]})
    text = sentences.describe_loo(table, {"gene_rna": _verdict(Verdict.DO_NOT_TRUST), "gene": _verdict(Verdict.CONVERGED)})
    assert "did not pass its diagnostics (do not trust this fit yet)" in text[0]
    assert "of the fits that passed, gene predicts best" in text[0]
    both_bad = sentences.describe_loo(table, {"gene_rna": _verdict(Verdict.LOOK_CLOSER),
                                              "gene": _verdict(Verdict.DO_NOT_TRUST)})
    assert "none of the compared fits passed" in both_bad[0] and "did not pass" in both_bad[1]
    fine = sentences.describe_loo(table, {"gene_rna": _verdict(Verdict.CONVERGED), "gene": _verdict(Verdict.CONVERGED)})
    assert fine[0] == "gene_rna predicts held-out readings best (ELPD -100.0 ± 5.0)."
    with pytest.raises(AnalysisError, match="no verdict given for gene"):
        sentences.describe_loo(table, {"gene_rna": _verdict(Verdict.CONVERGED)})


def _manifest(genes: list[str], lineages: list[str], cell_lines: list[str], *, lineage_level: bool = True,
              cell_line_var: bool = False) -> FitManifest:
    request = {"data_fingerprint": "a" * 64, "model": "m", "model_version": "1",
               "selection": {"genes": "all", "lineages": lineages, "cell_lines": "all"}}
    posterior = {"gene_effect": {"dims": ["gene"], "shape": [len(genes)], "dtype": "float32"}}
    if cell_line_var:
        posterior["cell_line_effect"] = {"dims": ["cell_line"], "shape": [len(cell_lines)], "dtype": "float32"}
    return FitManifest.model_validate({
        "fit_id": "a" * 64, "model": "m", "request": request, "genes": genes, "lineages": lineages,
        "cell_lines": cell_lines, "groups": {"posterior": posterior},
        "roles": {"gene_effect": "gene_effect", "gene_lineage_effect": "gene_lineage_effect" if lineage_level else None},
    })


def test_truth_of_the_whole_screen_is_the_truth_table() -> None:
    sim = simulate_screen(8, 24, 4, seed=5)
    t = sim.truth
    cells = t[t.parameter == "cell_line_effect"]["cell_line"].tolist()
    genes = t[t.parameter == "gene_effect"]["gene"].tolist()
    lins = t[t.parameter == "lineage_effect"]["lineage"].tolist()
    for cell_line_var in (False, True):
        m = _manifest(genes, lins, cells, cell_line_var=cell_line_var)
        seen = recovery.truth_for_fit(t, m, "gene_effect", "gene")
        pd.testing.assert_series_equal(seen.sort_index(), truth_values(t, "gene_effect", "gene").sort_index(),
                                       check_names=False, atol=1e-9)
    # the flagship keeps lineage shifts apart: its gene × lineage truth is the table's
    flagship = _manifest(genes, lins, cells, cell_line_var=True)
    gl = recovery.truth_for_fit(t, flagship, "gene_lineage_effect", "lineage", gene=genes[0])
    table = truth_values(t, "gene_lineage_effect", "lineage", gene=genes[0])
    pd.testing.assert_series_equal(gl.sort_index(), table.sort_index(), check_names=False, atol=1e-9)
    # gene_lineage has no lineage shift: its gene × lineage mean carries it (as tests/fitting/test_recovery adds it)
    shift = truth_values(t, "lineage_effect", "lineage")
    plain = recovery.truth_for_fit(t, _manifest(genes, lins, cells), "gene_lineage_effect", "lineage", gene=genes[0])
    pd.testing.assert_series_equal(plain.sort_index(), (table + shift).sort_index(), check_names=False, atol=1e-9)


def test_truth_of_a_subset_averages_what_the_fit_saw() -> None:
    sim = simulate_screen(8, 24, 4, seed=5)
    t = sim.truth
    lins = ["colorectal", "blood"]
    cl = t[(t.parameter == "cell_line_effect") & t.lineage.isin(lins)]
    cells = cl["cell_line"].tolist()[1:]  # one cell line left out too
    genes = t[t.parameter == "gene_effect"]["gene"].tolist()
    seen = recovery.truth_for_fit(t, _manifest(genes, lins, cells), "gene_effect", "gene")
    gc = t[(t.parameter == "gene_cell_line_effect") & t.cell_line.isin(cells)]
    shift = cl.set_index("cell_line")["value"]
    gc = gc.assign(v=gc["value"].to_numpy() + shift.loc[gc["cell_line"]].to_numpy())
    expected = gc.groupby(["gene", "lineage"])["v"].mean().groupby("gene").mean()  # sgRNA effects sum to zero
    pd.testing.assert_series_equal(seen.sort_index(), expected.sort_index(), check_names=False, atol=1e-9)
    # a model without a gene × lineage level averages cell lines, each counting once
    flat = recovery.truth_for_fit(t, _manifest(genes, lins, cells, lineage_level=False), "gene_effect", "gene")
    pd.testing.assert_series_equal(flat.sort_index(), gc.groupby("gene")["v"].mean().sort_index(),
                                   check_names=False, atol=1e-9)
    assert recovery.truth_for_fit(None, _manifest(genes, lins, cells), "gene_effect", "gene").empty
    # a gene-only model stores no lineage or cell-line labels: the request's selection says what it saw
    bare = _manifest(genes, [], [], lineage_level=False)
    bare = bare.model_copy(update={"request": bare.request.model_copy(
        update={"selection": {"genes": "all", "lineages": lins, "cell_lines": cells}})})
    pd.testing.assert_series_equal(recovery.truth_for_fit(t, bare, "gene_effect", "gene").sort_index(),
                                   gc.groupby("gene")["v"].mean().sort_index(), check_names=False, atol=1e-9)


def test_recovery_problems_flag_the_issue_case() -> None:
    rec = {"n": 8, "inside_outer": 0.5, "inside_inner": 0.25, "rmse": 0.2}
    problems = sentences.recovery_problems(rec, 0.5, 0.89)
    assert len(problems) == 1 and problems[0].startswith("Only 4 of 8 true values lie inside the 89% intervals")
    assert sentences.recovery_problems({"n": 30, "inside_outer": 27 / 30, "inside_inner": 15 / 30, "rmse": 0.1},
                                       0.5, 0.89) == []
