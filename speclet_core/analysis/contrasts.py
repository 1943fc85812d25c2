"""Lineage-selective dependencies: genes that are dependencies in one lineage and stronger there than elsewhere.

Pure functions over posterior draws (see ``draws``); the within-draw ranking of the difference
is ``ranking``'s. A stronger dependency is a more negative effect; a dependency is an effect
below the one threshold (``ranking.DEFAULT_THRESHOLD``).
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import pandas as pd
import xarray as xr

from model_store.stats import HDI_PROB
from speclet_core.analysis.draws import (
    count_samples,
    gene_labels,
    hdi_columns,
    iter_gene_blocks,
    label_index,
    prepare_draws,
    show_labels,
)
from speclet_core.analysis.ranking import (
    DEFAULT_THRESHOLD,
    DEFAULT_TOP_K,
    expected_false_discovery,
    local_false_sign_rate,
    ranking_options,
    ranking_table,
)
from speclet_core.errors import AnalysisError

CONTRAST_COLUMNS = (
    "gene", "lineage", "versus", "mean_in_lineage", "hdi_low_in_lineage", "hdi_high_in_lineage", "mean_versus",
    "p_dependency", "p_stronger", "p_selective", "p_not_selective", "lfsr", "mean_diff", "sd_diff", "hdi_low",
    "hdi_high", "p_strongest", "expected_rank", "rank_low", "rank_high", "p_top_k",
)
# a gene is listed as a selective dependency from this P(selective) on, unless the user picks another cut
DEFAULT_LIST_PROB = 0.9


class ContrastOrder(StrEnum):
    """How a lineage-contrast table is sorted."""

    PROBABILITY = "probability"  # P(selective dependency), then the effect in the lineage
    DIFFERENCE = "difference"  # posterior mean difference, most negative first


def contrast_lineage(
    draws: xr.DataArray,
    lineage: str,
    *,
    versus: str | None = None,
    top_k: int = DEFAULT_TOP_K,
    threshold: float = DEFAULT_THRESHOLD,
    hdi_prob: float = HDI_PROB,
    order: ContrastOrder | str = ContrastOrder.PROBABILITY,
) -> pd.DataFrame:
    """Lineage-selective dependencies of ``lineage``, as a biologist means them.

    A gene is a *selective dependency* of lineage L in a posterior draw when it is a dependency
    in L (its effect there is below ``threshold``, the one dependency threshold) **and** its effect
    in L is below its effect elsewhere. "Elsewhere" is the unweighted mean over the other lineages
    (each lineage counts once, whatever its number of cell lines), or the single lineage ``versus``.
    A gene that is less positive in L than elsewhere but not a dependency in L (a tumour
    suppressor, say) has a low P(selective) however sure the difference is.

    Parameters
    ----------
    draws
        Gene × lineage effect, dims (chain, draw, gene, lineage), at least two lineages.
    lineage
        The lineage whose selective dependencies are wanted.
    versus
        Compare against this one lineage instead of the mean of the others.
    top_k, threshold, hdi_prob
        See ``RankingOptions``; ``threshold`` (≤ 0: a dependency is a negative effect) defines a
        dependency in the lineage; the ranks and P(top-k) are those of the difference.
    order
        ``probability``: by P(selective), then by the effect in the lineage; ``difference``: most
        negative mean difference first.

    Returns
    -------
    DataFrame
        gene, lineage, versus; mean_in_lineage with its HDI (hdi_low_in_lineage, hdi_high_in_lineage);
        mean_versus; p_dependency = P(effect in L < threshold); p_stronger = P(effect in L < effect
        elsewhere); p_selective = P(both, in the same draw) and p_not_selective = 1 − p_selective (the
        error probability of listing the gene); lfsr of the effect in L; mean_diff, sd_diff, hdi_low,
        hdi_high (the difference in L minus elsewhere); p_strongest = P(the effect in L is below the
        effect in every other lineage; NaN with ``versus``); the within-draw ranking of the difference:
        expected_rank, rank_low, rank_high, p_top_k.
    """
    opts = ranking_options(top_k=top_k, threshold=threshold, hdi_prob=hdi_prob)
    if opts.threshold > 0:
        raise AnalysisError(
            f"the dependency threshold must be 0 or below (a dependency is a negative effect), got {opts.threshold:g}; "
            f"use e.g. {DEFAULT_THRESHOLD:g}"
        )
    try:
        order = ContrastOrder(order)
    except ValueError:
        raise AnalysisError(
            f"unknown contrast order {order!r}; expected one of {', '.join(o.value for o in ContrastOrder)}"
        ) from None
    da = prepare_draws(draws, keep_lineage=True)
    labels = [str(x) for x in da["lineage"].to_numpy()]
    if len(labels) < 2:
        raise AnalysisError(
            f"a lineage contrast needs at least two lineages; these draws have {show_labels(labels)}; "
            "fit the model to a selection with several lineages"
        )
    li = label_index(labels, lineage, "lineage")
    vi = None if versus is None else label_index(labels, versus, "lineage")
    if vi == li:
        raise AnalysisError(f"--versus {versus!r} is the contrasted lineage itself; pick a different lineage")
    genes = gene_labels(da)
    others = [i for i in range(len(labels)) if i != li]

    n_samples = count_samples(da)
    n_genes = len(genes)
    diff = np.empty((n_samples, n_genes), dtype=np.float32)
    # the effect in the lineage is summarised block by block: only the difference is kept whole (for its ranks)
    in_stats = {name: np.empty(n_genes) for name in ("mean", "low", "high", "p_dependency", "lfsr")}
    mean_vs = np.empty(n_genes)
    p_stronger = np.empty(n_genes)
    p_selective = np.empty(n_genes)
    p_strongest = np.full(n_genes, np.nan)
    for sl, block in iter_gene_blocks(da):
        x = block[:, :, li]
        if vi is None:
            rest = block[:, :, others]
            base = rest.mean(axis=2, dtype=np.float64).astype(np.float32)
            p_strongest[sl] = (x < rest.min(axis=2)).mean(axis=0)
        else:
            base = block[:, :, vi]
        stronger = x < base
        p_stronger[sl] = stronger.mean(axis=0)
        # the joint event, draw by draw: P(A and B), not P(A) · P(B)
        p_selective[sl] = (stronger & (x < opts.threshold)).mean(axis=0)
        np.subtract(x, base, out=diff[:, sl])
        in_stats["mean"][sl] = x.mean(axis=0, dtype=np.float64)
        in_stats["low"][sl], in_stats["high"][sl] = hdi_columns(x, opts.hdi_prob)
        in_stats["p_dependency"][sl] = np.count_nonzero(x < opts.threshold, axis=0) / n_samples
        in_stats["lfsr"][sl] = local_false_sign_rate(x, axis=0)
        mean_vs[sl] = base.mean(axis=0, dtype=np.float64)

    table = ranking_table(genes, diff, opts)
    table = table.rename(columns={"mean": "mean_diff", "sd": "sd_diff"})
    table["lineage"] = labels[li]
    table["versus"] = "mean of other lineages" if vi is None else labels[vi]
    table["mean_in_lineage"] = in_stats["mean"]
    table["hdi_low_in_lineage"] = in_stats["low"]
    table["hdi_high_in_lineage"] = in_stats["high"]
    table["mean_versus"] = mean_vs
    table["p_dependency"] = in_stats["p_dependency"]
    table["lfsr"] = in_stats["lfsr"]
    table["p_stronger"] = p_stronger
    table["p_selective"] = p_selective
    table["p_not_selective"] = 1.0 - p_selective
    table["p_strongest"] = p_strongest
    table = table[list(CONTRAST_COLUMNS)]
    if order is ContrastOrder.PROBABILITY:
        table = table.sort_values(
            ["p_selective", "mean_in_lineage", "gene"], ascending=[False, True, True], kind="stable",
            ignore_index=True,
        )
    else:
        table = table.sort_values(["mean_diff", "gene"], kind="stable", ignore_index=True)
    table.attrs.update(
        opts.model_dump(), lineage=labels[li], versus=None if vi is None else labels[vi], order=order.value,
        n_samples=n_samples, n_genes=n_genes,
    )
    return table


def selective_list(table: pd.DataFrame, min_prob: float = DEFAULT_LIST_PROB) -> pd.DataFrame:
    """The genes a contrast table lists as selective dependencies: P(selective) ≥ ``min_prob``.

    A gene whose posterior mean effect in the lineage is not negative is never listed, whatever
    its probabilities (it is not a dependency there). The table keeps its order and ``attrs``,
    plus ``min_prob`` and ``expected_fdp`` (the mean of ``p_not_selective`` over the listed genes).
    """
    return probability_list(table, "p_selective", "mean_in_lineage", "p_not_selective", min_prob, "P(selective)")


def probability_list(table: pd.DataFrame, prob: str, mean: str, error: str, min_prob: float, what: str) -> pd.DataFrame:
    """The rows with ``prob`` ≥ ``min_prob`` and a negative ``mean`` (never a gene that is not a dependency), in
    order; ``attrs`` gains ``min_prob`` and ``expected_fdp`` (the mean of ``error`` over the listed rows)."""
    try:
        min_prob = float(min_prob)
    except (TypeError, ValueError):
        raise AnalysisError(f"the minimum {what} must be a number, got {min_prob!r}") from None
    if not 0.0 < min_prob <= 1.0:
        raise AnalysisError(f"the minimum {what} must be above 0 and at most 1, got {min_prob:g}")
    keep = (table[prob] >= min_prob) & (table[mean] < 0)
    out = table[keep].reset_index(drop=True)
    out.attrs.update(table.attrs, min_prob=min_prob, expected_fdp=expected_false_discovery(out[error]))
    return out
