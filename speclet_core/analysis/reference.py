"""Reference genes: common-essential and non-essential genes as yardsticks and as a sanity check of a fit.

The lists ship with the package (``speclet_core/data/reference/``, source and licence in its README):
Hart et al.'s core-essential genes (CEGv2, 684 genes) and non-essential genes (NEGv1, 926 genes), as
BAGEL uses them. Symbols in a fit are matched through the one label matcher (``labels.match_labels``:
exactly, else ignoring case).

- ``compare_with_essentials``: for one gene, P(its effect < the median common-essential gene's effect),
  the median taken over the fit's common-essential genes (the gene itself left out) within every draw.
- ``check_reference_separation``: common-essential genes should be clearly negative and non-essential
  genes near 0; the separation is the median non-essential minus the median common-essential effect,
  per draw. Both need at least ``MIN_REFERENCE_GENES`` genes of each list in the fit.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np
import xarray as xr

from model_store import StoredFit
from model_store.stats import HDI_PROB, hdi_sorted
from speclet_core.analysis.draws import check_genes, gene_labels, load_samples, prepare_draws
from speclet_core.analysis.sentences import CLEAR, _p
from speclet_core.errors import AnalysisError
from speclet_core.labels import join_labels, match_labels

MIN_REFERENCE_GENES = 3  # fewer than this many genes of a list in a fit: no median worth comparing with
# the separation check: common-essential genes clearly below non-essential ones, and clearly negative
SEPARATION_PROB = 0.95
NEAR_ZERO = 0.5  # |median non-essential effect| above this (LFC) is not "near 0": the screen's scale is off
REFERENCE_SOURCE = ("Hart et al. 2017 (CEGv2, core-essential) and Hart et al. 2014 (NEGv1, non-essential), "
                    "as distributed with BAGEL (github.com/hart-lab/bagel, MIT licence)")
_FILES = {"essential": "CEGv2.tsv", "nonessential": "NEGv1.tsv"}


@dataclass(frozen=True)
class ReferenceGenes:
    """The shipped reference lists (gene symbols as published)."""

    essential: tuple[str, ...]
    nonessential: tuple[str, ...]
    source: str = REFERENCE_SOURCE


@dataclass(frozen=True)
class ReferenceInFit:
    """Which reference genes a fit holds (spelled as in the fit)."""

    essential: tuple[str, ...]
    nonessential: tuple[str, ...]

    @property
    def enough(self) -> bool:
        return len(self.essential) >= MIN_REFERENCE_GENES and len(self.nonessential) >= MIN_REFERENCE_GENES


@dataclass(frozen=True)
class ReferenceCheck:
    """The fit's sanity check on its reference genes (``check_reference_separation``)."""

    n_essential: int
    n_nonessential: int
    median_essential: float  # posterior mean of the per-draw median effect of the common-essential genes
    median_essential_hdi: tuple[float, float]
    median_nonessential: float
    median_nonessential_hdi: tuple[float, float]
    separation: float  # posterior mean of median non-essential − median common-essential
    separation_hdi: tuple[float, float]
    p_separated: float  # P(median common-essential < median non-essential)
    p_essential_negative: float  # P(median common-essential < 0)
    hdi_prob: float
    passed: bool
    problems: tuple[str, ...]


@functools.cache
def load_reference_genes() -> ReferenceGenes:
    """The common-essential and non-essential gene lists shipped with speclet."""
    lists: dict[str, tuple[str, ...]] = {}
    folder = resources.files("speclet_core.data") / "reference"
    for key, name in _FILES.items():
        try:
            lines = (folder / name).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise AnalysisError(f"the reference gene list {name} is missing from speclet_core/data/reference "
                                f"({exc}); reinstall speclet") from None
        header = lines[0].split("\t") if lines else []
        if not header or header[0] != "GENE":
            raise AnalysisError(f"the reference gene list {name} has no GENE column; restore it from the package")
        lists[key] = tuple(dict.fromkeys(s for s in (ln.split("\t")[0].strip() for ln in lines[1:]) if s))
    return ReferenceGenes(essential=lists["essential"], nonessential=lists["nonessential"])


def reference_in_fit(fit_genes: list[str] | tuple[str, ...], refs: ReferenceGenes | None = None) -> ReferenceInFit:
    """The reference genes among ``fit_genes`` (matched exactly, else ignoring case), spelled as in the fit."""
    refs = refs or load_reference_genes()
    known = [str(g) for g in fit_genes]
    essential, _ = match_labels(refs.essential, known)
    nonessential, _ = match_labels(refs.nonessential, known)
    return ReferenceInFit(essential=tuple(essential), nonessential=tuple(nonessential))


def describe_missing_reference(found: ReferenceInFit) -> str:
    """Why the reference comparison is not shown: the fit holds too few genes of a list."""
    return (f"The fit holds {len(found.essential)} common-essential and {len(found.nonessential)} non-essential "
            f"reference genes; comparing with them needs at least {MIN_REFERENCE_GENES} of each. Fit a selection "
            "that includes some (e.g. RPL11, RPS6, POLR2A and ABCG8, ACTL7A, AICDA), or all genes.")


def _median_over(values: np.ndarray, columns: list[int]) -> np.ndarray:
    return np.median(values[:, columns], axis=1)


def _hdi(x: np.ndarray, prob: float) -> tuple[float, float]:
    low, high = hdi_sorted(np.sort(x)[None, :], prob)
    return float(low[0]), float(high[0])


def _matrix(draws: xr.DataArray) -> tuple[list[str], np.ndarray]:
    da = prepare_draws(draws)
    return gene_labels(da), load_samples(da).astype(np.float64)


def check_reference_separation(draws: xr.DataArray, found: ReferenceInFit, *, hdi_prob: float = HDI_PROB
                               ) -> ReferenceCheck:
    """Do common-essential genes come out clearly negative and non-essential ones near 0?

    ``draws``: the gene-level effect (chain, draw, gene) holding the genes of ``found``. Passes when
    P(median common-essential < median non-essential) ≥ ``SEPARATION_PROB``, P(median common-essential
    < 0) ≥ ``SEPARATION_PROB`` and the median non-essential effect's posterior mean is within
    ``NEAR_ZERO`` of 0.
    """
    if not found.enough:
        raise AnalysisError(describe_missing_reference(found))
    genes, values = _matrix(draws)
    pos = {g: i for i, g in enumerate(genes)}
    check_genes(genes, [*found.essential, *found.nonessential])
    ess = _median_over(values, [pos[g] for g in found.essential])
    non = _median_over(values, [pos[g] for g in found.nonessential])
    sep = non - ess
    p_sep, p_neg = float(np.mean(ess < non)), float(np.mean(ess < 0))
    problems = []
    if p_sep < SEPARATION_PROB:
        problems.append(f"common-essential genes are not clearly below non-essential ones (P = {p_sep:.2f}, "
                        f"expected ≥ {SEPARATION_PROB:g})")
    if p_neg < SEPARATION_PROB:
        problems.append(f"the median common-essential gene is not clearly negative (P(effect < 0) = {p_neg:.2f})")
    if abs(float(non.mean())) > NEAR_ZERO:
        problems.append(f"the median non-essential gene's effect is {non.mean():+.2f}, not near 0 (within "
                        f"±{NEAR_ZERO:g}): the screen's LFC may not be centred or scaled as expected")
    return ReferenceCheck(
        n_essential=len(found.essential), n_nonessential=len(found.nonessential),
        median_essential=float(ess.mean()), median_essential_hdi=_hdi(ess, hdi_prob),
        median_nonessential=float(non.mean()), median_nonessential_hdi=_hdi(non, hdi_prob),
        separation=float(sep.mean()), separation_hdi=_hdi(sep, hdi_prob), p_separated=p_sep,
        p_essential_negative=p_neg, hdi_prob=float(hdi_prob), passed=not problems, problems=tuple(problems),
    )


def describe_reference_check(check: ReferenceCheck) -> str:
    """One sentence: the separation of the reference genes, and whether the fit passes the check."""
    pct = f"{check.hdi_prob:.0%} HDI"
    lo, hi = check.separation_hdi
    e_lo, e_hi = check.median_essential_hdi
    n_lo, n_hi = check.median_nonessential_hdi
    body = (f"the median of {check.n_essential} common-essential genes is {check.median_essential:+.2f} ({pct} "
            f"{e_lo:+.2f} to {e_hi:+.2f}) and of {check.n_nonessential} non-essential genes {check.median_nonessential:+.2f} "
            f"({n_lo:+.2f} to {n_hi:+.2f}): a separation of {check.separation:.2f} ({pct} {lo:.2f} to {hi:.2f})")
    if check.passed:
        return f"Reference genes behave as expected: {body}."
    return f"Reference-gene check failed: {body}; " + "; ".join(check.problems) + "."


@dataclass(frozen=True)
class EssentialComparison:
    """One gene against the median common-essential gene of the fit."""

    gene: str
    p_stronger: float  # P(effect < median common-essential effect)
    median_essential: float  # posterior mean of that median
    compared_with: tuple[str, ...]  # the common-essential genes the median is taken over
    gene_is_essential: bool


def compare_with_essentials(draws: xr.DataArray, gene: str, found: ReferenceInFit) -> EssentialComparison:
    """P(``gene``'s effect < the median common-essential gene's effect), draw by draw.

    The median is over the fit's common-essential genes other than ``gene`` (a reference gene is never
    compared with itself); needs ``MIN_REFERENCE_GENES`` of them.
    """
    genes, values = _matrix(draws)
    (gene,) = check_genes(genes, [gene])
    others = [g for g in found.essential if g != gene]
    if len(others) < MIN_REFERENCE_GENES:
        raise AnalysisError(f"the fit holds {len(others)} common-essential genes besides {gene} "
                            f"({join_labels(others) or 'none'}); the comparison needs at least {MIN_REFERENCE_GENES}")
    pos = {g: i for i, g in enumerate(genes)}
    check_genes(genes, others)
    median = _median_over(values, [pos[g] for g in others])
    effect = values[:, pos[gene]]
    return EssentialComparison(gene=gene, p_stronger=float(np.mean(effect < median)),
                               median_essential=float(median.mean()), compared_with=tuple(others),
                               gene_is_essential=gene in found.essential)


def describe_essential_comparison(c: EssentialComparison) -> str:
    """'KRAS is a weaker dependency than the median common-essential gene: as strong with P < 0.01 (…)'."""
    tag = " (itself a common-essential gene)" if c.gene_is_essential else ""
    verdict = ("as strong a dependency as the median common-essential gene, or stronger" if c.p_stronger >= CLEAR
               else "a weaker dependency than the median common-essential gene" if c.p_stronger <= 1 - CLEAR
               else "about as strong a dependency as the median common-essential gene")
    return (f"{c.gene}{tag} is {verdict}: it is as strong with {_p(c.p_stronger)}, the share of posterior draws in "
            f"which its effect is below the median of the {len(c.compared_with)}{' other' if c.gene_is_essential else ''} "
            "common-essential genes of the "
            f"fit (that median's mean: {c.median_essential:+.2f}).")


def fit_reference_check(fit: StoredFit, *, hdi_prob: float = HDI_PROB) -> tuple[ReferenceCheck | None, str]:
    """(the check, its sentence) for a stored fit; (None, why not) when it holds too few reference genes."""
    found = reference_in_fit(fit.manifest.genes)
    if not found.enough:
        return None, describe_missing_reference(found)
    draws = fit.draws(fit.manifest.roles.gene_effect, gene=[*found.essential, *found.nonessential])
    check = check_reference_separation(draws, found, hdi_prob=hdi_prob)
    return check, describe_reference_check(check)
