"""Benchmark the model store: write time, size on disk, and read times for the pages.

The issue's size: a posterior of 2,000 genes × 1,000 cell lines × 1,000 draws × 2 chains
(4 billion floats in the gene × cell-line effect, 16 GB as float32). Its draws are generated
lazily block by block (an xarray backend array), so the benchmark itself needs little
memory, exactly as ``put`` streams a lazily opened posterior.

Each variant runs in its own process (clean peak-memory numbers) and its fit is deleted
afterwards to free the disk. Cold reads first evict the fit's files from the page cache
with ``posix_fadvise(DONTNEED)`` (only those files; nothing system-wide).

    .venv/bin/python benchmarks/bench_store.py                      # the issue's size, gzip 0 and 1
    .venv/bin/python benchmarks/bench_store.py --quick              # a small run to check it works
    .venv/bin/python benchmarks/bench_store.py --sizes-only --genes 200   # size/precision/compression table
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "benchmarks" / "out" / "store"


# --------------------------------------------------------------------------- a lazily generated posterior


def lazy_idata(genes: int, cell_lines: int, draws: int, chains: int, lineages: int = 20, seed: int = 0) -> Any:
    """An InferenceData whose big variable is generated per requested gene, never held whole."""
    import arviz as az
    import xarray as xr
    from xarray.backends import BackendArray
    from xarray.core import indexing

    gene_labels = [f"GENE{i:05d}" for i in range(genes)]
    cell_labels = [f"ACH-{i:06d}" for i in range(cell_lines)]
    lineage_labels = [f"lineage_{i:02d}" for i in range(lineages)]
    rng = np.random.default_rng(seed)
    # float64 like PyMC's draws; the store casts them to its float_dtype.
    gene_mean = rng.normal(-0.3, 0.5, genes)
    cell_offset = rng.normal(0.0, 0.2, cell_lines)

    class GeneCellLineDraws(BackendArray):
        def __init__(self) -> None:
            self.shape = (chains, draws, genes, cell_lines)
            self.dtype = np.dtype(np.float64)

        def __getitem__(self, key: Any) -> np.ndarray:
            return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC, self._read)

        def _read(self, key: tuple[Any, ...]) -> np.ndarray:
            gene_key = key[2]
            wanted = range(genes)[gene_key] if isinstance(gene_key, slice) else [int(gene_key)]
            blocks = []
            for g in wanted:  # each gene's draws come from its own seed: the same on every read
                noise = np.random.default_rng([seed, g]).standard_normal((chains, draws, cell_lines))
                blocks.append(gene_mean[g] + cell_offset + 0.3 * noise)
            out = np.stack(blocks, axis=2)
            rest = (key[0], key[1], slice(None) if isinstance(gene_key, slice) else 0, key[3])
            return out[rest]

    big = xr.Variable(("chain", "draw", "gene", "cell_line"), indexing.LazilyIndexedArray(GeneCellLineDraws()))
    posterior = xr.Dataset(
        {
            "mu_gene": (("chain", "draw"), rng.normal(-0.3, 0.01, (chains, draws))),
            "sigma_gene": (("chain", "draw"), np.abs(rng.normal(0.5, 0.01, (chains, draws)))),
            "gene_effect": (("chain", "draw", "gene"), gene_mean + 0.05 * rng.standard_normal((chains, draws, genes))),
            "gene_lineage_effect": (("chain", "draw", "gene", "lineage"),
                                    0.1 * rng.standard_normal((chains, draws, genes, lineages))),
            "gene_cell_line_effect": big,
        },
        coords={"chain": np.arange(chains), "draw": np.arange(draws), "gene": gene_labels,
                "cell_line": cell_labels, "lineage": lineage_labels},
    )
    sample_stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((chains, draws), bool))},
                              coords={"chain": np.arange(chains), "draw": np.arange(draws)})
    return az.InferenceData(posterior=posterior, sample_stats=sample_stats)


ROLES = {"gene_effect": "gene_effect", "gene_lineage_effect": "gene_lineage_effect",
         "gene_cell_line_effect": "gene_cell_line_effect", "hyperparameters": ["mu_gene", "sigma_gene"],
         "covariate_slopes": []}


def bench_request(tag: str) -> Any:
    from speclet_core.records import FitRequest

    return FitRequest(data_path="bench", data_fingerprint=tag, model="bench", model_version="1")


# --------------------------------------------------------------------------- one variant (in a child process)


def _evict(folder: Path) -> None:
    for path in folder.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    value = fn()
    return time.perf_counter() - t, value


def run_variant(args: argparse.Namespace) -> dict[str, Any]:
    from model_store import FloatDtype, ModelStore, StorageOptions

    root = OUT / args.variant_name
    shutil.rmtree(root, ignore_errors=True)
    options = StorageOptions(float_dtype=FloatDtype(args.dtype), compression_level=args.level)
    store = ModelStore(root, options=options)
    idata = lazy_idata(args.genes, args.cell_lines, args.draws, args.chains)
    request = bench_request(args.variant_name)
    # Generating the lazy draws is part of netcdf_write_s; time one pass alone so it can be subtracted.
    big = idata.posterior["gene_cell_line_effect"].variable
    t = time.perf_counter()
    for g in range(0, args.genes, 8):
        np.asarray(big[:, :, g : g + 8, :].values).astype(np.float32)
    source_s = time.perf_counter() - t
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    put_s, manifest = _timed(lambda: store.put(request.fit_id, idata, request=request.model_dump(mode="json"),
                                               roles=ROLES, diagnostics={"verdict": "converged"}, timings={}))
    result: dict[str, Any] = {
        "variant": args.variant_name, "dtype": args.dtype, "gzip_level": args.level,
        "shape": [args.chains, args.draws, args.genes, args.cell_lines],
        "put_s": round(put_s, 2), "store_timings": manifest.store_timings,
        "source_generation_s": round(source_s, 2),
        "posterior_nc_bytes": manifest.sizes["posterior.nc"], "total_bytes": manifest.total_bytes,
        "summary_bytes": {k: v for k, v in manifest.sizes.items() if k.endswith(".parquet")},
        "peak_rss_mib_during_put": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_mib_before_put": round(rss_before / 1024, 1),
    }
    if not args.sizes_only:
        result["reads"] = measure_reads(root, request.fit_id, args)
    store.delete(request.fit_id)
    shutil.rmtree(root, ignore_errors=True)
    return result


def measure_reads(root: Path, fit_id: str, args: argparse.Namespace) -> dict[str, Any]:
    from model_store import ModelStore

    folder = root / fit_id
    rng = np.random.default_rng(1)
    genes = [f"GENE{i:05d}" for i in rng.choice(args.genes, size=args.reads * 2, replace=False)]
    out: dict[str, list[float]] = {k: [] for k in (
        "open_and_heatmap_cold_s", "open_and_heatmap_warm_s", "open_s_cold", "one_gene_draws_cold_s",
        "one_gene_draws_first_warm_s", "one_gene_draws_s", "gene_summary_s", "summary_one_variable_s",
        "summary_all_s")}
    for i in range(args.reads):
        _evict(folder)
        t = time.perf_counter()
        fit = ModelStore(root).get(fit_id)
        out["open_s_cold"].append(time.perf_counter() - t)
        matrix = fit.matrix("gene_cell_line", "mean")
        out["open_and_heatmap_cold_s"].append(time.perf_counter() - t)
        assert matrix.shape == (args.genes, args.cell_lines)
        # one gene's draws, files cold: opening the NetCDF group and reading two 4 MiB chunks
        dt, da = _timed(lambda f=fit, g=genes[i]: f.draws("gene_cell_line_effect", gene=g))
        out["one_gene_draws_cold_s"].append(dt)
        assert da.shape == (args.chains, args.draws, args.cell_lines)
        fit.close()
    for i in range(args.reads):
        dt, fit = _timed(lambda: ModelStore(root).get(fit_id))
        dm, _ = _timed(lambda f=fit: f.matrix("gene_cell_line", "mean"))
        out["open_and_heatmap_warm_s"].append(dt + dm)
        out["one_gene_draws_first_warm_s"].append(_timed(
            lambda f=fit, g=genes[args.reads + i]: f.draws("gene_cell_line_effect", gene=g))[0])
        out["one_gene_draws_s"].append(_timed(lambda f=fit, g=genes[i]: f.draws("gene_cell_line_effect", gene=g))[0])
        out["gene_summary_s"].append(_timed(fit.gene_summary)[0])
        out["summary_one_variable_s"].append(_timed(lambda f=fit: f.summary(["gene_effect"]))[0])
        out["summary_all_s"].append(_timed(fit.summary)[0])
        fit.close()
    return {k: {"median": round(statistics.median(v), 4), "max": round(max(v), 4), "n": len(v)}
            for k, v in out.items()}


# --------------------------------------------------------------------------- driver


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--genes", type=int, default=2000)
    p.add_argument("--cell-lines", type=int, default=1000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--reads", type=int, default=5, help="repetitions of each read measurement")
    p.add_argument("--variants", default="float32:0,float32:1",
                   help="comma-separated dtype:gzip_level pairs, e.g. float32:0,float32:1,float64:0")
    p.add_argument("--sizes-only", action="store_true", help="only write time and size (no read timings)")
    p.add_argument("--quick", action="store_true", help="100 genes × 100 cell lines × 200 draws")
    p.add_argument("--out", type=Path, default=OUT / "results.json")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--variant-name", help=argparse.SUPPRESS)
    p.add_argument("--dtype", help=argparse.SUPPRESS)
    p.add_argument("--level", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.genes, args.cell_lines, args.draws = 100, 100, 200
    if args.child:
        print(json.dumps(run_variant(args)))
        return 0

    OUT.mkdir(parents=True, exist_ok=True)
    results = []
    for spec in args.variants.split(","):
        dtype, level = spec.split(":")
        name = f"{dtype}-gzip{level}-{args.genes}x{args.cell_lines}x{args.draws}x{args.chains}"
        cmd = [sys.executable, __file__, "--child", "--variant-name", name, "--dtype", dtype, "--level", level,
               "--genes", str(args.genes), "--cell-lines", str(args.cell_lines), "--draws", str(args.draws),
               "--chains", str(args.chains), "--reads", str(args.reads)] + (["--sizes-only"] if args.sizes_only else [])
        print(f"running {name} ...", file=sys.stderr, flush=True)
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return r.returncode
        result = json.loads(r.stdout.strip().splitlines()[-1])
        results.append(result)
        print(json.dumps(result, indent=1), flush=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
