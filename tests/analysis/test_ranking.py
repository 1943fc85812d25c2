"""Rankings, pairwise differences and lineage contrasts (analysis.ranking, pairs, contrasts): brute force, hand-computed cases, planted truth."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
import scipy.stats
import xarray as xr

from speclet_core.analysis import draws, pairs, ranking
from speclet_core.analysis.contrasts import CONTRAST_COLUMNS, contrast_lineage
from speclet_core.analysis.draws import hdi_columns
from speclet_core.analysis.pairs import compare_pairs, compare_to_reference
from speclet_core.analysis.ranking import RANKING_COLUMNS, default_top_k, rank_genes, rank_within_samples
from speclet_core.analysis.sentences import describe_pair, describe_selective
from speclet_core.data.synthetic import simulate_screen
from speclet_core.errors import AnalysisError, SpecletError

GENES = ["KRAS", "BRAF", "NRAS", "MYC", "TP53", "EGFR", "SOX10"]
LINEAGES = ["colorectal", "skin", "lung", "blood"]


def gene_draws(values: np.ndarray, genes: list[str] | None = None) -> xr.DataArray:
    """(chain, draw, gene) DataArray with real labels."""
    genes = genes or GENES[: values.shape[-1]]
    return xr.DataArray(values, dims=("chain", "draw", "gene"), coords={"gene": genes}, name="gene_effect")


def lineage_draws(values: np.ndarray, genes: list[str], lineages: list[str]) -> xr.DataArray:
    return xr.DataArray(
        values, dims=("chain", "draw", "gene", "lineage"), coords={"gene": genes, "lineage": lineages},
        name="gene_lineage_effect",
    )


@pytest.fixture
def random_draws() -> xr.DataArray:
    """2 chains × 200 draws × 7 genes with overlapping, skewed posteriors; exactly float32."""
    rng = np.random.default_rng(11)
    means = np.array([-1.2, -1.0, -0.9, -0.2, 0.0, -0.5, -0.45])
    noise = rng.gamma(2.0, 0.2, size=(2, 200, 7)) - 0.4  # skewed, so HDI ≠ equal-tailed interval
    return gene_draws((means + noise).astype(np.float32))


def samples(da: xr.DataArray) -> np.ndarray:
    """(sample, gene) float32, the brute-force view of the draws."""
    return da.stack(sample=("chain", "draw")).transpose("sample", "gene").to_numpy().astype(np.float32)


def arviz_hdi(x: np.ndarray, prob: float) -> tuple[float, float]:
    low, high = az.hdi(np.asarray(x, dtype=np.float32), hdi_prob=prob)
    return float(low), float(high)


# --------------------------------------------------------------------------- HDI and ranks


@pytest.mark.parametrize("prob", [0.5, 0.89, 0.94])
def test_hdi_columns_matches_arviz(prob: float) -> None:
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.lognormal(0, 0.8, size=(5, 600)), rng.normal(0, 1, size=(5, 600))]).astype(np.float32)
    low, high = hdi_columns(x.T, prob)
    assert low.shape == (10,)
    for i in range(10):
        assert (low[i], high[i]) == arviz_hdi(x[i], prob)
    # the skewed rows' HDI sits left of the equal-tailed interval
    q_low = np.quantile(x[:5], (1 - prob) / 2, axis=1)
    assert np.all(low[:5] < q_low)


def test_hdi_columns_of_a_sample_by_label_matrix() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    low, high = hdi_columns(x, 0.89)
    assert [(a, b) for a, b in zip(low, high, strict=True)] == [arviz_hdi(x[:, j], 0.89) for j in range(3)]


def test_rank_within_samples_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(5)
    # few distinct values: many ties, runs of 2 and more, at the start, middle and end of rows
    values = rng.integers(-3, 3, size=(700, 9)).astype(np.float32) / 4
    values[0] = 1.0  # one row all tied
    values[1, :2] = -0.0  # -0.0 and +0.0 compare equal
    values[1, 2:4] = 0.0
    ranks = rank_within_samples(values)
    assert ranks.dtype == np.float32
    np.testing.assert_array_equal(ranks, scipy.stats.rankdata(values, axis=1, method="average"))
    assert np.all(ranks[0] == 5.0)


def test_rank_within_samples_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranking, "_RANK_CHUNK_DRAWS", 7)
    rng = np.random.default_rng(6)
    values = rng.normal(size=(50, 30)).astype(np.float32)
    np.testing.assert_array_equal(rank_within_samples(values), scipy.stats.rankdata(values, axis=1))


def test_rank_within_samples_rejects_nan() -> None:
    with pytest.raises(AnalysisError, match="NaN"):
        rank_within_samples(np.array([[0.0, np.nan]]))


# --------------------------------------------------------------------------- rank_genes


def test_rank_genes_matches_brute_force(random_draws: xr.DataArray) -> None:
    table = rank_genes(random_draws, top_k=2, threshold=-0.6, hdi_prob=0.8)
    assert tuple(table.columns) == RANKING_COLUMNS
    x = samples(random_draws)
    ranks = scipy.stats.rankdata(x, axis=1)
    for j, gene in enumerate(GENES):
        row = table.set_index("gene").loc[gene]
        assert row["mean"] == pytest.approx(x[:, j].mean(dtype=np.float64), rel=1e-6)
        assert row["sd"] == pytest.approx(x[:, j].std(ddof=1, dtype=np.float64), rel=1e-5)
        assert (row["hdi_low"], row["hdi_high"]) == arviz_hdi(x[:, j], 0.8)
        assert row["expected_rank"] == pytest.approx(ranks[:, j].mean(), abs=1e-12)
        assert row["rank_low"] == np.quantile(ranks[:, j], 0.1, method="lower")
        assert row["rank_high"] == np.quantile(ranks[:, j], 0.9, method="higher")
        assert row["p_top_k"] == np.mean(ranks[:, j] <= 2)
        assert row["p_below_threshold"] == np.mean(x[:, j] < np.float32(-0.6))
    # strongest first, expected ranks sum to 1 + 2 + … + G in every draw
    assert table["expected_rank"].is_monotonic_increasing
    assert table["expected_rank"].sum() == pytest.approx(7 * 8 / 2)
    assert table["gene"].iloc[0] == "KRAS"
    assert table.attrs["top_k"] == 2 and table.attrs["n_samples"] == 400


def test_rank_genes_never_overlapping_genes_are_certain() -> None:
    # KRAS always in [-2, -1.5], BRAF always in [-1, 0.5]: ranks are fixed in every draw
    rng = np.random.default_rng(1)
    kras = rng.uniform(-2.0, -1.5, size=(2, 100))
    braf = rng.uniform(-1.0, 0.5, size=(2, 100))
    da = gene_draws(np.stack([kras, braf], axis=-1).astype(np.float32), ["KRAS", "BRAF"])
    table = rank_genes(da, top_k=1, threshold=-1.2).set_index("gene")
    assert table.loc["KRAS", ["expected_rank", "rank_low", "rank_high", "p_top_k", "p_below_threshold"]].tolist() == [
        1.0, 1.0, 1.0, 1.0, 1.0,
    ]
    assert table.loc["BRAF", ["expected_rank", "rank_low", "rank_high", "p_top_k", "p_below_threshold"]].tolist() == [
        2.0, 2.0, 2.0, 0.0, 0.0,
    ]


def test_rank_genes_identical_draws_share_the_average_rank() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(-1, 0.1, size=(1, 50))
    da = gene_draws(np.stack([a, a, a + 5], axis=-1).astype(np.float32), ["KRAS", "BRAF", "MYC"])
    table = rank_genes(da, top_k=1).set_index("gene")
    assert table.loc["KRAS", "expected_rank"] == table.loc["BRAF", "expected_rank"] == 1.5
    assert table.loc["MYC", "expected_rank"] == 3.0
    # 1.5 > 1: a shared first place is not counted as rank ≤ 1
    assert table.loc["KRAS", "p_top_k"] == 0.0


def test_rank_genes_stacked_sample_dim_and_float64_give_the_same_table(random_draws: xr.DataArray) -> None:
    stacked = random_draws.astype(np.float64).stack(sample=("chain", "draw")).transpose("gene", "sample")
    pd.testing.assert_frame_equal(rank_genes(stacked), rank_genes(random_draws))


def test_rank_genes_reads_lazy_netcdf_in_blocks(
    random_draws: xr.DataArray, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = rank_genes(random_draws)
    path = tmp_path / "posterior.nc"
    random_draws.to_dataset(name="gene_effect").to_netcdf(path)
    monkeypatch.setattr(draws, "BLOCK_ELEMENTS", 900)  # 2 genes per block
    monkeypatch.setattr(ranking, "_STATS_CHUNK_GENES", 3)
    monkeypatch.setattr(ranking, "_RANK_CHUNK_DRAWS", 64)
    with xr.open_dataset(path) as ds:
        lazy = ds["gene_effect"]
        assert not lazy.variable._in_memory
        pd.testing.assert_frame_equal(rank_genes(lazy), expected)


def test_rank_genes_within_one_lineage() -> None:
    rng = np.random.default_rng(8)
    values = rng.normal(size=(2, 80, 5, 3)).astype(np.float32)
    da = lineage_draws(values, GENES[:5], LINEAGES[:3])
    table = rank_genes(da, lineage="skin")
    pd.testing.assert_frame_equal(
        table, rank_genes(da.sel(lineage="skin").rename("gene_effect"))
    )
    assert table.attrs["lineage"] == "skin"
    x = da.sel(lineage="skin").stack(s=("chain", "draw")).transpose("s", "gene").to_numpy()
    expected_order = list(np.asarray(GENES[:5])[np.argsort(scipy.stats.rankdata(x, axis=1).mean(axis=0))])
    assert table["gene"].tolist() == expected_order


def test_rank_genes_errors_say_what_to_do() -> None:
    da = lineage_draws(np.zeros((1, 5, 2, 2), dtype=np.float32), ["KRAS", "BRAF"], ["skin", "lung"])
    with pytest.raises(AnalysisError, match="choose a lineage"):
        rank_genes(da)
    with pytest.raises(AnalysisError, match=r"lineage 'bone' is not in these draws; they have 'skin', 'lung'"):
        rank_genes(da, lineage="bone")
    with pytest.raises(AnalysisError, match="needs the model's gene × lineage effect"):
        rank_genes(da.isel(lineage=0, drop=True), lineage="skin")
    with pytest.raises(AnalysisError, match="hdi_prob"):
        rank_genes(da.isel(lineage=0, drop=True), hdi_prob=1.5)
    with pytest.raises(AnalysisError, match="top_k"):
        rank_genes(da.isel(lineage=0, drop=True), top_k=0)
    with pytest.raises(AnalysisError, match="no 'gene' dim"):
        rank_genes(xr.DataArray(np.zeros((1, 5)), dims=("chain", "draw")))
    with pytest.raises(AnalysisError, match="xarray.DataArray"):
        rank_genes(np.zeros((1, 5, 2)))  # type: ignore[arg-type]
    bad = np.zeros((1, 5, 2), dtype=np.float32)
    bad[0, 3, 1] = np.nan
    with pytest.raises(AnalysisError, match="gene 'BRAF' contain NaN"):
        rank_genes(gene_draws(bad, ["KRAS", "BRAF"]))
    assert issubclass(AnalysisError, SpecletError) and issubclass(AnalysisError, ValueError)


# --------------------------------------------------------------------------- pairwise


def test_compare_pairs_matches_brute_force(random_draws: xr.DataArray) -> None:
    result = compare_pairs(random_draws, hdi_prob=0.89)
    x = samples(random_draws)
    diff = x[:, :, None] - x[:, None, :]  # the full draws × G × G array the implementation avoids
    for i, a in enumerate(GENES):
        for j, b in enumerate(GENES):
            if i == j:
                assert np.isnan(result.p_less.loc[a, b])
                continue
            assert result.p_less.loc[a, b] == np.mean(x[:, i] < x[:, j])
            assert result.mean_diff.loc[a, b] == pytest.approx(diff[:, i, j].mean(dtype=np.float64), rel=1e-6, abs=1e-7)
            assert (result.hdi_low.loc[a, b], result.hdi_high.loc[a, b]) == arviz_hdi(diff[:, i, j], 0.89)
    long = result.to_long()
    assert len(long) == 7 * 6
    row = long[(long.gene_a == "KRAS") & (long.gene_b == "MYC")].iloc[0]
    assert row["p_a_stronger"] == result.p_less.loc["KRAS", "MYC"]


def test_compare_pairs_never_overlapping_draws_give_exactly_zero_and_one() -> None:
    rng = np.random.default_rng(9)
    kras = rng.uniform(-2.0, -1.5, size=(2, 100))
    braf = rng.uniform(-1.0, 0.5, size=(2, 100))
    result = compare_pairs(gene_draws(np.stack([kras, braf], axis=-1).astype(np.float32), ["KRAS", "BRAF"]))
    assert result.p_less.loc["KRAS", "BRAF"] == 1.0
    assert result.p_less.loc["BRAF", "KRAS"] == 0.0
    assert result.hdi_high.loc["KRAS", "BRAF"] < 0 < result.hdi_low.loc["BRAF", "KRAS"]
    assert result.describe("KRAS", "BRAF") == "KRAS is a stronger dependency than BRAF in all 200 posterior draws"
    assert result.describe("BRAF", "KRAS") == "KRAS is a stronger dependency than BRAF in all 200 posterior draws"


def test_compare_pairs_selects_genes_or_top_k(random_draws: xr.DataArray) -> None:
    chosen = compare_pairs(random_draws, ["MYC", "KRAS", "MYC"])
    assert chosen.genes == ("MYC", "KRAS")
    full = compare_pairs(random_draws)
    assert chosen.p_less.loc["MYC", "KRAS"] == full.p_less.loc["MYC", "KRAS"]
    top = compare_pairs(random_draws, top_k=3)
    means = samples(random_draws).mean(axis=0)
    assert top.genes == tuple(np.asarray(GENES)[np.argsort(means)[:3]])
    with pytest.raises(AnalysisError, match=r"1 gene not in these draws: 'KRSA'"):
        compare_pairs(random_draws, ["KRAS", "KRSA"])
    with pytest.raises(AnalysisError, match="at least two genes"):
        compare_pairs(random_draws, ["KRAS"])


def test_compare_pairs_refuses_huge_matrices(monkeypatch: pytest.MonkeyPatch, random_draws: xr.DataArray) -> None:
    monkeypatch.setattr(pairs, "MAX_PAIRWISE_GENES", 5)
    with pytest.raises(AnalysisError, match="pick at most 5 genes.*compare_to_reference"):
        compare_pairs(random_draws)


def test_compare_to_reference_matches_brute_force(random_draws: xr.DataArray, monkeypatch) -> None:
    monkeypatch.setattr(draws, "BLOCK_ELEMENTS", 1000)  # several blocks
    table = compare_to_reference(random_draws, "MYC", hdi_prob=0.89)
    assert "MYC" not in set(table["gene"]) and len(table) == 6
    assert table["p_stronger"].is_monotonic_decreasing
    x = samples(random_draws)
    ref = x[:, GENES.index("MYC")]
    for row in table.itertuples():
        d = x[:, GENES.index(row.gene)] - ref
        assert row.p_stronger == np.mean(d < 0)
        assert (row.hdi_low, row.hdi_high) == arviz_hdi(d, 0.89)
    with pytest.raises(AnalysisError, match="gene 'XYZ' is not in these draws"):
        compare_to_reference(random_draws, "XYZ")


# --------------------------------------------------------------------------- lineage contrasts


def test_contrast_lineage_matches_brute_force() -> None:
    rng = np.random.default_rng(10)
    values = rng.normal(0, 0.3, size=(2, 150, 5, 4)).astype(np.float32)
    values[:, :, 0, 1] -= 1.0  # KRAS selective in skin
    da = lineage_draws(values, GENES[:5], LINEAGES)
    table = contrast_lineage(da, "skin", top_k=1, threshold=-0.5).set_index("gene")
    x = da.stack(s=("chain", "draw")).transpose("s", "gene", "lineage").to_numpy()
    others = x[:, :, [0, 2, 3]]
    diff = x[:, :, 1] - others.mean(axis=2, dtype=np.float64).astype(np.float32)
    ranks = scipy.stats.rankdata(diff, axis=1)
    for j, gene in enumerate(GENES[:5]):
        row = table.loc[gene]
        assert row["p_stronger"] == np.mean(diff[:, j] < 0)
        assert row["p_dependency"] == np.mean(x[:, j, 1] < np.float32(-0.5))
        # the joint probability, draw by draw (not the product of the two)
        assert row["p_selective"] == np.mean((diff[:, j] < 0) & (x[:, j, 1] < np.float32(-0.5)))
        assert row["p_not_selective"] == pytest.approx(1.0 - row["p_selective"])
        assert row["lfsr"] == min(np.mean(x[:, j, 1] >= 0), np.mean(x[:, j, 1] <= 0))
        assert (row["hdi_low_in_lineage"], row["hdi_high_in_lineage"]) == arviz_hdi(x[:, j, 1], 0.89)
        assert row["p_strongest"] == np.mean(x[:, j, 1] < others[:, j].min(axis=1))
        assert row["mean_diff"] == pytest.approx(diff[:, j].mean(dtype=np.float64), rel=1e-6)
        assert (row["hdi_low"], row["hdi_high"]) == arviz_hdi(diff[:, j], 0.89)
        assert row["expected_rank"] == pytest.approx(ranks[:, j].mean())
        assert row["mean_in_lineage"] == pytest.approx(x[:, j, 1].mean(dtype=np.float64), rel=1e-6)
    # KRAS: −1 ± 0.3 in skin, so a dependency there (effect < −0.5) in about 95% of draws
    assert table.index[0] == "KRAS" and table.loc["KRAS", "p_selective"] > 0.9
    assert (table["versus"] == "mean of other lineages").all()


def test_contrast_lineage_versus_one_lineage() -> None:
    rng = np.random.default_rng(12)
    values = rng.normal(0, 0.3, size=(1, 300, 4, 3)).astype(np.float32)
    da = lineage_draws(values, GENES[:4], LINEAGES[:3])
    table = contrast_lineage(da, "lung", versus="colorectal", order="difference")
    x = da.stack(s=("chain", "draw")).transpose("s", "gene", "lineage").to_numpy()
    for row in table.itertuples():
        j = GENES.index(row.gene)
        assert row.p_stronger == np.mean(x[:, j, 2] < x[:, j, 0])
        assert np.isnan(row.p_strongest)
        assert row.versus == "colorectal"
    assert table["mean_diff"].is_monotonic_increasing
    with pytest.raises(AnalysisError, match="the contrasted lineage itself"):
        contrast_lineage(da, "lung", versus="lung")
    with pytest.raises(AnalysisError, match="unknown contrast order"):
        contrast_lineage(da, "lung", order="size")
    with pytest.raises(AnalysisError, match="at least two lineages"):
        contrast_lineage(da.isel(lineage=[0]), "colorectal")
    with pytest.raises(AnalysisError, match="needs a gene × lineage effect"):
        contrast_lineage(da.isel(lineage=0, drop=True), "lung")


def test_planted_lineage_selective_genes_come_on_top() -> None:
    screen = simulate_screen(n_genes=40, n_cell_lines=60, n_lineages=5, seed=3, n_lineage_selective=5)
    truth = screen.truth_values("gene_lineage_effect").pivot(index="gene", columns="lineage", values="value")
    planted = screen.truth_values("lineage_selective")
    assert len(planted) == 5
    rng = np.random.default_rng(0)
    # a posterior centred on the truth with realistic spread
    values = truth.to_numpy()[None, None] + rng.normal(0, 0.2, size=(2, 250, *truth.shape))
    da = lineage_draws(values, list(truth.index), list(truth.columns))
    for lineage, expected in planted.groupby("lineage")["gene"]:
        table = contrast_lineage(da, lineage)
        top = table.head(len(expected))
        assert set(top["gene"]) == set(expected), (lineage, top, expected)
        assert (top["p_selective"] == 1.0).all() and (top["p_strongest"] > 0.9).all()
        by_size = contrast_lineage(da, lineage, order="difference")
        assert set(by_size.head(len(expected))["gene"]) == set(expected)
        # pan-essential genes are strong everywhere, hence not selective for this lineage
        pan = set(screen.truth_values("pan_essential").query("value == 1")["gene"])
        assert not pan & set(top["gene"])


# --------------------------------------------------------------------------- sentences


@pytest.mark.parametrize(
    ("p", "sentence"),
    [
        (0.97, "KRAS is a stronger dependency than BRAF in 97% of posterior draws"),
        (0.03, "BRAF is a stronger dependency than KRAS in 97% of posterior draws"),
        (0.9995, "KRAS is a stronger dependency than BRAF in more than 99.9% of posterior draws"),
        (0.0, "BRAF is a stronger dependency than KRAS in more than 99.9% of posterior draws"),
        (0.996, "KRAS is a stronger dependency than BRAF in 99.6% of posterior draws"),
        (0.8, "KRAS is a stronger dependency than BRAF in 80% of posterior draws"),
        (0.54, "no clear difference between KRAS and BRAF (KRAS stronger in 54% of posterior draws)"),
        (0.3, "no clear difference between KRAS and BRAF (KRAS stronger in 30% of posterior draws)"),
    ],
)
def test_describe_pair(p: float, sentence: str) -> None:
    assert describe_pair("KRAS", "BRAF", p) == sentence


def test_describe_pair_and_contrast_edges() -> None:
    assert describe_pair("KRAS", "BRAF", 1.0, n_samples=4000) == (
        "KRAS is a stronger dependency than BRAF in all 4,000 posterior draws"
    )
    assert describe_pair("KRAS", "BRAF", 0.9, clear=0.95).startswith("no clear difference")
    with pytest.raises(AnalysisError, match="between 0 and 1"):
        describe_pair("KRAS", "BRAF", 1.2)
    with pytest.raises(AnalysisError, match="between 0 and 1"):
        describe_pair("KRAS", "BRAF", float("nan"))
    assert describe_selective("SOX10", "skin", p_dependency=0.98, p_stronger=0.97, mean_in_lineage=-1.1) == (
        "SOX10 is a dependency in skin (P = 0.98) and stronger there than in the other lineages (P = 0.97)"
    )
    assert describe_selective("SOX10", "skin", p_dependency=0.9, p_stronger=0.1, mean_in_lineage=-0.9,
                              versus="lung") == "SOX10 is a dependency in skin (P = 0.90), but a weaker one there than in lung (P = 0.90)"
    assert describe_selective("MYC", "skin", p_dependency=0.99, p_stronger=0.6, mean_in_lineage=-1.0).endswith(
        "no clear difference from the other lineages (stronger in skin: P = 0.60)")


# --------------------------------------------------------------------------- the rank command


def _store_fit(lineage_term: bool = True, seed: int = 0) -> tuple[str, xr.Dataset]:
    """Put a small synthetic posterior into the test's store; returns (fit id, posterior)."""
    import arviz as az

    from model_store import ModelStore
    from speclet_core.records import FitRequest
    from speclet_core.settings import Settings

    rng = np.random.default_rng(seed)
    genes, lineages = GENES[:6], LINEAGES[:3]
    gene_mean = np.array([-1.5, -1.0, -0.6, -0.2, 0.0, 0.1])
    gl = gene_mean[:, None] + np.zeros((6, 3))
    gl[2, 1] -= 1.2  # NRAS selective in skin
    posterior = {"gene_effect": gene_mean + rng.normal(0, 0.2, size=(2, 100, 6)), "sigma": rng.gamma(5, 0.05, (2, 100))}
    dims = {"gene_effect": ["gene"]}
    if lineage_term:
        posterior["gene_lineage_effect"] = gl + rng.normal(0, 0.2, size=(2, 100, 6, 3))
        dims["gene_lineage_effect"] = ["gene", "lineage"]
    idata = az.from_dict(posterior=posterior, dims=dims, coords={"gene": genes, "lineage": lineages})
    request = FitRequest(
        data_path="screen.csv", data_fingerprint=f"{seed:064x}", model="test_model" if lineage_term else "gene_only",
        model_version="1", seed=seed,
    )
    roles = {
        "gene_effect": "gene_effect",
        "gene_lineage_effect": "gene_lineage_effect" if lineage_term else None,
        "gene_cell_line_effect": None,
        "hyperparameters": ["sigma"],
        "covariate_slopes": [],
    }
    diagnostics = {"verdict": "converged", "reasons": [], "max_rhat": 1.0, "divergences": 0, "approximate": False}
    ModelStore(Settings.from_env().fits_dir).put(
        request.fit_id, idata, request=request.model_dump(mode="json"), roles=roles, diagnostics=diagnostics,
        timings={"total_s": 1.0},
    )
    return request.fit_id, idata.posterior


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from speclet_core.cli.main import main

    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_rank_command_writes_the_ranking_table(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    fit_id, posterior = _store_fit()
    code, out, err = _main(capsys, "rank", fit_id[:10])
    assert code == 0, err
    from io import StringIO

    table = pd.read_csv(StringIO(out))
    assert set(RANKING_COLUMNS) <= set(table.columns)
    expected = rank_genes(posterior["gene_effect"], top_k=default_top_k(posterior.sizes["gene"]))  # the CLI's default k
    assert table["gene"].tolist() == expected["gene"].tolist() == ["KRAS", "BRAF", "NRAS", "MYC", "TP53", "EGFR"]
    for col in RANKING_COLUMNS[1:]:
        np.testing.assert_allclose(table[col], expected[col], rtol=1e-7, atol=1e-12)

    out_file = tmp_path / "skin.csv"
    code, out, err = _main(capsys, "rank", fit_id, "--lineage", "skin", "--top-k", "1", "--out", str(out_file))
    assert code == 0, err
    assert out.strip() == f"wrote 6 genes to {out_file}"
    skin = pd.read_csv(out_file)
    expected = rank_genes(posterior["gene_lineage_effect"], lineage="skin", top_k=1)
    assert skin["gene"].tolist() == expected["gene"].tolist()
    np.testing.assert_allclose(skin["p_top_k"], expected["p_top_k"])
    assert skin["gene"].iloc[0] == "NRAS"  # -0.6 - 1.2 in skin: stronger than KRAS there


def test_rank_command_contrast(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    fit_id, posterior = _store_fit()
    out_file = tmp_path / "contrast.csv"
    code, out, err = _main(capsys, "rank", fit_id, "--contrast", "skin", "--out", str(out_file))
    assert code == 0, err
    assert "lineage-selective dependencies" in out
    table = pd.read_csv(out_file)
    assert tuple(table.columns) == CONTRAST_COLUMNS
    assert table["gene"].iloc[0] == "NRAS" and table["p_selective"].iloc[0] == 1.0
    expected = contrast_lineage(posterior["gene_lineage_effect"], "skin")
    np.testing.assert_allclose(table["p_selective"], expected["p_selective"])
    code, out, err = _main(capsys, "rank", fit_id, "--contrast", "skin", "--versus", "lung")
    assert code == 0, err
    assert "lung" in out.splitlines()[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hdi-prob", "1.5"], "invalid ranking option: hdi_prob"),
        (["--threshold", "nan"], "invalid ranking option: threshold"),
        (["--top-k", "0"], "must be at least 1"),
        (["--lineage", "bone"], "lineage 'bone' is not in these draws; they have 'colorectal', 'skin', 'lung'"),
        (["--contrast", "bone"], "lineage 'bone' is not in these draws"),
        (["--versus", "lung"], "--versus only applies with --contrast"),
        (["--lineage", "skin", "--contrast", "lung"], "not allowed with argument"),
    ],
)
def test_rank_command_bad_input_exit_2_nothing_written(
    capsys: pytest.CaptureFixture[str], tmp_path, args: list[str], message: str
) -> None:
    fit_id, _ = _store_fit()
    out_file = tmp_path / "r.csv"
    code, _, err = _main(capsys, "rank", fit_id, *args, "--out", str(out_file))
    assert code == 2
    assert message in err and "Traceback" not in err
    assert err.startswith("usage:") or err.startswith("error: ")
    assert not list(tmp_path.iterdir())


def test_rank_command_fit_problems(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    fit_id, _ = _store_fit(lineage_term=False)
    code, _, err = _main(capsys, "rank", fit_id, "--lineage", "skin")
    assert code == 2
    assert "model gene_only) has no gene × lineage effect, so --lineage is not possible" in err
    code, _, err = _main(capsys, "rank", "ab" * 32)
    assert code == 2 and err.startswith("error: ") and "ab" * 32 in err
    code, _, err = _main(capsys, "rank", "not-an-id")
    assert code == 2 and "invalid fit id" in err
    code, _, err = _main(capsys, "rank", fit_id, "--out", str(tmp_path / "missing" / "r.csv"))
    assert code == 2 and "does not exist" in err
    # the ranking of this fit still works
    code, out, err = _main(capsys, "rank", fit_id, "--out", str(tmp_path / "r.csv"))
    assert code == 0 and (tmp_path / "r.csv").exists()


def test_rank_command_as_a_subprocess(tmp_path) -> None:
    import os
    import subprocess
    import sys

    fit_id, _ = _store_fit()
    r = subprocess.run(
        [sys.executable, "-m", "speclet_core", "rank", fit_id, "--top-k", "2"],
        capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split(",")[:4] == ["gene", "mean", "sd", "hdi_low"] and len(lines) == 7
    assert lines[1].startswith("KRAS,")


def test_threads_and_chunks_do_not_change_the_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(13)
    da = gene_draws(rng.normal(size=(2, 150, 40)).astype(np.float32) / 8, [f"G{i}" for i in range(40)])
    monkeypatch.setattr(draws, "THREADS", 1)
    single = rank_genes(da, top_k=3)
    monkeypatch.setattr(draws, "THREADS", 3)
    monkeypatch.setattr(ranking, "_RANK_CHUNK_DRAWS", 16)
    monkeypatch.setattr(ranking, "_STATS_CHUNK_GENES", 7)
    pd.testing.assert_frame_equal(rank_genes(da, top_k=3), single)
    ranks = scipy.stats.rankdata(samples(da), axis=1)
    assert single.set_index("gene").loc[[f"G{i}" for i in range(40)], "expected_rank"].tolist() == pytest.approx(
        ranks.mean(axis=0).tolist()
    )
