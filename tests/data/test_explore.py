"""Explorer summaries and chart specs: numbers match the raw table; charts encode what they claim."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from speclet_core import charts
from speclet_core.data import explore
from speclet_core.data.screen import screen_from_frame
from speclet_core.errors import SelectionError


def test_counts_and_means(tiny_table: pd.DataFrame) -> None:
    screen = screen_from_frame(tiny_table)
    sub = explore.select_rows(screen, genes=["KRAS"])
    assert len(sub) == 4
    counts = explore.count_cell_lines(explore.select_rows(screen))
    assert counts.set_index("lineage")["cell_lines"].to_dict() == {"colorectal": 1, "skin": 1}
    sg = explore.count_sgrnas(screen.data).set_index("gene")
    assert sg.loc["KRAS", "sgrnas"] == 2 and sg.loc["KRAS", "readings"] == 4
    gl = explore.summarise_gene_lineage(screen.data).set_index(["gene", "lineage"])
    assert gl.loc[("KRAS", "colorectal"), "mean_lfc"] == pytest.approx(-1.1)
    assert gl.loc[("BRAF", "skin"), "readings"] == 1


def test_select_rows_errors(tiny_table: pd.DataFrame) -> None:
    screen = screen_from_frame(tiny_table)
    with pytest.raises(SelectionError, match="not in the screen"):
        explore.select_rows(screen, genes=["NOPE"])


def test_distribution_quantiles(tiny_screen) -> None:  # type: ignore[no-untyped-def]
    d = tiny_screen.data
    gene = d["hugo_symbol"].iloc[0]
    box = explore.summarise_lfc_distribution(d, [gene])
    lin = box["lineage"].iloc[0]
    raw = d[(d.hugo_symbol == gene) & (d.lineage == lin)]["lfc"]
    row = box[box.lineage == lin].iloc[0]
    assert row["median"] == pytest.approx(raw.median())
    assert row["q05"] <= row["q25"] <= row["median"] <= row["q75"] <= row["q95"]
    assert row["readings"] == len(raw)


def test_covariate_points_downsampled(tiny_screen) -> None:  # type: ignore[no-untyped-def]
    d = tiny_screen.data
    genes = list(d["hugo_symbol"].unique())
    pts = explore.sample_covariate_points(d, "rna_expr", genes, max_points=50)
    assert len(pts) == 50 and set(pts.columns) == {"gene", "cell_line", "lineage", "rna_expr", "lfc"}
    with pytest.raises(SelectionError, match="no 'foo' column"):
        explore.sample_covariate_points(d, "foo", genes)


def test_heatmap_spec_is_diverging_around_zero() -> None:
    df = pd.DataFrame({"gene": ["A", "B"], "lineage": ["x", "x"], "v": [-1.0, 0.5]})
    spec = charts.effect_heatmap(df, x="lineage", y="gene", color="v", color_title="v", tooltip=["gene"]).to_dict()
    scale = spec["encoding"]["color"]["scale"]
    assert scale["scheme"] == "redblue" and scale["domainMid"] == 0
    assert spec["mark"]["type"] == "rect"


def test_charts_refuse_too_many_marks() -> None:
    big = pd.DataFrame({"gene": np.arange(60_000).astype(str), "n": 1})
    with pytest.raises(ValueError, match="too many"):
        charts.bar_counts(big, "gene", "n", "t")
    # box plot from stats serialises with its data inlined
    stats = pd.DataFrame({"gene": ["A"], "lineage": ["x"], "q05": [-1.0], "q25": [-0.5], "median": [0.0],
                          "q75": [0.5], "q95": [1.0], "readings": [10]})
    assert "facet" in json.dumps(charts.box_from_stats(stats).to_dict())
