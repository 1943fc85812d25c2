"""Small posteriors with real-looking labels, built without PyMC (importable by subprocess scripts)."""

from __future__ import annotations

from typing import Any

import arviz as az
import numpy as np

from model_store.manifest import FitManifest
from speclet_core.records import FitRequest, SamplerSettings, Selection

GENES = ["KRAS", "C18orf54", "HLA-A", "BRAF", "MYC", "TP53", "CTNNB1"]
LINEAGES = ["colorectal", "blood", "skin"]
CELL_LINES = [f"ACH-{i:06d}" for i in (1, 7, 12, 31, 44, 58, 102, 230)]
CELL_LINE_LINEAGE = ["colorectal", "colorectal", "blood", "blood", "skin", "skin", "colorectal", "blood"]
ROLES: dict[str, Any] = {
    "gene_effect": "gene_effect",
    "gene_lineage_effect": "gene_lineage_effect",
    "gene_cell_line_effect": "gene_cell_line_effect",
    "hyperparameters": ["mu_gene", "sigma_gene"],
    "covariate_slopes": [],
}


def make_request(seed: int = 1, fingerprint: str = "f" * 64) -> FitRequest:
    return FitRequest(
        data_path="/data/screen.csv",
        data_fingerprint=fingerprint,
        selection=Selection(genes=GENES, lineages="all"),
        model="hierarchical",
        model_version="1.0",
        sampler=SamplerSettings(chains=2, tune=100, draws=50),
        seed=seed,
    )


def make_idata(seed: int = 0, chains: int = 2, draws: int = 50, genes: list[str] | None = None,
               cell_lines: list[str] | None = None) -> az.InferenceData:
    """A posterior with gene, lineage and cell-line effects plus the usual other groups (float64)."""
    genes = GENES if genes is None else genes
    cell_lines = CELL_LINES if cell_lines is None else cell_lines
    rng = np.random.default_rng(seed)
    g, c, n_lin = len(genes), len(cell_lines), len(LINEAGES)
    truth = np.linspace(-1.5, 0.3, g)
    posterior = {
        "mu_gene": rng.normal(-0.3, 0.05, (chains, draws)),
        "sigma_gene": np.abs(rng.normal(0.5, 0.05, (chains, draws))),
        "gene_effect": truth + rng.normal(0, 0.1, (chains, draws, g)),
        "gene_lineage_effect": rng.normal(0, 0.2, (chains, draws, g, n_lin)),
        "gene_cell_line_effect": truth[:, None] + rng.normal(0, 0.3, (chains, draws, g, c)),
    }
    n_reading = g * c
    coords = {
        "gene": genes,
        "lineage": LINEAGES,
        "cell_line": cell_lines,
        "reading": np.arange(n_reading),
    }
    dims = {
        "gene_effect": ["gene"],
        "gene_lineage_effect": ["gene", "lineage"],
        "gene_cell_line_effect": ["gene", "cell_line"],
        "lfc": ["reading"],
    }
    idata = az.from_dict(
        posterior=posterior,
        posterior_predictive={"lfc": rng.normal(0, 1, (chains, draws, n_reading))},
        log_likelihood={"lfc": rng.normal(-1, 0.1, (chains, draws, n_reading))},
        sample_stats={
            "diverging": rng.random((chains, draws)) < 0.02,
            "tree_depth": rng.integers(1, 6, (chains, draws)),
            "energy": rng.normal(10, 1, (chains, draws)),
        },
        observed_data={"lfc": rng.normal(0, 1, n_reading)},
        coords=coords,
        dims=dims,
        attrs={"inference_library": "nutpie", "sampling_time": 1.5},
    )
    # A non-index coordinate: each cell line's lineage, as the models attach it.
    idata.posterior = idata.posterior.assign_coords(
        cell_line_lineage=("cell_line", CELL_LINE_LINEAGE[: len(cell_lines)] if c <= len(CELL_LINE_LINEAGE)
                           else [LINEAGES[i % n_lin] for i in range(c)])
    )
    return idata


DIAGNOSTICS = {
    "max_rhat": 1.004, "min_ess_bulk": 410.0, "min_ess_tail": 380.0, "divergences": 0, "bfmi_min": 0.9,
    "treedepth_hits": 0, "verdict": "converged", "reasons": [], "approximate": False,
}
TIMINGS = {"load_s": 0.1, "compile_s": 2.0, "sample_s": 5.0, "total_s": 7.1}


def put_example(store: Any, seed: int = 1, idata: az.InferenceData | None = None,
                diagnostics: dict[str, Any] | None = None) -> tuple[str, FitManifest]:
    request = make_request(seed=seed)
    manifest = store.put(
        request.fit_id, make_idata(seed) if idata is None else idata, request=request.model_dump(mode="json"),
        roles=ROLES, diagnostics=DIAGNOSTICS if diagnostics is None else diagnostics, timings=TIMINGS,
    )
    return request.fit_id, manifest
