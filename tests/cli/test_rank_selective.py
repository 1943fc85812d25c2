"""``speclet rank --contrast X``: selective dependencies of X with the effect in X, P(dependency in X), P(stronger),
their joint P(selective), P(not selective) and lfsr; a tumour suppressor is never ranked as one; ``rank`` has lfsr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model_store"))

from store_helpers import DIAGNOSTICS, ROLES, TIMINGS

from model_store import ModelStore
from speclet_core.analysis.contrasts import CONTRAST_COLUMNS, contrast_lineage
from speclet_core.analysis.ranking import RANKING_COLUMNS
from speclet_core.records import FitRequest, SamplerSettings, Selection

GENES = ["KRAS", "TP53", "PLK1"]
LINEAGES = ["colorectal", "blood", "pancreas"]
MEANS = np.array([[-0.1, 0.0, -1.3], [0.6, 0.6, 0.19], [-1.6, -1.6, -1.6]])


@pytest.fixture
def fit(tmp_path: Path) -> tuple[Path, str, az.InferenceData]:
    rng = np.random.default_rng(2)
    gl = MEANS[None, None] + rng.normal(0, 0.1, (2, 200, *MEANS.shape))
    idata = az.from_dict(posterior={"gene_effect": gl.mean(axis=-1), "gene_lineage_effect": gl},
                         coords={"gene": GENES, "lineage": LINEAGES},
                         dims={"gene_effect": ["gene"], "gene_lineage_effect": ["gene", "lineage"]})
    request = FitRequest(data_path="/data/screen.csv", data_fingerprint="d" * 64,
                         selection=Selection(genes=GENES, lineages="all"), model="gene_lineage", model_version="1",
                         sampler=SamplerSettings(chains=2, tune=100, draws=200), seed=2)
    data_dir = tmp_path / "data"
    ModelStore(data_dir / "fits").put(request.fit_id, idata, request=request.model_dump(mode="json"),
                                      roles={**ROLES, "gene_cell_line_effect": None, "hyperparameters": []}, diagnostics=DIAGNOSTICS,
                                      timings=TIMINGS)
    return data_dir, request.fit_id, idata


def _rank(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPECLET_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "speclet_core", "rank", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_rank_contrast_columns_and_the_tumour_suppressor(fit: tuple[Path, str, az.InferenceData],
                                                         tmp_path: Path) -> None:
    data_dir, fit_id, idata = fit
    out = tmp_path / "pancreas.csv"
    r = _rank(data_dir, fit_id, "--contrast", "pancreas", "--out", str(out))
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(out)
    assert tuple(table.columns) == CONTRAST_COLUMNS
    assert {"mean_in_lineage", "p_dependency", "p_stronger", "p_selective", "lfsr"} <= set(table.columns)
    assert table["gene"].tolist()[0] == "KRAS"  # ranked by the joint probability
    tp53 = table.set_index("gene").loc["TP53"]
    assert tp53["p_stronger"] > 0.99 and tp53["p_selective"] == 0.0 and tp53["mean_in_lineage"] > 0
    expected = contrast_lineage(idata.posterior["gene_lineage_effect"], "pancreas")
    for column in ("mean_in_lineage", "p_dependency", "p_stronger", "p_selective", "p_not_selective", "lfsr"):
        np.testing.assert_allclose(table[column], expected[column], rtol=1e-7, atol=1e-12)


def test_rank_has_lfsr_and_refuses_a_positive_contrast_threshold(fit: tuple[Path, str, az.InferenceData]) -> None:
    data_dir, fit_id, _ = fit
    r = _rank(data_dir, fit_id)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split(",") == list(RANKING_COLUMNS)
    r = _rank(data_dir, fit_id, "--contrast", "pancreas", "--threshold", "0.3")
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "must be 0 or below" in r.stderr
    assert "Traceback" not in r.stderr


def test_rank_top_k_defaults_to_the_pages_rule_not_ten(fit: tuple[Path, str, az.InferenceData], tmp_path: Path) -> None:
    """With 3 genes a fixed k of 10 gives every gene P(top-10) = 1.00; the default is the Rankings page's k (1 here)."""
    data_dir, fit_id, _ = fit
    default, everyone = tmp_path / "default.csv", tmp_path / "k3.csv"
    assert _rank(data_dir, fit_id, "--out", str(default)).returncode == 0
    assert _rank(data_dir, fit_id, "--top-k", "3", "--out", str(everyone)).returncode == 0
    p_default, p_all = pd.read_csv(default)["p_top_k"], pd.read_csv(everyone)["p_top_k"]
    assert p_default.sum() == pytest.approx(1.0)  # k = 1: one gene is first in each draw
    assert p_default.max() < 1.0 or p_default.min() == 0.0
    assert (p_all == 1.0).all()


def test_rank_warns_on_stderr_when_the_fit_failed_its_diagnostics(tmp_path: Path) -> None:
    """The CSV is the same shape for any fit: a flagged fit's verdict goes to stderr, where a person reads it."""
    rng = np.random.default_rng(3)
    idata = az.from_dict(posterior={"gene_effect": rng.normal(-0.5, 0.2, (2, 100, len(GENES)))},
                         coords={"gene": GENES}, dims={"gene_effect": ["gene"]})
    request = FitRequest(data_path="/data/screen.csv", data_fingerprint="e" * 64,
                         selection=Selection(genes=GENES, lineages="all"), model="gene", model_version="1",
                         sampler=SamplerSettings(chains=2, tune=100, draws=100), seed=3)
    flagged = {**DIAGNOSTICS, "max_rhat": 1.2, "verdict": "do_not_trust",
               "reasons": ["R-hat 1.200 > 1.01 at gene_effect[KRAS]: chains disagree; run more tuning and draws"]}
    data_dir = tmp_path / "data"
    ModelStore(data_dir / "fits").put(request.fit_id, idata, request=request.model_dump(mode="json"),
                                      roles={**ROLES, "gene_lineage_effect": None, "gene_cell_line_effect": None,
                                             "hyperparameters": []}, diagnostics=flagged, timings=TIMINGS)
    r = _rank(data_dir, request.fit_id)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split(",") == list(RANKING_COLUMNS)
    assert "did not pass its diagnostics" in r.stderr and "Do not trust this fit yet" in r.stderr
    assert "R-hat 1.200" in r.stderr
