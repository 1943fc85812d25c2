"""Which of two genes is the stronger dependency: every pair of a set, or every gene against a reference.

Pure functions over posterior draws (see ``draws``). Differences are effect_a − effect_b; their
intervals are highest-density intervals, as ``arviz.hdi`` computes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from model_store.stats import HDI_PROB, hdi_sorted
from speclet_core.analysis.draws import (
    check_genes,
    gene_labels,
    gene_means,
    iter_gene_blocks,
    label_index,
    load_samples,
    prepare_draws,
    show_labels,
)
from speclet_core.analysis.ranking import ranking_options
from speclet_core.analysis.sentences import describe_pair
from speclet_core.errors import AnalysisError

# A pairwise matrix grows as genes²; beyond this compare against a reference gene instead.
MAX_PAIRWISE_GENES = 500
MAX_PAIRWISE_SHOWN = 30  # a 30 × 30 matrix is the most a person reads cell by cell
REFERENCE_COLUMNS = ("gene", "reference", "p_stronger", "mean_diff", "hdi_low", "hdi_high")


@dataclass(frozen=True)
class PairwiseComparison:
    """Every pair of a chosen set of genes: ``p_less.loc[a, b]`` = P(effect_a < effect_b).

    ``mean_diff``, ``hdi_low`` and ``hdi_high`` describe ``effect_a - effect_b`` (row minus column);
    diagonals are NaN.
    """

    genes: tuple[str, ...]
    p_less: pd.DataFrame = field(repr=False)
    mean_diff: pd.DataFrame = field(repr=False)
    hdi_low: pd.DataFrame = field(repr=False)
    hdi_high: pd.DataFrame = field(repr=False)
    hdi_prob: float
    n_samples: int

    def to_long(self) -> pd.DataFrame:
        """One row per ordered pair (a ≠ b): gene_a, gene_b, p_a_stronger, mean_diff, hdi_low, hdi_high."""
        n = len(self.genes)
        a, b = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        keep = a != b
        names = np.asarray(self.genes, dtype=object)
        return pd.DataFrame(
            {
                "gene_a": names[a[keep]],
                "gene_b": names[b[keep]],
                "p_a_stronger": self.p_less.to_numpy()[keep],
                "mean_diff": self.mean_diff.to_numpy()[keep],
                "hdi_low": self.hdi_low.to_numpy()[keep],
                "hdi_high": self.hdi_high.to_numpy()[keep],
            }
        )

    def describe(self, gene_a: str, gene_b: str) -> str:
        """The plain-language sentence for one pair (see ``describe_pair``)."""
        for g in (gene_a, gene_b):
            if g not in self.p_less.index:
                raise AnalysisError(
                    f"gene {g!r} is not in this comparison; it has {show_labels(self.genes)}"
                )
        if gene_a == gene_b:
            raise AnalysisError(f"cannot compare {gene_a!r} with itself; pick two different genes")
        return describe_pair(gene_a, gene_b, float(self.p_less.loc[gene_a, gene_b]), n_samples=self.n_samples)


def compare_pairs(
    draws: xr.DataArray,
    genes: Sequence[str] | None = None,
    *,
    top_k: int | None = None,
    lineage: str | None = None,
    hdi_prob: float = HDI_PROB,
) -> PairwiseComparison:
    """P(effect_a < effect_b) and the HDI of effect_a − effect_b for every pair of a set of genes.

    Parameters
    ----------
    draws
        Gene-level effect (chain, draw, gene), or gene × lineage with ``lineage``.
    genes
        The genes to compare, in the order wanted; default all genes (at most ``MAX_PAIRWISE_GENES``).
    top_k
        Instead of ``genes``: the ``top_k`` genes with the most negative posterior mean (cheap;
        pass ``rank_genes(...)["gene"][:k]`` to use the expected rank instead).
    lineage
        Compare the effects within this lineage.
    hdi_prob
        Probability mass of the HDI of each difference.
    """
    opts = ranking_options(hdi_prob=hdi_prob)
    if genes is not None and top_k is not None:
        raise AnalysisError("give either genes or top_k, not both")
    da = prepare_draws(draws, lineage=lineage)
    all_genes = gene_labels(da)
    if genes is not None:
        chosen = check_genes(all_genes, genes)
    elif top_k is not None:
        if top_k < 2:
            raise AnalysisError(f"top_k must be at least 2 to compare pairs, got {top_k}")
        means = gene_means(da)
        chosen = [all_genes[i] for i in np.argsort(means, kind="stable")[:top_k]]
    else:
        chosen = list(all_genes)
    if len(chosen) < 2:
        raise AnalysisError(f"need at least two genes to compare, got {len(chosen)}: {show_labels(chosen)}")
    if len(chosen) > MAX_PAIRWISE_GENES:
        raise AnalysisError(
            f"{len(chosen):,} genes make {len(chosen) * (len(chosen) - 1) // 2:,} pairs; pick at most "
            f"{MAX_PAIRWISE_GENES} genes (e.g. the top-k of the ranking), or compare every gene against one "
            "reference gene with compare_to_reference"
        )
    if len(chosen) != len(all_genes) or chosen != list(all_genes):
        da = da.sel(gene=chosen)
    values_t = np.ascontiguousarray(load_samples(da).T)  # (gene, sample): each gene's draws contiguous
    return _pairwise(tuple(chosen), values_t, opts.hdi_prob)


def compare_to_reference(
    draws: xr.DataArray,
    reference: str,
    *,
    genes: Sequence[str] | None = None,
    lineage: str | None = None,
    hdi_prob: float = HDI_PROB,
) -> pd.DataFrame:
    """Every gene (or ``genes``) against one reference gene: P(effect_gene < effect_reference).

    Returns
    -------
    DataFrame
        gene, reference, p_stronger, mean_diff, hdi_low, hdi_high (of effect_gene − effect_reference),
        the reference itself left out, most likely stronger first.
    """
    opts = ranking_options(hdi_prob=hdi_prob)
    da = prepare_draws(draws, lineage=lineage)
    all_genes = gene_labels(da)
    label_index(all_genes, reference, "gene")
    chosen = list(all_genes) if genes is None else check_genes(all_genes, genes)
    chosen = [g for g in chosen if g != reference]
    if not chosen:
        raise AnalysisError(f"nothing to compare with {reference!r}: give at least one other gene")
    ref = load_samples(da.sel(gene=[reference]))[:, 0]
    sub = da.sel(gene=chosen)
    p = np.empty(len(chosen))
    mean = np.empty(len(chosen))
    low = np.empty(len(chosen))
    high = np.empty(len(chosen))
    for sl, block in iter_gene_blocks(sub):
        d = np.ascontiguousarray((block - ref[:, None]).T)
        p[sl] = (d < 0).mean(axis=1)
        mean[sl] = d.mean(axis=1, dtype=np.float64)
        d.sort(axis=1)
        low[sl], high[sl] = hdi_sorted(d, opts.hdi_prob)
    table = pd.DataFrame(
        {"gene": chosen, "reference": reference, "p_stronger": p, "mean_diff": mean, "hdi_low": low, "hdi_high": high}
    )
    table = table.sort_values(
        ["p_stronger", "mean_diff", "gene"], ascending=[False, True, True], kind="stable", ignore_index=True
    )
    table.attrs.update(hdi_prob=opts.hdi_prob, reference=reference, lineage=lineage, n_samples=len(ref))
    return table


def _pairwise(genes: tuple[str, ...], values_t: np.ndarray, prob: float) -> PairwiseComparison:
    """All pairs from a (gene, sample) float32 matrix, one row of the upper triangle at a time."""
    n, n_samples = values_t.shape
    inc = int(np.floor(prob * n_samples))
    n_intervals = n_samples - inc
    p_less = np.full((n, n), np.nan)
    mean = np.full((n, n), np.nan)
    low = np.full((n, n), np.nan)
    high = np.full((n, n), np.nan)
    for a in range(n - 1):
        d = values_t[a] - values_t[a + 1 :]  # effect_a - effect_b for every b after a
        p_less[a, a + 1 :] = (d < 0).mean(axis=1)
        p_less[a + 1 :, a] = (d > 0).mean(axis=1)
        m = d.mean(axis=1, dtype=np.float64)
        mean[a, a + 1 :] = m
        mean[a + 1 :, a] = -m
        d.sort(axis=1)
        widths = np.subtract(d[:, inc:], d[:, :n_intervals], dtype=np.float64)
        r = np.arange(d.shape[0])
        first = np.argmin(widths, axis=1)
        # b - a is the mirror image of a - b; arviz takes the first narrowest interval of the
        # mirrored draws, which is the last narrowest one here.
        last = n_intervals - 1 - np.argmin(widths[:, ::-1], axis=1)
        low[a, a + 1 :] = d[r, first]
        high[a, a + 1 :] = d[r, first + inc]
        low[a + 1 :, a] = -d[r, last + inc]
        high[a + 1 :, a] = -d[r, last]
    frame = lambda x: pd.DataFrame(x, index=list(genes), columns=list(genes))  # noqa: E731
    return PairwiseComparison(
        genes=genes, p_less=frame(p_less), mean_diff=frame(mean), hdi_low=frame(low), hdi_high=frame(high),
        hdi_prob=prob, n_samples=n_samples,
    )


def pairwise_cells(comparison: PairwiseComparison) -> pd.DataFrame:
    """Long table of a pairwise comparison for a heatmap, with the sentence of every pair."""
    long = comparison.to_long()
    long["sentence"] = [describe_pair(a, b, p, n_samples=comparison.n_samples)
                        for a, b, p in zip(long["gene_a"], long["gene_b"], long["p_a_stronger"], strict=True)]
    return long
