"""AppTest of the Pan-cancer atlas page on real stored per-lineage fits (planted effects, no PyMC).

The page lists the stored atlases (the one in ``?atlas=`` opened), each lineage's fit with its state and verdict,
a gene × lineage P(dependency) chart, the selective-dependency list of the chosen lineage with its sentences and
expected FDP; a flagged member fit brings the verdict banner; an atlas whose fits are not stored yet, and no
atlas at all, are explained.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
from streamlit.testing.v1 import AppTest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))

from atlas_helpers import APPROXIMATE, CONVERGED, LINEAGES, put_atlas, put_lineage_fit

from model_store import ModelStore


def _text(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
                     + [w.value for w in at.warning] + [e.value for e in at.error] + [s.value for s in at.success])


def test_atlas_page_shows_where_genes_are_selective(open_page: Callable[..., AppTest], data_dir: Path) -> None:
    store = ModelStore(data_dir / "fits")
    fits = {lin: put_lineage_fit(store, lin, seed=i) for i, lin in enumerate(LINEAGES)}
    atlas_id = put_atlas(data_dir, fits)
    at = open_page("atlas", atlas=atlas_id, atlas_lineage="skin")
    text = _text(at)
    assert at.selectbox(key="atlas").value == atlas_id
    status = at.dataframe[0].value
    assert sorted(status["lineage"]) == sorted(LINEAGES) and set(status["state"]) == {"stored"}
    assert set(status["diagnostics"]) == {"✅ converged"}
    assert "did not pass" not in text, [w.value for w in at.warning]  # every member converged: no banner
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert "P(dependency) in each lineage" in json.dumps(spec.get("title"))
    el = at.get("vega_lite_chart")[0]
    cells = pd.concat([pa.ipc.open_stream(ds.data.data).read_all().to_pandas() for ds in el.proto.datasets]
                      + [pd.DataFrame(rows) for rows in spec.get("datasets", {}).values()], ignore_index=True)
    assert len(cells) == 5 * 4 and set(cells["lineage"]) == set(LINEAGES)
    assert cells.loc[cells["gene"] == "PLK1", "value"].min() > 0.99  # pan-essential: a dependency everywhere
    assert cells.loc[cells["gene"] == "TP53", "value"].max() < 0.01  # the tumour suppressor: nowhere
    listed = at.dataframe[1].value
    assert listed["gene"].tolist() == ["SOX10"] and listed["p_selective"].iloc[0] > 0.99
    assert "SOX10 is a dependency in skin (P > 0.99) and stronger there than in the other lineages" in text
    assert "Expected false discovery proportion of this list of one gene (selective dependencies of skin)" in text
    # the link picks the lineage; another lineage has its own list
    blood = open_page("atlas", atlas=atlas_id, atlas_lineage="blood")
    assert blood.dataframe[1].value.empty and "the list of selective dependencies of blood is empty" in _text(blood)


def test_atlas_page_flags_an_unconverged_member_and_waits_for_missing_ones(
    open_page: Callable[..., AppTest], data_dir: Path,
) -> None:
    store = ModelStore(data_dir / "fits")
    fits = {lin: put_lineage_fit(store, lin, seed=i, diagnostics=APPROXIMATE if lin == "lung" else CONVERGED)
            for i, lin in enumerate(LINEAGES)}
    flagged = put_atlas(data_dir, fits)
    at = open_page("atlas", atlas=flagged)
    text = _text(at)
    assert "1 of 4 lineage fits did not pass their diagnostics" in text and "lung (≈ approximate (first look))" in text
    assert "Approximate posterior (ADVI)" in text  # the shared approximate-fit note
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert "approximate" in json.dumps(spec.get("title")).lower()  # the chart's subtitle carries the verdict
    waiting = put_atlas(data_dir, {**fits, "lung": "0" * 64})
    at = open_page("atlas", atlas=waiting)
    assert "1 of 4 lineage fits cannot be compared: lung: fit 000000000000 missing" in _text(at)
    assert not at.get("vega_lite_chart")


def test_atlas_page_without_any_atlas_says_how_to_make_one(open_page: Callable[..., AppTest]) -> None:
    at = open_page("atlas")
    assert "No atlas is stored yet" in _text(at) and "speclet_core atlas --data FILE" in _text(at)
    assert not at.get("vega_lite_chart")
