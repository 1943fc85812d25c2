"""Lineage-selective dependencies: per gene, the effect in one lineage minus the effect elsewhere.

Pure functions over posterior draws (see ``draws``); the within-draw ranking of the difference
is ``ranking``'s. A stronger dependency is a more negative effect.
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
    iter_gene_blocks,
    label_index,
    prepare_draws,
    show_labels,
)
from speclet_core.analysis.ranking import DEFAULT_THRESHOLD, DEFAULT_TOP_K, ranking_options, ranking_table
from speclet_core.errors import AnalysisError

CONTRAST_COLUMNS = (
    "gene", "lineage", "versus", "mean_in_lineage", "mean_versus", "mean_diff", "sd_diff", "hdi_low", "hdi_high",
    "p_selective", "p_strongest", "expected_rank", "rank_low", "rank_high", "p_top_k", "p_below_threshold",
)


class ContrastOrder(StrEnum):
    """How a lineage-contrast table is sorted."""

    PROBABILITY = "probability"  # P(more negative in the lineage), then the size of the difference
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
    """Lineage-selective dependencies: per gene, the effect in ``lineage`` minus the effect elsewhere.

    "Elsewhere" is the unweighted mean over the other lineages (each lineage counts once,
    whatever its number of cell lines), or the single lineage ``versus``.

    Parameters
    ----------
    draws
        Gene × lineage effect, dims (chain, draw, gene, lineage), at least two lineages.
    lineage
        The lineage whose selective dependencies are wanted.
    versus
        Compare against this one lineage instead of the mean of the others.
    top_k, threshold, hdi_prob
        See ``RankingOptions``; they apply to the difference (e.g. P(difference < -0.5)).
    order
        ``probability``: by P(difference < 0), then by the difference; ``difference``: most negative
        mean difference first.

    Returns
    -------
    DataFrame
        gene, lineage, versus, mean_in_lineage, mean_versus, mean_diff, sd_diff, hdi_low, hdi_high
        (HDI of the difference), p_selective = P(difference < 0), p_strongest = P(the effect in
        ``lineage`` is below the effect in every other lineage; NaN with ``versus``), and the
        within-draw ranking of the difference: expected_rank, rank_low, rank_high, p_top_k,
        p_below_threshold.
    """
    opts = ranking_options(top_k=top_k, threshold=threshold, hdi_prob=hdi_prob)
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
    diff = np.empty((n_samples, len(genes)), dtype=np.float32)
    mean_in = np.empty(len(genes))
    mean_vs = np.empty(len(genes))
    p_strongest = np.full(len(genes), np.nan)
    for sl, block in iter_gene_blocks(da):
        x = block[:, :, li]
        if vi is None:
            rest = block[:, :, others]
            base = rest.mean(axis=2, dtype=np.float64).astype(np.float32)
            p_strongest[sl] = (x < rest.min(axis=2)).mean(axis=0)
        else:
            base = block[:, :, vi]
        np.subtract(x, base, out=diff[:, sl])
        mean_in[sl] = x.mean(axis=0, dtype=np.float64)
        mean_vs[sl] = base.mean(axis=0, dtype=np.float64)

    table = ranking_table(genes, diff, opts, extra_below={"p_selective": 0.0})
    table = table.rename(columns={"mean": "mean_diff", "sd": "sd_diff"})
    table["lineage"] = labels[li]
    table["versus"] = "mean of other lineages" if vi is None else labels[vi]
    table["mean_in_lineage"] = mean_in
    table["mean_versus"] = mean_vs
    table["p_strongest"] = p_strongest
    table = table[list(CONTRAST_COLUMNS)]
    if order is ContrastOrder.PROBABILITY:
        table = table.sort_values(
            ["p_selective", "mean_diff", "gene"], ascending=[False, True, True], kind="stable", ignore_index=True
        )
    else:
        table = table.sort_values(["mean_diff", "gene"], kind="stable", ignore_index=True)
    table.attrs.update(
        opts.model_dump(), lineage=labels[li], versus=None if vi is None else labels[vi], order=order.value,
        n_samples=n_samples, n_genes=len(genes),
    )
    return table
