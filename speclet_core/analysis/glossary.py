"""Plain-language definitions shown on every page (the sidebar's glossary), and the human labels of table columns."""

GLOSSARY = {
    "LFC": "log2 fold change of an sgRNA's abundance between the start and end of the screen. Strongly negative: "
    "cells lost when the gene is knocked out, i.e. the cells depend on it.",
    "sgRNA": "single guide RNA: the short sequence that directs Cas9 to cut one gene. Each gene is targeted by a few "
    "guides, which differ in how well they cut.",
    "lineage": "the tissue a cancer cell line comes from (colorectal, blood, skin, …). Lineage-selective dependencies "
    "are genes only some lineages need.",
    "posterior": "what the model believes about a quantity after seeing the data: not one number but a distribution, "
    "represented by thousands of draws.",
    "HDI": "highest-density interval: the narrowest range holding, e.g., 89% of the posterior. There is an 89% "
    "probability (under the model) that the true value lies inside.",
    "R-hat": "compares chains: near 1.00 means independent chains agree. Above 1.01 means the sampler has not settled "
    "and the numbers should not be trusted yet.",
    "ESS": "effective sample size: how many independent draws the correlated draws are worth. Below ~400 the "
    "intervals' edges are imprecise.",
    "divergence": "a warning from the sampler that it could not follow the posterior's shape in some region; even a "
    "few can bias the results. Fix by re-fitting with a higher target acceptance or a different model.",
    "dependency": "a gene whose knockout lowers fitness: its effect is below the dependency threshold (an LFC of "
    "−0.5 unless you choose another). A positive effect (cells grow when it is knocked out) is never a dependency.",
    "P(dependency)": "the share of posterior draws in which the gene's effect is below the dependency threshold. "
    "P(not a dependency) = 1 − P(dependency) is the probability that calling it a dependency is wrong.",
    "lfsr": "local false sign rate: the probability that the sign of the gene's posterior mean effect is wrong, "
    "min(P(effect ≥ 0), P(effect ≤ 0)). It only asks whether the effect is negative at all, so it is never larger "
    "than P(not a dependency) for a gene with a negative mean.",
    "selective dependency": "a gene that is a dependency in a lineage (effect there below the threshold) and stronger "
    "there than elsewhere (effect more negative than its mean over the other lineages). P(dependency in the lineage) "
    "and P(stronger there) are reported separately; P(selective) is the share of draws in which both hold at once.",
    "expected FDP": "expected false discovery proportion of a list of genes: the mean, over the listed genes, of each "
    "one's probability that what the list says of it is false (1 − P(selective) for selective dependencies, "
    "P(not a dependency) for dependencies). A list of 20 genes with an expected FDP of 5% holds about one false one.",
    "chain": "one independent run of the sampler. Several chains start from different places; when they agree "
    "(R-hat near 1.00) the sampler has found the same posterior each time.",
    "draw": "one sample from the posterior: a complete set of values of every parameter that fits the data. "
    "Every probability on these pages is the share of draws in which something holds.",
    "P(top-k)": "the share of posterior draws in which the gene ranks k or better (rank 1 = strongest dependency). "
    "k defaults to a quarter of the genes (at most 10): with k at or above the number of genes every gene has P = 1.",
    "P(selective)": "P(selective dependency): the share of posterior draws in which the gene is a dependency in the "
    "lineage and, in the same draw, stronger there than elsewhere (see selective dependency).",
    "ELPD / LOO": "expected log predictive density, estimated by leave-one-out cross-validation (PSIS-LOO): how well "
    "a fit predicts a reading it did not see. Higher is better; a difference within about two standard errors is not "
    "a clear difference.",
    "Pareto k": "a check of each LOO estimate: readings with k above 0.7 have so much influence that their LOO "
    "estimate is unreliable; many of them mean the comparison should not be trusted.",
    "BFMI": "Bayesian fraction of missing information: how well the sampler moves between energy levels. Below 0.3 "
    "the chains explore the posterior slowly and its tails may be missed.",
    "pooling / shrinkage": "partial pooling lets genes (or lineages, cell lines) of a group inform each other: noisy "
    "estimates are pulled towards the group's mean (shrinkage), so their intervals are narrower and fewer extreme "
    "values arise from noise alone. No pooling fits each one alone.",
    "reference genes": "common-essential genes (Hart et al.'s CEGv2: knocking them out kills nearly every cell line) "
    "and non-essential genes (NEGv1: not needed in culture), as BAGEL uses them. In a fit that holds at least 3 of "
    "each, common-essential genes should come out clearly negative and non-essential ones near 0; a gene is "
    "'as strong as the median common-essential gene with P = …': the share of draws in which its effect is below "
    "that median.",
    "guide deviation": "how much one guide (sgRNA) of a gene differs from the gene's effect; the deviations of a "
    "gene's guides sum to 0. A guide disagrees when its interval excludes 0 on the side that weakens the gene's "
    "effect: it may cut poorly, or cut a part of the gene the protein does without.",
    "posterior predictive": "readings simulated from the fitted model. If the model describes the screen, they look "
    "like the observed readings (the Predictive checks page).",
}


def glossary_entry(term: str) -> str | None:
    """The definition of ``term`` (any case; ``ELPD``, ``LOO`` and ``pooling`` find their shared entries)."""
    wanted = term.casefold()
    for key, text in GLOSSARY.items():
        if wanted == key.casefold() or wanted in {part.strip().casefold() for part in key.split("/")}:
            return text
    return None


def ranking_labels(*, threshold: float, hdi_prob: float, top_k: int, lineage: str | None = None) -> dict[str, str]:
    """Human labels of the ranking and selective-dependency columns (``ranking``, ``contrasts``), for tables."""
    where = f" in {lineage}" if lineage else ""
    return {
        "gene": "gene",
        "mean": "mean effect",
        "sd": "sd",
        "hdi_low": f"{hdi_prob:.0%} low",
        "hdi_high": f"{hdi_prob:.0%} high",
        "expected_rank": "expected rank",
        "rank_low": "rank from",
        "rank_high": "rank to",
        "p_top_k": f"P(top-{top_k})",
        "p_below_threshold": f"P(effect < {threshold:g})",
        "p_not_dependency": "P(not a dependency)",
        "lfsr": f"lfsr{where}",
        "mean_in_lineage": f"mean effect{where}",
        "hdi_low_in_lineage": f"{hdi_prob:.0%} low{where}",
        "hdi_high_in_lineage": f"{hdi_prob:.0%} high{where}",
        "mean_versus": "mean effect elsewhere",
        "p_dependency": f"P(dependency{where})",
        "p_stronger": f"P(stronger{where})",
        "p_selective": "P(selective dependency)",
        "p_not_selective": "P(not selective)",
        "mean_diff": f"difference{where} − elsewhere",
        "sd_diff": "sd of difference",
        "p_strongest": f"P(strongest{where})",
    }


# Human labels of the other tables the pages show (predictive checks, model comparison): one place, as above.
PPC_LABELS = {
    "statistic": "statistic",
    "observed": "observed",
    "predicted_mean": "simulated mean",
    "predicted_low": "simulated {hdi:.0%} low",
    "predicted_high": "simulated {hdi:.0%} high",
    "p_predicted_above": "P(simulated > observed)",
    "surprising": "misfit?",
}
LOO_LABELS = {
    "fit": "fit",
    "rank": "rank (1 = best)",
    "elpd_loo": "ELPD (LOO)",
    "se": "SE",
    "p_loo": "effective parameters",
    "elpd_diff": "ELPD behind the best",
    "dse": "SE of that difference",
    "weight": "stacking weight",
    "share_bad_k": "share of Pareto k > 0.7",
    "diagnostics": "diagnostics",
}


def ppc_labels(hdi_prob: float) -> dict[str, str]:
    """``PPC_LABELS`` with the page's one interval width filled in."""
    return {k: v.format(hdi=hdi_prob) for k, v in PPC_LABELS.items()}
