"""Speed and memory of the ranking core at the issue's scale targets.

    .venv/bin/python benchmarks/bench_ranking.py [--quick] [--repeats N]

Targets (issue #8): ranking 18,000 genes × 4,000 draws in under 5 s and 2 GB peak memory;
a 200 × 200 pairwise matrix from 4,000 draws in under 1 s.

Each case runs in a fresh child process so its peak memory is its own. Reported per case:
wall time (best and median of the repeats), CPU time of the best call (all threads; less
sensitive to other work on the machine than wall time), the peak of memory allocated during one call
above what was held before it (tracemalloc, which numpy reports to), and the child's peak
resident set size (``ru_maxrss``: interpreter + libraries + input draws + the call).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

CASES = {
    # name: (genes, chains, draws per chain, lineages, input)
    "rank_f32": (18_000, 4, 1_000, 0, "memory-float32"),
    "rank_f64": (18_000, 4, 1_000, 0, "memory-float64"),
    "rank_netcdf": (18_000, 4, 1_000, 0, "netcdf-float32"),
    "pairs_200": (200, 4, 1_000, 0, "memory-float32"),
    "pairs_500": (500, 4, 1_000, 0, "memory-float32"),
    "reference_18k": (18_000, 4, 1_000, 0, "memory-float32"),
    "contrast_5k_x8": (5_000, 4, 1_000, 8, "netcdf-float32"),
    # the `rank` command's path: ModelStore.get → lazy draws of the gene effect → rank_genes
    "rank_stored_fit": (18_000, 4, 1_000, 0, "model-store"),
}
QUICK = {"rank_f32": (2_000, 4, 500, 0, "memory-float32"), "pairs_200": (200, 4, 500, 0, "memory-float32")}


def make_draws(genes: int, chains: int, draws: int, lineages: int, dtype: type = np.float32) -> xr.DataArray:
    """Posterior-like draws: per-gene means spread like DepMap effects, in-place to keep setup memory low."""
    rng = np.random.default_rng(0)
    names = [f"GENE{i}" for i in range(genes)]
    mu = rng.normal(-0.1, 0.5, size=genes).astype(np.float32)
    if lineages:
        x = rng.standard_normal((chains, draws, genes, lineages), dtype=np.float32)
        x *= np.float32(0.2)
        x += mu[:, None]
        coords = {"gene": names, "lineage": [f"lineage_{i}" for i in range(lineages)]}
        dims: tuple[str, ...] = ("chain", "draw", "gene", "lineage")
    else:
        x = rng.standard_normal((chains, draws, genes), dtype=np.float32)
        x *= np.float32(0.2)
        x += mu
        coords = {"gene": names}
        dims = ("chain", "draw", "gene")
    return xr.DataArray(x.astype(dtype, copy=False), dims=dims, coords=coords, name="effect")


def put_fit(root: str, draws: xr.DataArray) -> None:
    """Store ``draws`` as the gene effect of a fit, as the worker would (setup, not timed)."""
    import arviz as az

    from model_store import ModelStore
    from speclet_core.records import FitRequest

    idata = az.from_dict(
        posterior={"gene_effect": draws.to_numpy()}, dims={"gene_effect": ["gene"]},
        coords={"gene": draws["gene"].to_numpy()},
    )
    request = FitRequest(data_path="bench.csv", data_fingerprint="0" * 64, model="bench", model_version="1")
    roles = {"gene_effect": "gene_effect", "gene_lineage_effect": None, "gene_cell_line_effect": None,
             "hyperparameters": [], "covariate_slopes": []}
    ModelStore(Path(root)).put(request.fit_id, idata, request=request.model_dump(mode="json"), roles=roles,
                               diagnostics={"verdict": "converged"}, timings={})


def run_case(name: str, spec: tuple, repeats: int, path: str | None) -> dict:
    from speclet_core.analysis.contrasts import contrast_lineage
    from speclet_core.analysis.pairs import compare_pairs, compare_to_reference
    from speclet_core.analysis.ranking import rank_genes

    genes, chains, draws, lineages, source = spec
    if source == "netcdf-float32":
        ds = xr.open_dataset(path)
        da = ds["effect"]
    elif source == "model-store":
        from model_store import ModelStore
        from speclet_core.cli.rank import rank_stored_fit

        store = ModelStore(path)

        def call_store() -> None:
            with store.get(store.list()[0].fit_id) as fit:
                rank_stored_fit(fit)
    else:
        da = make_draws(genes, chains, draws, lineages, np.float64 if source.endswith("float64") else np.float32)
    if source == "model-store":
        call = call_store
    elif name.startswith("rank"):
        call = lambda: rank_genes(da)  # noqa: E731
    elif name.startswith("pairs"):
        call = lambda: compare_pairs(da)  # noqa: E731
    elif name.startswith("reference"):
        call = lambda: compare_to_reference(da, "GENE0")  # noqa: E731
    else:
        call = lambda: contrast_lineage(da, "lineage_0")  # noqa: E731
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    call()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return {
        "case": name, "genes": genes, "draws": chains * draws, "lineages": lineages, "input": source,
        "best_s": min(times), "median_s": statistics.median(times), "cpu_s": min(cpu),
        "call_peak_mib": peak / 2**20, "process_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: check the script runs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", default="", help="comma-separated subset of " + ", ".join(CASES))
    parser.add_argument("--threads", type=int, default=0, help="worker threads of the ranking (0: its default)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cases = QUICK if args.quick else CASES
    if args.child:
        if args.threads:
            import speclet_core.analysis.draws

            speclet_core.analysis.draws.THREADS = args.threads
        print(json.dumps(run_case(args.child, cases[args.child], args.repeats, args.path)))
        return
    wanted = [c for c in (args.cases.split(",") if args.cases else cases) if c]
    print(f"# numpy {np.__version__}, xarray {xr.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"{'case':<16}{'genes':>7}{'draws':>7}{'lin':>5} {'input':<16}{'best s':>8}{'median s':>10}{'cpu s':>7}"
          f"{'call peak MiB':>15}{'proc RSS MiB':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in wanted:
            spec = cases[name]
            path = None
            if spec[4] == "netcdf-float32":
                path = str(Path(tmp) / f"{name}.nc")
                make_draws(*spec[:4]).to_dataset().to_netcdf(path, engine="h5netcdf")
            elif spec[4] == "model-store":
                path = str(Path(tmp) / "fits")
                put_fit(path, make_draws(*spec[:4]))
            cmd = [sys.executable, __file__, "--child", name, "--repeats", str(args.repeats)]
            cmd += ["--quick"] if args.quick else []
            cmd += ["--threads", str(args.threads)] if args.threads else []
            cmd += ["--path", path] if path else []
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"{r['case']:<16}{r['genes']:>7}{r['draws']:>7}{r['lineages']:>5} {r['input']:<16}"
                  f"{r['best_s']:>8.2f}{r['median_s']:>10.2f}{r['cpu_s']:>7.2f}{r['call_peak_mib']:>15.0f}{r['process_peak_rss_mib']:>14.0f}")
            if path and os.path.isfile(path):
                os.unlink(path)


if __name__ == "__main__":
    main()
