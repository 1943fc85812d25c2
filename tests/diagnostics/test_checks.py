"""Diagnostics views: triage is worst-first; plots' data are right."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from speclet_core.diagnostics import checks as fitcheck


def test_rank_worst_orders_by_rhat_then_ess() -> None:
    summary = pd.DataFrame({"variable": ["a", "a", "b", "b"], "r_hat": [1.0, 1.2, 1.05, 1.2],
                            "ess_bulk": [1000, 300, 200, 50], "ess_tail": 1000.0})
    worst = fitcheck.rank_worst(summary, k=3)
    assert list(worst["ess_bulk"]) == [50, 300, 200]
    assert list(worst["parameter"]) == ["b", "a", "b"]
    assert list(fitcheck.rank_worst(summary, k=5, variables=["a"])["r_hat"]) == [1.2, 1.0]
    assert list(fitcheck.rank_worst(summary, k=5, only_breaking=True)["r_hat"]) == [1.2, 1.2, 1.05]


def test_rank_worst_on_a_million_elements_matches_a_full_sort() -> None:
    rng = np.random.default_rng(3)
    n = 1_000_000
    summary = pd.DataFrame({"variable": "gene_cell_line_effect", "gene": rng.integers(0, 2000, n).astype(str),
                            "cell_line": rng.integers(0, 500, n).astype(str),
                            "r_hat": np.round(1 + rng.exponential(0.002, n), 4), "ess_bulk": rng.uniform(100, 4000, n),
                            "ess_tail": 1000.0})
    fast = fitcheck.rank_worst(summary, k=25)
    full = summary.sort_values(["r_hat", "ess_bulk"], ascending=[False, True]).head(25)
    assert list(fast.index) == list(full.index)
    row = fast.iloc[0]
    assert row["parameter"] == f"gene_cell_line_effect[{row['gene']}, {row['cell_line']}]"
    assert fitcheck.element_selection(row) == ("gene_cell_line_effect", {"gene": row["gene"], "cell_line": row["cell_line"]})


def test_summarise_variables_counts_breaking_elements() -> None:
    summary = pd.DataFrame({"variable": ["a", "a", "b"], "r_hat": [1.0, 1.02, 1.0], "ess_bulk": [500, 900, 100],
                            "ess_tail": [600, 700, 800]})
    over = fitcheck.summarise_variables(summary).set_index("variable")
    assert over.loc["a", "elements"] == 2 and over.loc["a", "breaking"] == 1 and over.loc["b", "breaking"] == 1
    assert over.index[0] == "a"  # worst R-hat first


def _draws(shift: float = 0.0) -> xr.DataArray:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(4, 500))
    values[0] += shift
    return xr.DataArray(values, dims=("chain", "draw"))


def test_rank_histogram_flags_a_stuck_chain() -> None:
    mixed = fitcheck.rank_histogram(_draws(), bins=10)
    assert mixed["count"].sum() == 2000
    assert (mixed["count"] - mixed["expected"]).abs().max() < 30
    stuck = fitcheck.rank_histogram(_draws(shift=3.0), bins=10)
    first = stuck[stuck.chain == "0"]
    assert first[first.bin >= 8]["count"].sum() > 300  # chain 0 sits at the top ranks (uniform: 100)


def test_trace_frame_thins_and_keeps_chains() -> None:
    df = fitcheck.draws_to_frame(_draws(), max_points=1000)
    assert len(df) <= 1000 and set(df["chain"]) == {"0", "1", "2", "3"}
    with pytest.raises(ValueError, match="select one element"):
        fitcheck.draws_to_frame(xr.DataArray(np.zeros((2, 3, 4)), dims=("chain", "draw", "gene")))


def test_bfmi_matches_arviz_and_sampler_table() -> None:
    rng = np.random.default_rng(1)
    energy = xr.DataArray(rng.normal(size=(2, 300)).cumsum(axis=1) * 0.1 + rng.normal(size=(2, 300)),
                          dims=("chain", "draw"))
    stats = xr.Dataset({"energy": energy, "diverging": (("chain", "draw"), np.zeros((2, 300), bool)),
                        "step_size": (("chain", "draw"), np.full((2, 300), 0.3)),
                        "tree_depth": (("chain", "draw"), np.full((2, 300), 4))})
    table = fitcheck.sampler_table(stats)
    np.testing.assert_allclose(table["BFMI"], az.bfmi(energy.values), rtol=1e-10)
    assert list(table["max tree depth"]) == [4, 4] and table["divergences"].sum() == 0
    div = stats["diverging"].copy()
    div[1, 7] = True
    assert fitcheck.divergent_draws(div).to_dict("records") == [{"chain": "1", "draw": 7}]
