"""Covariate scaling within gene (data.covariates)."""

from __future__ import annotations

import numpy as np

from speclet_core.data.covariates import prepare_covariates

# --------------------------------------------------------------------------- covariates


def test_covariates_scaled_within_gene_and_recorded(tiny_screen) -> None:  # type: ignore[no-untyped-def]
    df = tiny_screen.data.copy()
    df.loc[0, "rna_expr"] = np.nan
    out, transforms = prepare_covariates(df)
    per_gene = out.groupby("hugo_symbol")["rna_expr_z"]
    assert per_gene.mean().abs().max() < 0.05
    assert out["rna_expr_z"].abs().max() <= 5.0
    assert out.loc[0, "rna_expr_z"] == 0.0
    assert transforms["rna_expr"]["missing_filled_with_gene_mean"] == 1
    cn = out.groupby("hugo_symbol")["gene_cn_z"].mean()
    assert cn.abs().max() < 1e-9
    assert transforms["gene_cn"]["clip"] == [-2.0, 2.0]
    expected = np.log2(df["gene_cn"]) - np.log2(df["gene_cn"]).groupby(df["hugo_symbol"]).transform("mean")
    np.testing.assert_allclose(out["gene_cn_z"], expected.clip(-2, 2))
