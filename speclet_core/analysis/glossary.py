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
}


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
        "p_below_threshold": f"P(dependency): effect < {threshold:g}",
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
