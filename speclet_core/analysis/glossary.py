"""Plain-language definitions shown on every page (the sidebar's glossary)."""

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
}
