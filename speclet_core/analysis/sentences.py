"""Plain-language sentences about posterior results: pairs, selective dependencies, recovery, shrinkage, checks, LOO.

Conventions: probabilities read as shares of posterior draws ("in 97% of posterior draws"), and a
difference is "clear" when one side wins in at least ``CLEAR`` of the draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from speclet_core.errors import AnalysisError
from speclet_core.labels import count_noun

CLEAR = 0.75  # a pairwise/contrast probability this far from 0.5 is "clear"


def describe_pair(gene_a: str, gene_b: str, p: float, *, n_samples: int | None = None, clear: float = CLEAR) -> str:
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


def describe_selective(
    gene: str, lineage: str, *, p_dependency: float, p_stronger: float, mean_in_lineage: float,
    versus: str | None = None, clear: float = CLEAR,
) -> str:
    """A sentence on whether ``gene`` is a selective dependency of ``lineage`` (see ``contrasts.contrast_lineage``).

    >>> describe_selective("KRAS", "colorectal", p_dependency=0.98, p_stronger=0.95, mean_in_lineage=-1.2)
    'KRAS is a dependency in colorectal (P = 0.98) and stronger there than in the other lineages (P = 0.95)'
    >>> describe_selective("TP53", "pancreas", p_dependency=0.0, p_stronger=0.99, mean_in_lineage=0.19)
    'TP53 is not a dependency in pancreas (mean effect +0.19); it is less positive there than in the other lineages (P = 0.99)'

    A gene is called a dependency in the lineage only when its posterior mean effect there is
    negative and P(dependency) ≥ ``clear``; a positive mean effect is never called one, and a
    gene that is not a dependency is never called a "stronger" one.
    """
    p_dep, p_str = _check_probability(p_dependency), _check_probability(p_stronger)
    if not 0.5 <= clear < 1.0:
        raise AnalysisError(f"clear must be in [0.5, 1), got {clear}")
    mean = float(mean_in_lineage)
    other = "the other lineages" if versus is None else versus
    if mean < 0 and p_dep >= clear:
        head = f"{gene} is a dependency in {lineage} ({_p(p_dep)})"
        if p_str >= clear:
            return f"{head} and stronger there than in {other} ({_p(p_str)})"
        if 1.0 - p_str >= clear:
            return f"{head}, but a weaker one there than in {other} ({_p(1.0 - p_str)})"
        return f"{head}; no clear difference from {other} (stronger in {lineage}: {_p(p_str)})"
    if mean < 0:
        head = f"{gene} is not clearly a dependency in {lineage} ({_p(p_dep)}, mean effect {mean:+.2f})"
        more = "more negative"
    else:
        head = f"{gene} is not a dependency in {lineage} (mean effect {mean:+.2f})"
        more = "less positive"
    if p_str >= clear:
        return f"{head}; it is {more} there than in {other} ({_p(p_str)})"
    if 1.0 - p_str >= clear:
        return f"{head}; its effect is higher there than in {other} ({_p(1.0 - p_str)})"
    return head


def describe_recovery(rec: Mapping[str, float], inner: float, outer: float, what: str = "genes") -> str:
    """One sentence on parameter recovery (empty without truth); ``recovery_problems`` says whether it is as promised."""
    n = int(rec.get("n", 0))
    if not n:
        return ""
    k_out, k_in = round(rec["inside_outer"] * n), round(rec["inside_inner"] * n)
    counted = count_noun(n, what.removesuffix("s"), what)  # "1 lineage", "3 lineages"
    return (f"The true value lies inside the {outer:.0%} interval for {k_out} of {counted} ({rec['inside_outer']:.0%}) "
            f"and inside the {inner:.0%} interval for {k_in} ({rec['inside_inner']:.0%}); well-calibrated intervals "
            f"hold about {outer:.0%} and {inner:.0%}. Posterior means are off by {rec['rmse']:.2f} on average (RMSE).")


def recovery_problems(rec: Mapping[str, float], inner: float, outer: float) -> list[str]:
    """What is out of line in a recovery summary (``forest.recovery``): coverage outside Binomial(n, p) tolerance."""
    from speclet_core.analysis.recovery import coverage_problem

    n = int(rec.get("n", 0))
    if not n:
        return []
    out = [coverage_problem(n, round(rec["inside_outer"] * n), outer),
           coverage_problem(n, round(rec["inside_inner"] * n), inner)]
    return [p[0].upper() + p[1:] + "." for p in out if p]


def describe_shrinkage(table: pd.DataFrame, name_a: str, name_b: str) -> str:
    """Plain-language summary of how fit ``a``'s estimates differ from fit ``b``'s (pooling shows as shrinkage)."""
    n = len(table)
    narrower = int((table["width_ratio"] < 1).sum())
    ratio = float(np.nanmedian(table["width_ratio"]))
    spread_a = float(np.std(table["mean_a"], ddof=1)) if n > 1 else 0.0
    spread_b = float(np.std(table["mean_b"], ddof=1)) if n > 1 else 0.0
    text = (f"{name_a} gives a narrower interval than {name_b} for {narrower} of {n} ({narrower / n:.0%}); "
            f"the median width ratio is {ratio:.2f}. ")
    if n > 1:
        toward = "closer together" if spread_a < spread_b else "further apart"
        text += (f"Its posterior means lie {toward} (spread {spread_a:.2f} vs {spread_b:.2f})")
        text += (": partial pooling pulls noisy estimates towards the group, which is the shrinkage to expect."
                 if spread_a < spread_b else ".")
    return text


def describe_ppc(stats: pd.DataFrame) -> str:
    """One sentence: which statistics of the data the model reproduces, which it misses."""
    bad = stats[stats["surprising"]]
    if bad.empty:
        return ("The observed mean, spread and tails are each reached by at least 1% of the data sets simulated "
                "from the fitted model, on both sides: no sign of misfit in these summaries.")
    parts = [f"{r.statistic} (observed {r.observed:.2f}, predicted {r.predicted_low:.2f} to {r.predicted_high:.2f})"
             for r in bad.itertuples()]
    return "The model does not reproduce the observed " + "; ".join(parts) + ". Consider a model with more structure."


def describe_loo(table: pd.DataFrame, verdicts: Mapping[str, Any]) -> list[str]:
    """Plain-language reading of a LOO table: which fit predicts held-out readings best, and how clearly.

    ``verdicts`` maps each fit's name (the table's ``fit``) to its ``diagnostics.verdict.FitVerdict``:
    a fit that is not ``converged`` is never named best without saying so, and the best fit that
    passed its diagnostics is named too.
    """
    missing = [f for f in table["fit"] if f not in verdicts]
    if missing:
        raise AnalysisError(f"no verdict given for {', '.join(map(str, missing))}; pass every fit's stored verdict")

    def flagged(name: str) -> bool:
        return str(verdicts[name].level) != "converged"

    best = table.iloc[0]
    head = f"{best['fit']} predicts held-out readings best (ELPD {best['elpd_loo']:.1f} ± {best['se']:.1f})"
    if flagged(best["fit"]):
        v = verdicts[best["fit"]]
        passed = [f for f in table["fit"] if not flagged(f)]
        head += (f", but it did not pass its diagnostics ({v.headline.lower()}): its ELPD is not reliable, so do not "
                 "choose it before refitting it; ")
        head += (f"of the fits that passed, {passed[0]} predicts best." if passed
                 else "none of the compared fits passed its diagnostics.")
    else:
        head += "."
    out = [head]
    for r in table.iloc[1:].itertuples():
        clear = abs(r.elpd_diff) > 2 * r.dse if r.dse > 0 else abs(r.elpd_diff) > 0
        verdict = "a clear difference" if clear else "within noise: the data do not separate them"
        note = f"; it did not pass its diagnostics ({verdicts[r.fit].headline.lower()})" if flagged(r.fit) else ""
        out.append(f"{r.fit} is worse by {abs(r.elpd_diff):.1f} ± {r.dse:.1f} ELPD ({verdict}){note}.")
    bad = table[table["share_bad_k"] > 0]
    for r in bad.itertuples():
        out.append(f"{r.fit}: {r.share_bad_k:.1%} of readings have Pareto k > 0.7, so its LOO estimate is "
                   "unreliable for them (influential readings).")
    return out


def pairwise_sentences(comparison: Any, *, limit: int = 10) -> list[str]:
    """Sentences for neighbouring genes of a pairwise comparison (its genes in ranking order)."""
    genes = list(comparison.genes)
    out = []
    for a, b in zip(genes[:-1], genes[1:], strict=True):
        out.append(describe_pair(a, b, float(comparison.p_less.loc[a, b]), n_samples=comparison.n_samples))
        if len(out) >= limit:
            break
    return out


def contrast_sentences(table: pd.DataFrame, *, limit: int = 5) -> list[str]:
    """Sentences for the first rows of a selective-dependency list (``contrasts.selective_list``)."""
    versus = table.attrs.get("versus")
    return [describe_selective(r.gene, r.lineage, p_dependency=float(r.p_dependency), p_stronger=float(r.p_stronger),
                               mean_in_lineage=float(r.mean_in_lineage), versus=versus)
            for r in table.head(limit).itertuples()]


def describe_list_error(n_genes: int, expected_fdp: float, what: str = "dependencies") -> str:
    """One sentence: the expected false discovery proportion of a list of ``n_genes`` called ``what``."""
    if n_genes == 0:
        return f"No gene meets the cut, so the list of {what} is empty."
    expected = expected_fdp * n_genes
    if n_genes == 1:
        return (f"Expected false discovery proportion of this list of one gene ({what}): {expected_fdp:.1%}, the "
                "gene's probability of not being one.")
    count = (f"about {expected:.1f} of them are expected to be false" if expected >= 0.95 else
             f"fewer than one of them is expected to be false ({expected:.2f} on average)")
    return (f"Expected false discovery proportion of these {n_genes:,} {what}: {expected_fdp:.1%} (the mean of each "
            f"gene's probability of not being one): {count}.")


def _check_probability(p: float) -> float:
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise AnalysisError(f"expected a probability between 0 and 1, got {p!r}") from None
    if not 0.0 <= p <= 1.0:
        raise AnalysisError(f"expected a probability between 0 and 1, got {p}")
    return p


def _p(p: float) -> str:
    """``P = 0.98``; the ends read ``P > 0.99`` and ``P < 0.01`` (never a certainty the draws cannot show)."""
    if p > 0.995:
        return "P > 0.99"
    if p < 0.005:
        return "P < 0.01"
    return f"P = {p:.2f}"


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
