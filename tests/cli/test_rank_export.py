"""``speclet rank --out``: names that a spreadsheet would run as formulas leave as inert text cells."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model_store"))

from store_helpers import DIAGNOSTICS, ROLES, TIMINGS, make_idata

from model_store import ModelStore
from speclet_core.analysis.contrasts import contrast_lineage
from speclet_core.analysis.ranking import default_top_k, rank_genes
from speclet_core.records import FitRequest, SamplerSettings, Selection

GENES = ["=cmd|' /C calc'!A0", "+HYPERLINK(\"http://e\")", "-foo", "@SUM(A1)", "KRAS", "HLA-A", "-1.5"]
INERT = {"=cmd|' /C calc'!A0": "'=cmd|' /C calc'!A0", "+HYPERLINK(\"http://e\")": "'+HYPERLINK(\"http://e\")",
         "-foo": "'-foo", "@SUM(A1)": "'@SUM(A1)", "KRAS": "KRAS", "HLA-A": "HLA-A", "-1.5": "-1.5"}


@pytest.fixture
def hostile_fit(tmp_path: Path) -> tuple[Path, str, object]:
    data_dir = tmp_path / "data"
    idata = make_idata(seed=3, genes=GENES)
    request = FitRequest(data_path="/data/screen.csv", data_fingerprint="e" * 64,
                         selection=Selection(genes=GENES, lineages="all"), model="hierarchical", model_version="1.0",
                         sampler=SamplerSettings(chains=2, tune=100, draws=50), seed=3)
    ModelStore(data_dir / "fits").put(request.fit_id, idata, request=request.model_dump(mode="json"), roles=ROLES,
                                      diagnostics=DIAGNOSTICS, timings=TIMINGS)
    return data_dir, request.fit_id, idata.posterior


def _rank(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPECLET_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "speclet_core", "rank", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_rank_out_neutralises_formula_names_and_keeps_numbers(hostile_fit: tuple[Path, str, object],
                                                              tmp_path: Path) -> None:
    data_dir, fit_id, posterior = hostile_fit
    out = tmp_path / "ranking.csv"
    r = _rank(data_dir, fit_id, "--out", str(out))
    assert r.returncode == 0, r.stderr
    raw = out.read_text()
    lines = raw.splitlines()
    assert not [ln for ln in lines if ln.startswith(("=", "+", "@", "\t", "\r")) or ln.startswith("-f")]
    table = pd.read_csv(out, dtype={"gene": str})
    expected = rank_genes(posterior["gene_effect"], top_k=default_top_k(posterior.sizes["gene"]))  # the CLI's default k
    assert table["gene"].tolist() == [INERT[g] for g in expected["gene"]]
    numeric = [c for c in expected.columns if c != "gene"]
    for column in numeric:  # every number exactly as before (negative means included)
        np.testing.assert_allclose(table[column].astype(float), expected[column].astype(float), rtol=1e-7)
    assert (table["mean"] < 0).any()

    stdout = _rank(data_dir, fit_id)  # stdout gets the same cells
    assert stdout.returncode == 0, stdout.stderr
    assert stdout.stdout == raw


def test_rank_contrast_out_is_neutralised_too(hostile_fit: tuple[Path, str, object], tmp_path: Path) -> None:
    data_dir, fit_id, posterior = hostile_fit
    out = tmp_path / "contrast.csv"
    r = _rank(data_dir, fit_id, "--contrast", "skin", "--out", str(out))
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(out, dtype={"gene": str})
    expected = contrast_lineage(posterior["gene_lineage_effect"], "skin")
    assert table["gene"].tolist() == [INERT[g] for g in expected["gene"]]
    np.testing.assert_allclose(table["mean_diff"], expected["mean_diff"], rtol=1e-7)
