"""Scaling the optional covariates (expression, copy number) for the models, with a record of the transform."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# Clips keep a few extreme cell lines from dominating a gene's covariate slope; the floor keeps log2 finite.
RNA_CLIP = 5.0
CN_CLIP = 2.0
CN_FLOOR = 0.01


def prepare_covariates(data: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Scale covariates within gene, and record the transform.

    ``rna_expr`` → ``rna_expr_z``: z-scored within gene, clipped to ±5, missing → 0
    (the gene's mean). ``gene_cn`` → ``gene_cn_z``: log2(max(cn, 0.01)) centred within
    gene, clipped to ±2, missing → 0.
    """
    out = data.copy()
    transforms: dict[str, dict[str, Any]] = {}
    gene = out["hugo_symbol"].astype(str)
    if "rna_expr" in out.columns:
        x = out["rna_expr"].astype(float)
        mean = x.groupby(gene).transform("mean")
        sd = x.groupby(gene).transform("std").fillna(0.0)
        z = ((x - mean) / sd.where(sd > 0, np.nan)).fillna(0.0).clip(-RNA_CLIP, RNA_CLIP)
        out["rna_expr_z"] = z.to_numpy()
        transforms["rna_expr"] = {
            "output": "rna_expr_z",
            "method": "z-score within gene",
            "clip": [-RNA_CLIP, RNA_CLIP],
            "missing_filled_with_gene_mean": int(x.isna().sum()),
        }
    if "gene_cn" in out.columns:
        x = np.log2(out["gene_cn"].astype(float).clip(lower=CN_FLOOR))
        centred = (x - x.groupby(gene).transform("mean")).fillna(0.0).clip(-CN_CLIP, CN_CLIP)
        out["gene_cn_z"] = centred.to_numpy()
        transforms["gene_cn"] = {
            "output": "gene_cn_z",
            "method": f"log2(max(copy number, {CN_FLOOR})) centred within gene",
            "clip": [-CN_CLIP, CN_CLIP],
            "missing_filled_with_gene_mean": int(out["gene_cn"].isna().sum()),
        }
    return out, transforms
