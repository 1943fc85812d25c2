"""Synthetic screens match their truth; the demo screen is deterministic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speclet_core.data.demo import DEMO_PARAMS, ensure_demo_screen, make_demo_screen, truth_path_for
from speclet_core.data.screen import screen_from_frame
from speclet_core.data.selection import select_screen
from speclet_core.data.synthetic import simulate_screen


def test_demo_screen_shape_and_truth_correlation() -> None:
    demo = make_demo_screen()
    d = demo.data
    assert d["hugo_symbol"].nunique() == DEMO_PARAMS["n_genes"] == 30
    assert d["depmap_id"].nunique() == 120
    assert d["lineage"].nunique() == 6
    truth = demo.truth_values("gene_effect").set_index("gene")["value"]
    observed = d.groupby("hugo_symbol")["lfc"].mean()
    r = np.corrcoef(observed.loc[truth.index], truth)[0, 1]
    assert r > 0.9, f"per-gene mean LFC vs true gene effect: r = {r:.3f}"


def test_structure_is_unbalanced_and_nested(tiny_screen) -> None:  # type: ignore[no-untyped-def]
    d = simulate_screen(n_genes=20, n_cell_lines=60, n_lineages=5, seed=3).data
    sg_per_gene = d.groupby("hugo_symbol")["sgrna"].nunique()
    cl_per_lineage = d.groupby("lineage")["depmap_id"].nunique()
    assert sg_per_gene.nunique() > 1 and sg_per_gene.min() >= 2
    assert cl_per_lineage.nunique() > 1 and cl_per_lineage.min() >= 2
    # sgRNAs nest in genes, cell lines in lineages: the table validates
    screen = screen_from_frame(d)
    assert screen.summarise()["rows"] == len(d)
    assert d["depmap_id"].str.fullmatch(r"ACH-\d{6}").all()


def test_deterministic_for_a_seed() -> None:
    a = simulate_screen(n_genes=8, n_cell_lines=16, n_lineages=3, seed=11)
    b = simulate_screen(n_genes=8, n_cell_lines=16, n_lineages=3, seed=11)
    c = simulate_screen(n_genes=8, n_cell_lines=16, n_lineages=3, seed=12)
    pd.testing.assert_frame_equal(a.data, b.data)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    assert not a.data["lfc"].equals(c.data["lfc"])


def test_planted_genes_show_in_the_data() -> None:
    demo = make_demo_screen()
    d, truth = demo.data, demo.truth
    pan = truth[(truth.parameter == "pan_essential") & (truth.value == 1)]["gene"]
    assert len(pan) >= 1
    gene_mean = d.groupby("hugo_symbol")["lfc"].mean()
    assert gene_mean.loc[pan].max() < gene_mean.drop(pan).median() - 1.0
    sel = truth[truth.parameter == "lineage_selective"]
    assert len(sel) >= 1
    for gene, lineage in zip(sel["gene"], sel["lineage"], strict=True):
        by_lineage = d[d.hugo_symbol == gene].groupby("lineage")["lfc"].mean()
        assert by_lineage.idxmin() == lineage
        assert by_lineage[lineage] < by_lineage.drop(lineage).mean() - 0.8


def test_truth_deviations_are_centred() -> None:
    s = simulate_screen(n_genes=10, n_cell_lines=30, n_lineages=4, seed=5)
    t = s.truth
    sg = t[t.parameter == "sgrna_effect"].groupby("gene")["value"].sum()
    assert np.abs(sg).max() < 1e-9
    gl = t[t.parameter == "gene_lineage_effect"].groupby("gene")["value"].mean()
    ge = t[t.parameter == "gene_effect"].set_index("gene")["value"]
    np.testing.assert_allclose(gl.loc[ge.index], ge, atol=1e-9)


def test_ensure_demo_screen_writes_once_and_same_fingerprint(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = ensure_demo_screen(tmp_path)
    assert path.exists() and truth_path_for(path).exists()
    mtime = path.stat().st_mtime_ns
    assert ensure_demo_screen(tmp_path) == path and path.stat().st_mtime_ns == mtime
    from speclet_core.data.screen import load_screen

    fp_file = select_screen(load_screen(path)).fingerprint
    fp_mem = select_screen(screen_from_frame(make_demo_screen().data)).fingerprint
    assert fp_file == fp_mem


def test_rejects_impossible_sizes() -> None:
    with pytest.raises(ValueError, match="two cell lines per lineage"):
        simulate_screen(n_genes=3, n_cell_lines=5, n_lineages=3)
