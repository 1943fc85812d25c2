"""Rankings of genes within every posterior draw.

Pure functions: an ``xarray.DataArray`` of draws in (see ``draws``), a DataFrame out. Nothing
here reads files or knows about models; lineage contrasts are in ``contrasts``, pairwise
comparisons in ``pairs``.

Conventions
-----------
- A *stronger dependency* is a more negative effect; rank 1 is the strongest dependency.
- Ranks are computed within every posterior draw; ties get the average of the ranks they span
  (float32 draws do tie now and then), so two genes with identical draws share a rank, and a
  shared first place (rank 1.5) does not count as rank ≤ 1 in P(top-k).
- Probabilities count strict inequalities: P(a < b) + P(b < a) = 1 − P(a = b).
- Intervals for effects and differences are highest-density intervals (HDI), computed by
  ``model_store.stats.hdi_sorted`` (as ``arviz.hdi`` does) on the float32 draws. Rank intervals
  are equal-tailed: the lower bound is the ``(1 - p) / 2`` quantile of the ranks rounded down to
  an observed rank, the upper the ``(1 + p) / 2`` quantile rounded up (``numpy.quantile``
  methods ``lower`` / ``higher``), so they cover at least ``p`` of the draws.
- A *dependency* is an effect below the one threshold ``DEFAULT_THRESHOLD`` (the store's
  ``P_BELOW_THRESHOLD``): ``p_below_threshold`` is P(dependency), ``p_not_dependency`` its complement,
  the error probability of calling the gene a dependency. ``lfsr`` (local false sign rate) is
  min(P(effect ≥ 0), P(effect ≤ 0)): the probability that the sign of the posterior mean is wrong.
  The expected false discovery proportion of a list is the mean of its genes' error probabilities
  (``expected_false_discovery``).
- Work is done in float32 and in blocks of genes or draws; no draws × genes × genes array is
  ever built. Independent blocks run on up to four threads; the numbers do not depend on the
  block sizes or the threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from model_store.stats import HDI_PROB, hdi_sorted
from model_store.summaries import P_BELOW_THRESHOLD
from speclet_core.analysis.draws import gene_labels, load_samples, prepare_draws, run_chunks
from speclet_core.errors import AnalysisError

# the one dependency threshold: the stored summaries' P(effect < threshold) uses the same number
DEFAULT_THRESHOLD = P_BELOW_THRESHOLD
DEFAULT_TOP_K = 10  # the most k is by default; ``default_top_k`` is the rule for a given number of genes
_RANK_CHUNK_DRAWS = 256
_STATS_CHUNK_GENES = 2048

RANKING_COLUMNS = (
    "gene", "mean", "sd", "hdi_low", "hdi_high", "expected_rank", "rank_low", "rank_high", "p_top_k",
    "p_below_threshold", "p_not_dependency", "lfsr",
)


def default_top_k(n_genes: int) -> int:
    """The default k of P(top-k) for a ranking of ``n_genes``: a quarter of them, at least 1, at most 10.

    With k at or above the number of genes every gene is in the top k in every draw (P = 1.00),
    which says nothing; a quarter keeps the column informative for small selections.
    """
    return min(DEFAULT_TOP_K, max(1, int(n_genes) // 4))


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
        HDI_PROB, gt=0.0, lt=1.0, description="Probability mass of the credible (HDI) and rank intervals."
    )


def rank_genes(
    draws: xr.DataArray,
    *,
    lineage: str | None = None,
    top_k: int = DEFAULT_TOP_K,
    threshold: float = DEFAULT_THRESHOLD,
    hdi_prob: float = HDI_PROB,
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
        expected_rank, rank_low, rank_high, p_top_k, p_below_threshold (P(dependency)),
        p_not_dependency (1 − P(dependency)) and lfsr. ``attrs`` holds the options.
    """
    opts = ranking_options(top_k=top_k, threshold=threshold, hdi_prob=hdi_prob)
    da = prepare_draws(draws, lineage=lineage)
    genes = gene_labels(da)
    values = load_samples(da)
    table = ranking_table(genes, values, opts)
    table["p_not_dependency"] = 1.0 - table["p_below_threshold"]
    table = table.sort_values(["expected_rank", "mean", "gene"], kind="stable", ignore_index=True)
    table = table[list(RANKING_COLUMNS)]
    table.attrs.update(opts.model_dump(), lineage=lineage, n_samples=values.shape[0], n_genes=len(genes))
    return table


def local_false_sign_rate(values: np.ndarray, axis: int = 1) -> np.ndarray:
    """min(P(x ≥ 0), P(x ≤ 0)) along the samples ``axis``: the chance the posterior mean's sign is wrong."""
    values = np.asarray(values)
    n = values.shape[axis]
    return np.minimum(np.count_nonzero(values >= 0, axis=axis), np.count_nonzero(values <= 0, axis=axis)) / n


def expected_false_discovery(error_probs: Sequence[float] | np.ndarray | pd.Series) -> float:
    """Expected false discovery proportion of a list: the mean of its genes' error probabilities.

    Each gene's error probability is the posterior probability that what the list claims of it
    is false (``p_not_dependency`` for a list of dependencies, ``p_not_selective`` for a list of
    lineage-selective ones). An empty list has no false discoveries (0.0).
    """
    p = np.asarray(error_probs, dtype=np.float64)
    if p.size and (not np.isfinite(p).all() or p.min() < 0.0 or p.max() > 1.0):
        raise AnalysisError("error probabilities must lie between 0 and 1; recompute the ranking table")
    return float(p.mean()) if p.size else 0.0


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
    run_chunks(lambda r0: _rank_rows(values, out, r0), range(0, n_rows, _RANK_CHUNK_DRAWS))
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


def ranking_table(
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
                     "p_below_threshold", "lfsr", *(extra_below or {}))
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
        cols["lfsr"][sl] = local_false_sign_rate(v)
        for name, cut in (extra_below or {}).items():
            cols[name][sl] = np.count_nonzero(v < cut, axis=1) / n_samples
        v.sort(axis=1)
        cols["hdi_low"][sl], cols["hdi_high"][sl] = hdi_sorted(v, opts.hdi_prob)
        r = np.ascontiguousarray(ranks[:, sl].T)
        cols["expected_rank"][sl] = r.mean(axis=1, dtype=np.float64)
        cols["p_top_k"][sl] = np.count_nonzero(r <= opts.top_k, axis=1) / n_samples
        r.sort(axis=1)
        cols["rank_low"][sl] = r[:, i_low]
        cols["rank_high"][sl] = r[:, i_high]

    run_chunks(summarise, range(0, n_genes, _STATS_CHUNK_GENES))
    return pd.DataFrame({"gene": list(genes), **cols})
