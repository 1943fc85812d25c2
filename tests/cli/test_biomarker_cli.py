"""``fit --model gene_biomarker --biomarker COLUMN`` and ``rank FIT_ID --biomarker`` as real processes.

A quick fit of a synthetic screen with a planted marker-dependent gene is run through the engine
and stored; ``rank --biomarker`` (a subprocess) writes its table, which matches the in-process
``contrast_biomarker`` and ranks the planted gene first. Bad markers exit 2 with a one-line message
naming the column and the choices.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model_store import ModelStore
from speclet_core.analysis.biomarker import BIOMARKER_COLUMNS, contrast_biomarker
from speclet_core.data.synthetic import simulate_screen
from speclet_core.fitting.engine import run_fit
from speclet_core.fitting.request import prepare_request
from speclet_core.records import SamplerSettings
from speclet_core.settings import Settings


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPECLET_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "speclet_core", *args], capture_output=True, text=True,
                          timeout=180, env=env)


@pytest.fixture(scope="module")
def screen(tmp_path_factory) -> tuple[Path, str]:
    sim = simulate_screen(6, 12, 1, seed=4, covariates=False, sgrnas_per_gene=(3, 3), n_lineage_selective=0)
    data = sim.data.copy()
    cells = sorted(data["depmap_id"].unique())
    marked = {c: i % 2 == 0 for i, c in enumerate(cells)}
    data["is_mutated"] = np.where(data["depmap_id"].map(marked), "TRUE", "FALSE")
    data.loc[(data["hugo_symbol"] == "BRAF") & data["depmap_id"].map(marked), "lfc"] -= 1.5
    path = tmp_path_factory.mktemp("screen") / "marked.csv"
    data.to_csv(path, index=False)
    return path, "BRAF"


def test_fit_refuses_bad_markers_with_a_clear_message(screen: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = screen
    base = ("fit", "--data", str(path), "--model", "gene_biomarker")
    r = _cli(tmp_path, *base, "--biomarker", "kras")
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and "'kras' is not a column" in r.stderr and "is_mutated" in r.stderr
    r = _cli(tmp_path, *base)
    assert r.returncode == 2 and "needs the biomarker option (--biomarker COLUMN)" in r.stderr
    r = _cli(tmp_path, "fit", "--data", str(path), "--model", "gene", "--biomarker", "is_mutated")
    assert r.returncode == 2 and "model 'gene' has no biomarker option" in r.stderr
    r = _cli(tmp_path, *base, "--biomarker", "is_mutated", "--batch", "lineage")
    assert r.returncode == 2 and "batch column 'lineage'" in r.stderr
    assert "Traceback" not in r.stderr


def test_fit_queues_the_request_prepare_request_makes(screen: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = screen
    r = _cli(tmp_path, "fit", "--data", str(path), "--model", "gene_biomarker", "--biomarker", "is_mutated",
             "--batch", "pdna_batch", "--method", "quick")
    assert r.returncode == 0, r.stderr
    fit_id = r.stdout.strip().splitlines()[-1]
    request = prepare_request(path, "gene_biomarker", sampler=SamplerSettings(method="quick"),
                              settings=Settings(data_dir=tmp_path),
                              options={"biomarker": "is_mutated", "batch": "pdna_batch"})
    assert fit_id == request.fit_id
    assert request.identity()["options"] == {"biomarker": "is_mutated", "batch": "pdna_batch"}


def test_rank_biomarker_writes_the_table(screen: tuple[Path, str], tmp_path: Path) -> None:
    path, planted = screen
    settings = Settings(data_dir=tmp_path)
    request = prepare_request(path, "gene_biomarker", sampler=SamplerSettings(method="quick", draws=400), seed=3,
                              settings=settings, options={"biomarker": "is_mutated"})
    result = run_fit(request, settings=settings)
    ModelStore(settings.fits_dir).put(request.fit_id, result.idata, request=request.model_dump(mode="json"),
                                      roles=result.spec.roles(), diagnostics=result.diagnostics,
                                      timings=result.timings, provenance=result.provenance)
    out = tmp_path / "biomarker.csv"
    r = _cli(tmp_path, "rank", request.fit_id[:10], "--biomarker", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "P(stronger dependency when marked)" in r.stdout
    table = pd.read_csv(out)
    assert tuple(table.columns) == BIOMARKER_COLUMNS
    assert table["gene"].iloc[0] == planted and table["p_stronger_when_marked"].iloc[0] > 0.9
    assert (table["biomarker"] == "is_mutated").all()
    expected = contrast_biomarker(result.idata.posterior, biomarker="is_mutated")
    for column in ("mean_diff", "hdi_low", "hdi_high", "p_stronger_when_marked", "mean_marked"):
        np.testing.assert_allclose(table[column], expected[column], rtol=1e-6, atol=1e-6)
    # a fit without a marker says what --biomarker needs
    plain = prepare_request(path, "gene", sampler=SamplerSettings(method="quick"), settings=settings)
    res = run_fit(plain, settings=settings)
    ModelStore(settings.fits_dir).put(plain.fit_id, res.idata, request=plain.model_dump(mode="json"),
                                      roles=res.spec.roles(), diagnostics=res.diagnostics, timings=res.timings,
                                      provenance=res.provenance)
    r = _cli(tmp_path, "rank", plain.fit_id, "--biomarker")
    assert r.returncode == 2 and "has no biomarker" in r.stderr and "Traceback" not in r.stderr
