"""Which genes a page shows when a fit has too many to show all (genome-wide: 18,000).

One rule orders genes for every page's default: the posterior mean of the gene-level effect, most
negative (the strongest dependency) first (``pick_labels``). Pages show the top N by that rule, a
page of N further down, or genes found by name (``search_labels``: never a list of every gene sent
to the browser), and say what they show (``describe_subset``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from speclet_core.analysis.forest import Pick, pick_labels

# What "top" means on every page (the order of ``pick_labels``): said in every "top N of M" caption.
RANKING_RULE = "posterior mean of the gene effect, strongest dependency first"
WEAKEST_RULE = "posterior mean of the gene effect, most positive first"
SEARCH_LIMIT = 50  # matches offered per search; a longer list is typed more precisely
OFFER_ALL_MAX = 200  # a list of labels this short is offered whole; a longer one is searched
TABLE_PAGE_ROWS = 100  # rows of a long table sent to the browser at once (a page; the CSV holds every row)


@dataclass(frozen=True)
class SearchResult:
    """Labels matching a search, best first (exact, then starting with it, then containing it), and their count."""

    matches: tuple[str, ...]
    n_matches: int

    @property
    def truncated(self) -> bool:
        return self.n_matches > len(self.matches)


def search_labels(labels: Sequence[str] | pd.Index, query: str, *, limit: int = SEARCH_LIMIT) -> SearchResult:
    """Labels containing ``query`` (case-insensitive), best first; every label is searched, at most ``limit`` kept.

    An empty query matches nothing (the page then offers its default genes instead).
    """
    q = str(query).strip().casefold()
    if not q:
        return SearchResult((), 0)
    index = pd.Index(labels, dtype=object).astype(str)
    folded = index.str.casefold()
    hit = folded.str.contains(q, regex=False)
    found = index[hit]
    if not len(found):
        return SearchResult((), 0)
    f = folded[hit]
    tier = (f != q).astype(int) + (~f.str.startswith(q)).astype(int)  # 0 exact, 1 prefix, 2 inside
    order = pd.DataFrame({"tier": tier, "label": found}).sort_values(["tier", "label"], kind="stable")
    return SearchResult(tuple(order["label"].head(limit)), int(hit.sum()))


def top_genes(summary: pd.DataFrame, n: int, *, how: Pick | str = Pick.STRONGEST, page: int = 0) -> list[str]:
    """The ``n`` genes of page ``page`` (0 = the first) of a gene summary (gene, mean) in the ranking rule's order."""
    return pick_labels(summary, "gene", how, n, page=page)


def describe_subset(n_shown: int, n_total: int, *, how: Pick | str = Pick.STRONGEST, page: int = 0,
                    per_page: int | None = None, what: str = "genes") -> str:
    """What a bounded view shows, e.g. 'the top 50 of 18,000 genes by posterior mean of the gene effect, …'."""
    how = Pick(how)
    if how is Pick.CHOSEN:
        return f"{n_shown:,} chosen of {n_total:,} {what}"
    if n_shown >= n_total:
        return f"all {n_total:,} {what}, ordered by {RANKING_RULE if how is Pick.STRONGEST else WEAKEST_RULE}"
    rule = RANKING_RULE if how is Pick.STRONGEST else WEAKEST_RULE
    step = per_page or n_shown
    if page <= 0:
        lead = "top" if how is Pick.STRONGEST else "bottom"
        return f"the {lead} {n_shown:,} of {n_total:,} {what} by {rule}"
    first = page * step + 1
    return f"{what} {first:,}–{first + n_shown - 1:,} of {n_total:,} by {rule}"

