"""Rankings, pairwise differences and lineage contrasts over posterior draws.

Pure functions: an ``xarray.DataArray`` of draws in (dims ``chain``, ``draw`` — or an already
stacked ``sample`` — plus ``gene`` and, for gene × lineage effects, ``lineage``), a DataFrame
or a small frozen record out. Nothing here reads files or knows about models.

Conventions
-----------
- A *stronger dependency* is a more negative effect; rank 1 is the strongest dependency.
- Ranks are computed within every posterior draw; ties get the average of the ranks they span
  (float32 draws do tie now and then), so two genes with identical draws share a rank, and a
  shared first place (rank 1.5) does not count as rank ≤ 1 in P(top-k).
- Probabilities count strict inequalities: P(a < b) + P(b < a) = 1 − P(a = b).
- Intervals for effects and differences are highest-density intervals (HDI), computed exactly
  as ``arviz.hdi`` does on the float32 draws. Rank intervals are equal-tailed: the lower bound
  is the ``(1 - p) / 2`` quantile of the ranks rounded down to an observed rank, the upper the
  ``(1 + p) / 2`` quantile rounded up (``numpy.quantile`` methods ``lower`` / ``higher``), so
  they cover at least ``p`` of the draws.
- Work is done in float32 and in blocks of genes or draws, so 18,000 genes × 4,000 draws stay
  well under 2 GB; no draws × genes × genes array is ever built. Independent blocks run on up
  to four threads; the numbers do not depend on the block sizes or the threads.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from speclet_core.errors import AnalysisError

DEFAULT_HDI_PROB = 0.89
DEFAULT_THRESHOLD = -0.5
DEFAULT_TOP_K = 10
# A pairwise matrix grows as genes²; beyond this compare against a reference gene instead.
MAX_PAIRWISE_GENES = 500
SAMPLE_DIMS = ("chain", "draw", "sample")
# Elements per block read from a (possibly lazy) posterior: 16 M float32 = 64 MB.
_BLOCK_ELEMENTS = 16_000_000
_RANK_CHUNK_DRAWS = 256
_STATS_CHUNK_GENES = 2048
_MAX_LABELS_SHOWN = 12
# Chunks are independent; numpy's sorts and ufuncs release the GIL, so threads use the cores.
_THREADS = min(4, os.cpu_count() or 1)

RANKING_COLUMNS = (
    "gene", "mean", "sd", "hdi_low", "hdi_high", "expected_rank", "rank_low", "rank_high", "p_top_k",
    "p_below_threshold",
)
CONTRAST_COLUMNS = (
    "gene", "lineage", "versus", "mean_in_lineage", "mean_versus", "mean_diff", "sd_diff", "hdi_low", "hdi_high",
    "p_selective", "p_strongest", "expected_rank", "rank_low", "rank_high", "p_top_k", "p_below_threshold",
)
REFERENCE_COLUMNS = ("gene", "reference", "p_stronger", "mean_diff", "hdi_low", "hdi_high")


class RankingOptions(BaseModel):
    """Settings shared by every ranking; the descriptions double as widget help text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    top_k: int = Field(
        DEFAULT_TOP_K, ge=1, description="P(top-k) is the share of posterior draws in which the gene ranks k or better."
    )
    threshold: float = Field(
        DEFAULT_THRESHOLD,
        allow_inf_nan=False,
        description="P(effect < threshold): how sure we are the knockout lowers fitness at least this much (log2 FC).",
    )
    hdi_prob: float = Field(
        DEFAULT_HDI_PROB, gt=0.0, lt=1.0, description="Probability mass of the credible (HDI) and rank intervals."
    )


class ContrastOrder(StrEnum):
    """How a lineage-contrast table is sorted."""

    PROBABILITY = "probability"  # P(more negative in the lineage), then the size of the difference
    DIFFERENCE = "difference"  # posterior mean difference, most negative first


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
                    f"gene {g!r} is not in this comparison; it has {_show_labels(self.genes)}"
                )
        if gene_a == gene_b:
            raise AnalysisError(f"cannot compare {gene_a!r} with itself; pick two different genes")
        return describe_pair(gene_a, gene_b, float(self.p_less.loc[gene_a, gene_b]), n_samples=self.n_samples)


# --------------------------------------------------------------------------- public functions


def rank_genes(
    draws: xr.DataArray,
    *,
    lineage: str | None = None,
    top_k: int = DEFAULT_TOP_K,
    threshold: float = DEFAULT_THRESHOLD,
    hdi_prob: float = DEFAULT_HDI_PROB,
) -> pd.DataFrame:
    """Rank genes by their effect within every posterior draw.

    Parameters
    ----------
    draws
        Gene-level effect, dims (chain, draw, gene); or a gene × lineage effect with ``lineage``.
    lineage
        Rank within this lineage (required when ``draws`` has a ``lineage`` dim).
    top_k, threshold, hdi_prob
        See ``RankingOptions``.

    Returns
    -------
    DataFrame
        One row per gene, strongest dependency first: gene, mean, sd, hdi_low, hdi_high,
        expected_rank, rank_low, rank_high, p_top_k, p_below_threshold. ``attrs`` holds the options.
    """
    opts = ranking_options(top_k=top_k, threshold=threshold, hdi_prob=hdi_prob)
    da = _prepare(draws, lineage=lineage)
    genes = _gene_labels(da)
    values = _load_samples(da)
    table = _ranking_table(genes, values, opts)
    table = table.sort_values(["expected_rank", "mean", "gene"], kind="stable", ignore_index=True)
    table.attrs.update(opts.model_dump(), lineage=lineage, n_samples=values.shape[0], n_genes=len(genes))
    return table


def contrast_lineage(
    draws: xr.DataArray,
    lineage: str,
    *,
    versus: str | None = None,
    top_k: int = DEFAULT_TOP_K,
    threshold: float = DEFAULT_THRESHOLD,
    hdi_prob: float = DEFAULT_HDI_PROB,
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
    da = _prepare(draws, keep_lineage=True)
    labels = [str(x) for x in da["lineage"].to_numpy()]
    if len(labels) < 2:
        raise AnalysisError(
            f"a lineage contrast needs at least two lineages; these draws have {_show_labels(labels)}; "
            "fit the model to a selection with several lineages"
        )
    li = _label_index(labels, lineage, "lineage")
    vi = None if versus is None else _label_index(labels, versus, "lineage")
    if vi == li:
        raise AnalysisError(f"--versus {versus!r} is the contrasted lineage itself; pick a different lineage")
    genes = _gene_labels(da)
    others = [i for i in range(len(labels)) if i != li]

    n_samples = _n_samples(da)
    diff = np.empty((n_samples, len(genes)), dtype=np.float32)
    mean_in = np.empty(len(genes))
    mean_vs = np.empty(len(genes))
    p_strongest = np.full(len(genes), np.nan)
    for sl, block in _iter_gene_blocks(da):
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

    table = _ranking_table(genes, diff, opts, extra_below={"p_selective": 0.0})
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


def compare_pairs(
    draws: xr.DataArray,
    genes: Sequence[str] | None = None,
    *,
    top_k: int | None = None,
    lineage: str | None = None,
    hdi_prob: float = DEFAULT_HDI_PROB,
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
    da = _prepare(draws, lineage=lineage)
    all_genes = _gene_labels(da)
    if genes is not None:
        chosen = _check_genes(all_genes, genes)
    elif top_k is not None:
        if top_k < 2:
            raise AnalysisError(f"top_k must be at least 2 to compare pairs, got {top_k}")
        means = _gene_means(da)
        chosen = [all_genes[i] for i in np.argsort(means, kind="stable")[:top_k]]
    else:
        chosen = list(all_genes)
    if len(chosen) < 2:
        raise AnalysisError(f"need at least two genes to compare, got {len(chosen)}: {_show_labels(chosen)}")
    if len(chosen) > MAX_PAIRWISE_GENES:
        raise AnalysisError(
            f"{len(chosen):,} genes make {len(chosen) * (len(chosen) - 1) // 2:,} pairs; pick at most "
            f"{MAX_PAIRWISE_GENES} genes (e.g. the top-k of the ranking), or compare every gene against one "
            "reference gene with compare_to_reference"
        )
    if len(chosen) != len(all_genes) or chosen != list(all_genes):
        da = da.sel(gene=chosen)
    values_t = np.ascontiguousarray(_load_samples(da).T)  # (gene, sample): each gene's draws contiguous
    return _pairwise(tuple(chosen), values_t, opts.hdi_prob)


def compare_to_reference(
    draws: xr.DataArray,
    reference: str,
    *,
    genes: Sequence[str] | None = None,
    lineage: str | None = None,
    hdi_prob: float = DEFAULT_HDI_PROB,
) -> pd.DataFrame:
    """Every gene (or ``genes``) against one reference gene: P(effect_gene < effect_reference).

    Returns
    -------
    DataFrame
        gene, reference, p_stronger, mean_diff, hdi_low, hdi_high (of effect_gene − effect_reference),
        the reference itself left out, most likely stronger first.
    """
    opts = ranking_options(hdi_prob=hdi_prob)
    da = _prepare(draws, lineage=lineage)
    all_genes = _gene_labels(da)
    _label_index(all_genes, reference, "gene")
    chosen = list(all_genes) if genes is None else _check_genes(all_genes, genes)
    chosen = [g for g in chosen if g != reference]
    if not chosen:
        raise AnalysisError(f"nothing to compare with {reference!r}: give at least one other gene")
    ref = _load_samples(da.sel(gene=[reference]))[:, 0]
    sub = da.sel(gene=chosen)
    p = np.empty(len(chosen))
    mean = np.empty(len(chosen))
    low = np.empty(len(chosen))
    high = np.empty(len(chosen))
    for sl, block in _iter_gene_blocks(sub):
        d = np.ascontiguousarray((block - ref[:, None]).T)
        p[sl] = (d < 0).mean(axis=1)
        mean[sl] = d.mean(axis=1, dtype=np.float64)
        d.sort(axis=1)
        low[sl], high[sl] = _hdi_sorted(d, opts.hdi_prob)
    table = pd.DataFrame(
        {"gene": chosen, "reference": reference, "p_stronger": p, "mean_diff": mean, "hdi_low": low, "hdi_high": high}
    )
    table = table.sort_values(
        ["p_stronger", "mean_diff", "gene"], ascending=[False, True, True], kind="stable", ignore_index=True
    )
    table.attrs.update(hdi_prob=opts.hdi_prob, reference=reference, lineage=lineage, n_samples=len(ref))
    return table


def describe_pair(gene_a: str, gene_b: str, p: float, *, n_samples: int | None = None, clear: float = 0.75) -> str:
    """A sentence for P(effect_a < effect_b) = ``p``.

    >>> describe_pair("KRAS", "BRAF", 0.97)
    'KRAS is a stronger dependency than BRAF in 97% of posterior draws'

    The stronger gene is named first; when neither is stronger in at least ``clear`` of the draws
    the sentence says there is no clear difference. Probabilities above 99.9% read "more than
    99.9%" ("all N" when every one of ``n_samples`` draws agrees).
    """
    p = _check_probability(p)
    if not 0.5 <= clear < 1.0:
        raise AnalysisError(f"clear must be in [0.5, 1), got {clear}")
    if max(p, 1.0 - p) < clear:
        return f"no clear difference between {gene_a} and {gene_b} ({gene_a} stronger in {_percent(p)} of posterior draws)"
    strong, weak, q = (gene_a, gene_b, p) if p >= 0.5 else (gene_b, gene_a, 1.0 - p)
    return f"{strong} is a stronger dependency than {weak} in {_share(q, n_samples)}"


def describe_contrast(
    gene: str, lineage: str, p: float, *, versus: str | None = None, n_samples: int | None = None, clear: float = 0.75
) -> str:
    """A sentence for P(effect of ``gene`` in ``lineage`` < effect elsewhere) = ``p``.

    >>> describe_contrast("SOX10", "skin", 0.97)
    'SOX10 is a stronger dependency in skin than in the other lineages in 97% of posterior draws'
    """
    p = _check_probability(p)
    if not 0.5 <= clear < 1.0:
        raise AnalysisError(f"clear must be in [0.5, 1), got {clear}")
    other = "the other lineages" if versus is None else versus
    if max(p, 1.0 - p) < clear:
        return (
            f"no clear difference for {gene} between {lineage} and {other} "
            f"(stronger in {lineage} in {_percent(p)} of posterior draws)"
        )
    word, q = ("stronger", p) if p >= 0.5 else ("weaker", 1.0 - p)
    return f"{gene} is a {word} dependency in {lineage} than in {other} in {_share(q, n_samples)}"


def compute_hdi(values: np.ndarray, hdi_prob: float = DEFAULT_HDI_PROB, *, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Highest-density interval along ``axis``, vectorised; the same numbers as ``arviz.hdi`` per slice.

    Returns
    -------
    (low, high)
        Arrays of ``values``' shape without ``axis``.
    """
    opts = ranking_options(hdi_prob=hdi_prob)
    arr = np.moveaxis(np.asarray(values), axis, -1)
    if arr.shape[-1] == 0:
        raise AnalysisError("cannot compute an HDI of zero draws")
    flat = np.sort(arr.reshape(-1, arr.shape[-1]), axis=1)
    low, high = _hdi_sorted(flat, opts.hdi_prob)
    return low.reshape(arr.shape[:-1]), high.reshape(arr.shape[:-1])


def rank_within_samples(values: np.ndarray) -> np.ndarray:
    """Ranks of the columns within each row (1 = most negative), ties averaged; float32, same shape.

    ``values`` is (sample, gene), compared at float32 precision; it is processed in chunks of
    rows so the sort keys never cover the whole array.
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise AnalysisError(f"expected a (sample, gene) array, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise AnalysisError("cannot rank NaN or infinite values; the draws are damaged, refit")
    n_rows, n_cols = values.shape
    out = np.empty((n_rows, n_cols), dtype=np.float32)
    _run_chunks(lambda r0: _rank_rows(values, out, r0), range(0, n_rows, _RANK_CHUNK_DRAWS))
    return out


def _rank_rows(values: np.ndarray, out: np.ndarray, r0: int) -> None:
    """Rank rows ``r0 : r0 + _RANK_CHUNK_DRAWS`` of ``values`` into ``out``."""
    block = values[r0 : r0 + _RANK_CHUNK_DRAWS]
    n_cols = block.shape[1]
    # One uint64 sort instead of argsort + sort: the high half is the value's bits mapped
    # so unsigned order is float order, the low half the column, so sorting yields the
    # argsort (ties by column) and exposes ties as equal high halves.
    keys = _orderable_bits(block).astype(np.uint64)
    keys <<= np.uint64(32)
    keys |= np.arange(n_cols, dtype=np.uint64)
    keys.sort(axis=1)
    halves = keys.view(np.uint32).reshape(block.shape[0], n_cols, 2)
    low_half, high_half = (0, 1) if np.little_endian else (1, 0)
    order = halves[:, :, low_half]
    sorted_bits = halves[:, :, high_half]
    tie_rows, tie_cols = np.nonzero(sorted_bits[:, 1:] == sorted_bits[:, :-1])
    ranks = np.broadcast_to(np.arange(1, n_cols + 1, dtype=np.float32), block.shape)
    if tie_rows.size:
        ranks = ranks.copy()
        _average_ties(ranks, tie_rows, tie_cols)
    rows = np.arange(r0, r0 + block.shape[0])[:, None]
    out[rows, order] = ranks


def ranking_options(**kwargs: Any) -> RankingOptions:
    """``RankingOptions`` from keyword values, or an ``AnalysisError`` naming every bad one."""
    try:
        return RankingOptions(**kwargs)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors())
        raise AnalysisError(f"invalid ranking option: {problems}") from None


# --------------------------------------------------------------------------- internals


def _show_labels(labels: Sequence[str]) -> str:
    shown = ", ".join(repr(x) for x in list(labels)[:_MAX_LABELS_SHOWN])
    more = f" and {len(labels) - _MAX_LABELS_SHOWN} more" if len(labels) > _MAX_LABELS_SHOWN else ""
    return shown + more if labels else "(none)"


def _label_index(labels: Sequence[str], label: str, what: str) -> int:
    try:
        return list(labels).index(str(label))
    except ValueError:
        raise AnalysisError(f"{what} {label!r} is not in these draws; they have {_show_labels(labels)}") from None


def _check_genes(all_genes: Sequence[str], genes: Sequence[str]) -> list[str]:
    if isinstance(genes, str):
        genes = [genes]
    wanted = list(dict.fromkeys(str(g) for g in genes))
    known = set(all_genes)
    missing = [g for g in wanted if g not in known]
    if missing:
        raise AnalysisError(
            f"{len(missing)} gene{'s' if len(missing) != 1 else ''} not in these draws: {_show_labels(missing)}; "
            f"the fit has {len(all_genes):,} genes, e.g. {_show_labels(list(all_genes)[:5])}"
        )
    return wanted


def _prepare(draws: xr.DataArray, *, lineage: str | None = None, keep_lineage: bool = False) -> xr.DataArray:
    """Check dims, select the lineage, return dims (sample dims…, gene[, lineage])."""
    if not isinstance(draws, xr.DataArray):
        raise AnalysisError(f"expected posterior draws as an xarray.DataArray, got {type(draws).__name__}")
    name = draws.name or "draws"
    dims = tuple(str(d) for d in draws.dims)
    if "gene" not in dims:
        raise AnalysisError(
            f"{name} has dims {dims}, no 'gene' dim; pass the model's gene-level (or gene × lineage) effect"
        )
    sample_dims = [d for d in SAMPLE_DIMS if d in dims]
    if not sample_dims:
        raise AnalysisError(f"{name} has dims {dims}; expected 'chain' and 'draw' (or 'sample') dims of posterior draws")
    da = draws
    if "lineage" in dims and not keep_lineage:
        labels = [str(x) for x in da["lineage"].to_numpy()] if "lineage" in da.coords else []
        if lineage is None:
            raise AnalysisError(
                f"{name} is a gene × lineage effect; choose a lineage to rank within ({_show_labels(labels)}), "
                "or rank the gene-level effect"
            )
        da = da.isel(lineage=_label_index(labels, lineage, "lineage"))
    elif lineage is not None and "lineage" not in dims:
        raise AnalysisError(
            f"{name} has no 'lineage' dim (dims {dims}); ranking within lineage {lineage!r} needs the model's "
            "gene × lineage effect"
        )
    if keep_lineage and "lineage" not in dims:
        raise AnalysisError(f"{name} has no 'lineage' dim (dims {dims}); a lineage contrast needs a gene × lineage effect")
    rest = ["lineage"] if keep_lineage else []
    extra = [d for d in da.dims if d not in (*sample_dims, "gene", *rest)]
    if extra:
        raise AnalysisError(f"{name} has extra dims {tuple(extra)}; select a single label of each first")
    da = da.transpose(*sample_dims, "gene", *rest)
    if da.sizes["gene"] == 0 or _n_samples(da) == 0:
        raise AnalysisError(f"{name} is empty: {dict(da.sizes)}")
    return da


def _n_samples(da: xr.DataArray) -> int:
    return math.prod(da.sizes[d] for d in SAMPLE_DIMS if d in da.sizes)


def _gene_labels(da: xr.DataArray) -> list[str]:
    if "gene" not in da.coords:
        raise AnalysisError("the draws have no 'gene' coordinate; gene labels are needed to report results")
    genes = [str(g) for g in da["gene"].to_numpy()]
    if len(set(genes)) != len(genes):
        dupes = sorted({g for g in genes if genes.count(g) > 1}) if len(genes) < 5000 else ["(several)"]
        raise AnalysisError(f"gene labels repeat ({_show_labels(dupes)}); each gene must appear once")
    return genes


def _iter_gene_blocks(da: xr.DataArray) -> Iterator[tuple[slice, np.ndarray]]:
    """(gene slice, float32 array (sample, gene, *rest)) blocks, reading a lazy array piece by piece."""
    n_samples = _n_samples(da)
    rest = tuple(da.shape[da.dims.index("gene") + 1 :])
    per_gene = n_samples * math.prod(rest)
    step = max(1, _BLOCK_ELEMENTS // max(per_gene, 1))
    n_genes = da.sizes["gene"]
    for g0 in range(0, n_genes, step):
        sl = slice(g0, min(g0 + step, n_genes))
        raw = np.asarray(da.isel(gene=sl).to_numpy())
        block = raw.reshape(n_samples, sl.stop - sl.start, *rest).astype(np.float32, copy=False)
        if not np.isfinite(block).all():
            bad = np.flatnonzero(~np.isfinite(block).reshape(n_samples, sl.stop - sl.start, -1).all(axis=(0, 2)))
            gene = str(da["gene"].to_numpy()[g0 + bad[0]])
            raise AnalysisError(
                f"draws of gene {gene!r} contain NaN or infinite values; the fit is damaged or failed, refit it"
            )
        yield sl, block


def _load_samples(da: xr.DataArray) -> np.ndarray:
    """All draws as a float32 (sample, gene) matrix."""
    out = np.empty((_n_samples(da), da.sizes["gene"]), dtype=np.float32)
    for sl, block in _iter_gene_blocks(da):
        out[:, sl] = block
    return out


def _gene_means(da: xr.DataArray) -> np.ndarray:
    means = np.empty(da.sizes["gene"])
    for sl, block in _iter_gene_blocks(da):
        means[sl] = block.mean(axis=0, dtype=np.float64)
    return means


def _hdi_sorted(rows: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """HDI of each row of an already sorted (n, draws) array, as arviz computes it."""
    n = rows.shape[1]
    inc = int(np.floor(prob * n))
    n_intervals = n - inc
    widths = np.subtract(rows[:, inc:], rows[:, :n_intervals], dtype=np.float64)
    idx = np.argmin(widths, axis=1)
    r = np.arange(rows.shape[0])
    return rows[r, idx].astype(np.float64), rows[r, idx + inc].astype(np.float64)


def _orderable_bits(values: np.ndarray) -> np.ndarray:
    """uint32 whose unsigned order is the float32 order of ``values`` (−0.0 and +0.0 equal)."""
    bits = (np.asarray(values, dtype=np.float32) + np.float32(0.0)).view(np.uint32)
    # negative floats: flip every bit (larger magnitude → smaller); positive: set the sign bit
    return bits ^ ((-(bits >> np.uint32(31))) | np.uint32(0x80000000))


def _average_ties(ranks: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> None:
    """Give every run of equal sorted values the average of its ranks, in place.

    ``(rows[k], cols[k])`` says sorted position ``cols[k] + 1`` equals ``cols[k]`` in that row
    (row-major order, as ``np.nonzero`` returns them). Ties are few, so only they are touched.
    """
    continues = np.zeros(rows.size, dtype=bool)
    continues[1:] = (rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1] + 1)
    run = np.cumsum(~continues) - 1
    starts = np.flatnonzero(~continues)
    ends = np.append(starts[1:], rows.size) - 1
    # a run of ties j..k covers sorted positions j..k+1, i.e. ranks j+1..k+2
    average = ((cols[starts] + cols[ends] + 1) / 2 + 1).astype(np.float32)
    ranks[rows, cols] = average[run]
    ranks[rows, cols + 1] = average[run]


def _run_chunks(work: Callable[[int], None], starts: range) -> None:
    """Run ``work(start)`` for every chunk, on ``_THREADS`` threads (numpy's sorts release the GIL)."""
    if _THREADS <= 1 or len(starts) <= 1:
        for start in starts:
            work(start)
        return
    with ThreadPoolExecutor(max_workers=min(_THREADS, len(starts))) as pool:
        # list() re-raises the first error of any chunk
        list(pool.map(work, starts))


def _ranking_table(
    genes: Sequence[str], values: np.ndarray, opts: RankingOptions, extra_below: dict[str, float] | None = None
) -> pd.DataFrame:
    """Per-gene summary of a (sample, gene) float32 matrix and of its within-draw ranks."""
    n_samples, n_genes = values.shape
    ranks = rank_within_samples(values)
    tail = (1.0 - opts.hdi_prob) / 2.0
    i_low = int(np.floor(tail * (n_samples - 1)))
    i_high = int(np.ceil((1.0 - tail) * (n_samples - 1)))
    cols: dict[str, np.ndarray] = {
        name: np.empty(n_genes)
        for name in ("mean", "sd", "hdi_low", "hdi_high", "expected_rank", "rank_low", "rank_high", "p_top_k",
                     "p_below_threshold", *(extra_below or {}))
    }
    ddof = 1 if n_samples > 1 else 0

    def summarise(g0: int) -> None:
        sl = slice(g0, min(g0 + _STATS_CHUNK_GENES, n_genes))
        v = np.ascontiguousarray(values[:, sl].T)
        cols["mean"][sl] = v.mean(axis=1, dtype=np.float64)
        centred = v - cols["mean"][sl, None].astype(np.float32)
        centred *= centred
        # float32 sums are pairwise along contiguous rows: accurate enough, far faster than float64
        cols["sd"][sl] = np.sqrt(centred.sum(axis=1) / max(n_samples - ddof, 1))
        cols["p_below_threshold"][sl] = np.count_nonzero(v < opts.threshold, axis=1) / n_samples
        for name, cut in (extra_below or {}).items():
            cols[name][sl] = np.count_nonzero(v < cut, axis=1) / n_samples
        v.sort(axis=1)
        cols["hdi_low"][sl], cols["hdi_high"][sl] = _hdi_sorted(v, opts.hdi_prob)
        r = np.ascontiguousarray(ranks[:, sl].T)
        cols["expected_rank"][sl] = r.mean(axis=1, dtype=np.float64)
        cols["p_top_k"][sl] = np.count_nonzero(r <= opts.top_k, axis=1) / n_samples
        r.sort(axis=1)
        cols["rank_low"][sl] = r[:, i_low]
        cols["rank_high"][sl] = r[:, i_high]

    _run_chunks(summarise, range(0, n_genes, _STATS_CHUNK_GENES))
    return pd.DataFrame({"gene": list(genes), **cols})


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


def _check_probability(p: float) -> float:
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise AnalysisError(f"expected a probability between 0 and 1, got {p!r}") from None
    if not 0.0 <= p <= 1.0:
        raise AnalysisError(f"expected a probability between 0 and 1, got {p}")
    return p


def _percent(p: float) -> str:
    pct = 100.0 * p
    if pct > 99.9:
        return "more than 99.9%"
    if pct < 0.1 and pct > 0:
        return "less than 0.1%"
    if pct >= 99.0 or (0 < pct <= 1.0):
        return f"{pct:.1f}%"
    return f"{round(pct)}%"


def _share(q: float, n_samples: int | None) -> str:
    if n_samples and q == 1.0:
        return f"all {n_samples:,} posterior draws"
    return f"{_percent(q)} of posterior draws"
