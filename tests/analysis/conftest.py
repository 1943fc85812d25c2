"""Analysis fixtures: a tiny synthetic screen written to disk with its truth table."""

from __future__ import annotations

from pathlib import Path

import pytest

from speclet_core.data.demo import write_synthetic
from speclet_core.data.synthetic import simulate_screen


@pytest.fixture(scope="module")
def screen_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    screen = simulate_screen(n_genes=6, n_cell_lines=12, n_lineages=3, seed=5, sgrnas_per_gene=(2, 2))
    path, _ = write_synthetic(screen, tmp_path_factory.mktemp("screen") / "tiny.csv")
    return path, screen
