"""analysis.sentences: pairwise comparisons said in words."""

from __future__ import annotations

import numpy as np
from analysis_helpers import GENES, _draws

from speclet_core import charts
from speclet_core.analysis import pairs, sentences
from speclet_core.analysis.pairs import compare_pairs


def test_pairwise_and_contrast_sentences() -> None:
    da = _draws(np.array([-2.0, -1.0, 0.0, -1.02, 0.5]), 0.1, "gene", GENES)
    comparison = compare_pairs(da, ["KRAS", "BRAF", "TP53"])
    said = sentences.pairwise_sentences(comparison)
    assert said[0] == "KRAS is a stronger dependency than BRAF in all 800 posterior draws"
    assert said[1].startswith("no clear difference between BRAF and TP53")
    cells = pairs.pairwise_cells(comparison)
    assert len(cells) == 6 and cells.set_index(["gene_a", "gene_b"]).loc[("BRAF", "KRAS"), "p_a_stronger"] == 0.0
    spec = charts.pairwise_chart(cells, comparison.genes).to_dict()
    assert spec["layer"][0]["encoding"]["color"]["scale"]["domainMid"] == 0.5
