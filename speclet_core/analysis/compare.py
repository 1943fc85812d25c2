"""Model comparison: fits of the same readings, their LOO predictive accuracy and how the gene ranking changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from model_store.manifest import FitManifest
from speclet_core.analysis.fitview import fit_label
from speclet_core.errors import AnalysisError


def data_fingerprint(manifest: FitManifest) -> str:
    """The fingerprint of the readings a fit was made on: fits with the same one can be compared."""
    return manifest.request.data_fingerprint


def fits_of_same_data(manifest: FitManifest, manifests: Sequence[FitManifest]) -> list[FitManifest]:
    """The fits among ``manifests`` made on the same readings as ``manifest`` (itself included)."""
    wanted = data_fingerprint(manifest)
    return [m for m in manifests if data_fingerprint(m) == wanted]


def check_same_data(manifests: Sequence[FitManifest]) -> None:
    """Raise unless every fit was made on the same readings (LOO compares predictions of the same data)."""
    if len({data_fingerprint(m) for m in manifests}) > 1:
        names = ", ".join(f"{fit_label(m)} (data {data_fingerprint(m)[:8]})" for m in manifests)
        raise AnalysisError(f"these fits were made on different readings, so their LOO scores cannot be compared: "
                            f"{names}; pick fits of the same screen, genes and lineages")


def loo_table(idatas: Mapping[str, Any], *, var_name: str = "lfc") -> pd.DataFrame:
    """Leave-one-out expected log predictive density (ELPD) of each fit, best first.

    Returns
    -------
    DataFrame
        fit, rank (1 = best), elpd_loo, se, p_loo, elpd_diff, dse (standard error of the difference to the
        best), weight (stacking), share_bad_k (share of readings with Pareto k > 0.7).
    """
    import warnings

    import arviz as az

    if len(idatas) < 1:
        raise AnalysisError("no fits to compare")
    rows = {}
    n_obs = {}
    with warnings.catch_warnings():
        # the Pareto-k warning is reported in the table instead (a column and a sentence per fit)
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto distribution", category=UserWarning)
        for name, idata in idatas.items():
            if "log_likelihood" not in idata.groups():
                raise AnalysisError(f"fit {name} stored no log-likelihood (it is left out for very large fits); "
                                    "LOO needs it: refit a smaller selection")
            loo = az.loo(idata, pointwise=True, var_name=var_name)
            k = np.asarray(loo.pareto_k)
            n_obs[name] = k.size
            rows[name] = {"fit": name, "elpd_loo": float(loo.elpd_loo), "se": float(loo.se), "p_loo": float(loo.p_loo),
                          "share_bad_k": float(np.mean(k > 0.7))}
        if len(set(n_obs.values())) > 1:
            raise AnalysisError(f"the fits have different numbers of readings ({n_obs}); LOO compares fits of the "
                                "same readings")
        table = pd.DataFrame(list(rows.values()))
        if len(idatas) > 1:
            cmp = az.compare(dict(idatas), ic="loo", var_name=var_name)
            table["rank"] = table["fit"].map(cmp["rank"]).astype(int) + 1  # ArviZ counts from 0; people from 1
            table["elpd_diff"] = table["fit"].map(cmp["elpd_diff"]).astype(float)
            table["dse"] = table["fit"].map(cmp["dse"]).astype(float)
            table["weight"] = table["fit"].map(cmp["weight"]).astype(float)
        else:
            table["rank"], table["elpd_diff"], table["dse"], table["weight"] = 1, 0.0, 0.0, 1.0
    table = table.sort_values("rank", ignore_index=True)
    return table[["fit", "rank", "elpd_loo", "se", "p_loo", "elpd_diff", "dse", "weight", "share_bad_k"]]


def ranking_changes(tables: Mapping[str, pd.DataFrame], *, top_n: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """How the gene ranking changes between fits (tables from ``ranking.rank_genes``).

    Returns
    -------
    (wide, long)
        wide: gene, then ``rank: <fit>`` and ``mean: <fit>`` per fit and ``rank change`` (last fit
        minus first), genes in the first fit's order; long: gene, fit, expected_rank, mean for the
        genes in any fit's top ``top_n`` (a slope chart's data).
    """
    names = list(tables)
    if len(names) < 2:
        raise AnalysisError("comparing rankings needs at least two fits")
    shared = set(tables[names[0]]["gene"])
    for t in tables.values():
        shared &= set(t["gene"])
    if not shared:
        raise AnalysisError("the fits share no genes; compare fits of the same genes")
    first = tables[names[0]]
    genes = [g for g in first["gene"] if g in shared]
    wide = pd.DataFrame({"gene": genes})
    for name in names:
        t = tables[name].set_index("gene").loc[genes]
        # re-rank among the shared genes so fits of different gene sets stay comparable
        wide[f"rank: {name}"] = t["expected_rank"].rank(method="average").to_numpy()
        wide[f"mean: {name}"] = t["mean"].to_numpy()
    wide["rank change"] = wide[f"rank: {names[-1]}"] - wide[f"rank: {names[0]}"]
    top = set()
    for name in names:
        top |= set(wide.nsmallest(top_n, f"rank: {name}")["gene"])
    keep = wide[wide["gene"].isin(top)]
    long = pd.concat([pd.DataFrame({"gene": keep["gene"], "fit": name, "expected_rank": keep[f"rank: {name}"],
                                    "mean": keep[f"mean: {name}"]}) for name in names], ignore_index=True)
    return wide, long


def rank_agreement(wide: pd.DataFrame, names: Sequence[str], *, top_n: int = 20) -> list[str]:
    """Sentences: rank correlation and top-``top_n`` overlap between the first fit and each other."""
    a = wide[f"rank: {names[0]}"]
    out = []
    for name in names[1:]:
        b = wide[f"rank: {name}"]
        rho = float(np.corrcoef(a, b)[0, 1]) if len(wide) > 2 else float("nan")
        k = min(top_n, len(wide))
        overlap = len(set(wide.nsmallest(k, f"rank: {names[0]}")["gene"]) & set(wide.nsmallest(k, f"rank: {name}")["gene"]))
        out.append(f"{name} vs {names[0]}: rank correlation {rho:.2f}; {overlap} of the top {k} genes are the same.")
    return out
