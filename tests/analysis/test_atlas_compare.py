"""The atlas comparison (``analysis.atlas``) on real stored per-lineage fits: draws paired by index after even
thinning, the flagship's definition of a selective dependency (``contrast_lineage`` on the stacked effect), genes
missing from a fit named, and member fits that are missing or not converged refused or carried in every row."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from atlas_helpers import CONVERGED, FLAGGED, GENES, LINEAGES, put_atlas, put_lineage_fit

from model_store import ModelStore
from speclet_core.analysis import atlas
from speclet_core.analysis.contrasts import contrast_lineage, selective_list
from speclet_core.errors import AnalysisError


def _put(store: ModelStore, lineage: str, **kwargs: object) -> str:
    return put_lineage_fit(store, lineage, **kwargs)  # type: ignore[arg-type]


def _record(data_dir: Path, fits: dict[str, str]) -> atlas.AtlasRecord:
    return atlas.read_atlas(data_dir, put_atlas(data_dir, fits)[:10])


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModelStore, dict[str, str]]:
    data_dir = tmp_path_factory.mktemp("atlas")
    store = ModelStore(data_dir / "fits")
    fits = {lin: _put(store, lin, seed=i, chains=4 if lin == "skin" else 2, draws=100 if lin == "skin" else 300)
            for i, lin in enumerate(LINEAGES)}
    return data_dir, store, fits


def test_draws_are_thinned_evenly_and_paired_by_index(stored: tuple[Path, ModelStore, dict[str, str]]) -> None:
    data_dir, store, fits = stored
    draws = {lin: store.get(fid).draws("gene_effect") for lin, fid in fits.items()}
    stacked, missing = atlas.stack_lineage_draws(draws)
    assert missing == {}
    # skin has 4 × 100 draws, the others 2 × 300: 400 each, no thinning
    assert stacked.sizes == {"sample": 400, "gene": 5, "lineage": 4}
    small, _ = atlas.stack_lineage_draws(draws, max_samples=150)
    keep = atlas.thin_indices(600, 150)
    assert keep[0] == 0 and keep[-1] == 596 and len(set(keep.tolist())) == 150  # both chains, not the first only
    colorectal = draws["colorectal"].stack(s=("chain", "draw")).transpose("s", "gene").to_numpy()
    np.testing.assert_array_equal(small.sel(lineage="colorectal").to_numpy(), colorectal[keep].astype(np.float32))
    skin = draws["skin"].stack(s=("chain", "draw")).transpose("s", "gene").to_numpy()
    np.testing.assert_array_equal(small.sel(lineage="skin").to_numpy(),
                                  skin[atlas.thin_indices(400, 150)].astype(np.float32))


def test_comparison_uses_the_flagships_definition_and_recovers_the_plant(
    stored: tuple[Path, ModelStore, dict[str, str]],
) -> None:
    data_dir, store, fits = stored
    record = _record(data_dir, fits)
    result = atlas.compare_atlas(record, store)
    table = result.table
    assert tuple(table.columns) == atlas.ATLAS_COLUMNS and len(table) == 5 * 4
    assert result.atlas_verdict == "converged" and set(table["fit_verdict"]) == {"converged"}
    # identical to the flagship's contrast on the same stacked gene × lineage draws
    stacked, _ = atlas.stack_lineage_draws({lin: store.get(fid).draws("gene_effect") for lin, fid in fits.items()})
    expected = contrast_lineage(atlas.align_lineages(stacked), "skin")
    got = atlas.lineage_rows(table, "skin")
    assert got["gene"].tolist() == expected["gene"].tolist()
    for column in ("mean_in_lineage", "p_dependency", "p_stronger", "p_strongest", "p_selective", "lfsr"):
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-6, atol=1e-6, err_msg=column)
    rows = table.set_index(["gene", "lineage"])
    assert rows.loc[("KRAS", "colorectal"), "p_selective"] > 0.99
    assert rows.loc[("SOX10", "skin"), "p_selective"] > 0.99 and rows.loc[("SOX10", "skin"), "p_strongest"] > 0.99
    assert (table.loc[table["gene"] == "TP53", "p_dependency"] < 0.01).all()  # a positive effect is never one
    assert rows.loc[("TP53", "blood"), "mean_in_lineage"] > 0.5
    plk1 = table[table["gene"] == "PLK1"]
    assert (plk1["p_dependency"] > 0.99).all() and (plk1["p_selective"] < 0.9).all()  # pan-essential, not selective
    for lin in LINEAGES:
        listed = selective_list(atlas.lineage_rows(table, lin))
        want = {"colorectal": ["KRAS"], "skin": ["SOX10"]}.get(lin, [])
        assert listed["gene"].tolist() == want, lin
        assert 0 <= listed.attrs["expected_fdp"] < 0.02


def test_a_lineage_wide_shift_is_taken_out_before_comparing(tmp_path: Path) -> None:
    """Every guide of lung depletes 0.6 more (screen quality): no gene is a lung-selective dependency for that."""
    store = ModelStore(tmp_path / "fits")
    fits = {lin: _put(store, lin, seed=i, shift=-0.6 if lin == "lung" else 0.0) for i, lin in enumerate(LINEAGES)}
    record = _record(tmp_path, fits)
    raw = atlas.lineage_rows(atlas.compare_atlas(record, store, align=False).table, "lung").set_index("gene")
    assert raw.loc["MYC", "p_selective"] > 0.9  # -0.7 in lung against -0.1 elsewhere: called, wrongly
    result = atlas.compare_atlas(record, store)
    aligned = atlas.lineage_rows(result.table, "lung")
    assert selective_list(aligned).empty
    assert aligned.set_index("gene").loc["MYC", "p_selective"] < 0.5
    assert result.table.attrs["lineage_shift"]["lung"] == pytest.approx(-0.45, abs=0.05)  # -0.6 minus the mean shift
    assert selective_list(atlas.lineage_rows(result.table, "skin"))["gene"].tolist() == ["SOX10"]


def test_genes_missing_from_a_fit_are_named_and_left_out(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "fits")
    fits = {lin: _put(store, lin, genes=GENES if lin != "lung" else GENES[:4]) for lin in LINEAGES[::-1]}
    result = atlas.compare_atlas(_record(tmp_path, fits), store)
    assert result.missing_genes == {"MYC": ["lung"]}
    assert result.table.attrs["missing_genes"] == {"MYC": ["lung"]}
    assert set(result.table["gene"]) == set(GENES[:4])
    assert result.table["lineage"].drop_duplicates().tolist() == sorted(LINEAGES)  # the record keeps them sorted


def test_missing_and_flagged_member_fits_are_refused_or_carried(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "fits")
    fits = {lin: _put(store, lin, diagnostics=FLAGGED if lin == "blood" else CONVERGED) for lin in LINEAGES}
    record = _record(tmp_path, fits)
    with pytest.raises(AnalysisError, match=r"1 of 4 lineage fits did not pass.*blood.*look closer.*--allow-flagged"):
        atlas.compare_atlas(record, store)
    result = atlas.compare_atlas(record, store, allow_flagged=True, lineage="skin")
    assert set(result.table["lineage"]) == {"skin"}
    assert set(result.table["fit_verdict"]) == {"converged"}  # skin's own fit is fine …
    assert set(result.table["atlas_verdict"]) == {"look_closer"}  # … but blood enters every row as "elsewhere"
    assert result.table.attrs["flagged"] == {"blood": "look_closer"}
    gone = {**fits, "lung": "0" * 64}
    with pytest.raises(AnalysisError, match=r"1 of 4 lineage fits cannot be compared: lung: fit 000000000000 missing"):
        atlas.compare_atlas(_record(tmp_path, gone), store)
    with pytest.raises(AnalysisError, match="lineage 'bone' is not in atlas"):
        atlas.compare_atlas(record, store, allow_flagged=True, lineage="bone")


def test_atlas_ids_are_resolved_or_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="there is none yet"):
        atlas.read_atlas(tmp_path, "abcd1234")
    with pytest.raises(AnalysisError, match="is not an atlas id"):
        atlas.read_atlas(tmp_path, "../etc")
    folder = atlas.atlas_folder(tmp_path)
    folder.mkdir()
    (folder / ("ab" * 32 + ".json")).write_text("{not json")
    with pytest.raises(AnalysisError, match="cannot be read"):
        atlas.read_atlas(tmp_path, "abab")
    assert atlas.list_atlases(tmp_path) == []  # a damaged record is skipped in the list
