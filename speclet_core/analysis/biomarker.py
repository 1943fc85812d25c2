"""Biomarker-dependent dependencies: genes that are dependencies in marked cell lines and stronger there.

Pure functions over the posterior of a ``gene_biomarker`` fit (``speclet_core.models.biomarker``).
The rule is the lineage-selective one (``contrasts.contrast_lineage``) with "marked cell lines" in
place of "the lineage": a gene is a *stronger dependency when marked* in a posterior draw when it is
a dependency in marked cell lines (``gene_marked_effect`` below the one threshold,
``ranking.DEFAULT_THRESHOLD``) **and** its marker contrast (``marker_effect``: marked minus unmarked
cell lines of the same lineage) is negative. P(stronger dependency when marked) is the share of
draws in which both hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from model_store.stats import HDI_PROB
from speclet_core.analysis.contrasts import probability_list
from speclet_core.analysis.draws import gene_labels, hdi_columns, load_samples, prepare_draws
from speclet_core.analysis.ranking import (
    DEFAULT_THRESHOLD,
    DEFAULT_TOP_K,
    local_false_sign_rate,
    ranking_options,
    ranking_table,
)
from speclet_core.analysis.sentences import CLEAR
from speclet_core.analysis.sentences import _p as p_text  # the one way a probability is written
from speclet_core.errors import AnalysisError

DIFFERENCE = "marker_effect"
MARKED = "gene_marked_effect"
UNMARKED = "gene_unmarked_effect"
CELL_LINE_MARKED = "cell_line_marked"
BIOMARKER_VARIABLES = (DIFFERENCE, MARKED, UNMARKED)

BIOMARKER_COLUMNS = (
    "gene", "biomarker", "mean_diff", "sd_diff", "hdi_low", "hdi_high", "p_stronger_when_marked", "p_not_stronger",
    "p_diff_negative", "p_dependency_marked", "mean_marked", "hdi_low_marked", "hdi_high_marked", "mean_unmarked",
    "lfsr", "expected_rank", "rank_low", "rank_high", "p_top_k",
)


def contrast_biomarker(
    posterior: Mapping[str, xr.DataArray] | xr.Dataset,
    *,
    biomarker: str = "the marker",
    top_k: int = DEFAULT_TOP_K,
    threshold: float = DEFAULT_THRESHOLD,
    hdi_prob: float = HDI_PROB,
) -> pd.DataFrame:
    """Rank genes by P(stronger dependency when marked).

    Parameters
    ----------
    posterior
        Holds ``marker_effect``, ``gene_marked_effect`` and ``gene_unmarked_effect`` draws
        (chain, draw, gene): a ``gene_biomarker`` fit's posterior.
    biomarker
        How the marker was chosen (``is_mutated:KRAS``), for the table and its sentences.
    top_k, threshold, hdi_prob
        See ``RankingOptions``; ``threshold`` (≤ 0) defines a dependency in marked cell lines.

    Returns
    -------
    DataFrame
        One row per gene, highest P(stronger dependency when marked) first (then the most negative
        difference): mean_diff, sd_diff, hdi_low, hdi_high (marked minus unmarked within lineage);
        p_stronger_when_marked = P(difference < 0 and marked effect < threshold, in the same draw);
        p_not_stronger its complement (the error probability of listing the gene); p_diff_negative;
        p_dependency_marked; mean_marked with its HDI, mean_unmarked; lfsr of the difference; and
        the within-draw ranks of the difference (expected_rank, rank_low, rank_high, p_top_k).
    """
    opts = ranking_options(top_k=top_k, threshold=threshold, hdi_prob=hdi_prob)
    if opts.threshold > 0:
        raise AnalysisError(
            f"the dependency threshold must be 0 or below (a dependency is a negative effect), got {opts.threshold:g}; "
            f"use e.g. {DEFAULT_THRESHOLD:g}"
        )
    missing = [v for v in BIOMARKER_VARIABLES if v not in posterior]
    if missing:
        raise AnalysisError(
            f"the fit has no {', '.join(missing)}: a biomarker ranking needs a gene_biomarker fit "
            "(fit --model gene_biomarker --biomarker COLUMN)"
        )
    das = {v: prepare_draws(posterior[v]) for v in BIOMARKER_VARIABLES}
    genes = gene_labels(das[DIFFERENCE])
    diff, marked, unmarked = (load_samples(das[v]) for v in BIOMARKER_VARIABLES)
    table = ranking_table(genes, diff, opts).rename(columns={"mean": "mean_diff", "sd": "sd_diff"})
    negative = diff < 0
    both = negative & (marked < opts.threshold)
    table["biomarker"] = biomarker
    table["p_diff_negative"] = negative.mean(axis=0)
    table["p_stronger_when_marked"] = both.mean(axis=0)
    table["p_not_stronger"] = 1.0 - table["p_stronger_when_marked"]
    table["p_dependency_marked"] = (marked < opts.threshold).mean(axis=0)
    table["mean_marked"] = marked.mean(axis=0, dtype=np.float64)
    table["hdi_low_marked"], table["hdi_high_marked"] = hdi_columns(marked, opts.hdi_prob)
    table["mean_unmarked"] = unmarked.mean(axis=0, dtype=np.float64)
    table["lfsr"] = local_false_sign_rate(diff, axis=0)
    table = table[list(BIOMARKER_COLUMNS)].sort_values(
        ["p_stronger_when_marked", "mean_diff", "gene"], ascending=[False, True, True], kind="stable",
        ignore_index=True,
    )
    table.attrs.update(opts.model_dump(), biomarker=biomarker, n_samples=diff.shape[0], n_genes=len(genes))
    return table


def marked_cell_lines(posterior: Mapping[str, xr.DataArray] | xr.Dataset) -> tuple[list[str], list[str]]:
    """The marked and unmarked cell lines of a ``gene_biomarker`` fit (from its ``cell_line_marked``)."""
    if CELL_LINE_MARKED not in posterior:
        raise AnalysisError("the fit has no cell_line_marked: it is not a gene_biomarker fit")
    da = posterior[CELL_LINE_MARKED]
    flags = da.isel({d: 0 for d in da.dims if d != "cell_line"}).to_numpy() > 0.5
    labels = [str(c) for c in da["cell_line"].to_numpy()]
    return [c for c, f in zip(labels, flags, strict=True) if f], [c for c, f in zip(labels, flags, strict=True) if not f]


def biomarker_list(table: pd.DataFrame, min_prob: float = 0.9) -> pd.DataFrame:
    """The genes listed as stronger dependencies when marked: P ≥ ``min_prob`` and a negative mean marked effect.

    ``attrs`` gains ``min_prob`` and ``expected_fdp`` (the mean of the listed genes' ``p_not_stronger``).
    """
    return probability_list(table, "p_stronger_when_marked", "mean_marked", "p_not_stronger", min_prob,
                            "probability")


def describe_biomarker(row: Any, biomarker: str, *, threshold: float = DEFAULT_THRESHOLD, clear: float = CLEAR) -> str:
    """One sentence about a row of ``contrast_biomarker``: is the gene a stronger dependency when marked?

    >>> r = dict(gene="KRAS", mean_diff=-1.1, hdi_low=-1.5, hdi_high=-0.7, p_stronger_when_marked=0.97,
    ...          p_diff_negative=0.99, p_dependency_marked=0.98, mean_marked=-1.4, mean_unmarked=-0.3)
    >>> describe_biomarker(r, "is_mutated:KRAS")
    'KRAS is a stronger dependency in cell lines with is_mutated:KRAS (P = 0.97): its effect is 1.10 lower there than in unmarked cell lines of the same lineage (89% HDI -1.50 to -0.70; marked -1.40, unmarked -0.30)'

    A gene is called a stronger dependency when marked only when P(both) ≥ ``clear`` and its mean
    marked effect is negative; a more negative effect in marked lines that is not a dependency there
    is said to be "lower" only, never "a dependency".
    """
    r = row if isinstance(row, Mapping) else row._asdict()
    gene = r["gene"]
    p_both, p_neg, p_dep = (float(r[k]) for k in ("p_stronger_when_marked", "p_diff_negative", "p_dependency_marked"))
    for p in (p_both, p_neg, p_dep):
        if not 0.0 <= p <= 1.0:
            raise AnalysisError(f"expected probabilities between 0 and 1 for {gene}, got {p}")
    diff, low, high = float(r["mean_diff"]), float(r["hdi_low"]), float(r["hdi_high"])
    size = (f"({round(100 * HDI_PROB)}% HDI {low:.2f} to {high:.2f}; marked {float(r['mean_marked']):.2f}, "
            f"unmarked {float(r['mean_unmarked']):.2f})")
    marked = f"cell lines with {biomarker}"
    if p_both >= clear and float(r["mean_marked"]) < 0:
        return (f"{gene} is a stronger dependency in {marked} ({p_text(p_both)}): its effect is {abs(diff):.2f} "
                f"lower there than in unmarked cell lines of the same lineage {size}")
    if p_neg >= clear:
        return (f"{gene} has a lower effect in {marked} ({p_text(p_neg)}, by {abs(diff):.2f} {size}) but is not "
                f"clearly a dependency there (P(effect < {threshold:g}) = {p_dep:.2f})")
    if 1.0 - p_neg >= clear:
        return f"{gene} is a weaker dependency (higher effect) in {marked} ({p_text(1.0 - p_neg)}) {size}"
    return f"no clear difference for {gene} between {marked} and unmarked ones (lower when marked: {p_text(p_neg)}) {size}"


def biomarker_sentences(table: pd.DataFrame, *, limit: int = 5) -> list[str]:
    """Sentences for the first rows of a biomarker table."""
    biomarker = str(table.attrs.get("biomarker", "the marker"))
    threshold = float(table.attrs.get("threshold", DEFAULT_THRESHOLD))
    return [describe_biomarker(r, biomarker, threshold=threshold) for r in table.head(limit).itertuples()]


def biomarker_forest_rows(
    posterior: Mapping[str, xr.DataArray] | xr.Dataset, genes: list[str], *, inner: float = 0.5,
    outer: float = HDI_PROB,
) -> pd.DataFrame:
    """Forest-plot rows (``charts.forest_chart``) of the marker contrast of ``genes``, in the order given."""
    da = prepare_draws(posterior[DIFFERENCE])
    labels = gene_labels(da)
    missing = [g for g in genes if g not in labels]
    if missing:
        raise AnalysisError(f"genes not in the fit: {', '.join(missing[:5])}")
    values = load_samples(da)[:, [labels.index(g) for g in genes]]
    in_low, in_high = hdi_columns(values, inner)
    out_low, out_high = hdi_columns(values, outer)
    rows = pd.DataFrame({
        "label": genes, "order": np.arange(len(genes)), "lineage": "marked minus unmarked",
        "mean": values.mean(axis=0, dtype=np.float64), "sd": values.std(axis=0, dtype=np.float64),
        "inner_low": in_low, "inner_high": in_high, "outer_low": out_low, "outer_high": out_high,
    })
    rows.attrs.update(inner=inner, outer=outer)
    return rows


def describe_common_shift(mu_marker: xr.DataArray, biomarker: str, *, hdi_prob: float = HDI_PROB) -> str:
    """A sentence on ``mu_marker``, the marker difference of the typical gene (shared by every gene's difference).

    A shift shared by all genes may be biology (marked cell lines depend more on everything) or cell
    lines that deplete every guide more; with few genes the two cannot be told apart, so it is said.
    """
    values = np.asarray(mu_marker.values, dtype=np.float64).ravel()
    if values.size == 0:
        raise AnalysisError("mu_marker has no draws")
    low, high = hdi_columns(values[:, None].astype(np.float32), hdi_prob)
    mean, p_neg = float(values.mean()), float((values < 0).mean())
    where = f"cell lines with {biomarker}"
    interval = f"{round(100 * hdi_prob)}% HDI {float(low[0]):.2f} to {float(high[0]):.2f}"
    if max(p_neg, 1 - p_neg) < CLEAR:
        return f"The typical gene's effect hardly differs in {where} ({mean:+.2f}, {interval}), so each gene's difference is its own."
    direction = "lower" if mean < 0 else "higher"
    return (f"The typical gene's effect is {abs(mean):.2f} {direction} in {where} ({interval}; "
            f"{p_text(p_neg if mean < 0 else 1 - p_neg)}). Every gene's difference includes this shared part, which "
            "may be biology or marked cell lines that deplete every guide more; compare a gene's difference with it.")
