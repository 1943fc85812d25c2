"""The catalog's entries: hierarchical models of CRISPR screen log fold changes, with their equations.

Each entry (a ``ModelSpec``, see ``speclet_core.models.spec``) says in plain language what
its effects mean, gives the equation exactly as fitted, and declares which variables play
which role, so pages can show any model without knowing it.

Shared conventions (every model):

- the same name means the same thing everywhere: ``gene_effect`` (dims ``gene``) is the
  gene's average LFC over its sgRNAs and lineages; ``gene_lineage_effect`` (gene, lineage)
  and ``gene_cell_line_effect`` (gene, cell_line) are that gene's mean in a lineage / in a
  cell line; ``rna_slope`` / ``cn_slope`` (gene) are covariate slopes; the observed
  variable is ``lfc`` with dim ``reading``;
- identifiable: one free location per level (the gene effect, drawn around ``mu_gene``);
  every deviation below it sums to zero within its parent, so the data determine each
  effect instead of only their sums (free means stacked at several levels make a ridge
  a sampler cannot follow);
- parameterisation per level, by how much data informs it: levels read hundreds of times
  (gene, sgRNA, cell line, gene × lineage) are centred, the thinly read gene × cell-line
  deviation is non-centred (a few readings per cell give the centred form a funnel);
- variables ending in ``_raw`` are sampler internals (free coordinates of zero-sum
  deviations); fits do not store them. Each spec declares its linear predictor
  (``predictor``) in terms of stored variables, so predictions and the log-likelihood
  are computed from a stored posterior alone.

Builders are pure: a ``ScreenSelection`` and the model's spec in, an unfitted ``pm.Model`` out.
"""

from __future__ import annotations

from types import MappingProxyType

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
from speclet_core.models.spec import Builder, LinearTerm, ModelSpec, register_model

# --------------------------------------------------------------------------- builders


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


# --------------------------------------------------------------------------- the catalog

_HN = r"\mathcal{HN}"
_N = r"\mathcal{N}"
_ZSN = r"\mathcal{ZSN}"
_GENE_PRIORS = rf"\mu_\alpha \sim {_N}(0, 2),\quad \sigma_\alpha \sim {_HN}(2.5),\quad \sigma \sim {_HN}(1)"

# questions every page asks of the same variable, whichever model it is in
_ASK_TYPICAL_GENE = "What is the typical gene's effect?"
_ASK_GENE_SPREAD = "How much do genes differ from each other?"
_ASK_CELL_LINE_SHIFT = "Does this cell line lose more (or less) of every guide than the others?"
_ASK_GENE_LINEAGE = "Is this gene a stronger (or weaker) dependency in this lineage?"
_ASK_LINEAGE_SPREAD = "How much do lineages differ in their dependency on the same gene?"


def _terms(**questions: str) -> MappingProxyType[str, str]:
    """The plain-language question each variable answers; the reading noise comes last in every model."""
    return MappingProxyType({**questions, "sigma": "How noisy is a single reading?"})


def _equation(*lines: str) -> str:
    r"""One LaTeX ``aligned`` block, a line per argument (joined by ``\\``)."""
    return r"\begin{aligned}" + r" \\".join(lines) + r"\end{aligned}"


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
        equation=_equation(
            rf"\mathrm{{lfc}}_i &\sim {_N}(\alpha_{{g[i]}}, \sigma)",
            rf"\alpha_g &\sim {_N}(\mu_\alpha, \sigma_\alpha)",
            rf"&{_GENE_PRIORS}",
        ),
        terms=_terms(
            gene_effect="How strongly does knocking out this gene reduce growth, on average?",
            mu_gene=_ASK_TYPICAL_GENE,
            sigma_gene=_ASK_GENE_SPREAD,
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
        equation=_equation(
            rf"\mathrm{{lfc}}_i &\sim {_N}(\alpha_{{g[i]}} + \gamma_{{c[i]}}, \sigma)",
            rf"\alpha_g &\sim {_N}(\mu_\alpha, \sigma_\alpha),\quad \gamma \sim {_ZSN}(\sigma_\gamma)",
            rf"&{_GENE_PRIORS},\quad \sigma_\gamma \sim {_HN}(2.5)",
        ),
        terms=_terms(
            gene_effect="How strongly does knocking out this gene reduce growth, on average over cell lines?",
            cell_line_effect=_ASK_CELL_LINE_SHIFT,
            mu_gene=_ASK_TYPICAL_GENE,
            sigma_gene=_ASK_GENE_SPREAD,
            sigma_cell_line="How much do cell lines differ overall?",
        ),
        builder=build_gene_cell_line,
        predictor=(LinearTerm("gene_effect", ("gene",)), LinearTerm("cell_line_effect", ("cell_line",))),
        hyperparameters=("mu_gene", "sigma_gene", "sigma_cell_line", "sigma"),
    )
)


def _register_covariate_model(
    name: str, title: str, description: str, builder: Builder, *, column: str, slope: str, symbol: str,
    questions: tuple[str, str, str, str],
) -> None:
    """``gene_cell_line`` plus a gene-specific slope on one covariate (``gene_rna``, ``gene_cn``).

    ``questions``: what the gene effect, the slope, the slopes' mean and their spread answer.
    """
    gene_q, slope_q, mu_q, sigma_q = questions
    x = rf"\mathrm{{{symbol}}}_i"
    register_model(
        ModelSpec(
            name=name,
            version="1",
            title=title,
            description=description,
            equation=_equation(
                rf"\mathrm{{lfc}}_i &\sim {_N}(\alpha_{{g[i]}} + \gamma_{{c[i]}} + \beta_{{g[i]}} {x}, \sigma)",
                rf"\alpha_g &\sim {_N}(\mu_\alpha, \sigma_\alpha),\quad \gamma \sim {_ZSN}(\sigma_\gamma),"
                rf"\quad \beta_g \sim {_N}(\mu_\beta, \sigma_\beta)",
                rf"&{_GENE_PRIORS},\quad \sigma_\gamma, \sigma_\beta \sim {_HN}(2.5),\quad \mu_\beta \sim {_N}(0, 2)",
            ),
            required_columns=(column,),
            terms=_terms(**{
                "gene_effect": gene_q, slope: slope_q, "cell_line_effect": _ASK_CELL_LINE_SHIFT,
                f"mu_{slope}": mu_q, f"sigma_{slope}": sigma_q,
            }),
            builder=builder,
            predictor=(
                LinearTerm("gene_effect", ("gene",)),
                LinearTerm("cell_line_effect", ("cell_line",)),
                LinearTerm(slope, ("gene",), f"{column}_z"),
            ),
            hyperparameters=("mu_gene", "sigma_gene", "sigma_cell_line", f"mu_{slope}", f"sigma_{slope}", "sigma"),
            covariate_slopes=(slope,),
        )
    )


_register_covariate_model(
    "gene_rna",
    "Gene and cell-line intercepts + RNA expression slope",
    "Like gene_cell_line, plus a gene-specific slope on the gene's RNA expression (log2 TPM+1, z-scored "
    "within the gene): does the knockout hurt more in cell lines that express the gene more? Because "
    "expression is centred within each gene, the gene effect is the average effect at the gene's "
    "average expression. Slopes share a mean and spread across genes. All levels are centred.",
    build_gene_rna,
    column="rna_expr",
    slope="rna_slope",
    symbol="rna",
    questions=(
        "How strongly does knocking out this gene reduce growth, at its average expression?",
        "Does the knockout hurt more where the gene is expressed more (per standard deviation)?",
        "Is higher expression typically linked to stronger dependency?",
        "How much do genes differ in that link?",
    ),
)

_register_covariate_model(
    "gene_cn",
    "Gene and cell-line intercepts + copy-number slope",
    "Like gene_cell_line, plus a gene-specific slope on the gene's copy number (log2, centred within the "
    "gene). Cutting amplified DNA kills cells whatever the gene does, so a negative slope flags a "
    "copy-number artefact rather than a true dependency. The gene effect is the effect at the gene's "
    "typical copy number. All levels are centred.",
    build_gene_cn,
    column="gene_cn",
    slope="cn_slope",
    symbol="cn",
    questions=(
        "How strongly does knocking out this gene reduce growth, at its typical copy number?",
        "Do cell lines with more copies of the gene lose more of it (a cutting artefact)?",
        "How strong is the copy-number artefact typically?",
        "How much do genes differ in it?",
    ),
)


def _gene_lineage_lines(cell_spread: str) -> tuple[str, ...]:
    """Equation lines of the gene → gene × lineage → gene × cell-line levels (``cell_spread``: their spread)."""
    return (
        rf"\alpha_g &\sim {_N}(\mu_\alpha, \sigma_\alpha)",
        rf"\mu_{{g,\cdot}} &= \alpha_g + \delta_{{g,\cdot}},\quad \delta_{{g,\cdot}} \sim {_ZSN}_{{\ell}}(\sigma_\delta)",
        rf"\gamma_{{g,c}} &= \mu_{{g,\ell[c]}} + {cell_spread}\, z_{{g,c}},"
        rf"\quad z_{{g,\cdot}} \sim {_ZSN}_{{c \in \ell}}(1)",
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
        equation=_equation(
            rf"\mathrm{{lfc}}_i &\sim {_N}(\gamma_{{g[i],c[i]}}, \sigma)",
            *_gene_lineage_lines(r"\sigma_\gamma[\ell[c]]"),
            rf"&{_GENE_PRIORS},\quad \sigma_\delta, \sigma_\gamma[\ell] \sim {_HN}(1)",
        ),
        min_lineages=2,
        terms=_terms(
            gene_effect="How strongly does knocking out this gene reduce growth, on average over lineages?",
            gene_lineage_effect=_ASK_GENE_LINEAGE,
            gene_cell_line_effect="How strongly does this cell line depend on this gene?",
            sigma_gene_lineage=_ASK_LINEAGE_SPREAD,
            sigma_gene_cell_line="How much do cell lines of this lineage differ around their lineage?",
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
        equation=_equation(
            rf"\mathrm{{lfc}}_i &\sim {_N}(\gamma_{{g[i],c[i]}} + \eta_{{s[i]}} + \lambda_{{\ell[c[i]]}} "
            r"+ \zeta_{c[i]}, \sigma)",
            rf"\eta &\sim {_ZSN}_{{s \in g}}(\sigma_\eta),\quad \lambda \sim {_ZSN}(\sigma_\lambda),"
            rf"\quad \zeta \sim {_ZSN}_{{c \in \ell}}(\sigma_\zeta)",
            *_gene_lineage_lines(r"\sigma_\gamma"),
            rf"&{_GENE_PRIORS},\quad \sigma_\delta, \sigma_\gamma \sim {_HN}(1)"
            rf",\quad \sigma_\eta, \sigma_\lambda, \sigma_\zeta \sim {_HN}(1)",
        ),
        min_lineages=2,
        terms=_terms(
            gene_effect="How strongly does knocking out this gene reduce growth, on average over lineages?",
            gene_lineage_effect=_ASK_GENE_LINEAGE,
            gene_cell_line_effect="How strongly does this cell line depend on this gene, beyond shifts?",
            sgrna_effect="Does this guide cut better or worse than the other guides of its gene?",
            cell_line_effect=_ASK_CELL_LINE_SHIFT,
            lineage_effect="Does this lineage lose more (or less) of every guide than the others?",
            sigma_sgrna="How much do guides of the same gene disagree?",
            sigma_gene_lineage=_ASK_LINEAGE_SPREAD,
            sigma_gene_cell_line="How much do cell lines differ from their lineage in their dependency on a gene?",
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
        name="sgrna_gene_cell_line",
        version="1",
        title="sgRNA, cell line, gene and gene × cell line, one lineage (genome-wide)",
        description=(
            "The model for one lineage at a time, e.g. all ~18,000 genes of a lineage's cell lines. Each guide "
            "deviates from its gene (deviations sum to zero within the gene, so a bad guide cannot shift the gene); "
            "each cell line has a shift that applies to every guide in it (shifts sum to zero over the cell lines); "
            "each gene has an effect, and its effect in each cell line deviates from it (each gene's deviations sum "
            "to zero over the cell lines). Shift and deviation are told apart by what genes share: the part of the "
            "deviations that every gene has in common in a cell line is that cell line's shift, so a gene × "
            "cell-line effect is what is left of the cell line's dependency on the gene once guide and cell-line-"
            "wide shifts are removed. So the gene effect is the gene's average over its guides and cell lines. "
            "Levels are centred or non-centred by how often each is read (usually gene, guide and cell line "
            "centred, gene × cell line non-centred). For several lineages use the flagship, sgrna_gene_lineage."
        ),
        equation=_equation(
            rf"\mathrm{{lfc}}_i &\sim {_N}(\gamma_{{g[i],c[i]}} + \eta_{{s[i]}} + \zeta_{{c[i]}}, \sigma)",
            rf"\eta &\sim {_ZSN}_{{s \in g}}(\sigma_\eta),\quad \zeta \sim {_ZSN}_{{c}}(\sigma_\zeta)",
            rf"\alpha_g &\sim {_N}(\mu_\alpha, \sigma_\alpha)",
            rf"\gamma_{{g,c}} &= \alpha_g + \varepsilon_{{g,c}},\quad \varepsilon_{{g,\cdot}} \sim {_ZSN}_{{c}}(\sigma_\gamma)",
            rf"&{_GENE_PRIORS},\quad \sigma_\eta, \sigma_\zeta, \sigma_\gamma \sim {_HN}(1)",
        ),
        max_lineages=1,
        lineage_counterpart="sgrna_gene_lineage",
        terms=_terms(
            gene_effect="How strongly does knocking out this gene reduce growth, on average over this lineage's "
                        "cell lines?",
            gene_cell_line_effect="How strongly does this cell line depend on this gene, beyond shifts?",
            sgrna_effect="Does this guide cut better or worse than the other guides of its gene?",
            cell_line_effect=_ASK_CELL_LINE_SHIFT,
            mu_gene=_ASK_TYPICAL_GENE,
            sigma_gene=_ASK_GENE_SPREAD,
            sigma_sgrna="How much do guides of the same gene disagree?",
            sigma_cell_line="How much do cell lines differ overall?",
            sigma_gene_cell_line="How much do cell lines differ in their dependency on a gene?",
        ),
        builder=build_sgrna_gene_cell_line,
        predictor=(
            LinearTerm("gene_cell_line_effect", ("gene", "cell_line")),
            LinearTerm("sgrna_effect", ("sgrna",)),
            LinearTerm("cell_line_effect", ("cell_line",)),
        ),
        gene_cell_line_effect="gene_cell_line_effect",
        hyperparameters=(
            "mu_gene", "sigma_gene", "sigma_sgrna", "sigma_cell_line", "sigma_gene_cell_line", "sigma",
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
        equation=_equation(
            rf"\mathrm{{lfc}}_i &\sim {_N}(\theta_{{g[i],c[i]}}, \sigma),\quad \theta_{{g,c}} \sim {_N}(0, 2),"
            rf"\quad \sigma \sim {_HN}(1)",
            r"\mu_{g,\ell} &= \operatorname{mean}_{c \in \ell}\, \theta_{g,c},\quad"
            r" \alpha_g = \operatorname{mean}_{\ell}\, \mu_{g,\ell}",
        ),
        terms=_terms(
            gene_effect="The plain average of this gene's cell-line means (over lineages).",
            gene_lineage_effect="The plain average of this gene's cell-line means in this lineage.",
            gene_cell_line_effect="This cell line's mean for this gene, from its own readings only.",
        ),
        builder=build_gene_cell_line_nopool,
        predictor=(LinearTerm("gene_cell_line_effect", ("gene", "cell_line")),),
        gene_lineage_effect="gene_lineage_effect",
        gene_cell_line_effect="gene_cell_line_effect",
        hyperparameters=("sigma",),
        pooled_counterpart="gene_lineage",
    )
)
