"""Shared fixtures: tiny screens with known truth, isolated data directories."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from speclet_core.synthetic import SyntheticScreen, simulate_screen

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own SPECLET_DATA_DIR so nothing touches the developer's store."""
    data_dir = tmp_path_factory.mktemp("speclet-data")
    monkeypatch.setenv("SPECLET_DATA_DIR", str(data_dir))
    return data_dir


@pytest.fixture(scope="session")
def tiny_screen() -> SyntheticScreen:
    """6 genes × 12 cell lines × 3 lineages, seed 7: fast enough for any test."""
    return simulate_screen(n_genes=6, n_cell_lines=12, n_lineages=3, seed=7, sgrnas_per_gene=(2, 3))


@pytest.fixture
def tiny_table() -> pd.DataFrame:
    """A hand-written valid screen table (rows in a known order)."""
    return pd.DataFrame(
        {
            "sgrna": ["g1", "g2", "g1", "g2", "g3", "g3"],
            "hugo_symbol": ["KRAS", "KRAS", "KRAS", "KRAS", "BRAF", "BRAF"],
            "depmap_id": ["ACH-000001", "ACH-000001", "ACH-000002", "ACH-000002", "ACH-000001", "ACH-000002"],
            "lineage": ["colorectal", "colorectal", "skin", "skin", "colorectal", "skin"],
            "lfc": [-1.0, -1.2, -0.8, -0.9, 0.1, -0.05],
        }
    )
