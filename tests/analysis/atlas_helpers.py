"""Stored per-lineage fits with planted gene effects and their atlas record (no PyMC), for the atlas tests."""

from __future__ import annotations

from pathlib import Path

import arviz as az
import numpy as np

from model_store import ModelStore
from speclet_core.cli.atlas import atlas_id_of, write_atlas
from speclet_core.records import FitRequest, SamplerSettings, Selection
from speclet_core.settings import Settings

GENES = ["KRAS", "SOX10", "TP53", "PLK1", "MYC"]
LINEAGES = ["colorectal", "skin", "blood", "lung"]
# true gene effect per lineage: KRAS selective in colorectal, SOX10 in skin, TP53 a tumour suppressor in blood
# (positive there), PLK1 pan-essential, MYC null
MEANS = {
    "colorectal": [-1.4, 0.0, 0.0, -1.6, -0.1],
    "skin": [0.0, -1.3, 0.0, -1.6, -0.1],
    "blood": [0.0, 0.0, 0.9, -1.6, -0.1],
    "lung": [0.0, 0.0, 0.0, -1.6, -0.1],
}
CONVERGED = {"max_rhat": 1.002, "min_ess_bulk": 900.0, "min_ess_tail": 700.0, "divergences": 0, "bfmi_min": 0.9,
             "treedepth_hits": 0, "verdict": "converged", "reasons": [], "approximate": False}
FLAGGED = {**CONVERGED, "max_rhat": 1.03, "verdict": "look_closer", "reasons": ["R-hat 1.030 > 1.01 at mu_gene"]}
APPROXIMATE = {**CONVERGED, "approximate": True, "method": "ADVI (mean-field)", "verdict": "look_closer",
               "reasons": ["approximate: first look only (ADVI); refit with method 'nuts' before trusting intervals"]}
ROLES = {"gene_effect": "gene_effect", "gene_lineage_effect": None, "gene_cell_line_effect": None,
         "hyperparameters": [], "covariate_slopes": []}


def put_lineage_fit(store: ModelStore, lineage: str, *, chains: int = 2, draws: int = 300,
                    genes: list[str] = GENES, diagnostics: dict = CONVERGED, seed: int = 0, shift: float = 0.0) -> str:
    """Store a one-lineage fit whose gene effect is MEANS[lineage] (+ ``shift`` for every gene) ± 0.12; its id."""
    rng = np.random.default_rng(seed)
    means = np.array([dict(zip(GENES, MEANS[lineage], strict=True))[g] for g in genes]) + shift
    effect = means + rng.normal(0, 0.12, (chains, draws, len(genes)))
    idata = az.from_dict(posterior={"gene_effect": effect}, coords={"gene": genes}, dims={"gene_effect": ["gene"]})
    request = FitRequest(data_path="/data/screen.csv", data_fingerprint="a" * 64,
                         selection=Selection(genes=genes, lineages=[lineage]), model="sgrna_gene_cell_line",
                         model_version="1", sampler=SamplerSettings(chains=chains, tune=100, draws=draws),
                         seed=1 + int(100 * abs(shift)) + (7 if diagnostics is not CONVERGED else 0))
    store.put(request.fit_id, idata, request=request.model_dump(mode="json"), roles=ROLES, diagnostics=diagnostics,
              timings={"total_s": 1.0})
    return request.fit_id


def put_atlas(data_dir: Path, fits: dict[str, str], model: str = "sgrna_gene_cell_line") -> str:
    """Write the atlas record as ``atlas`` does (``cli.atlas.write_atlas``); its id."""
    atlas_id = atlas_id_of(model, fits)
    write_atlas(Settings(data_dir=data_dir), {"atlas_id": atlas_id, "model": model, "data_path": "/data/screen.csv",
                                              "sampler": {}, "seed": 1, "fits": fits})
    return atlas_id
