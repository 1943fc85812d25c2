"""The model catalog: hierarchical models of CRISPR screen log fold changes.

One registry (``MODELS``) keyed by a stable snake_case name. Each ``ModelSpec`` says in
plain language what its effects mean, gives the equation exactly as fitted, and declares
which variables play which role, so pages can show any model without knowing it.

Shared conventions (every model):

- the same name means the same thing everywhere: ``gene_effect`` (dims ``gene``) is the
  gene's average LFC over its sgRNAs and lineages; ``gene_lineage_effect`` (gene, lineage)
  and ``gene_cell_line_effect`` (gene, cell_line) are that gene's mean in a lineage / in a
  cell line; ``rna_slope`` / ``cn_slope`` (gene) are covariate slopes; the observed
  variable is ``lfc`` with dim ``reading``;
- identifiable: one free location per level (the gene effect, drawn around ``mu_gene``);
  every deviation below it sums to zero within its parent, so the data determine each
  effect instead of only their sums (the seeds' stacked free means made a ridge);
- parameterisation per level, by how much data informs it: levels read hundreds of times
  (gene, sgRNA, cell line, gene × lineage) are centred, the thinly read gene × cell-line
  deviation is non-centred (see ``NOTES.md``, "Sampling");
- variables ending in ``_raw`` are sampler internals (free coordinates of zero-sum
  deviations); fits do not store them. Each spec declares its linear predictor
  (``predictor``) in terms of stored variables, so predictions and the log-likelihood
  are computed from a stored posterior alone.

Builders are pure: a ``ScreenSelection`` in, an unfitted ``pm.Model`` out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from speclet_core.data.screen import ScreenSelection, prepare_covariates
from speclet_core.errors import ModelError

RAW_SUFFIX = "_raw"

# Weakly informative priors on the LFC scale (gene means lie roughly in -3..1).
PRIOR_MU_SD = 2.0
PRIOR_SCALE_WIDE = 2.5  # spread of gene means, cell-line intercepts, slopes
PRIOR_SCALE_NARROW = 1.0  # sgRNA, gene × lineage and gene × cell-line deviations, noise
NOPOOL_SD = 2.0  # fixed prior of each no-pooling gene × cell-line mean


Builder = Callable[[ScreenSelection], pm.Model]

# model dim -> selection column holding its labels
DIM_COLUMNS: dict[str, str] = {"gene": "hugo_symbol", "sgrna": "sgrna", "cell_line": "depmap_id", "lineage": "lineage"}


@dataclass(frozen=True)
class LinearTerm:
    """One additive term of a reading's mean: ``variable[dims of the reading]`` (× ``covariate``)."""

    variable: str
    dims: tuple[str, ...]
    covariate: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """One catalog entry: what a model means, how it is written, and how to build it."""

    name: str
    version: str
    title: str
    description: str
    equation: str
    required_columns: tuple[str, ...]
    min_lineages: int
    terms: Mapping[str, str]
    builder: Builder = field(repr=False, compare=False)
    gene_lineage_effect: str | None = None
    gene_cell_line_effect: str | None = None
    hyperparameters: tuple[str, ...] = ()
    covariate_slopes: tuple[str, ...] = ()
    pooled_counterpart: str | None = None
    predictor: tuple[LinearTerm, ...] = ()
    noise: str = "sigma"

    def build(self, selection: ScreenSelection) -> pm.Model:
        """The unfitted PyMC model for a selection (checks the selection fits the model first)."""
        check_selection(self, selection)
        return self.builder(selection)

    def roles(self) -> dict[str, Any]:
        """Which variable answers which question, for pages that show any model."""
        return {
            "gene_effect": "gene_effect",
            "gene_lineage_effect": self.gene_lineage_effect,
            "gene_cell_line_effect": self.gene_cell_line_effect,
            "hyperparameters": list(self.hyperparameters),
            "covariate_slopes": list(self.covariate_slopes),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (for attrs, the CLI and the Models page)."""
        return {
            "name": self.name,
            "version": self.version,
            "title": self.title,
            "description": self.description,
            "equation": self.equation,
            "required_columns": list(self.required_columns),
            "min_lineages": self.min_lineages,
            "terms": dict(self.terms),
            "roles": self.roles(),
            "pooled_counterpart": self.pooled_counterpart,
            "predictor": [
                {"variable": t.variable, "dims": list(t.dims), "covariate": t.covariate} for t in self.predictor
            ],
        }


MODELS: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a spec to the catalog; names are unique and snake_case."""
    if spec.name in MODELS:
        raise ModelError(f"model name {spec.name!r} is registered twice; model names must be unique")
    if not spec.name.replace("_", "").isalnum() or spec.name != spec.name.lower():
        raise ModelError(f"model name {spec.name!r}: use lowercase snake_case")
    MODELS[spec.name] = spec
    return spec


def get_model(name: str) -> ModelSpec:
    """The catalog entry for ``name``; ``ModelError`` lists the known names otherwise."""
    key = str(name).strip().lower()
    if key not in MODELS:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return MODELS[key]


def list_models() -> list[ModelSpec]:
    """Every registered model, in catalog order."""
    return list(MODELS.values())


def check_selection(spec: ModelSpec, selection: ScreenSelection) -> None:
    """Raise ``ModelError`` if ``spec`` cannot be fitted to ``selection`` (columns, lineages)."""
    problems = []
    data = selection.data
    for col in spec.required_columns:
        if col not in data.columns:
            problems.append(f"needs column '{col}', which the screen table does not have")
        elif data[col].notna().sum() == 0:
            problems.append(f"needs column '{col}', but every value of it is missing in the selection")
    if len(selection.lineages) < spec.min_lineages:
        problems.append(
            f"needs at least {spec.min_lineages} lineages to compare them, the selection has "
            f"{len(selection.lineages)} ({', '.join(selection.lineages)})"
        )
    if problems:
        raise ModelError(
            f"model '{spec.name}' cannot be fitted to this selection: {'; '.join(problems)}; "
            "widen the selection or pick another model"
        )


# --------------------------------------------------------------------------- building blocks


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


class _Layout:
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


def _base_coords(selection: ScreenSelection, *dims: str) -> dict[str, Any]:
    coords: dict[str, Any] = {d: selection.coords[d] for d in dims}
    coords["reading"] = np.arange(selection.n_rows)
    return coords


def _gene_level() -> pt.TensorVariable:
    """``gene_effect`` ~ N(mu_gene, sigma_gene), centred: each gene is read hundreds of times."""
    mu = pm.Normal("mu_gene", 0.0, PRIOR_MU_SD)
    sigma = pm.HalfNormal("sigma_gene", PRIOR_SCALE_WIDE)
    return pm.Normal("gene_effect", mu, sigma, dims="gene")


def _observe(mean: pt.TensorVariable, selection: ScreenSelection) -> None:
    sigma = pm.HalfNormal("sigma", PRIOR_SCALE_NARROW)
    pm.Normal("lfc", mean, sigma, observed=selection.data["lfc"].to_numpy(dtype=np.float64), dims="reading")


def covariate_values(selection: ScreenSelection, column: str) -> np.ndarray:
    """A prepared covariate (``rna_expr_z``, ``gene_cn_z``) per reading, preparing it if needed."""
    data = selection.data
    if column not in data.columns:
        data, _ = prepare_covariates(data)
    return data[column].to_numpy(dtype=np.float64)


# --------------------------------------------------------------------------- builders


def build_gene(selection: ScreenSelection) -> pm.Model:
    """Varying intercept per gene."""
    lay = _Layout(selection)
    with pm.Model(coords=_base_coords(selection, "gene")) as model:
        alpha = _gene_level()
        _observe(alpha[lay.g], selection)
    return model


def build_gene_cell_line(selection: ScreenSelection) -> pm.Model:
    """Varying intercepts per gene and per cell line (zero-sum over cell lines)."""
    lay = _Layout(selection)
    with pm.Model(coords=_base_coords(selection, "gene", "cell_line")) as model:
        alpha = _gene_level()
        sigma_c = pm.HalfNormal("sigma_cell_line", PRIOR_SCALE_WIDE)
        gamma = pm.ZeroSumNormal("cell_line_effect", sigma=sigma_c, dims="cell_line")
        _observe(alpha[lay.g] + gamma[lay.c], selection)
    return model


def _build_covariate(selection: ScreenSelection, column: str, slope: str) -> pm.Model:
    lay = _Layout(selection)
    x = covariate_values(selection, column)
    with pm.Model(coords=_base_coords(selection, "gene", "cell_line")) as model:
        alpha = _gene_level()
        sigma_c = pm.HalfNormal("sigma_cell_line", PRIOR_SCALE_WIDE)
        gamma = pm.ZeroSumNormal("cell_line_effect", sigma=sigma_c, dims="cell_line")
        mu_b = pm.Normal(f"mu_{slope}", 0.0, PRIOR_MU_SD)
        sigma_b = pm.HalfNormal(f"sigma_{slope}", PRIOR_SCALE_WIDE)
        # centred: every reading of the gene informs its slope
        beta = pm.Normal(slope, mu_b, sigma_b, dims="gene")
        _observe(alpha[lay.g] + gamma[lay.c] + beta[lay.g] * x, selection)
    return model


def build_gene_rna(selection: ScreenSelection) -> pm.Model:
    """Gene and cell-line intercepts plus a gene-specific slope on scaled RNA expression."""
    return _build_covariate(selection, "rna_expr_z", "rna_slope")


def build_gene_cn(selection: ScreenSelection) -> pm.Model:
    """Gene and cell-line intercepts plus a gene-specific slope on centred log2 copy number."""
    return _build_covariate(selection, "gene_cn_z", "cn_slope")


def build_gene_lineage(selection: ScreenSelection) -> pm.Model:
    """Gene × cell-line matrix around gene × lineage means around gene means (seed 002 m1).

    Gene and gene × lineage levels are centred (read many times); the gene × cell-line
    deviation is non-centred (a few readings per cell) and made zero-sum within each
    lineage by subtracting the lineage mean of iid standard normals (which gives exactly
    a zero-sum normal; the subtracted means are prior-only directions).
    """
    lay = _Layout(selection)
    with pm.Model(coords=_base_coords(selection, "gene", "lineage", "cell_line")) as model:
        alpha = _gene_level()
        sigma_d = pm.HalfNormal("sigma_gene_lineage", PRIOR_SCALE_NARROW)
        delta = pm.ZeroSumNormal("gene_lineage_effect_raw", sigma=sigma_d, dims=("gene", "lineage"))
        mu_gl = pm.Deterministic("gene_lineage_effect", alpha[:, None] + delta, dims=("gene", "lineage"))
        sigma_e = pm.HalfNormal("sigma_gene_cell_line", PRIOR_SCALE_NARROW, dims="lineage")
        z = pm.Normal("gene_cell_line_effect_raw", 0.0, 1.0, shape=(lay.n_genes, lay.n_cells))
        eps = lay.centre_within_lineage(z) * lay.per_cell(sigma_e)[None, :]
        gamma = pm.Deterministic(
            "gene_cell_line_effect", pt.dot(mu_gl, lay.member.T) + eps, dims=("gene", "cell_line")
        )
        _observe(gamma.ravel()[lay.gc_flat], selection)
    return model


def _split_shift(
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


def build_sgrna_gene_lineage(selection: ScreenSelection) -> pm.Model:
    """sgRNA in gene, cell line in lineage, gene × lineage and gene × cell line (seed 002 m8).

    Written as in the equation; sampled in an exactly equivalent form in which every
    direction the data cannot see is a prior-only standard normal:

    - the gene × lineage deviation ``delta`` is split into its average over genes (per
      lineage) and the rest (zero-sum over genes and lineages); the average only enters
      the likelihood added to the lineage shift ``lambda``, so that sum is sampled (centred:
      thousands of readings) and ``lambda`` drawn given it (``_split_shift``);
    - likewise the gene × cell-line deviation's average over genes is sampled added to
      the cell-line deviation ``zeta`` (centred: every guide reads it), and its rest is
      non-centred (a few readings per cell) and zero-sum over genes and within lineage.
    """
    lay = _Layout(selection)
    n_genes = lay.n_genes
    coords = _base_coords(selection, "gene", "sgrna", "lineage", "cell_line")
    with pm.Model(coords=coords) as model:
        alpha = _gene_level()
        # sgRNA: centred, zero-sum within its gene (each guide is read in every cell line)
        sigma_s = pm.HalfNormal("sigma_sgrna", PRIOR_SCALE_NARROW)
        zs_s = GroupedZeroSum(selection.sgrna_gene, n_genes)
        eta_free = pm.Normal("sgrna_effect_raw", 0.0, sigma_s, shape=zs_s.n_free) if zs_s.n_free else None
        eta = pm.Deterministic("sgrna_effect", zs_s(eta_free), dims="sgrna")

        sigma_l = pm.HalfNormal("sigma_lineage", PRIOR_SCALE_NARROW)
        sigma_c = pm.HalfNormal("sigma_cell_line", PRIOR_SCALE_NARROW)
        sigma_d = pm.HalfNormal("sigma_gene_lineage", PRIOR_SCALE_NARROW)
        # one spread for every lineage: per-lineage spreads mixed 3x slower here (min bulk ESS 457 vs
        # 1256 on the seed-002-sized screen), and each is read by only a few hundred thin cells
        sigma_e = pm.HalfNormal("sigma_gene_cell_line", PRIOR_SCALE_NARROW)

        # lineage shift + genes' mean gene × lineage deviation
        lin_b = sigma_d / np.sqrt(n_genes)
        lin_total = pm.ZeroSumNormal("lineage_total_raw", sigma=pt.sqrt(sigma_l**2 + lin_b**2), dims="lineage")
        lam = pm.Deterministic(
            "lineage_effect", _split_shift("lineage_effect", lin_total, sigma_l, lin_b, None, "lineage"),
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
            zeta = _split_shift("cell_line_effect", cell_total, sigma_c, cell_b, zs_c, "cell_line")
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
        _observe((gamma + cl[None, :]).ravel()[lay.gc_flat] + eta[lay.s], selection)
    return model


def build_gene_cell_line_nopool(selection: ScreenSelection) -> pm.Model:
    """Each gene in each cell line has its own mean with a fixed wide prior (no pooling)."""
    lay = _Layout(selection)
    # summaries average over the cells that were screened; a gene × lineage without any
    # falls back to all its cells (prior draws), so the means stay defined
    seen = np.zeros((lay.n_genes, lay.n_cells))
    seen[lay.g, lay.c] = 1.0
    w = seen[:, :, None] * lay.member[None, :, :]  # gene × cell × lineage
    empty = w.sum(axis=1, keepdims=True) == 0
    w = np.where(empty, lay.member[None, :, :], w)
    w = w / w.sum(axis=1, keepdims=True)
    with pm.Model(coords=_base_coords(selection, "gene", "lineage", "cell_line")) as model:
        theta = pm.Normal("gene_cell_line_effect", 0.0, NOPOOL_SD, dims=("gene", "cell_line"))
        gl = pm.Deterministic("gene_lineage_effect", (theta[:, :, None] * w).sum(axis=1), dims=("gene", "lineage"))
        pm.Deterministic("gene_effect", gl.mean(axis=1), dims="gene")
        _observe(theta.ravel()[lay.gc_flat], selection)
    return model


# --------------------------------------------------------------------------- the catalog

_HN = r"\mathcal{HN}"
_N = r"\mathcal{N}"
_ZSN = r"\mathcal{ZSN}"
_GENE_PRIORS = rf"\mu_\alpha \sim {_N}(0, 2),\quad \sigma_\alpha \sim {_HN}(2.5),\quad \sigma \sim {_HN}(1)"

register_model(
    ModelSpec(
        name="gene",
        version="1",
        title="Gene intercepts",
        description=(
            "Each gene has one effect: its average log fold change over all its guides and cell lines. "
            "Genes borrow strength from each other through a shared mean and spread (partial pooling), so "
            "genes with few readings are pulled towards the typical gene. Nothing else varies, so differences "
            "between cell lines or guides end up in the noise. Centred gene level: every gene is read many times."
        ),
        equation=(
            r"\begin{aligned}"
            rf"\mathrm{{lfc}}_i &\sim {_N}(\alpha_{{g[i]}}, \sigma) \\"
            rf"\alpha_g &\sim {_N}(\mu_\alpha, \sigma_\alpha) \\"
            rf"&{_GENE_PRIORS}"
            r"\end{aligned}"
        ),
        required_columns=(),
        min_lineages=1,
        terms=MappingProxyType(
            {
                "gene_effect": "How strongly does knocking out this gene reduce growth, on average?",
                "mu_gene": "What is the typical gene's effect?",
                "sigma_gene": "How much do genes differ from each other?",
                "sigma": "How noisy is a single reading?",
            }
        ),
        builder=build_gene,
        predictor=(LinearTerm("gene_effect", ("gene",)),),
        hyperparameters=("mu_gene", "sigma_gene", "sigma"),
    )
)

register_model(
    ModelSpec(
        name="gene_cell_line",
        version="1",
        title="Gene and cell-line intercepts",
        description=(
            "Each gene has an effect (its average log fold change) and each cell line a shift that applies to "
            "every gene in it (e.g. a screen that depleted more overall). The cell-line shifts sum to zero, so "
            "the gene effect stays the gene's average over cell lines and the two are identified separately. "
            "Both levels are centred: each is read many times."
        ),
        equation=(
            r"\begin{aligned}"
            rf"\mathrm{{lfc}}_i &\sim {_N}(\alpha_{{g[i]}} + \gamma_{{c[i]}}, \sigma) \\"
            rf"\alpha_g &\sim {_N}(\mu_\alpha, \sigma_\alpha),\quad \gamma \sim {_ZSN}(\sigma_\gamma) \\"
            rf"&{_GENE_PRIORS},\quad \sigma_\gamma \sim {_HN}(2.5)"
            r"\end{aligned}"
        ),
        required_columns=(),
        min_lineages=1,
        terms=MappingProxyType(
            {
                "gene_effect": "How strongly does knocking out this gene reduce growth, on average over cell lines?",
                "cell_line_effect": "Does this cell line lose more (or less) of every guide than the others?",
                "mu_gene": "What is the typical gene's effect?",
                "sigma_gene": "How much do genes differ from each other?",
                "sigma_cell_line": "How much do cell lines differ overall?",
                "sigma": "How noisy is a single reading?",
            }
        ),
        builder=build_gene_cell_line,
        predictor=(LinearTerm("gene_effect", ("gene",)), LinearTerm("cell_line_effect", ("cell_line",))),
        hyperparameters=("mu_gene", "sigma_gene", "sigma_cell_line", "sigma"),
    )
)

_COVARIATE_EQUATION = (
    r"\begin{aligned}"
    rf"\mathrm{{lfc}}_i &\sim {_N}(\alpha_{{g[i]}} + \gamma_{{c[i]}} + \beta_{{g[i]}} x_i, \sigma) \\"
    rf"\alpha_g &\sim {_N}(\mu_\alpha, \sigma_\alpha),\quad \gamma \sim {_ZSN}(\sigma_\gamma),"
    rf"\quad \beta_g \sim {_N}(\mu_\beta, \sigma_\beta) \\"
    rf"&{_GENE_PRIORS},\quad \sigma_\gamma, \sigma_\beta \sim {_HN}(2.5),\quad \mu_\beta \sim {_N}(0, 2)"
    r"\end{aligned}"
)

register_model(
    ModelSpec(
        name="gene_rna",
        version="1",
        title="Gene and cell-line intercepts + RNA expression slope",
        description=(
            "Like gene_cell_line, plus a gene-specific slope on the gene's RNA expression (log2 TPM+1, z-scored "
            "within the gene): does the knockout hurt more in cell lines that express the gene more? Because "
            "expression is centred within each gene, the gene effect is the average effect at the gene's "
            "average expression. Slopes share a mean and spread across genes. All levels are centred."
        ),
        equation=_COVARIATE_EQUATION.replace(r"x_i", r"\mathrm{rna}_i"),
        required_columns=("rna_expr",),
        min_lineages=1,
        terms=MappingProxyType(
            {
                "gene_effect": "How strongly does knocking out this gene reduce growth, at its average expression?",
                "rna_slope": "Does the knockout hurt more where the gene is expressed more (per standard deviation)?",
                "cell_line_effect": "Does this cell line lose more (or less) of every guide than the others?",
                "mu_rna_slope": "Is higher expression typically linked to stronger dependency?",
                "sigma_rna_slope": "How much do genes differ in that link?",
                "sigma": "How noisy is a single reading?",
            }
        ),
        builder=build_gene_rna,
        predictor=(
            LinearTerm("gene_effect", ("gene",)),
            LinearTerm("cell_line_effect", ("cell_line",)),
            LinearTerm("rna_slope", ("gene",), "rna_expr_z"),
        ),
        hyperparameters=("mu_gene", "sigma_gene", "sigma_cell_line", "mu_rna_slope", "sigma_rna_slope", "sigma"),
        covariate_slopes=("rna_slope",),
    )
)

register_model(
    ModelSpec(
        name="gene_cn",
        version="1",
        title="Gene and cell-line intercepts + copy-number slope",
        description=(
            "Like gene_cell_line, plus a gene-specific slope on the gene's copy number (log2, centred within the "
            "gene). Cutting amplified DNA kills cells whatever the gene does, so a negative slope flags a "
            "copy-number artefact rather than a true dependency. The gene effect is the effect at the gene's "
            "typical copy number. All levels are centred."
        ),
        equation=_COVARIATE_EQUATION.replace(r"x_i", r"\mathrm{cn}_i"),
        required_columns=("gene_cn",),
        min_lineages=1,
        terms=MappingProxyType(
            {
                "gene_effect": "How strongly does knocking out this gene reduce growth, at its typical copy number?",
                "cn_slope": "Do cell lines with more copies of the gene lose more of it (a cutting artefact)?",
                "cell_line_effect": "Does this cell line lose more (or less) of every guide than the others?",
                "mu_cn_slope": "How strong is the copy-number artefact typically?",
                "sigma_cn_slope": "How much do genes differ in it?",
                "sigma": "How noisy is a single reading?",
            }
        ),
        builder=build_gene_cn,
        predictor=(
            LinearTerm("gene_effect", ("gene",)),
            LinearTerm("cell_line_effect", ("cell_line",)),
            LinearTerm("cn_slope", ("gene",), "gene_cn_z"),
        ),
        hyperparameters=("mu_gene", "sigma_gene", "sigma_cell_line", "mu_cn_slope", "sigma_cn_slope", "sigma"),
        covariate_slopes=("cn_slope",),
    )
)

_GL_EQUATION_TAIL = (
    rf"\alpha_g &\sim {_N}(\mu_\alpha, \sigma_\alpha) \\"
    rf"\mu_{{g,\cdot}} &= \alpha_g + \delta_{{g,\cdot}},\quad \delta_{{g,\cdot}} \sim {_ZSN}_{{\ell}}(\sigma_\delta) \\"
    r"\gamma_{g,c} &= \mu_{g,\ell[c]} + \sigma_\gamma[\ell[c]]\, z_{g,c},"
    rf"\quad z_{{g,\cdot}} \sim {_ZSN}_{{c \in \ell}}(1) \\"
    rf"&{_GENE_PRIORS},\quad \sigma_\delta, \sigma_\gamma[\ell] \sim {_HN}(1)"
)

register_model(
    ModelSpec(
        name="gene_lineage",
        version="1",
        title="Gene × lineage hierarchy (gene × cell-line matrix)",
        description=(
            "Three nested levels: each gene has an average effect; its mean in each lineage deviates from that "
            "average (deviations sum to zero over lineages); its effect in each cell line deviates from its "
            "lineage mean (deviations sum to zero within the lineage, with a spread per lineage). Answers "
            "'is this gene a dependency in this lineage, or in this cell line?' with partial pooling: a cell line "
            "read only a few times is pulled towards its lineage. Cell-line-wide shifts are not separated and end "
            "up in the gene × cell-line effects. Gene and gene × lineage levels are centred (many readings); "
            "the gene × cell-line level is non-centred (a few readings per cell)."
        ),
        equation=(
            r"\begin{aligned}"
            rf"\mathrm{{lfc}}_i &\sim {_N}(\gamma_{{g[i],c[i]}}, \sigma) \\" + _GL_EQUATION_TAIL + r"\end{aligned}"
        ),
        required_columns=(),
        min_lineages=2,
        terms=MappingProxyType(
            {
                "gene_effect": "How strongly does knocking out this gene reduce growth, on average over lineages?",
                "gene_lineage_effect": "Is this gene a stronger (or weaker) dependency in this lineage?",
                "gene_cell_line_effect": "How strongly does this cell line depend on this gene?",
                "sigma_gene_lineage": "How much do lineages differ in their dependency on the same gene?",
                "sigma_gene_cell_line": "How much do cell lines of this lineage differ around their lineage?",
                "sigma": "How noisy is a single reading?",
            }
        ),
        builder=build_gene_lineage,
        predictor=(LinearTerm("gene_cell_line_effect", ("gene", "cell_line")),),
        gene_lineage_effect="gene_lineage_effect",
        gene_cell_line_effect="gene_cell_line_effect",
        hyperparameters=("mu_gene", "sigma_gene", "sigma_gene_lineage", "sigma_gene_cell_line", "sigma"),
    )
)

register_model(
    ModelSpec(
        name="sgrna_gene_lineage",
        version="1",
        title="sgRNA, cell line, gene × lineage and gene × cell line (flagship)",
        description=(
            "The full hierarchy. Each guide deviates from its gene (guide deviations sum to zero within the gene, "
            "so a bad guide cannot shift the gene); each cell line has a shift made of its lineage's shift plus its "
            "own (zero-sum over lineages and within each lineage); and, as in gene_lineage, each gene has an "
            "average effect, a mean per lineage and an effect per cell line, every deviation summing to zero within "
            "its parent. So the gene effect is the gene's average over its guides and lineages, and the gene × "
            "cell-line effect is what is left of a cell line's dependency once guide and cell-line-wide shifts "
            "are removed (one spread for all lineages). Gene, sgRNA, cell-line and gene × lineage levels are "
            "centred (each read many times); the gene × cell-line level is non-centred (a few readings per cell)."
        ),
        equation=(
            r"\begin{aligned}"
            rf"\mathrm{{lfc}}_i &\sim {_N}(\gamma_{{g[i],c[i]}} + \eta_{{s[i]}} + \lambda_{{\ell[c[i]]}} "
            r"+ \zeta_{c[i]}, \sigma) \\"
            rf"\eta &\sim {_ZSN}_{{s \in g}}(\sigma_\eta),\quad \lambda \sim {_ZSN}(\sigma_\lambda),"
            rf"\quad \zeta \sim {_ZSN}_{{c \in \ell}}(\sigma_\zeta) \\"
            + _GL_EQUATION_TAIL.replace(r"\sigma_\gamma[\ell[c]]", r"\sigma_\gamma").replace(r"\sigma_\gamma[\ell]", r"\sigma_\gamma")
            + rf",\quad \sigma_\eta, \sigma_\lambda, \sigma_\zeta \sim {_HN}(1)"
            r"\end{aligned}"
        ),
        required_columns=(),
        min_lineages=2,
        terms=MappingProxyType(
            {
                "gene_effect": "How strongly does knocking out this gene reduce growth, on average over lineages?",
                "gene_lineage_effect": "Is this gene a stronger (or weaker) dependency in this lineage?",
                "gene_cell_line_effect": "How strongly does this cell line depend on this gene, beyond shifts?",
                "sgrna_effect": "Does this guide cut better or worse than the other guides of its gene?",
                "cell_line_effect": "Does this cell line lose more (or less) of every guide than the others?",
                "lineage_effect": "Does this lineage lose more (or less) of every guide than the others?",
                "sigma_sgrna": "How much do guides of the same gene disagree?",
                "sigma_gene_lineage": "How much do lineages differ in their dependency on the same gene?",
                "sigma_gene_cell_line": "How much do cell lines differ from their lineage in their dependency on a gene?",
                "sigma": "How noisy is a single reading?",
            }
        ),
        builder=build_sgrna_gene_lineage,
        predictor=(
            LinearTerm("gene_cell_line_effect", ("gene", "cell_line")),
            LinearTerm("sgrna_effect", ("sgrna",)),
            LinearTerm("cell_line_effect", ("cell_line",)),
        ),
        gene_lineage_effect="gene_lineage_effect",
        gene_cell_line_effect="gene_cell_line_effect",
        hyperparameters=(
            "mu_gene", "sigma_gene", "sigma_sgrna", "sigma_lineage", "sigma_cell_line",
            "sigma_gene_lineage", "sigma_gene_cell_line", "sigma",
        ),
    )
)

register_model(
    ModelSpec(
        name="gene_cell_line_nopool",
        version="1",
        title="Gene × cell line, no pooling (for comparison)",
        description=(
            "Each gene in each cell line gets its own mean, estimated only from its own readings with a fixed wide "
            "prior: nothing is shared between cell lines, lineages or genes. Compare it with gene_lineage (the same "
            "gene × cell-line matrix with partial pooling) to see shrinkage: cells with few or noisy readings move "
            "towards their lineage there but not here. The gene and gene × lineage effects are plain averages of "
            "the screened cells (cell lines within a lineage, then lineages)."
        ),
        equation=(
            r"\begin{aligned}"
            rf"\mathrm{{lfc}}_i &\sim {_N}(\theta_{{g[i],c[i]}}, \sigma),\quad \theta_{{g,c}} \sim {_N}(0, 2),"
            rf"\quad \sigma \sim {_HN}(1) \\"
            r"\mu_{g,\ell} &= \operatorname{mean}_{c \in \ell}\, \theta_{g,c},\quad"
            r" \alpha_g = \operatorname{mean}_{\ell}\, \mu_{g,\ell}"
            r"\end{aligned}"
        ),
        required_columns=(),
        min_lineages=1,
        terms=MappingProxyType(
            {
                "gene_effect": "The plain average of this gene's cell-line means (over lineages).",
                "gene_lineage_effect": "The plain average of this gene's cell-line means in this lineage.",
                "gene_cell_line_effect": "This cell line's mean for this gene, from its own readings only.",
                "sigma": "How noisy is a single reading?",
            }
        ),
        builder=build_gene_cell_line_nopool,
        predictor=(LinearTerm("gene_cell_line_effect", ("gene", "cell_line")),),
        gene_lineage_effect="gene_lineage_effect",
        gene_cell_line_effect="gene_cell_line_effect",
        hyperparameters=("sigma",),
        pooled_counterpart="gene_lineage",
    )
)


def count_parameters(model: pm.Model) -> int:
    """Number of free (sampled) scalars of a built model."""
    point = model.initial_point()
    return int(sum(np.size(v) for v in point.values()))


def describe_models() -> pd.DataFrame:
    """One row per model: name, version, title, required columns (for a table on a page)."""
    return pd.DataFrame(
        [
            {
                "name": s.name,
                "version": s.version,
                "title": s.title,
                "required_columns": ", ".join(s.required_columns) or "-",
                "min_lineages": s.min_lineages,
            }
            for s in MODELS.values()
        ]
    )
