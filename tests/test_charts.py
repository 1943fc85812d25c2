"""speclet_core.charts: the Altair specs behind the result pages."""

from __future__ import annotations

import colorsys
import json
import re
import sys
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import pytest

from model_store.summaries import P_BELOW_THRESHOLD
from speclet_core import charts
from speclet_core.analysis import forest

sys.path.insert(0, str(Path(__file__).resolve().parent / "analysis"))

from analysis_helpers import GENES, _draws


def test_forest_chart_shows_truth_and_compares_fits() -> None:
    da = _draws(np.array([-1.5, -0.2, 0.3, -0.8, 0.0]), 0.1, "gene", GENES)
    rows = forest.add_truth(forest.forest_rows(da, "gene"), pd.Series({"KRAS": -1.4, "MYC": 0.3}))
    spec = charts.forest_chart(rows, label_title="gene").to_dict()
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in spec["layer"]]
    assert marks == ["rule", "rule", "rule", "point", "point"]  # zero, outer, inner, mean, truth
    assert spec["layer"][4]["mark"]["shape"] == "diamond"
    both = forest.combine_forests({"a": rows, "b": rows})
    spec2 = json.loads(charts.forest_chart(both, label_title="gene", compare=True).to_json())
    assert spec2["layer"][1]["encoding"]["yOffset"]["field"] == "fit"
    with pytest.raises(ValueError, match="too many for the browser"):
        charts.forest_chart(pd.concat([rows] * 12_000, ignore_index=True), label_title="gene")


def _ranking_table() -> pd.DataFrame:
    return pd.DataFrame({"gene": ["KRAS", "MYC", "PLK1"], "expected_rank": [1.2, 2.1, 2.7], "rank_low": [1, 1, 2],
                         "rank_high": [2, 3, 3], "p_top_k": [0.8, 0.2, 0.0], "mean": [-1.5, -0.9, -0.8]})


def test_rank_axes_tick_whole_ranks_only() -> None:
    spec = charts.rank_interval_chart(_ranking_table(), top_k=1).to_dict()
    assert spec["layer"][0]["encoding"]["x"]["axis"] == {"format": "d", "tickMinStep": 1}
    svg = charts.figure_svg(charts.rank_interval_chart(_ranking_table(), top_k=1)).decode()
    axis = svg[svg.index('aria-label="X-axis'):svg.index("role-legend")]  # the rank axis, not the P(top-k) legend
    ticks = re.findall(r'<text[^>]*>([0-9.]+)</text>', axis)
    assert ticks and all("." not in t for t in ticks), ticks  # no 0.5 / 1.5 ranks on the axis


def test_heat_titles_use_the_one_threshold() -> None:
    assert charts.HEAT_STAT_TITLES["p_below"] == f"P(effect < {charts.threshold_text(P_BELOW_THRESHOLD)})"
    assert charts.threshold_text(-0.75) == "−0.75"


def test_lineage_colours_keep_red_for_dependencies() -> None:
    for colour in charts.LINEAGE_COLOURS:
        r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
        hue, _, sat = colorsys.rgb_to_hls(r, g, b)
        reddish = (hue < 25 / 360 or hue > 335 / 360) and sat > 0.35 and r > max(g, b) + 0.15
        assert not reddish, colour
    assert len(set(charts.LINEAGE_COLOURS)) == len(charts.LINEAGE_COLOURS) >= 10
    rows = forest.forest_rows(_draws(np.array([-1.5, -0.2, 0.3, -0.8, 0.0]), 0.1, "gene", GENES), "gene")
    rows["lineage"] = ["a", "b", "c", "a", "b"]
    spec = charts.forest_chart(rows, label_title="gene").to_dict()
    assert spec["layer"][1]["encoding"]["color"]["scale"]["range"] == list(charts.LINEAGE_COLOURS)


def test_for_projector_enlarges_fonts_and_rows_and_keeps_the_original() -> None:
    chart = charts.rank_interval_chart(_ranking_table(), top_k=1, title="Rank intervals")
    big = charts.for_projector(chart).to_dict()
    assert big["config"]["axis"]["labelFontSize"] >= 16 and big["config"]["title"]["fontSize"] >= 20
    assert big["height"] == {"step": 30} and chart.to_dict()["height"] == {"step": charts.ROW_STEP}
    assert "axis" not in chart.to_dict().get("config", {})  # the original is unchanged
    hist = pd.DataFrame({"bin_low": [0.0, 1.0], "bin_high": [1.0, 2.0], "bin_mid": [0.5, 1.5], "observed": [0.4, 0.6],
                         "predicted_mean": [0.5, 0.5], "predicted_low": [0.3, 0.3], "predicted_high": [0.7, 0.7],
                         "group": ["a", "b"]})
    assert charts.for_projector(charts.ppc_chart(hist)).to_dict()["height"] == 390
    facet = charts.for_projector(charts.ppc_chart(hist, facet="group")).to_dict()
    assert facet["spec"]["height"] == 225 and facet["spec"]["width"] == 360
    points = pd.DataFrame({"gene": ["A"], "x": [1.0], "lfc": [0.0], "lineage": ["a"], "cell_line": ["c"]})
    band = pd.DataFrame({"gene": ["A"], "x": [1.0], "low": [0.0], "high": [1.0], "mean": [0.5]})
    lines = pd.DataFrame({"gene": ["A"], "x": [1.0], "lfc": [0.0], "draw": [1]})
    cov = charts.for_projector(charts.covariate_chart(points, band, lines, x_title="x", genes=["A"])).to_dict()
    assert cov["config"]["legend"]["orient"] == "top" and cov["config"]["legend"]["labelFontSize"] >= 16


def test_provenance_joins_the_verdict_line_and_reaches_the_svg() -> None:
    line = charts.provenance_text(model="gene_lineage", fit_id="0123456789abcdef" * 4, screen="demo.parquet",
                                  date="2026-12-03")
    assert line == "gene_lineage · fit 0123456789ab · screen: demo.parquet · fitted 2026-12-03"
    chart = charts.rank_interval_chart(_ranking_table(), top_k=1, title="Rank intervals")
    flagged = chart.properties(title=alt.TitleParams(text="Rank intervals", subtitle="⛔ do not trust: …",
                                                     subtitleColor="#b45309"))
    spec = charts.with_provenance(flagged, line).to_dict()
    assert spec["title"] == {"text": "Rank intervals", "subtitle": ["⛔ do not trust: …", line],
                             "subtitleColor": "#b45309"}
    assert charts.with_provenance(chart, line).to_dict()["title"] == {"text": "Rank intervals", "subtitle": [line]}
    svg = charts.figure_svg(charts.with_provenance(chart, line)).decode()
    assert svg.startswith("<svg") and "fit 0123456789ab" in svg and "Rank intervals" in svg
