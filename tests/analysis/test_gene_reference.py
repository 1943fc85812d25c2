"""Reference genes and the gene view, against the posterior of a real small fit (``gene_fit_helpers``).

The planted screen has three common-essential genes at -1.5, three non-essential genes at 0, KRAS at
-1.0 with one guide that barely cuts: the check must pass, KRAS must be weaker than the median
common-essential gene, the weak guide (and only it) must be flagged, and swapping the two lists must
make the check fail.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from gene_fit_helpers import DISAGREEING_GENE, ESSENTIAL, NONESSENTIAL, stored_gene_fit

from model_store import ModelStore
from speclet_core.analysis import gene as gene_analysis
from speclet_core.analysis import reference
from speclet_core.analysis.ranking import rank_genes
from speclet_core.errors import AnalysisError


def test_shipped_lists_are_the_published_ones() -> None:
    refs = reference.load_reference_genes()
    assert len(refs.essential) == 684 and len(refs.nonessential) == 926
    assert {"RPL11", "POLR2A", "PCNA"} <= set(refs.essential) and {"ABCG8", "AICDA"} <= set(refs.nonessential)
    assert not set(refs.essential) & set(refs.nonessential)
    assert "BAGEL" in refs.source and "MIT" in refs.source


def test_reference_genes_match_through_the_label_matcher() -> None:
    found = reference.reference_in_fit(["rpl11", "KRAS", "Abcg8", "RPS6", "polr2a", "ACTL7A"])
    assert found.essential == ("polr2a", "rpl11", "RPS6")  # the lists' order, spelled as in the fit
    assert set(found.nonessential) == {"Abcg8", "ACTL7A"} and not found.enough
    assert "needs at least 3 of each" in reference.describe_missing_reference(found)


def test_guide_table_flags_the_side_that_weakens_the_gene() -> None:
    rng = np.random.default_rng(0)
    dev = np.stack([rng.normal(-0.6, 0.05, 400), rng.normal(0.3, 0.05, 400), rng.normal(0.3, 0.05, 400)], axis=-1)
    sg = xr.DataArray(dev.reshape(2, 200, 3), dims=("chain", "draw", "sgrna"), coords={"sgrna": ["a", "b", "c"]})
    # a gene that is not a dependency (+0.4): guide a alone pulls it down, so a disagrees
    positive = xr.DataArray(rng.normal(0.4, 0.05, (2, 200)), dims=("chain", "draw"))
    table = gene_analysis.guide_table(sg, positive)
    assert table.set_index("sgrna")["disagrees"].to_dict() == {"a": True, "b": False, "c": False}
    # a dependency (-1.0): guides b and c weaken it
    negative = xr.DataArray(rng.normal(-1.0, 0.05, (2, 200)), dims=("chain", "draw"))
    table = gene_analysis.guide_table(sg, negative)
    assert table.set_index("sgrna")["disagrees"].to_dict() == {"a": False, "b": True, "c": True}
    assert table["guide_effect"].round(1).tolist() == [-0.7, -0.7, -1.6]
    assert "2 of the 3 guides of X disagree with the others:" in gene_analysis.describe_guides(table, "X")[0]


def test_missing_level_notes_name_a_model_that_has_it() -> None:
    note = gene_analysis.missing_level_note("gene", "sgrna")
    assert "Model gene has no guide (sgRNA) term" in note and "sgrna_gene_lineage" in note
    levels = gene_analysis.gene_levels({"gene_effect": "gene_effect", "gene_lineage_effect": None,
                                        "gene_cell_line_effect": None}, ["gene_effect"])
    assert levels == {"lineage": None, "cell_line": None, "sgrna": None}


@pytest.fixture(scope="module")
def fit() -> object:
    data_dir, fit_id, weak = stored_gene_fit()
    stored = ModelStore(data_dir / "fits").get(fit_id)
    stored.weak = weak  # type: ignore[attr-defined]
    yield stored
    stored.close()


@pytest.mark.slow
def test_reference_check_and_comparison_on_a_real_fit(fit: object) -> None:
    found = reference.reference_in_fit(fit.manifest.genes)
    assert set(found.essential) == set(ESSENTIAL) and set(found.nonessential) == set(NONESSENTIAL)
    draws = fit.draws("gene_effect")
    check = reference.check_reference_separation(draws, found)
    assert check.passed and check.separation > 1.0 and check.separation_hdi[0] > 0.5
    assert check.median_essential < -1.0 and abs(check.median_nonessential) < 0.3
    # the separation is the median over genes within each draw, read straight from the posterior
    values = draws.stack(sample=("chain", "draw")).transpose("sample", "gene")
    per_draw = (values.sel(gene=list(NONESSENTIAL)).median("gene") - values.sel(gene=list(ESSENTIAL)).median("gene"))
    assert check.separation == pytest.approx(float(per_draw.mean()), abs=1e-5)
    # swapped lists: the "essential" genes are not below the "non-essential" ones: the check fails, with reasons
    swapped = reference.ReferenceInFit(essential=found.nonessential, nonessential=found.essential)
    failed = reference.check_reference_separation(draws, swapped)
    assert not failed.passed and len(failed.problems) == 3
    assert reference.describe_reference_check(failed).startswith("Reference-gene check failed")

    kras = reference.compare_with_essentials(draws, DISAGREEING_GENE, found)
    median = values.sel(gene=list(ESSENTIAL)).median("gene")
    assert kras.p_stronger == pytest.approx(float((values.sel(gene=DISAGREEING_GENE) < median).mean()))
    assert kras.p_stronger < 0.2 and not kras.gene_is_essential
    itself = reference.compare_with_essentials(draws, ESSENTIAL[0], found)
    assert itself.gene_is_essential and ESSENTIAL[0] not in itself.compared_with and len(itself.compared_with) == 3
    assert reference.compare_with_essentials(draws, NONESSENTIAL[0], found).p_stronger < 0.01
    # a median of fewer than MIN_REFERENCE_GENES common-essential genes is refused
    with pytest.raises(AnalysisError, match="at least 3"):
        reference.compare_with_essentials(
            draws, DISAGREEING_GENE, reference.ReferenceInFit(essential=ESSENTIAL[:2], nonessential=NONESSENTIAL))


@pytest.mark.slow
def test_gene_view_of_a_real_fit(fit: object) -> None:
    ranked = rank_genes(fit.draws("gene_effect"), top_k=2)
    guides = gene_analysis.guides_by_gene(fit)
    assert all(len(g) == 3 for g in guides.values()) and len(guides) == 9
    view = gene_analysis.gene_view(fit, DISAGREEING_GENE, ranking=ranked, guides=guides)
    # -1.0 planted, and the weak guide (+0.9 on one guide of three) lifts the gene's average to -0.7
    assert view.overall["mean"] == pytest.approx(-0.7, abs=0.2) and view.overall["p_dependency"] > 0.9
    assert view.overall_sentence.startswith("Knocking out KRAS lowers fitness")
    flagged = view.guides.loc[view.guides["disagrees"], "sgrna"].tolist()
    assert flagged == [fit.weak]
    assert view.guides.loc[0, "sgrna"] == fit.weak and view.guides.loc[0, "mean_deviation"] > 0.3
    assert any(f"guide {fit.weak} weakens" in s for s in view.guide_sentences)
    assert set(view.lineages["label"]) == set(fit.manifest.lineages)
    assert len(view.cell_lines) == len(fit.manifest.cell_lines)
    assert view.cell_lines["mean"].is_monotonic_increasing  # strongest first
    row = ranked.set_index("gene").loc[DISAGREEING_GENE]
    assert view.rank["expected_rank"] == pytest.approx(row["expected_rank"])
    assert "has expected rank" in view.rank_sentence
    assert view.reference_check is not None and view.reference_check.passed
    # the weak guide pulls KRAS towards 0, far from the common-essential genes at -1.5
    assert "is a weaker dependency than the median common-essential gene: it is as strong with P" in view.reference_sentence
    with pytest.raises(AnalysisError, match="did you mean"):
        gene_analysis.gene_view(fit, "KRSA", ranking=ranked, guides=guides)
