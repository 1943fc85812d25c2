"""Fit the flagship models at two sizes with nutpie (default) and PyMC's own NUTS; report speed and quality.

Usage::

    .venv/bin/python benchmarks/bench_fitting.py                      # everything (long: the large PyMC fits)
    .venv/bin/python benchmarks/bench_fitting.py --sizes small        # the 20-gene × 130-cell-line screen only
    .venv/bin/python benchmarks/bench_fitting.py --models sgrna_gene_lineage --backends nutpie quick

Each fit runs in its own process (so peak memory is that fit's) through ``prepare_request`` →
``run_fit`` with the default sampler settings (4 chains × 1,000 tuning + 1,000 draws,
target_accept 0.9). Reported: compile and sampling seconds (wall), the process's CPU
seconds, min bulk ESS over every stored parameter, ESS/s (min bulk ESS / sampling
seconds, and / compile + sampling), divergences, max R-hat and peak RSS. The machine's
load average is printed too: on a shared machine wall times stretch with other work.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = {
    # 20 genes × 130 cell lines × 4 sgRNAs (10,400 readings): a typical focused screen
    "small": {"n_genes": 20, "n_cell_lines": 130, "n_lineages": 8},
    "large": {"n_genes": 100, "n_cell_lines": 300, "n_lineages": 10},
}
MODELS = ("sgrna_gene_lineage", "gene_lineage")
BACKENDS = ("nutpie", "pymc")


def run_one(model: str, size: str, backend: str, workdir: Path) -> dict:
    """One fit in this process; returns its numbers."""
    from speclet_core.data.demo import write_synthetic
    from speclet_core.data.synthetic import simulate_screen
    from speclet_core.fitting.engine import run_fit
    from speclet_core.fitting.request import prepare_request
    from speclet_core.records import SamplerSettings
    from speclet_core.settings import Settings

    sim = simulate_screen(**SIZES[size], seed=2002, sgrnas_per_gene=(4, 4), covariates=False)
    path, _ = write_synthetic(sim, workdir / f"{size}.parquet")
    sampler = SamplerSettings(method="quick") if backend == "quick" else SamplerSettings(backend=backend)
    settings = Settings.from_env()  # the benchmark is an entry point: the caps of this installation
    request = prepare_request(path, model, sampler=sampler, seed=1, settings=settings)
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    result = run_fit(request, settings=settings)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    d, t = result.diagnostics, result.timings
    ess = d.get("min_ess_bulk")
    truth = sim.truth_values("gene_effect").set_index("gene")["value"]
    est = result.idata.posterior["gene_effect"].mean(("chain", "draw")).to_series()
    import numpy as np

    return {
        "model": model,
        "size": size,
        "backend": backend,
        "readings": len(sim.data),
        "parameters": _count(result),
        "compile_s": t["compile_s"],
        "sample_s": t["sample_s"],
        "postprocess_s": t["postprocess_s"],
        "total_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "min_ess_bulk": None if ess is None else round(ess),
        "min_ess_bulk_at": d.get("min_ess_bulk_at"),
        "ess_per_s": None if ess is None else round(ess / t["sample_s"], 1),
        "ess_per_s_with_compile": None if ess is None else round(ess / (t["sample_s"] + t["compile_s"]), 1),
        "divergences": d.get("divergences"),
        "max_rhat": None if d.get("max_rhat") is None else round(d["max_rhat"], 4),
        "max_rhat_at": d.get("max_rhat_at"),
        "verdict": d["verdict"],
        "gene_corr_truth": round(float(np.corrcoef(truth[est.index], est)[0, 1]), 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _count(result) -> int:  # type: ignore[no-untyped-def]
    import numpy as np

    post = result.idata.posterior
    return int(sum(np.prod([post.sizes[d] for d in post[v].dims[2:]]) for v in post.data_vars))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=["nutpie", "pymc", "quick"])
    parser.add_argument("--out", type=Path, help="append each result as a JSON line to this file")
    parser.add_argument("--one", nargs=3, metavar=("MODEL", "SIZE", "BACKEND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run_one(*args.one, Path(tmp))), flush=True)
        return
    print(f"# bench_fitting  {time.strftime('%Y-%m-%d %H:%M')}  cpus={os.cpu_count()}  "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    for size in args.sizes:
        for model in args.models:
            for backend in args.backends:
                load = os.getloadavg()[0]
                proc = subprocess.run(
                    [sys.executable, __file__, "--one", model, size, backend],
                    capture_output=True, text=True, check=False,
                )
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
                if proc.returncode != 0 or not lines:
                    print(f"{model} {size} {backend}: FAILED\n{proc.stderr[-2000:]}", flush=True)
                    continue
                row = json.loads(lines[-1])
                row["load_before"] = round(load, 1)
                row["load_after"] = round(os.getloadavg()[0], 1)
                print(json.dumps(row), flush=True)
                if args.out:
                    with open(args.out, "a") as fh:
                        fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
