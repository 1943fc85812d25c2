"""Cost of the atlas comparison (``rank --atlas``) at genome width: stored per-lineage fits → the comparison table.

    .venv/bin/python benchmarks/bench_atlas.py --genes 18000 --draws 500 --lineages 4 8

For each lineage count L: L fits of ``--genes`` genes × 2 chains × ``--draws`` draws (float32 gene effect, written
with ``ModelStore.put``), an atlas record, then ``analysis.atlas.compare_atlas`` timed (read + thin + stack + align +
one ``contrast_lineage`` per lineage) with its peak memory (``tracemalloc`` of numpy buffers, and ru_maxrss).
Prints one Markdown row per L.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import arviz as az
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model_store import ModelStore
from speclet_core.analysis.atlas import compare_atlas, read_atlas
from speclet_core.cli.atlas import atlas_id_of, write_atlas
from speclet_core.records import FitRequest, SamplerSettings, Selection
from speclet_core.settings import Settings

DIAGNOSTICS = {"max_rhat": 1.002, "min_ess_bulk": 900.0, "min_ess_tail": 700.0, "divergences": 0, "bfmi_min": 0.9,
               "treedepth_hits": 0, "verdict": "converged", "reasons": [], "approximate": False}
ROLES = {"gene_effect": "gene_effect", "gene_lineage_effect": None, "gene_cell_line_effect": None,
         "hyperparameters": [], "covariate_slopes": []}


def store_fits(data_dir: Path, n_genes: int, draws: int, lineages: list[str]) -> str:
    store = ModelStore(data_dir / "fits")
    genes = [f"GENE{i + 1}" for i in range(n_genes)]
    rng = np.random.default_rng(0)
    base = rng.normal(-0.1, 0.3, n_genes).astype(np.float32)
    fits = {}
    for lineage in lineages:
        effect = base + rng.normal(0, 0.15, (2, draws, n_genes)).astype(np.float32)
        idata = az.from_dict(posterior={"gene_effect": effect}, coords={"gene": genes}, dims={"gene_effect": ["gene"]})
        request = FitRequest(data_path="/bench/screen.csv", data_fingerprint="b" * 64,
                             selection=Selection(genes="all", lineages=[lineage]), model="sgrna_gene_cell_line",
                             model_version="1", sampler=SamplerSettings(chains=2, tune=100, draws=draws), seed=1)
        store.put(request.fit_id, idata, request=request.model_dump(mode="json"), roles=ROLES,
                  diagnostics=DIAGNOSTICS, timings={"total_s": 1.0})
        fits[lineage] = request.fit_id
    atlas_id = atlas_id_of("sgrna_gene_cell_line", fits)
    write_atlas(Settings(data_dir=data_dir), {"atlas_id": atlas_id, "model": "sgrna_gene_cell_line", "fits": fits})
    return atlas_id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--genes", type=int, default=18_000)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--lineages", type=int, nargs="+", default=[4, 8])
    args = parser.parse_args()
    print("| lineages | genes | paired draws | compare_atlas wall (s) | CPU (s) | peak numpy memory (MB) | rows |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n_lin in args.lineages:
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp)
            atlas_id = store_fits(data_dir, args.genes, args.draws, [f"lineage_{i + 1}" for i in range(n_lin)])
            record = read_atlas(data_dir, atlas_id)
            store = ModelStore(data_dir / "fits")
            tracemalloc.start()
            t0, c0 = time.perf_counter(), time.process_time()
            result = compare_atlas(record, store)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            print(f"| {n_lin} | {args.genes:,} | {result.n_samples:,} | {wall:.1f} | {cpu:.1f} | {peak:,.0f} | "
                  f"{len(result.table):,} |", flush=True)
    print(f"max RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
