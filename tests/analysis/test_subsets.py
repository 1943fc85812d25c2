"""Which genes a page shows of many: the search over every label, the top-N rule and the caption saying it."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from speclet_core.analysis import subsets
from speclet_core.analysis.forest import Pick
from speclet_core.analysis.heatmap import MAX_HEATMAP_CELLS, default_heatmap_genes

GENES = ["KRAS", "HRAS", "NRAS", "RASA1", "KRASP1", "MYC", "C18orf54", "HLA-A"]


def test_search_puts_the_exact_name_first_then_prefixes_then_the_rest() -> None:
    found = subsets.search_labels(GENES, "kras")
    assert found.matches == ("KRAS", "KRASP1") and found.n_matches == 2 and not found.truncated
    found = subsets.search_labels(GENES, " ras")
    assert found.matches == ("RASA1", "HRAS", "KRAS", "KRASP1", "NRAS")  # prefix, then inside, each alphabetical
    assert subsets.search_labels(GENES, "").matches == () and subsets.search_labels(GENES, "ZZZ").n_matches == 0
    assert subsets.search_labels(GENES, "hla-").matches == ("HLA-A",)  # not a pattern: '-' and '.' are plain text
    assert subsets.search_labels(GENES, "A.").n_matches == 0


def test_search_over_18000_genes_is_fast_and_bounded() -> None:
    genes = [f"G{i:05d}" for i in range(18_000)]
    t = time.perf_counter()
    found = subsets.search_labels(genes, "G1")
    assert time.perf_counter() - t < 0.5
    assert len(found.matches) == subsets.SEARCH_LIMIT and found.n_matches == 8_000 and found.truncated  # G10000…G17999
    assert found.matches[0] == "G10000"


def test_top_genes_follow_the_ranking_rule_and_the_caption_says_it() -> None:
    summary = pd.DataFrame({"gene": [f"G{i}" for i in range(10)], "mean": np.linspace(0.5, -0.4, 10)})
    assert subsets.top_genes(summary, 3) == ["G9", "G8", "G7"]  # most negative first: the strongest dependencies
    assert subsets.top_genes(summary, 3, page=1) == ["G6", "G5", "G4"]
    assert subsets.top_genes(summary, 2, how=Pick.WEAKEST) == ["G0", "G1"]
    text = subsets.describe_subset(3, 18_000)
    assert text == f"the top 3 of 18,000 genes by {subsets.RANKING_RULE}"
    assert subsets.describe_subset(3, 18_000, page=1) == f"genes 4–6 of 18,000 by {subsets.RANKING_RULE}"
    assert subsets.describe_subset(10, 10).startswith("all 10 genes")
    assert subsets.describe_subset(2, 50, how="chosen") == "2 chosen of 50 genes"


@pytest.mark.parametrize("columns", [1, 12, 40, 1000, 18_000])
def test_the_default_heatmap_stays_within_its_cell_bound(columns: int) -> None:
    n = default_heatmap_genes(columns)
    assert 25 <= n <= 50 and (n * columns <= MAX_HEATMAP_CELLS or n == 25)
    assert default_heatmap_genes(40) == 50
