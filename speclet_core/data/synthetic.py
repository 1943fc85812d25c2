"""Synthetic screens with known truth, following the seed models' generative structure.

    lfc[i] = gene_effect[g] + sgrna_effect[s] + cell_line_effect[c]
             + gene_lineage_dev[g, l] + gene_cell_line_dev[g, c]
             + rna_slope[g] * rna_expr_z[i] + cn_slope[g] * gene_cn_z[i] + Normal(0, sigma)

Every deviation is centred within its parent (sgRNAs within their gene, cell lines within
their lineage, lineages overall, gene × lineage within the gene, gene × cell line within
the gene and lineage), so ``gene_effect`` is exactly the gene's average LFC over its
sgRNAs and lineages: the quantity every model's gene-level effect estimates.
``rna_expr_z`` and ``gene_cn_z`` are the transforms of ``data.prepare_covariates`` applied
to the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from speclet_core.data.covariates import prepare_covariates

GENE_SYMBOLS = (
    "KRAS", "BRAF", "NRAS", "PIK3CA", "CTNNB1", "APC", "TP53", "MYC", "EGFR", "ERBB2",
    "MTOR", "RPL11", "RPS6", "POLR2A", "PCNA", "CDK4", "CDK6", "CCND1", "SOX10", "MITF",
    "GATA3", "FOXA1", "ESR1", "HNF1B", "SOX2", "NKX2-1", "MYB", "SPI1", "CDX2", "KLF5",
    "ADH1B", "C18orf54", "HLA-A", "TENT5B", "USP46", "LMAN2", "BAD", "RTP5", "LHFPL6", "SMAD4",
    "STK11", "KEAP1", "NF1", "PTEN", "RB1", "ARID1A", "KMT2D", "CREBBP", "EP300", "NOTCH1",
    "FBXW7", "ATM", "BRCA1", "BRCA2", "CHEK1", "WEE1", "PLK1", "AURKA", "BUB1B", "ESPL1",
)
LINEAGES = (
    "colorectal", "blood", "skin", "lung", "breast", "pancreas",
    "central_nervous_system", "liver", "ovary", "kidney", "bone", "uterus",
)
BASES = np.array(list("ACGT"))


@dataclass(frozen=True)
class SyntheticScreen:
    """A simulated screen table, its truth (long format) and the settings that made it."""

    data: pd.DataFrame = field(repr=False)
    truth: pd.DataFrame = field(repr=False)
    params: dict[str, Any]

    def truth_values(self, parameter: str) -> pd.DataFrame:
        """Rows of the truth table for one parameter, e.g. ``gene_effect``."""
        return self.truth[self.truth["parameter"] == parameter].reset_index(drop=True)


def _centre(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    sums = np.bincount(groups, weights=x)
    counts = np.bincount(groups)
    return x - (sums / np.maximum(counts, 1))[groups]


def _guide(rng: np.random.Generator, used: set[str]) -> str:
    while True:
        seq = "".join(rng.choice(BASES, size=20))
        if seq not in used:
            used.add(seq)
            return seq


def simulate_screen(
    n_genes: int = 30,
    n_cell_lines: int = 120,
    n_lineages: int = 6,
    *,
    seed: int = 0,
    sgrnas_per_gene: tuple[int, int] = (2, 6),
    n_pan_essential: int | None = None,
    n_lineage_selective: int | None = None,
    sigma: float = 0.3,
    sd_sgrna: float = 0.2,
    sd_lineage: float = 0.15,
    sd_cell_line: float = 0.1,
    sd_gene_lineage: float = 0.1,
    sd_gene_cell_line: float = 0.1,
    covariates: bool = True,
) -> SyntheticScreen:
    """Simulate a screen; deterministic for a seed.

    Cell lines are spread unevenly over lineages (at least two each), sgRNAs per gene
    vary in ``sgrnas_per_gene``; a few genes are pan-essential (strongly negative
    everywhere) and a few lineage-selective (strongly negative in one lineage only).
    """
    if n_genes < 1 or n_cell_lines < 1 or n_lineages < 1:
        raise ValueError("n_genes, n_cell_lines and n_lineages must be at least 1")
    if n_cell_lines < 2 * n_lineages:
        raise ValueError(f"need at least two cell lines per lineage: {n_cell_lines} < 2 × {n_lineages}")
    rng = np.random.default_rng(seed)
    genes = [GENE_SYMBOLS[i] if i < len(GENE_SYMBOLS) else f"GENE{i + 1}" for i in range(n_genes)]
    lineages = [LINEAGES[i] if i < len(LINEAGES) else f"lineage_{i + 1}" for i in range(n_lineages)]

    # cell lines: unbalanced lineage sizes, realistic DepMap ids
    weights = rng.dirichlet(np.full(n_lineages, 2.0))
    sizes = 2 + rng.multinomial(n_cell_lines - 2 * n_lineages, weights)
    cl_lineage = np.repeat(np.arange(n_lineages), sizes)
    ids = np.sort(rng.choice(np.arange(1, 3000), size=n_cell_lines, replace=False))
    cell_lines = [f"ACH-{i:06d}" for i in ids]
    cl_lineage = rng.permutation(cl_lineage)

    # genes and their sgRNAs
    n_pan = n_pan_essential if n_pan_essential is not None else max(1, n_genes // 10)
    n_sel = n_lineage_selective if n_lineage_selective is not None else max(1, n_genes // 10)
    n_pan = min(n_pan, n_genes)
    n_sel = min(n_sel, n_genes - n_pan)
    roles = np.array(["pan"] * n_pan + ["selective"] * n_sel + ["other"] * (n_genes - n_pan - n_sel))
    roles = rng.permutation(roles)
    gene_effect = rng.normal(-0.1, 0.25, size=n_genes)
    gene_effect[roles == "pan"] = rng.normal(-1.8, 0.3, size=(roles == "pan").sum())

    n_sg = rng.integers(sgrnas_per_gene[0], sgrnas_per_gene[1] + 1, size=n_genes)
    sg_gene = np.repeat(np.arange(n_genes), n_sg)
    used: set[str] = set()
    sgrnas = [_guide(rng, used) for _ in range(len(sg_gene))]
    sgrna_effect = _centre(rng.normal(0, sd_sgrna, size=len(sg_gene)), sg_gene)

    lineage_effect = rng.normal(0, sd_lineage, size=n_lineages)
    lineage_effect -= lineage_effect.mean()
    cl_dev = _centre(rng.normal(0, sd_cell_line, size=n_cell_lines), cl_lineage)
    cell_line_effect = lineage_effect[cl_lineage] + cl_dev

    gl_dev = rng.normal(0, sd_gene_lineage, size=(n_genes, n_lineages))
    selective_lineage = np.full(n_genes, -1)
    for g in np.flatnonzero(roles == "selective"):
        selective_lineage[g] = rng.integers(n_lineages)
        gl_dev[g, selective_lineage[g]] = rng.normal(-1.5, 0.2)
    gl_dev -= gl_dev.mean(axis=1, keepdims=True)
    gc_dev = rng.normal(0, sd_gene_cell_line, size=(n_genes, n_cell_lines))
    for lin in range(n_lineages):
        cols = cl_lineage == lin
        gc_dev[:, cols] -= gc_dev[:, cols].mean(axis=1, keepdims=True)

    rna_slope = rng.normal(-0.1, 0.15, size=n_genes) if covariates else np.zeros(n_genes)
    cn_slope = rng.normal(-0.15, 0.1, size=n_genes) if covariates else np.zeros(n_genes)

    # one reading per (sgRNA, cell line)
    s_idx = np.repeat(np.arange(len(sg_gene)), n_cell_lines)
    c_idx = np.tile(np.arange(n_cell_lines), len(sg_gene))
    g_idx = sg_gene[s_idx]
    l_idx = cl_lineage[c_idx]
    data = pd.DataFrame(
        {
            "sgrna": np.asarray(sgrnas)[s_idx],
            "hugo_symbol": np.asarray(genes)[g_idx],
            "depmap_id": np.asarray(cell_lines)[c_idx],
            "lineage": np.asarray(lineages)[l_idx],
            "replicate_id": [f"{cell_lines[c]}_rep1" for c in c_idx],
            "pdna_batch": (c_idx % 3 + 1).astype(str),
            "screen": "synthetic",
        }
    )
    if covariates:
        baseline = rng.uniform(1.0, 8.0, size=n_genes)
        rna = np.clip(baseline[:, None] + rng.normal(0, 1.0, size=(n_genes, n_cell_lines)), 0, None)
        cn = 2.0 ** rng.normal(0, 0.25, size=(n_genes, n_cell_lines))
        data["rna_expr"] = rna[g_idx, c_idx]
        data["gene_cn"] = cn[g_idx, c_idx]
        prepared, _ = prepare_covariates(data)
        rna_z = prepared["rna_expr_z"].to_numpy()
        cn_z = prepared["gene_cn_z"].to_numpy()
    else:
        rna_z = cn_z = np.zeros(len(data))

    mean = (
        gene_effect[g_idx]
        + sgrna_effect[s_idx]
        + cell_line_effect[c_idx]
        + gl_dev[g_idx, l_idx]
        + gc_dev[g_idx, c_idx]
        + rna_slope[g_idx] * rna_z
        + cn_slope[g_idx] * cn_z
    )
    data.insert(4, "lfc", mean + rng.normal(0, sigma, size=len(data)))

    truth = _truth_table(
        genes, lineages, cell_lines, sgrnas, sg_gene, cl_lineage, roles, selective_lineage,
        gene_effect, sgrna_effect, lineage_effect, cell_line_effect, gl_dev, gc_dev,
        rna_slope, cn_slope, sigma,
    )
    params = {
        "n_genes": n_genes, "n_cell_lines": n_cell_lines, "n_lineages": n_lineages, "seed": seed,
        "sgrnas_per_gene": list(sgrnas_per_gene), "sigma": sigma, "covariates": covariates,
    }
    return SyntheticScreen(data=data, truth=truth, params=params)


def _truth_table(
    genes, lineages, cell_lines, sgrnas, sg_gene, cl_lineage, roles, selective_lineage,
    gene_effect, sgrna_effect, lineage_effect, cell_line_effect, gl_dev, gc_dev,
    rna_slope, cn_slope, sigma,
) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    G, C, L = len(genes), len(cell_lines), len(lineages)
    g_arr, c_arr, l_arr = np.asarray(genes), np.asarray(cell_lines), np.asarray(lineages)
    parts = [
        pd.DataFrame({"parameter": "gene_effect", "gene": g_arr, "value": gene_effect}),
        pd.DataFrame({"parameter": "rna_slope", "gene": g_arr, "value": rna_slope}),
        pd.DataFrame({"parameter": "cn_slope", "gene": g_arr, "value": cn_slope}),
        pd.DataFrame({"parameter": "pan_essential", "gene": g_arr, "value": (roles == "pan").astype(float)}),
        pd.DataFrame(
            {"parameter": "sgrna_effect", "gene": g_arr[sg_gene], "sgrna": np.asarray(sgrnas), "value": sgrna_effect}
        ),
        pd.DataFrame({"parameter": "lineage_effect", "lineage": l_arr, "value": lineage_effect}),
        pd.DataFrame(
            {"parameter": "cell_line_effect", "cell_line": c_arr, "lineage": l_arr[cl_lineage], "value": cell_line_effect}
        ),
        pd.DataFrame(
            {
                "parameter": "gene_lineage_effect",
                "gene": np.repeat(g_arr, L),
                "lineage": np.tile(l_arr, G),
                "value": (gene_effect[:, None] + gl_dev).ravel(),
            }
        ),
        pd.DataFrame(
            {
                "parameter": "gene_cell_line_effect",
                "gene": np.repeat(g_arr, C),
                "cell_line": np.tile(c_arr, G),
                "lineage": np.tile(l_arr[cl_lineage], G),
                "value": (gene_effect[:, None] + gl_dev[:, cl_lineage] + gc_dev).ravel(),
            }
        ),
        pd.DataFrame({"parameter": ["sigma"], "value": [sigma]}),
    ]
    sel = np.flatnonzero(selective_lineage >= 0)
    parts.append(
        pd.DataFrame(
            {
                "parameter": "lineage_selective",
                "gene": g_arr[sel],
                "lineage": l_arr[selective_lineage[sel]],
                "value": 1.0,
            }
        )
    )
    truth = pd.concat(parts, ignore_index=True)
    return truth[["parameter", "gene", "sgrna", "cell_line", "lineage", "value"]]
