"""Stored fits shaped like a genome-wide ``sgrna_gene_cell_line`` fit, written through the real store (no PyMC).

Fake but well-formed draws: float32, gene-major, the big gene × cell-line effect generated gene by gene while
the store writes it (never held whole), the model's variables and roles, sample stats, observed readings and a
verdict judged from its numbers. Used by the page tests (1,500 genes) and by ``benchmarks/bench_pages_genome.py``
(18,000 genes × 40 cell lines).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

HYPER = ("mu_gene", "sigma_gene", "sigma_sgrna", "sigma_cell_line", "sigma_gene_cell_line", "sigma")
ROLES: dict[str, Any] = {
    "gene_effect": "gene_effect", "gene_lineage_effect": None, "gene_cell_line_effect": "gene_cell_line_effect",
    "hyperparameters": list(HYPER), "covariate_slopes": [],
}
MODEL = "sgrna_gene_cell_line"
LINEAGE = "colorectal"


def gene_names(n: int) -> list[str]:
    """Gene symbols that look real enough: ``G00001`` … plus a few real ones searched for by the tests."""
    real = ["KRAS", "MYC", "CTNNB1", "C18orf54", "HLA-A", "TP53", "BRAF", "PIK3CA"]
    return real[:n] + [f"G{i:05d}" for i in range(max(0, n - len(real)))]


def _lazy_gene_cell_line(gene_mean: np.ndarray, cell_offset: np.ndarray, chains: int, draws: int, seed: int) -> Any:
    from xarray.backends import BackendArray
    from xarray.core import indexing

    n_g, n_c = gene_mean.size, cell_offset.size

    class CellDraws(BackendArray):
        shape = (chains, draws, n_g, n_c)
        dtype = np.dtype(np.float32)

        def __getitem__(self, key: Any) -> np.ndarray:
            return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC, self._read)

        def _read(self, key: tuple[Any, ...]) -> np.ndarray:
            wanted = range(n_g)[key[2]] if isinstance(key[2], slice) else range(int(key[2]), int(key[2]) + 1)
            rng = np.random.default_rng([seed, wanted.start if len(wanted) else 0, len(wanted)])
            noise = rng.standard_normal((chains, draws, len(wanted), n_c), dtype=np.float32)
            # gene × cell-line deviations: each gene's own spread, the gene effect in the middle
            spread = (0.1 + 0.3 * (np.arange(n_g)[wanted] % 7 == 0))[:, None]
            block = gene_mean[wanted][:, None] + cell_offset[None, :] * spread * 3 + 0.15 * noise
            block = block.astype(np.float32)
            return block[key[0], key[1], slice(None) if isinstance(key[2], slice) else 0, key[3]]

    return indexing.LazilyIndexedArray(CellDraws())


def genome_idata(n_genes: int, n_cells: int, *, chains: int = 2, draws: int = 100, sgrnas_per_gene: int = 4,
                 seed: int = 0) -> tuple[Any, list[str], list[str]]:
    """(InferenceData, genes, cell lines) of a fake ``sgrna_gene_cell_line`` posterior."""
    import arviz as az
    import xarray as xr

    rng = np.random.default_rng(seed)
    genes = gene_names(n_genes)
    cells = [f"ACH-{i:06d}" for i in range(1, n_cells + 1)]
    sgrnas = [f"{g}_sg{k}" for g in genes for k in range(sgrnas_per_gene)]
    # most genes near 0, a tail of strong dependencies (as in DepMap)
    gene_mean = np.where(rng.random(n_genes) < 0.1, rng.normal(-1.2, 0.4, n_genes), rng.normal(-0.05, 0.15, n_genes))
    gene_mean[:3] = [-1.6, -1.1, -0.9]  # KRAS, MYC, CTNNB1: strong dependencies
    cell_offset = rng.normal(0, 0.1, n_cells)

    def small(*shape: int, centre: Any = 0.0, sd: float = 0.05) -> np.ndarray:
        return (centre + sd * rng.standard_normal((chains, draws, *shape))).astype(np.float32)

    s = ("chain", "draw")
    post = xr.Dataset(
        {
            "mu_gene": (s, small(centre=-0.1)),
            "sigma_gene": (s, np.abs(small(centre=0.4))),
            "sigma_sgrna": (s, np.abs(small(centre=0.2, sd=0.01))),
            "sigma_cell_line": (s, np.abs(small(centre=0.1, sd=0.01))),
            "sigma_gene_cell_line": (s, np.abs(small(centre=0.15, sd=0.01))),
            "sigma": (s, np.abs(small(centre=0.4, sd=0.005))),
            "gene_effect": ((*s, "gene"), small(n_genes, centre=gene_mean, sd=0.08)),
            "sgrna_effect": ((*s, "sgrna"), small(len(sgrnas), sd=0.1)),
            "cell_line_effect": ((*s, "cell_line"), small(n_cells, centre=cell_offset, sd=0.02)),
            "gene_cell_line_effect": ((*s, "gene", "cell_line"),
                                      _lazy_gene_cell_line(gene_mean, cell_offset, chains, draws, seed)),
        },
        coords={"chain": np.arange(chains), "draw": np.arange(draws), "gene": genes, "sgrna": sgrnas,
                "cell_line": cells},
    ).assign_coords(cell_line_lineage=("cell_line", [LINEAGE] * n_cells))
    n_read = len(sgrnas) * n_cells
    stats = xr.Dataset({
        "diverging": (s, np.zeros((chains, draws), dtype=bool)),
        "energy": (s, rng.normal(5e5, 300, (chains, draws))),
        "tree_depth": (s, np.full((chains, draws), 7, dtype=np.int64)),
        "n_steps": (s, np.full((chains, draws), 127, dtype=np.int64)),
        "step_size": (s, np.full((chains, draws), 0.05)),
    }, coords={"chain": np.arange(chains), "draw": np.arange(draws)})
    observed = xr.Dataset({"lfc": (("reading",), rng.normal(-0.1, 0.5, n_read).astype(np.float32))},
                          coords={"reading": np.arange(n_read)})
    idata = az.InferenceData(posterior=post, sample_stats=stats, observed_data=observed)
    return idata, genes, cells


def put_genome_fit(data_dir: Path, n_genes: int, n_cells: int, *, chains: int = 2, draws: int = 100,
                   seed: int = 0) -> str:
    """Store a fake genome-wide fit in ``data_dir/fits`` and return its id (verdict judged from its numbers)."""
    from model_store import ModelStore
    from speclet_core.diagnostics.verdict import judge
    from speclet_core.records import FitRequest, SamplerSettings, Selection

    idata, genes, _ = genome_idata(n_genes, n_cells, chains=chains, draws=draws, seed=seed)
    # a short run: R-hat fine, bulk ESS about the kept draws (below the verdict's bar at 2 × 100)
    numbers = {"max_rhat": 1.012, "max_rhat_at": "gene_cell_line_effect[G00007, ACH-000003]",
               "min_ess_bulk": 0.9 * chains * draws, "min_ess_bulk_at": "sigma_gene_cell_line",
               "min_ess_tail": 0.8 * chains * draws, "min_ess_tail_at": "sigma_gene_cell_line",
               "divergences": 0, "bfmi_min": 0.85, "treedepth_hits": 0, "approximate": False}
    judged = judge(numbers, total_draws=chains * draws)
    diagnostics = {**numbers, "verdict": judged.level.value, "reasons": list(judged.reasons)}
    request = FitRequest(data_path=str(data_dir / "screens" / "genome.parquet"), data_fingerprint=f"{seed:064d}",
                         selection=Selection(genes="all", lineages=[LINEAGE]), model=MODEL, model_version="1",
                         sampler=SamplerSettings(chains=chains, tune=draws, draws=draws), seed=seed)
    store = ModelStore(data_dir / "fits")
    store.put(request.fit_id, idata, request=request.model_dump(mode="json"), roles=ROLES, diagnostics=diagnostics,
              timings={"total_s": 0.0})
    return request.fit_id
