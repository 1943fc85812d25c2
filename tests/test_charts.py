"""speclet_core.charts: the Altair specs behind the result pages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

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
