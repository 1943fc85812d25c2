"""Building blocks of the catalog's PyMC models: zero-sum maps, index layouts, shared levels, the observation.

Every builder in ``speclet_core.models.catalog`` is written with these, so a prior, a
zero-sum construction or the likelihood of a reading is defined once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from speclet_core.data.covariates import prepare_covariates
from speclet_core.data.selection import ScreenSelection
from speclet_core.errors import ModelError
from speclet_core.models.spec import Likelihood, ModelSpec

# Weakly informative priors on the LFC scale (gene means lie roughly in -3..1).
PRIOR_MU_SD = 2.0
PRIOR_SCALE_WIDE = 2.5  # spread of gene means, cell-line intercepts, slopes
PRIOR_SCALE_NARROW = 1.0  # sgRNA, gene × lineage and gene × cell-line deviations, noise
NOPOOL_SD = 2.0  # fixed prior of each no-pooling gene × cell-line mean


class GroupedZeroSum:
    """Map free values onto values that sum to zero within each group (ragged ``ZeroSumNormal``).

    A group of ``n`` items has ``n - 1`` free coordinates; the map is PyMC's zero-sum
    transform (an orthonormal reflection) applied per group, so free values ~ N(0, s)
    give exactly a zero-sum normal of scale ``s`` in every group. A group of one item
    is always 0. Groups lie along the first axis of the free tensor.
    """

    def __init__(self, groups: np.ndarray, n_groups: int) -> None:
        groups = np.asarray(groups, dtype=np.int64)
        n = len(groups)
        self.groups = groups
        self.counts = np.bincount(groups, minlength=n_groups).astype(np.float64)
        last = np.full(n_groups, -1, dtype=np.int64)
        np.maximum.at(last, groups, np.arange(n))
        anchor = np.zeros(n, dtype=bool)
        anchor[last[last >= 0]] = True
        self.anchor = anchor.astype(np.float64)
        self.free_items = np.flatnonzero(~anchor)
        self.n_free = len(self.free_items)
        # anchors read the appended zero at position n_free
        self.src = np.full(n, self.n_free, dtype=np.int64)
        self.src[self.free_items] = np.arange(self.n_free)
        self.order = np.argsort(groups, kind="stable")
        ends = np.cumsum(np.bincount(groups, minlength=n_groups))
        self.ends = ends
        self.starts = ends - np.bincount(groups, minlength=n_groups)

    def __call__(self, free: pt.TensorVariable | None) -> pt.TensorVariable:
        """Zero-sum values (items along the first axis) from ``n_free`` free values (None: all groups of one)."""
        if free is None:
            return pt.zeros(len(self.groups))
        zero = pt.zeros_like(free[:1])
        y = pt.concatenate([free, zero], axis=0)[self.src]
        csum = pt.concatenate([pt.zeros_like(y[:1]), pt.cumsum(y[self.order], axis=0)], axis=0)
        total = csum[self.ends] - csum[self.starts]
        extra = (1,) * (free.ndim - 1)
        sqrt_n = np.sqrt(np.maximum(self.counts, 1.0)).reshape(-1, *extra)
        n = np.maximum(self.counts, 1.0).reshape(-1, *extra)
        norm = total / (sqrt_n + n)
        fill = norm - total / sqrt_n
        anchor = self.anchor.reshape(-1, *extra)
        return y + anchor * fill[self.groups] - norm[self.groups]


class Layout:
    """Index arrays and small constant matrices of a selection, shared by the builders."""

    def __init__(self, selection: ScreenSelection) -> None:
        self.g = selection.index("hugo_symbol")
        self.c = selection.index("depmap_id")
        self.s = selection.index("sgrna")
        self.n_genes = len(selection.genes)
        self.n_cells = len(selection.cell_lines)
        self.n_lineages = len(selection.lineages)
        self.lineage_of = selection.cell_line_lineage
        # one flat gather per reading is much cheaper than a 2-d one (and its gradient)
        self.gc_flat = self.g * self.n_cells + self.c
        member = np.zeros((self.n_cells, self.n_lineages))
        member[np.arange(self.n_cells), self.lineage_of] = 1.0
        self.member = member  # cell × lineage indicator
        self.average = member / np.maximum(member.sum(axis=0, keepdims=True), 1.0)  # cell × lineage, column means

    def centre_within_lineage(self, z: pt.TensorVariable) -> pt.TensorVariable:
        """Subtract each lineage's mean over its cell lines (last axis): iid N(0, 1) → zero-sum normal."""
        return z - pt.dot(pt.dot(z, self.average), self.member.T)

    def per_cell(self, per_lineage: pt.TensorVariable) -> pt.TensorVariable:
        """A per-lineage vector spread to cell lines (a matrix product: no gather in the gradient)."""
        return pt.dot(self.member, per_lineage)


def base_coords(selection: ScreenSelection, *dims: str) -> dict[str, Any]:
    """Model coords: the selection's labels for ``dims``, plus one ``reading`` per row."""
    coords: dict[str, Any] = {d: selection.coords[d] for d in dims}
    coords["reading"] = np.arange(selection.n_rows)
    return coords


def gene_level() -> pt.TensorVariable:
    """``gene_effect`` ~ N(mu_gene, sigma_gene), centred: each gene is read hundreds of times."""
    mu = pm.Normal("mu_gene", 0.0, PRIOR_MU_SD)
    sigma = pm.HalfNormal("sigma_gene", PRIOR_SCALE_WIDE)
    return pm.Normal("gene_effect", mu, sigma, dims="gene")


def observe(spec: ModelSpec, mean: pt.TensorVariable, selection: ScreenSelection) -> None:
    """The observed ``lfc`` of every reading around ``mean``, in the family ``spec.likelihood`` declares."""
    lfc = selection.data["lfc"].to_numpy(dtype=np.float64)
    if spec.likelihood == Likelihood.NORMAL:
        sigma = pm.HalfNormal(spec.noise, PRIOR_SCALE_NARROW)
        pm.Normal("lfc", mean, sigma, observed=lfc, dims="reading")
        return
    raise ModelError(
        f"model '{spec.name}' declares likelihood {spec.likelihood!r}, which the model builder cannot observe; "
        f"known likelihoods: {', '.join(Likelihood)}"
    )


def split_shift(
    name: str,
    total: pt.TensorVariable,
    scale_a: pt.TensorVariable,
    scale_b: pt.TensorVariable,
    zs: GroupedZeroSum | None,
    dims: str,
) -> pt.TensorVariable:
    """Split a data-determined sum ``a + b`` of two zero-sum normal terms; return ``a``.

    ``a ~ ZSN(scale_a)`` and ``b ~ ZSN(scale_b)`` only enter the likelihood through
    ``total = a + b``; given ``total``, ``a`` is normal with a known mean and spread, so it is
    drawn from a prior-only standard normal. This is an exact rewrite of the same prior that
    removes the ridge along which ``a`` and ``b`` trade off (a sampler cannot follow it).
    """
    var_a, var_b = scale_a**2, scale_b**2
    shrink = var_a / (var_a + var_b)
    spread = pt.sqrt(var_a * var_b / (var_a + var_b))
    if zs is None:
        t = pm.ZeroSumNormal(f"{name}_split_raw", sigma=1.0, dims=dims)
    else:
        t = zs(pm.Normal(f"{name}_split_raw", 0.0, 1.0, shape=zs.n_free) if zs.n_free else None)
    return shrink * total + spread * t


def covariate_values(selection: ScreenSelection, column: str) -> np.ndarray:
    """A prepared covariate (``rna_expr_z``, ``gene_cn_z``) per reading, preparing it if needed."""
    data = selection.data
    if column not in data.columns:
        data, _ = prepare_covariates(data)
    return data[column].to_numpy(dtype=np.float64)


# A level is sampled centred when its elements are read at least this often (median): with ~10 readings of
# noise σ ≈ 0.3 per element, the likelihood pins an element about as tightly as a deviation prior of spread
# 0.1-0.2 does, beyond which the centred form mixes better; below it the non-centred form avoids the funnel.
CENTRED_MIN_READINGS = 10


def is_data_rich(index: np.ndarray, n_elements: int) -> bool:
    """Whether the elements of a level are read often enough (median readings per element) to be centred."""
    counts = np.bincount(np.asarray(index, dtype=np.int64), minlength=n_elements)
    return bool(n_elements > 0 and np.median(counts) >= CENTRED_MIN_READINGS)


def scaled_normal(
    name: str, sigma: pt.TensorVariable, *, centred: bool, shape: int | tuple[int, ...]
) -> pt.TensorVariable:
    """Free values ~ N(0, ``sigma``): drawn so (centred) or as ``sigma`` × N(0, 1) (non-centred)."""
    if centred:
        return pm.Normal(name, 0.0, sigma, shape=shape)
    return sigma * pm.Normal(name, 0.0, 1.0, shape=shape)


def scaled_zero_sum(
    name: str, sigma: pt.TensorVariable, *, centred: bool, dims: str | tuple[str, ...], n_zerosum_axes: int = 1
) -> pt.TensorVariable:
    """A zero-sum normal of spread ``sigma`` (over its last ``n_zerosum_axes`` dims), centred or non-centred."""
    if centred:
        return pm.ZeroSumNormal(name, sigma=sigma, dims=dims, n_zerosum_axes=n_zerosum_axes)
    return sigma * pm.ZeroSumNormal(name, sigma=1.0, dims=dims, n_zerosum_axes=n_zerosum_axes)
