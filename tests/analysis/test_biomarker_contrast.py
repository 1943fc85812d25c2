"""The biomarker contrast: P(stronger dependency when marked) is a joint probability within each draw, a gene that
is lower when marked but no dependency there is never called one, and the sentences say what the numbers say."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from speclet_core.analysis.biomarker import (
    BIOMARKER_COLUMNS,
    biomarker_forest_rows,
    biomarker_list,
    biomarker_sentences,
    contrast_biomarker,
    describe_biomarker,
    describe_common_shift,
    marked_cell_lines,
)
from speclet_core.errors import AnalysisError

GENES = ["KRAS", "TP53", "PLK1", "MYC"]
# marked effect, unmarked effect (posterior means); sd 0.1 around each
MARKED = np.array([-1.4, 0.2, -1.6, -0.45])
UNMARKED = np.array([-0.3, 0.6, -1.6, 0.1])


def _posterior(seed: int = 1) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    m = MARKED + rng.normal(0, 0.1, (2, 500, 4))
    u = UNMARKED + rng.normal(0, 0.1, (2, 500, 4))
    dims = ("chain", "draw", "gene")
    return xr.Dataset(
        {"gene_marked_effect": (dims, m), "gene_unmarked_effect": (dims, u), "marker_effect": (dims, m - u),
         "cell_line_marked": (("chain", "draw", "cell_line"), np.tile([1.0, 0.0, 1.0], (2, 500, 1))),
         "mu_marker": (("chain", "draw"), rng.normal(-0.3, 0.05, (2, 500)))},
        coords={"gene": GENES, "cell_line": ["ACH-000001", "ACH-000002", "ACH-000003"]},
    )


def test_joint_probability_and_order() -> None:
    post = _posterior()
    table = contrast_biomarker(post, biomarker="is_mutated:KRAS")
    assert tuple(table.columns) == BIOMARKER_COLUMNS
    assert table["gene"].iloc[0] == "KRAS"
    t = table.set_index("gene")
    # TP53: lower when marked for sure, but no dependency there: never "stronger dependency when marked"
    assert t.loc["TP53", "p_diff_negative"] > 0.99 and t.loc["TP53", "p_stronger_when_marked"] == 0.0
    # PLK1: a dependency everywhere, no difference: about half the draws lower
    assert 0.3 < t.loc["PLK1", "p_diff_negative"] < 0.7
    # MYC: the joint event, draw by draw, is not the product of the marginals
    diff = post["marker_effect"].sel(gene="MYC").values.ravel()
    marked = post["gene_marked_effect"].sel(gene="MYC").values.ravel()
    joint = np.mean((diff < 0) & (marked < -0.5))
    assert t.loc["MYC", "p_stronger_when_marked"] == pytest.approx(joint)
    assert abs(joint - np.mean(diff < 0) * np.mean(marked < -0.5)) < 0.2
    np.testing.assert_allclose(t["mean_diff"], (MARKED - UNMARKED)[[GENES.index(g) for g in t.index]], atol=0.03)
    assert (t["hdi_low"] < t["mean_diff"]).all() and (t["mean_diff"] < t["hdi_high"]).all()
    np.testing.assert_allclose(t["p_not_stronger"], 1 - t["p_stronger_when_marked"])


def test_bad_input_is_a_clear_error() -> None:
    post = _posterior()
    with pytest.raises(AnalysisError, match="must be 0 or below"):
        contrast_biomarker(post, threshold=0.2)
    with pytest.raises(AnalysisError, match="needs a gene_biomarker fit"):
        contrast_biomarker(post.drop_vars("marker_effect"))
    with pytest.raises(AnalysisError, match="at most 1"):
        biomarker_list(contrast_biomarker(post), 1.5)


def test_sentences_list_and_marked_cell_lines() -> None:
    post = _posterior()
    table = contrast_biomarker(post, biomarker="is_mutated:KRAS")
    listed = biomarker_list(table, 0.9)
    assert listed["gene"].tolist() == ["KRAS"]
    assert listed.attrs["expected_fdp"] == pytest.approx(listed["p_not_stronger"].mean())
    kras = biomarker_sentences(listed)[0]
    assert kras.startswith("KRAS is a stronger dependency in cell lines with is_mutated:KRAS (P > 0.99)")
    assert "1.10 lower there" in kras and "89% HDI" in kras
    tp53 = describe_biomarker(table.set_index("gene").loc["TP53"].to_dict() | {"gene": "TP53"}, "is_mutated:KRAS")
    assert "not clearly a dependency there" in tp53 and "stronger dependency" not in tp53
    plk1 = describe_biomarker(table.set_index("gene").loc["PLK1"].to_dict() | {"gene": "PLK1"}, "is_mutated:KRAS")
    assert plk1.startswith("no clear difference for PLK1")
    assert marked_cell_lines(post) == (["ACH-000001", "ACH-000003"], ["ACH-000002"])
    shift = describe_common_shift(post["mu_marker"], "is_mutated:KRAS")
    assert shift.startswith("The typical gene's effect is 0.30 lower in cell lines with is_mutated:KRAS")
    rows = biomarker_forest_rows(post, ["KRAS", "MYC"])
    assert rows["label"].tolist() == ["KRAS", "MYC"]
    assert (rows["outer_low"] <= rows["inner_low"]).all() and (rows["inner_high"] <= rows["outer_high"]).all()
