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

from speclet_core.models.builders import (
    build_gene,
    build_gene_cell_line,
    build_gene_cell_line_nopool,
    build_gene_cn,
    build_gene_lineage,
    build_gene_rna,
    build_sgrna_gene_cell_line,
    build_sgrna_gene_lineage,
)
from speclet_core.models.spec import Builder, LinearTerm, ModelSpec, register_model

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
