"""Models with a biomarker term (``gene_biomarker``) or a batch term only (``gene_batch``).

``gene_biomarker``: each gene's effect may differ between cell lines with and without a binary
marker (``--biomarker is_mutated:KRAS``), the difference partially pooled across genes:

- the marker enters as ``marker_x``: the cell line's marker (0/1) minus the share of marked cell
  lines in its lineage (``speclet_core.data.covariates.marker_covariate``). The gene × lineage
  means carry every lineage difference, so the marker contrast ``marker_effect`` is learned only
  between cell lines of the same lineage and is never a lineage difference in disguise; a
  lineage whose cell lines are all marked (or all unmarked) does not inform it;
- the gene × cell-line deviation is non-centred (a few readings per cell) and projected onto the
  directions orthogonal to the lineage indicators and to ``marker_x``, so within each lineage it
  sums to zero and has no marker trend: the marker contrast lives in ``marker_effect`` alone, and
  cell lines that differ regardless of the marker widen its interval instead of biasing it;
- the marker contrast is non-centred too: it is read through a handful of cell lines per gene.

An optional batch term (``--batch screen`` or ``pdna_batch``) adds a shift per batch for every
reading of it (zero-sum over batches), so a screen that depletes more overall does not bias the
gene effects, nor the marker contrast when marked cell lines were screened more in one screen.
Batches that vary within cell lines (Broad and Sanger screened the same cell line) identify the
shifts from within-cell-line comparisons; a batch that groups whole cell lines is told apart from
those cell lines' own deviations by the priors only.

Builders are pure: a prepared ``ScreenSelection`` (``speclet_core.fitting.request.apply_options``
adds ``marker_x`` and ``batch``) and the spec in, an unfitted ``pm.Model`` out.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from speclet_core.data.covariates import BATCH, MARKER_X, NO_BATCH
from speclet_core.data.selection import ScreenSelection
from speclet_core.errors import ModelError
from speclet_core.models.blocks import PRIOR_SCALE_NARROW, Layout, base_coords, gene_level, observe
from speclet_core.models.spec import LinearTerm, ModelSpec, register_model

MARKER_PRIOR_MU_SD = 1.0  # the typical marker contrast: within ±2 on the LFC scale


def cell_marker(selection: ScreenSelection) -> np.ndarray:
    """``marker_x`` of each cell line (in ``cell_lines`` order) from the per-reading column."""
    if MARKER_X not in selection.data.columns:
        raise ModelError(
            "model 'gene_biomarker' needs a marker: fit with --biomarker COLUMN (e.g. is_mutated:KRAS), "
            "or pass options={'biomarker': ...} to prepare_request"
        )
    c = selection.index("depmap_id")
    x = np.zeros(len(selection.cell_lines))
    x[c] = selection.data[MARKER_X].to_numpy(dtype=np.float64)
    return x


def batch_index(selection: ScreenSelection) -> tuple[list[str], np.ndarray]:
    """The batch labels (sorted) and each reading's batch position; one batch when there is no batch term."""
    if BATCH not in selection.data.columns:
        return [NO_BATCH], np.zeros(selection.n_rows, dtype=np.int64)
    labels = sorted(selection.data[BATCH].astype(str).unique())
    pos = {b: i for i, b in enumerate(labels)}
    return labels, selection.data[BATCH].astype(str).map(pos).to_numpy(dtype=np.int64)


def residual_projection(member: np.ndarray, x: np.ndarray | None) -> np.ndarray:
    """Cells × cells projection onto the directions orthogonal to the lineage indicators (and ``x``)."""
    design = member if x is None else np.column_stack([member, x])
    return np.eye(len(member)) - design @ np.linalg.pinv(design)


def _build(selection: ScreenSelection, spec: ModelSpec, *, with_marker: bool) -> pm.Model:
    lay = Layout(selection)
    x = cell_marker(selection) if with_marker else None
    batches, b_idx = batch_index(selection)
    coords = base_coords(selection, "gene", "lineage", "cell_line")
    coords["batch"] = batches
    proj = residual_projection(lay.member, x)
    with pm.Model(coords=coords) as model:
        alpha = gene_level()
        if lay.n_lineages > 1:
            sigma_d = pm.HalfNormal("sigma_gene_lineage", PRIOR_SCALE_NARROW)
            delta = pm.ZeroSumNormal("gene_lineage_effect_raw", sigma=sigma_d, dims=("gene", "lineage"))
            mu_gl = pm.Deterministic("gene_lineage_effect", alpha[:, None] + delta, dims=("gene", "lineage"))
        else:
            mu_gl = pm.Deterministic("gene_lineage_effect", alpha[:, None], dims=("gene", "lineage"))
        gamma = pt.dot(mu_gl, lay.member.T)
        if x is not None:
            mu_m = pm.Normal("mu_marker", 0.0, MARKER_PRIOR_MU_SD)
            sigma_m = pm.HalfNormal("sigma_marker", PRIOR_SCALE_NARROW)
            z_m = pm.Normal("marker_effect_raw", 0.0, 1.0, dims="gene")
            beta = pm.Deterministic("marker_effect", mu_m + sigma_m * z_m, dims="gene")
            gamma = gamma + beta[:, None] * x[None, :]
            _marked_means(lay, x, mu_gl, beta)
        sigma_e = pm.HalfNormal("sigma_gene_cell_line", PRIOR_SCALE_NARROW)
        z = pm.Normal("gene_cell_line_effect_raw", 0.0, 1.0, shape=(lay.n_genes, lay.n_cells))
        gc = pm.Deterministic("gene_cell_line_effect", gamma + sigma_e * pt.dot(z, proj), dims=("gene", "cell_line"))
        if len(batches) > 1:
            sigma_b = pm.HalfNormal("sigma_batch", PRIOR_SCALE_NARROW)
            shift = pm.ZeroSumNormal("batch_effect", sigma=sigma_b, dims="batch")
        else:
            shift = pm.Deterministic("batch_effect", pt.zeros(1), dims="batch")
        observe(spec, gc.ravel()[lay.gc_flat] + shift[b_idx], selection)
    return model


def _marked_means(lay: Layout, x: np.ndarray, mu_gl: pt.TensorVariable, beta: pt.TensorVariable) -> None:
    """``gene_marked_effect`` / ``gene_unmarked_effect``: the expected effect in a marked / unmarked cell line.

    In lineage l a marked cell line expects ``mu_gl + beta (1 - share_l)`` and an unmarked one
    ``mu_gl - beta share_l``; each is averaged over the lineages of the screened marked (unmarked)
    cell lines, weighted by how many there are.
    """
    lineage_of = lay.lineage_of
    counts = np.bincount(lineage_of, minlength=lay.n_lineages).astype(np.float64)
    marked = x > 0
    n_marked = np.bincount(lineage_of, weights=marked.astype(float), minlength=lay.n_lineages)
    share = n_marked / np.maximum(counts, 1.0)
    w_marked = n_marked / max(n_marked.sum(), 1.0)
    n_unmarked = counts - n_marked
    w_unmarked = n_unmarked / max(n_unmarked.sum(), 1.0)
    marked_gl = mu_gl + beta[:, None] * (1.0 - share)[None, :]
    unmarked_gl = mu_gl - beta[:, None] * share[None, :]
    pm.Deterministic("gene_marked_effect", pt.dot(marked_gl, w_marked), dims="gene")
    pm.Deterministic("gene_unmarked_effect", pt.dot(unmarked_gl, w_unmarked), dims="gene")
    # which cell lines the marker marked, kept with the fit so pages and rank can name them
    pm.Deterministic("cell_line_marked", pt.as_tensor_variable(marked.astype(np.float64)), dims="cell_line")


def build_gene_biomarker(selection: ScreenSelection, spec: ModelSpec) -> pm.Model:
    """Gene, gene × lineage, a marker contrast per gene, gene × cell line, optional batch shifts."""
    return _build(selection, spec, with_marker=True)


def build_gene_batch(selection: ScreenSelection, spec: ModelSpec) -> pm.Model:
    """Gene, gene × lineage, gene × cell line and a shift per batch (screen or pDNA batch)."""
    return _build(selection, spec, with_marker=False)


_N = r"\mathcal{N}"
_HN = r"\mathcal{HN}"
_ZSN = r"\mathcal{ZSN}"
_LIKELIHOOD = rf"\mathrm{{lfc}}_i &\sim {_N}(\gamma_{{g[i],c[i]}} + b_{{\mathrm{{batch}}[i]}}, \sigma)"
_GENE_LINES = (
    rf"\alpha_g &\sim {_N}(\mu_\alpha, \sigma_\alpha),\quad \mu_{{g,\cdot}} = \alpha_g + \delta_{{g,\cdot}},"
    rf"\quad \delta_{{g,\cdot}} \sim {_ZSN}_{{\ell}}(\sigma_\delta)",
)
_PRIORS = (
    rf"&\mu_\alpha \sim {_N}(0, 2),\ \sigma_\alpha \sim {_HN}(2.5),\ \sigma, \sigma_\delta, \sigma_\gamma, \sigma_b "
    rf"\sim {_HN}(1),\quad b \sim {_ZSN}(\sigma_b)"
)
_BATCH_TERMS = {
    "batch_effect": "Does this screen or pDNA batch read every guide lower (or higher) than the others?",
}


def _equation(*lines: str) -> str:
    return r"\begin{aligned}" + r" \\".join(lines) + r"\end{aligned}"


register_model(
    ModelSpec(
        name="gene_biomarker",
        version="1",
        title="Gene × lineage + biomarker contrast (marked vs unmarked cell lines)",
        description=(
            "Is this gene a stronger dependency in cell lines that carry a marker (e.g. KRAS-mutant, from "
            "--biomarker is_mutated:KRAS)? Each gene has an average effect, a mean per lineage, and a difference "
            "between marked and unmarked cell lines of the same lineage (marker_effect), partially pooled across "
            "genes around a common shift. The marker is centred within each lineage, so lineage differences stay "
            "in the gene × lineage means and the marker difference is learned only within lineages (a lineage with "
            "only marked or only unmarked cell lines does not inform it). Each cell line also deviates from what "
            "its lineage and marker predict (non-centred, orthogonal to both), so a few unusual cell lines widen "
            "the interval instead of faking a marker effect. With --batch screen (or pdna_batch) every reading "
            "also gets its screen's or batch's shift (zero-sum), so mixed screens do not bias the effects."
        ),
        equation=_equation(
            _LIKELIHOOD,
            rf"\gamma_{{g,c}} &= \mu_{{g,\ell[c]}} + \beta_g\, x_c + \sigma_\gamma (P z_g)_c,\quad "
            rf"x_c = m_c - \bar m_{{\ell[c]}},\quad z_{{g,c}} \sim {_N}(0, 1)",
            rf"\beta_g &= \mu_\beta + \sigma_\beta\, u_g,\quad u_g \sim {_N}(0, 1),\quad \mu_\beta \sim {_N}(0, 1),"
            rf"\ \sigma_\beta \sim {_HN}(1)",
            *_GENE_LINES,
            _PRIORS,
        ),
        terms=MappingProxyType({
            "gene_effect": "How strongly does knocking out this gene reduce growth, on average over lineages?",
            "gene_lineage_effect": "Is this gene a stronger (or weaker) dependency in this lineage?",
            "gene_cell_line_effect": "How strongly does this cell line depend on this gene?",
            "marker_effect": "How much stronger (negative) or weaker is this gene's effect in marked cell lines "
                             "than in unmarked ones of the same lineage?",
            "gene_marked_effect": "How strongly do marked cell lines depend on this gene?",
            "gene_unmarked_effect": "How strongly do unmarked cell lines depend on this gene?",
            "mu_marker": "Do marked cell lines depend more on the typical gene?",
            "sigma_marker": "How much do genes differ in their marker contrast?",
            "sigma_gene_lineage": "How much do lineages differ in their dependency on the same gene?",
            "sigma_gene_cell_line": "How much do cell lines differ beyond their lineage and marker?",
            **_BATCH_TERMS,
            "sigma": "How noisy is a single reading?",
        }),
        builder=build_gene_biomarker,
        predictor=(LinearTerm("gene_cell_line_effect", ("gene", "cell_line")), LinearTerm("batch_effect", ("batch",))),
        gene_lineage_effect="gene_lineage_effect",
        gene_cell_line_effect="gene_cell_line_effect",
        hyperparameters=("mu_gene", "sigma_gene", "mu_marker", "sigma_marker", "sigma_gene_cell_line", "sigma"),
        options=("biomarker", "batch"),
        required_options=("biomarker",),
    )
)

register_model(
    ModelSpec(
        name="gene_batch",
        version="1",
        title="Gene × lineage hierarchy + screen / pDNA-batch shifts",
        description=(
            "Like gene_lineage (gene effect, gene × lineage means, gene × cell-line deviations that sum to zero "
            "within the lineage, non-centred), plus a shift per batch that applies to every reading of it: "
            "--batch screen separates the Broad (Avana) and Sanger (Project Score) screens, --batch pdna_batch "
            "the pDNA batches. The shifts sum to zero over batches, so the gene effect stays the average over "
            "batches and a cell line screened only by the screen that depletes more is not read as a stronger "
            "dependency. Without --batch it is gene_lineage with one spread for all lineages."
        ),
        equation=_equation(
            _LIKELIHOOD,
            rf"\gamma_{{g,c}} &= \mu_{{g,\ell[c]}} + \sigma_\gamma (P z_g)_c,\quad z_{{g,c}} \sim {_N}(0, 1)",
            *_GENE_LINES,
            _PRIORS,
        ),
        terms=MappingProxyType({
            "gene_effect": "How strongly does knocking out this gene reduce growth, on average over lineages?",
            "gene_lineage_effect": "Is this gene a stronger (or weaker) dependency in this lineage?",
            "gene_cell_line_effect": "How strongly does this cell line depend on this gene?",
            "sigma_gene_cell_line": "How much do cell lines differ around their lineage?",
            **_BATCH_TERMS,
            "sigma": "How noisy is a single reading?",
        }),
        builder=build_gene_batch,
        predictor=(LinearTerm("gene_cell_line_effect", ("gene", "cell_line")), LinearTerm("batch_effect", ("batch",))),
        gene_lineage_effect="gene_lineage_effect",
        gene_cell_line_effect="gene_cell_line_effect",
        hyperparameters=("mu_gene", "sigma_gene", "sigma_gene_cell_line", "sigma"),
        options=("batch",),
    )
)
