"""Posterior draws in, checked float arrays out: the block readers every analysis module shares.

Draws are an ``xarray.DataArray`` with sample dims (``chain``, ``draw`` — or an already stacked
``sample``) and labelled dims such as ``gene`` and ``lineage``. Large, possibly lazy, arrays are
read a block of genes at a time as float32, so 18,000 genes × 4,000 draws stay well under 2 GB.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import xarray as xr

from model_store.stats import hdi_sorted
from speclet_core.errors import AnalysisError

SAMPLE_DIMS = ("chain", "draw", "sample")
# Elements per block read from a (possibly lazy) posterior: 16 M float32 = 64 MB.
BLOCK_ELEMENTS = 16_000_000
MAX_LABELS_SHOWN = 12
# Chunks are independent; numpy's sorts and ufuncs release the GIL, so threads use the cores.
THREADS = min(4, os.cpu_count() or 1)


def sample_matrix(draws: xr.DataArray, along: str) -> tuple[np.ndarray, list[str]]:
    """(sample, label) float64 matrix of draws with one labelled dim besides the sample dims."""
    if not isinstance(draws, xr.DataArray):
        raise AnalysisError(f"expected posterior draws as an xarray.DataArray, got {type(draws).__name__}")
    name = draws.name or "draws"
    dims = [str(d) for d in draws.dims]
    sample_dims = [d for d in SAMPLE_DIMS if d in dims]
    if not sample_dims:
        raise AnalysisError(f"{name} has dims {dims}; expected posterior draws with 'chain' and 'draw' dims")
    if along not in dims:
        raise AnalysisError(f"{name} has no {along!r} dim (dims {dims}); pick a variable with that dimension")
    extra = [d for d in dims if d not in (*sample_dims, along)]
    if extra:
        raise AnalysisError(f"{name} has extra dims {extra}; select one label of each first (e.g. one gene)")
    da = draws.transpose(*sample_dims, along)
    values = np.asarray(da.values, dtype=np.float64).reshape(-1, da.sizes[along])
    if values.shape[0] == 0 or values.shape[1] == 0:
        raise AnalysisError(f"{name} is empty: {dict(da.sizes)}")
    if not np.isfinite(values).all():
        raise AnalysisError(f"{name} contains NaN or infinite draws; the fit is damaged or failed, refit it")
    labels = [str(x) for x in da[along].values] if along in da.coords else [str(i) for i in range(values.shape[1])]
    return values, labels


def show_labels(labels: Sequence[str]) -> str:
    shown = ", ".join(repr(x) for x in list(labels)[:MAX_LABELS_SHOWN])
    more = f" and {len(labels) - MAX_LABELS_SHOWN} more" if len(labels) > MAX_LABELS_SHOWN else ""
    return shown + more if labels else "(none)"


def label_index(labels: Sequence[str], label: str, what: str) -> int:
    try:
        return list(labels).index(str(label))
    except ValueError:
        raise AnalysisError(f"{what} {label!r} is not in these draws; they have {show_labels(labels)}") from None


def check_genes(all_genes: Sequence[str], genes: Sequence[str]) -> list[str]:
    if isinstance(genes, str):
        genes = [genes]
    wanted = list(dict.fromkeys(str(g) for g in genes))
    known = set(all_genes)
    missing = [g for g in wanted if g not in known]
    if missing:
        raise AnalysisError(
            f"{len(missing)} gene{'s' if len(missing) != 1 else ''} not in these draws: {show_labels(missing)}; "
            f"the fit has {len(all_genes):,} genes, e.g. {show_labels(list(all_genes)[:5])}"
        )
    return wanted


def prepare_draws(draws: xr.DataArray, *, lineage: str | None = None, keep_lineage: bool = False) -> xr.DataArray:
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
                f"{name} is a gene × lineage effect; choose a lineage to rank within ({show_labels(labels)}), "
                "or rank the gene-level effect"
            )
        da = da.isel(lineage=label_index(labels, lineage, "lineage"))
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
    if da.sizes["gene"] == 0 or count_samples(da) == 0:
        raise AnalysisError(f"{name} is empty: {dict(da.sizes)}")
    return da


def count_samples(da: xr.DataArray) -> int:
    return math.prod(da.sizes[d] for d in SAMPLE_DIMS if d in da.sizes)


def gene_labels(da: xr.DataArray) -> list[str]:
    if "gene" not in da.coords:
        raise AnalysisError("the draws have no 'gene' coordinate; gene labels are needed to report results")
    genes = [str(g) for g in da["gene"].to_numpy()]
    if len(set(genes)) != len(genes):
        dupes = sorted({g for g in genes if genes.count(g) > 1}) if len(genes) < 5000 else ["(several)"]
        raise AnalysisError(f"gene labels repeat ({show_labels(dupes)}); each gene must appear once")
    return genes


def iter_gene_blocks(da: xr.DataArray) -> Iterator[tuple[slice, np.ndarray]]:
    """(gene slice, float32 array (sample, gene, *rest)) blocks, reading a lazy array piece by piece."""
    n_samples = count_samples(da)
    rest = tuple(da.shape[da.dims.index("gene") + 1 :])
    per_gene = n_samples * math.prod(rest)
    step = max(1, BLOCK_ELEMENTS // max(per_gene, 1))
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


def load_samples(da: xr.DataArray) -> np.ndarray:
    """All draws as a float32 (sample, gene) matrix."""
    out = np.empty((count_samples(da), da.sizes["gene"]), dtype=np.float32)
    for sl, block in iter_gene_blocks(da):
        out[:, sl] = block
    return out


def gene_means(da: xr.DataArray) -> np.ndarray:
    means = np.empty(da.sizes["gene"])
    for sl, block in iter_gene_blocks(da):
        means[sl] = block.mean(axis=0, dtype=np.float64)
    return means


def run_chunks(work: Callable[[int], None], starts: range) -> None:
    """Run ``work(start)`` for every chunk, on ``THREADS`` threads (numpy's sorts release the GIL)."""
    if THREADS <= 1 or len(starts) <= 1:
        for start in starts:
            work(start)
        return
    with ThreadPoolExecutor(max_workers=min(THREADS, len(starts))) as pool:
        # list() re-raises the first error of any chunk
        list(pool.map(work, starts))


def hdi_columns(values: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray]:
    """HDI of every column of a (sample, label) matrix (``model_store.stats.hdi_sorted``, as ``arviz.hdi``)."""
    return hdi_sorted(np.sort(np.asarray(values).T, axis=1), prob)
