"""Shared fixtures: tiny screens with known truth, isolated data directories."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from speclet_core.data.synthetic import SyntheticScreen, simulate_screen

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


@pytest.fixture(scope="session")
def real_fit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A REAL NUTS fit (model ``gene_lineage``) of the demo screen, stored once per test session.

    Returns (data dir, fit id). Shared by the AppTests and the browser test; tests that use it
    point SPECLET_DATA_DIR at the returned folder (see ``real_fit_env``).
    """
    from model_store import ModelStore
    from speclet_core.data.demo import ensure_demo_screen
    from speclet_core.fitting.engine import run_fit
    from speclet_core.fitting.request import prepare_request
    from speclet_core.records import SamplerSettings
    from speclet_core.settings import Settings

    data_dir = tmp_path_factory.mktemp("real-fit")
    settings = Settings(data_dir=data_dir)
    screen = ensure_demo_screen(data_dir)
    request = prepare_request(
        screen, "gene_lineage", sampler=SamplerSettings(chains=2, tune=400, draws=400), seed=5, settings=settings
    )
    result = run_fit(request, settings=settings)
    ModelStore(settings.fits_dir).put(
        request.fit_id, result.idata, request=request.model_dump(mode="json"), roles=result.spec.roles(),
        diagnostics=result.diagnostics, timings=result.timings, provenance=result.provenance,
    )
    return data_dir, request.fit_id


@pytest.fixture
def real_fit_env(real_fit: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """Point this test's SPECLET_DATA_DIR at the real fit's store; returns the fit id."""
    monkeypatch.setenv("SPECLET_DATA_DIR", str(real_fit[0]))
    return real_fit[1]


@pytest.fixture(scope="module")
def stored_demo_fit(real_fit: tuple[Path, str]) -> tuple[Path, str]:
    return real_fit
