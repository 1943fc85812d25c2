"""Builders of the catalog's models: a ``ScreenSelection`` and the model's spec in, an unfitted ``pm.Model`` out.

The conventions they follow (names, identifiability, parameterisation per level) are stated once in
``speclet_core.models.catalog``, whose entries pair each builder with its equation and roles.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from speclet_core.data.selection import ScreenSelection
from speclet_core.models.blocks import (
    NOPOOL_SD,
    PRIOR_MU_SD,
    PRIOR_SCALE_NARROW,
    PRIOR_SCALE_WIDE,
    GroupedZeroSum,
    Layout,
    base_coords,
    covariate_values,
    gene_level,
    is_data_rich,
    observe,
    scaled_normal,
    scaled_zero_sum,
    split_shift,
)
from speclet_core.models.spec import ModelSpec


def build_gene(selection: ScreenSelection, spec: ModelSpec) -> pm.Model:
    """Varying intercept per gene."""
    lay = Layout(selection)
    with pm.Model(coords=base_coords(selection, "gene")) as model:
        alpha = gene_level()
        observe(spec, alpha[lay.g], selection)
    return model


def build_gene_cell_line(selection: ScreenSelection, spec: ModelSpec) -> pm.Model:
    """Varying intercepts per gene and per cell line (zero-sum over cell lines)."""
    lay = Layout(selection)
    with pm.Model(coords=base_coords(selection, "gene", "cell_line")) as model:
        alpha = gene_level()
        sigma_c = pm.HalfNormal("sigma_cell_line", PRIOR_SCALE_WIDE)
        gamma = pm.ZeroSumNormal("cell_line_effect", sigma=sigma_c, dims="cell_line")
        observe(spec, alpha[lay.g] + gamma[lay.c], selection)
    return model


def _build_covariate(selection: ScreenSelection, spec: ModelSpec, column: str, slope: str) -> pm.Model:
    lay = Layout(selection)
    x = covariate_values(selection, column)
    with pm.Model(coords=base_coords(selection, "gene", "cell_line")) as model:
        alpha = gene_level()
        sigma_c = pm.HalfNormal("sigma_cell_line", PRIOR_SCALE_WIDE)
        gamma = pm.ZeroSumNormal("cell_line_effect", sigma=sigma_c, dims="cell_line")
        mu_b = pm.Normal(f"mu_{slope}", 0.0, PRIOR_MU_SD)
        sigma_b = pm.HalfNormal(f"sigma_{slope}", PRIOR_SCALE_WIDE)
        # centred: every reading of the gene informs its slope
        beta = pm.Normal(slope, mu_b, sigma_b, dims="gene")
        observe(spec, alpha[lay.g] + gamma[lay.c] + beta[lay.g] * x, selection)
    return model


def build_gene_rna(selection: ScreenSelection, spec: ModelSpec) -> pm.Model:
    """Gene and cell-line intercepts plus a gene-specific slope on scaled RNA expression."""
    return _build_covariate(selection, spec, "rna_expr_z", "rna_slope")


def build_gene_cn(selection: ScreenSelection, spec: ModelSpec) -> pm.Model:
    """Gene and cell-line intercepts plus a gene-specific slope on centred log2 copy number."""
    return _build_covariate(selection, spec, "gene_cn_z", "cn_slope")


def build_gene_lineage(selection: ScreenSelection, spec: ModelSpec) -> pm.Model:
    """Gene × cell-line matrix around gene × lineage means around gene means.

    Gene and gene × lineage levels are centred (read many times); the gene × cell-line
    deviation is non-centred (a few readings per cell) and made zero-sum within each
    lineage by subtracting the lineage mean of iid standard normals (which gives exactly
    a zero-sum normal; the subtracted means are prior-only directions).
    """
    lay = Layout(selection)
    with pm.Model(coords=base_coords(selection, "gene", "lineage", "cell_line")) as model:
        alpha = gene_level()
        sigma_d = pm.HalfNormal("sigma_gene_lineage", PRIOR_SCALE_NARROW)
        delta = pm.ZeroSumNormal("gene_lineage_effect_raw", sigma=sigma_d, dims=("gene", "lineage"))
        mu_gl = pm.Deterministic("gene_lineage_effect", alpha[:, None] + delta, dims=("gene", "lineage"))
        sigma_e = pm.HalfNormal("sigma_gene_cell_line", PRIOR_SCALE_NARROW, dims="lineage")
        z = pm.Normal("gene_cell_line_effect_raw", 0.0, 1.0, shape=(lay.n_genes, lay.n_cells))
        eps = lay.centre_within_lineage(z) * lay.per_cell(sigma_e)[None, :]
        gamma = pm.Deterministic(
            "gene_cell_line_effect", pt.dot(mu_gl, lay.member.T) + eps, dims=("gene", "cell_line")
        )
        observe(spec, gamma.ravel()[lay.gc_flat], selection)
    return model


def build_sgrna_gene_lineage(selection: ScreenSelection, spec: ModelSpec) -> pm.Model:
    """sgRNA in gene, cell line in lineage, gene × lineage and gene × cell line (the flagship).

    Written as in the equation; sampled in an exactly equivalent form in which every
    direction the data cannot see is a prior-only standard normal:

    - the gene × lineage deviation ``delta`` is split into its average over genes (per
      lineage) and the rest (zero-sum over genes and lineages); the average only enters
      the likelihood added to the lineage shift ``lambda``, so that sum is sampled (centred:
      thousands of readings) and ``lambda`` drawn given it (``split_shift``);
    - likewise the gene × cell-line deviation's average over genes is sampled added to
      the cell-line deviation ``zeta`` (centred: every guide reads it), and its rest is
      non-centred (a few readings per cell) and zero-sum over genes and within lineage.
    """
    lay = Layout(selection)
    n_genes = lay.n_genes
    coords = base_coords(selection, "gene", "sgrna", "lineage", "cell_line")
    with pm.Model(coords=coords) as model:
        alpha = gene_level()
        # sgRNA: centred, zero-sum within its gene (each guide is read in every cell line)
        sigma_s = pm.HalfNormal("sigma_sgrna", PRIOR_SCALE_NARROW)
        zs_s = GroupedZeroSum(selection.sgrna_gene, n_genes)
        eta_free = pm.Normal("sgrna_effect_raw", 0.0, sigma_s, shape=zs_s.n_free) if zs_s.n_free else None
        eta = pm.Deterministic("sgrna_effect", zs_s(eta_free), dims="sgrna")

        sigma_l = pm.HalfNormal("sigma_lineage", PRIOR_SCALE_NARROW)
        sigma_c = pm.HalfNormal("sigma_cell_line", PRIOR_SCALE_NARROW)
        sigma_d = pm.HalfNormal("sigma_gene_lineage", PRIOR_SCALE_NARROW)
        # one spread for every lineage: per-lineage spreads mixed 3x slower here (min bulk ESS 457 vs
        # 1256 on a 20-gene × 130-cell-line screen), and each is read by only a few hundred thin cells
        sigma_e = pm.HalfNormal("sigma_gene_cell_line", PRIOR_SCALE_NARROW)

        # lineage shift + genes' mean gene × lineage deviation
        lin_b = sigma_d / np.sqrt(n_genes)
        lin_total = pm.ZeroSumNormal("lineage_total_raw", sigma=pt.sqrt(sigma_l**2 + lin_b**2), dims="lineage")
        lam = pm.Deterministic(
            "lineage_effect", split_shift("lineage_effect", lin_total, sigma_l, lin_b, None, "lineage"),
            dims="lineage",
        )
        delta = (lin_total - lam)[None, :]
        if n_genes > 1:
            delta = delta + pm.ZeroSumNormal(
                "gene_lineage_effect_raw", sigma=sigma_d, dims=("gene", "lineage"), n_zerosum_axes=2
            )
        mu_gl = pm.Deterministic("gene_lineage_effect", alpha[:, None] + delta, dims=("gene", "lineage"))

        # cell-line deviation + genes' mean gene × cell-line deviation, zero-sum within lineage
        zs_c = GroupedZeroSum(lay.lineage_of, lay.n_lineages)
        cell_b = sigma_e / np.sqrt(n_genes)
        if zs_c.n_free:
            cell_scale = pt.sqrt(sigma_c**2 + cell_b**2)
            cell_free = pm.Normal("cell_line_total_raw", 0.0, cell_scale, shape=zs_c.n_free)
            cell_total = zs_c(cell_free)
            zeta = split_shift("cell_line_effect", cell_total, sigma_c, cell_b, zs_c, "cell_line")
        else:
            cell_total = zeta = pt.zeros(lay.n_cells)
        cl = pm.Deterministic("cell_line_effect", lay.per_cell(lam) + zeta, dims="cell_line")

        eps = (cell_total - zeta)[None, :]
        if n_genes > 1:
            z = pm.Normal("gene_cell_line_effect_raw", 0.0, 1.0, shape=(n_genes, lay.n_cells))
            z = lay.centre_within_lineage(z)
            eps = eps + (z - z.mean(axis=0, keepdims=True)) * sigma_e
        gamma = pm.Deterministic(
            "gene_cell_line_effect", pt.dot(mu_gl, lay.member.T) + eps, dims=("gene", "cell_line")
        )
        observe(spec, (gamma + cl[None, :]).ravel()[lay.gc_flat] + eta[lay.s], selection)
    return model


def build_sgrna_gene_cell_line(selection: ScreenSelection, spec: ModelSpec) -> pm.Model:
    """sgRNA in gene, cell-line shift, gene and gene × cell line, for one lineage (genome-wide work).

    Each level is centred or non-centred by how often its elements are read (``is_data_rich``):
    in a usual screen the gene, sgRNA and cell-line levels are centred, the gene × cell-line
    deviation (a few guides per cell) non-centred. As in the flagship, the genes' average
    gene × cell-line deviation only enters the likelihood added to the cell-line shift, so that
    sum is sampled (zero-sum over cell lines) and the shift drawn given it (``split_shift``);
    the rest of the deviation is zero-sum over genes and over cell lines (``n_zerosum_axes=2``),
    so no direction the data cannot see is left in the gene × cell-line matrix.
    """
    lay = Layout(selection)
    n_genes, n_cells, n_sgrnas = lay.n_genes, lay.n_cells, len(selection.coords["sgrna"])
    coords = base_coords(selection, "gene", "sgrna", "cell_line")
    with pm.Model(coords=coords) as model:
        if is_data_rich(lay.g, n_genes):
            alpha = gene_level()
        else:
            mu = pm.Normal("mu_gene", 0.0, PRIOR_MU_SD)
            sigma_g = pm.HalfNormal("sigma_gene", PRIOR_SCALE_WIDE)
            alpha = pm.Deterministic(
                "gene_effect", mu + scaled_normal("gene_effect_raw", sigma_g, centred=False, shape=n_genes),
                dims="gene",
            )
        sigma_s = pm.HalfNormal("sigma_sgrna", PRIOR_SCALE_NARROW)
        zs_s = GroupedZeroSum(selection.sgrna_gene, n_genes)
        eta_free = (
            scaled_normal("sgrna_effect_raw", sigma_s, centred=is_data_rich(lay.s, n_sgrnas), shape=zs_s.n_free)
            if zs_s.n_free else None
        )
        eta = pm.Deterministic("sgrna_effect", zs_s(eta_free), dims="sgrna")

        sigma_c = pm.HalfNormal("sigma_cell_line", PRIOR_SCALE_NARROW)
        sigma_e = pm.HalfNormal("sigma_gene_cell_line", PRIOR_SCALE_NARROW)
        if n_cells > 1:
            cell_b = sigma_e / np.sqrt(n_genes)
            cell_total = scaled_zero_sum(
                "cell_line_total_raw", pt.sqrt(sigma_c**2 + cell_b**2), centred=is_data_rich(lay.c, n_cells),
                dims="cell_line",
            )
            zeta = split_shift("cell_line_effect", cell_total, sigma_c, cell_b, None, "cell_line")
        else:
            cell_total = zeta = pt.zeros(1)
        zeta = pm.Deterministic("cell_line_effect", zeta, dims="cell_line")

        eps = (cell_total - zeta)[None, :]
        if n_genes > 1 and n_cells > 1:
            eps = eps + scaled_zero_sum(
                "gene_cell_line_effect_raw", sigma_e, centred=is_data_rich(lay.gc_flat, n_genes * n_cells),
                dims=("gene", "cell_line"), n_zerosum_axes=2,
            )
        gamma = pm.Deterministic("gene_cell_line_effect", alpha[:, None] + eps, dims=("gene", "cell_line"))
        observe(spec, (gamma + zeta[None, :]).ravel()[lay.gc_flat] + eta[lay.s], selection)
    return model


def build_gene_cell_line_nopool(selection: ScreenSelection, spec: ModelSpec) -> pm.Model:
    """Each gene in each cell line has its own mean with a fixed wide prior (no pooling)."""
    lay = Layout(selection)
    # summaries average over the cells that were screened; a gene × lineage without any
    # falls back to all its cells (prior draws), so the means stay defined
    seen = np.zeros((lay.n_genes, lay.n_cells))
    seen[lay.g, lay.c] = 1.0
    w = seen[:, :, None] * lay.member[None, :, :]  # gene × cell × lineage
    empty = w.sum(axis=1, keepdims=True) == 0
    w = np.where(empty, lay.member[None, :, :], w)
    w = w / w.sum(axis=1, keepdims=True)
    with pm.Model(coords=base_coords(selection, "gene", "lineage", "cell_line")) as model:
        theta = pm.Normal("gene_cell_line_effect", 0.0, NOPOOL_SD, dims=("gene", "cell_line"))
        gl = pm.Deterministic("gene_lineage_effect", (theta[:, :, None] * w).sum(axis=1), dims=("gene", "lineage"))
        pm.Deterministic("gene_effect", gl.mean(axis=1), dims="gene")
        observe(spec, theta.ravel()[lay.gc_flat], selection)
    return model


