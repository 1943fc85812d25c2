"""What a NUTS fit keeps, before (an earlier commit's code) and after (this checkout): memory, disk, time.

Usage::

    .venv/bin/python benchmarks/bench_sampler_memory.py                       # before = 66d6ddf, ≈ 6-8 min
    .venv/bin/python benchmarks/bench_sampler_memory.py --before-ref REF --chains 2 --tune 200 --draws 200

Both sides fit the same synthetic flagship screen (100 genes × 300 cell lines × 4 sgRNAs, 10 lineages,
120,000 readings) through ``prepare_request`` → ``run_fit``, each in its own process (so its peak RSS
is that fit's), with ``TMPDIR`` pointed at a fresh folder that a thread measures every 0.2 s: the
largest size it reached is the temporary store's peak, divided by every iteration (warm-up included)
to give bytes per draw. The earlier code is exported with ``git archive`` into a temporary folder.
Then both sides' ``compute_diagnostics`` run on the same synthetic posterior of 32,000 elements ×
4 chains × 1,000 draws (AR(1) draws, φ = 0.5). Prints one JSON object and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = {"n_genes": 100, "n_cell_lines": 300, "n_lineages": 10}

CHILD = r'''
import json, os, resource, sys, threading, time
from pathlib import Path
import numpy as np
root, workdir, chains, tune, draws = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
sys.path.insert(0, root)
tmp = workdir / "tmp"; tmp.mkdir(parents=True, exist_ok=True)
import tempfile; tempfile.tempdir = str(tmp)
peak = [0]
def du(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try: total += os.path.getsize(os.path.join(dirpath, f))
            except OSError: pass
    return total
stop = threading.Event()
def watch():
    while not stop.is_set():
        peak[0] = max(peak[0], du(tmp)); time.sleep(0.2)
from speclet_core.data.demo import write_synthetic
from speclet_core.data.synthetic import simulate_screen
from speclet_core.fitting.engine import run_fit
from speclet_core.fitting.request import prepare_request
from speclet_core.records import SamplerSettings
from speclet_core.settings import Settings
sim = simulate_screen(**json.loads(sys.argv[6]), seed=2002, sgrnas_per_gene=(4, 4), covariates=False)
path, _ = write_synthetic(sim, workdir / "screen.csv")
settings = Settings(data_dir=workdir / "data", max_genes=100000, max_rows=10**8)
req = prepare_request(path, "sgrna_gene_lineage", sampler=SamplerSettings(chains=chains, tune=tune, draws=draws),
                      seed=1, settings=settings)
threading.Thread(target=watch, daemon=True).start()
t0 = time.perf_counter()
res = run_fit(req, settings=settings)
wall = time.perf_counter() - t0
stop.set()
post = res.idata.posterior
from speclet_core.diagnostics.compute import compute_diagnostics
t1 = time.perf_counter(); compute_diagnostics(res.idata); diag_fit_s = time.perf_counter() - t1
steps = float(res.idata.sample_stats["n_steps"].mean()) if "n_steps" in res.idata.sample_stats else None
print(json.dumps({
    "readings": len(sim.data), "wall_s": round(wall, 1), **{k: v for k, v in res.timings.items()},
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    "temp_peak_mb": round(peak[0] / 2**20, 1),
    "temp_bytes_per_draw": round(peak[0] / (chains * (tune + draws))),
    "posterior_mb": round(post.nbytes / 2**20, 1), "posterior_dtype": str(post["gene_cell_line_effect"].dtype),
    "posterior_predictive_mb": round(res.idata.posterior_predictive.nbytes / 2**20, 1),
    "sample_stats_vars": len(res.idata.sample_stats.data_vars), "steps_per_draw": steps,
    "diagnostics_s_on_fit": round(diag_fit_s, 2), "min_ess_bulk": res.diagnostics["min_ess_bulk"],
    "max_rhat": res.diagnostics["max_rhat"], "divergences": res.diagnostics["divergences"],
}))
'''

DIAG_CHILD = r'''
import json, sys, time
import numpy as np, xarray as xr, arviz as az
sys.path.insert(0, sys.argv[1])
from speclet_core.diagnostics.compute import compute_diagnostics
rng = np.random.default_rng(0)
C, D, G, L = 4, 1000, 100, 320
e = rng.normal(size=(C, D, G * L)); x = np.empty_like(e); x[:, 0] = e[:, 0]
for t in range(1, D): x[:, t] = 0.5 * x[:, t - 1] + e[:, t]
post = xr.Dataset({"gene_cell_line_effect": (["chain", "draw", "gene", "cell_line"], x.reshape(C, D, G, L))})
t0 = time.perf_counter(); d = compute_diagnostics(az.InferenceData(posterior=post)); s = time.perf_counter() - t0
print(json.dumps({"diagnostics_s_32k": round(s, 2), "max_rhat": d["max_rhat"], "min_ess_bulk": d["min_ess_bulk"],
                  "min_ess_tail": d["min_ess_tail"]}))
'''


def _child(code: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": ""}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _machine() -> dict:
    with open("/proc/meminfo") as fh:
        mem_kb = int(fh.readline().split()[1])
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "nproc": os.cpu_count(),
        "ram_gib": round(mem_kb / 2**20, 1), "uptime": subprocess.run(["uptime"], capture_output=True,
                                                                     text=True).stdout.strip(),
        "python": platform.python_version(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before-ref", default="66d6ddf", help="git commit of the 'before' code")
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--tune", type=int, default=200)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--skip-fits", action="store_true", help="only the diagnostics comparison")
    args = ap.parse_args()
    result: dict = {"machine": _machine(), "size": SIZE, "sampler": vars(args)}
    with tempfile.TemporaryDirectory(prefix="speclet-bench-") as tmp:
        before = Path(tmp) / "before"
        before.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before_ref], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        for side, root in (("before", before), ("after", ROOT)):
            if not args.skip_fits:
                work = Path(tmp) / f"work-{side}"
                result[side] = _child(CHILD, str(root), str(work), str(args.chains), str(args.tune),
                                      str(args.draws), json.dumps(SIZE))
            else:
                result[side] = {}
            result[side].update(_child(DIAG_CHILD, str(root)))
            print(side, json.dumps(result[side]), file=sys.stderr, flush=True)
    result["machine"]["uptime_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
