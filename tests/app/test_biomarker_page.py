"""AppTest of the Biomarker page on a real stored gene_biomarker fit (NUTS, tiny planted screen).

The page opens the fit from ``?fit=``, shows the verdict banner, names the marker and the marked
cell lines, ranks the planted gene first by P(stronger dependency when marked) with its size and
interval in a sentence, and draws the marker difference of the top genes; a fit without a marker
term explains how to fit one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from model_store import ModelStore
from speclet_core.data.synthetic import simulate_screen
from speclet_core.fitting.engine import run_fit
from speclet_core.fitting.request import prepare_request
from speclet_core.records import SamplerSettings
from speclet_core.settings import Settings

PLANTED = "BRAF"


def store_biomarker_fit(data_dir: Path, *, model: str = "gene_biomarker", method: str = "nuts") -> str:
    """Fit a 6-gene × 12-cell-line screen whose BRAF loses 1.5 more in marked cell lines; store it; its id."""
    sim = simulate_screen(6, 12, 2, seed=4, covariates=False, sgrnas_per_gene=(3, 3), n_lineage_selective=0)
    data = sim.data.copy()
    cells = sorted(data["depmap_id"].unique())
    marked = {c: i % 2 == 0 for i, c in enumerate(cells)}
    data["is_mutated"] = np.where(data["depmap_id"].map(marked), "TRUE", "FALSE")
    data.loc[(data["hugo_symbol"] == PLANTED) & data["depmap_id"].map(marked), "lfc"] -= 1.5
    path = data_dir / "marked.csv"
    data.to_csv(path, index=False)
    settings = Settings(data_dir=data_dir)
    options = {"biomarker": "is_mutated"} if model == "gene_biomarker" else {}
    sampler = SamplerSettings(method=method, backend="pymc", chains=2, tune=300, draws=300, target_accept=0.95)
    request = prepare_request(path, model, sampler=sampler, seed=5, settings=settings, options=options)
    result = run_fit(request, settings=settings)
    ModelStore(settings.fits_dir).put(request.fit_id, result.idata, request=request.model_dump(mode="json"),
                                      roles=result.spec.roles(), diagnostics=result.diagnostics,
                                      timings=result.timings, provenance=result.provenance)
    return request.fit_id


@pytest.fixture
def biomarker_fit(data_dir: Path) -> str:
    return store_biomarker_fit(data_dir)


def _text(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
                     + [w.value for w in at.warning] + [e.value for e in at.error] + [s.value for s in at.success])


@pytest.mark.slow
def test_biomarker_page_ranks_the_planted_gene(open_page: Callable[..., AppTest], biomarker_fit: str) -> None:
    at = open_page("biomarker", fit=biomarker_fit)
    text = _text(at)
    assert "Marker **is_mutated**: 6 marked cell lines" in text
    # the verdict banner of open_results_page: the one verdict, whatever it is
    assert any(w in text for w in ("converged", "look closer", "Look closer", "Do not trust", "do not trust",
                                   "Converged")) or at.success or at.warning or at.error
    first = next(m.value for m in at.markdown if m.value.lstrip("- ").startswith(PLANTED))
    assert "is a stronger dependency in cell lines with is_mutated (P" in first and "89% HDI" in first
    table = at.dataframe[0].value
    assert table["gene"].iloc[0] == PLANTED and table["p_stronger_when_marked"].iloc[0] > 0.9
    assert (table["mean_diff"].iloc[0] < -1.0)
    low, high = (float(x) for x in table["interval"].iloc[0].split(" to "))  # the interval column, e.g. "-2.10 to -1.30"
    assert low < table["mean_diff"].iloc[0] < high < 0
    # eight columns with short headers (the full meaning in tooltips), so the table fits a laptop screen
    assert list(table.columns) == ["gene", "p_stronger_when_marked", "mean_diff", "interval", "mean_marked",
                                   "mean_unmarked", "p_dependency_marked", "lfsr"]
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert "P(stronger dependency when marked)" in json.dumps(spec.get("title"))
    # a shared link restores the threshold; a stricter one lowers every probability
    strict = open_page("biomarker", fit=biomarker_fit, bm_threshold="-5.0")
    assert strict.number_input(key="bm_threshold").value == -5.0
    strict_table = strict.dataframe[0].value.set_index("gene")
    assert strict_table.loc[PLANTED, "p_stronger_when_marked"] < table.set_index("gene").loc[PLANTED,
                                                                                           "p_stronger_when_marked"]


def test_biomarker_page_explains_a_fit_without_a_marker(open_page: Callable[..., AppTest], fake_fit: str) -> None:
    at = open_page("biomarker", fit=fake_fit)
    assert "has no biomarker term" in _text(at) and "--biomarker is_mutated:KRAS" in _text(at)
    assert not at.get("vega_lite_chart")
