"""analysis.heatmap: cells, lineage grouping and averaging, certainty fading, cell-line lineages."""

from __future__ import annotations

from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from speclet_core import charts
from speclet_core.analysis import heatmap
from speclet_core.errors import AnalysisError


def _matrices(mean: np.ndarray, sd: np.ndarray, genes: list[str], cols: list[str]) -> dict[str, pd.DataFrame]:
    frame = lambda x: pd.DataFrame(x, index=pd.Index(genes, name="gene"), columns=cols)  # noqa: E731
    return {"mean": frame(mean), "sd": frame(sd), "hdi_5.5%": frame(mean - 1.6 * sd), "hdi_94.5%": frame(mean + 1.6 * sd),
            "p_below": frame((mean < -0.5).astype(float))}


def test_heatmap_cells_groups_lineages_and_fades_uncertain_cells() -> None:
    genes = ["A", "B", "C", "D"]
    cols = ["c1", "c2", "c3", "c4", "c5"]
    lineage = {"c1": "skin", "c2": "blood", "c3": "skin", "c4": "blood", "c5": "skin"}
    mean = np.array([[-1.0, 0.1, -2.0, 0.0, -0.5],
                     [0.5, 0.5, 0.5, 0.5, 0.5],
                     [-1.1, 0.1, -2.1, 0.0, -0.4],  # like A: clustering puts them together
                     [0.4, 0.7, 0.5, 0.4, 0.6]])  # mean 0.52: just weaker than B
    sd = np.full_like(mean, 0.2)
    sd[0, 4] = 1.0  # A in c5: interval includes 0
    view = heatmap.heatmap_view(_matrices(mean, sd, genes, cols), genes, column_lineage=lineage, order="cluster")
    assert view.per_column == 1 and len(view.cells) == 20
    # blood first (alphabetical), then skin; within a lineage strongest (most negative column mean) first
    assert view.columns == ("c4", "c2", "c3", "c1", "c5")
    assert view.bands["lineage"].tolist() == ["blood", "blood", "skin", "skin", "skin"]
    cells = view.cells.set_index(["gene", "column"])
    assert cells.loc[("A", "c3"), "value"] == -2.0 and cells.loc[("A", "c3"), "lineage"] == "skin"
    assert cells.loc[("A", "c5"), "certainty"] == 0.0 and cells.loc[("A", "c3"), "certainty"] == 1.0
    assert cells.loc[("B", "c1"), "certainty"] == 1.0 and cells.loc[("A", "c4"), "certainty"] == 0.0
    order = list(view.genes)
    assert abs(order.index("A") - order.index("C")) == 1 and abs(order.index("B") - order.index("D")) == 1
    assert heatmap.heatmap_view(_matrices(mean, sd, genes, cols), genes, order="mean",
                                column_lineage=lineage).genes == ("C", "A", "B", "D")
    sd_view = heatmap.heatmap_view(_matrices(mean, sd, genes, cols), ["A"], stat="sd", column_lineage=lineage)
    assert sd_view.cells.set_index("column").loc["c5", "value"] == 1.0
    with pytest.raises(AnalysisError, match=r"'Z' \(did you mean|1 gene not in this fit"):
        heatmap.heatmap_view(_matrices(mean, sd, genes, cols), ["Z"], column_lineage=lineage)


def test_heatmap_averages_neighbouring_cell_lines_of_a_lineage_beyond_the_cell_budget() -> None:
    rng = np.random.default_rng(0)
    genes = [f"G{i}" for i in range(50)]
    cols = [f"ACH-{i:06d}" for i in range(300)]
    lineage = {c: ("blood", "skin", "lung")[i % 3] for i, c in enumerate(cols)}
    mean = rng.normal(-0.3, 0.6, (50, 300))
    mats = _matrices(mean, np.full_like(mean, 0.3), genes, cols)
    view = heatmap.heatmap_view(mats, genes, column_lineage=lineage, max_cells=5_500)
    assert view.per_column == 3 and len(view.cells) == 50 * 3 * 34  # 100 cell lines per lineage: 34 columns each
    assert view.bands["n_cell_lines"].sum() == 300 and view.n_columns_total == 300
    cells = view.cells
    for _, row in cells.sample(25, random_state=1).iterrows():
        members = [m for m in row["cell_lines"].split(", ")]
        assert len(members) == row["n_cell_lines"] and {lineage[m] for m in members} == {row["lineage"]}
        assert row["mean"] == pytest.approx(mats["mean"].loc[row["gene"], members].mean())
        inside = ((mats["hdi_5.5%"].loc[row["gene"], members] > 0) | (mats["hdi_94.5%"].loc[row["gene"], members] < 0))
        assert row["certainty"] == pytest.approx(inside.mean())
    chart = charts.lineage_heatmap(view, column_title="cell line")
    with alt.data_transformers.enable("default", max_rows=None):  # Streamlit ships every row itself
        spec = chart.to_dict()
    assert spec["vconcat"][1]["encoding"]["opacity"]["field"] == "certainty"
    assert spec["vconcat"][1]["encoding"]["x"]["axis"]["labels"] is False  # 100 columns: the band labels lineages


def test_cell_line_lineages_from_the_table_or_the_posterior(screen_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, screen = screen_file
    truth = screen.truth_values("cell_line_effect").set_index("cell_line")["lineage"].to_dict()
    cells = sorted(truth)[:5]
    assert heatmap.cell_line_lineages_from_table(path, cells) == {c: truth[c] for c in cells}
    assert heatmap.cell_line_lineages_from_table(tmp_path / "gone.csv", cells) == {}
    post = xr.Dataset(coords={"cell_line": cells, "cell_line_lineage": ("cell_line", [truth[c] for c in cells])})
    assert heatmap.cell_line_lineages(post) == {c: truth[c] for c in cells}
