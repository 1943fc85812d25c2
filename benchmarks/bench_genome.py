"""Genome-scale NUTS fits of ``sgrna_gene_cell_line``: memory, temporary disk, steps, CPU per gradient, store reads.

Usage::

    nice -n 5 .venv/bin/python benchmarks/bench_genome.py --cases g10k,a120k_diag,a120k_lowrank,g800k,g2900k \\
        --out /tmp/genome.jsonl

Each case runs in its own child process (its peak RSS is that fit's): simulate a one-lineage screen
(G genes × 40 cell lines × 4 sgRNAs), write it as CSV, ``prepare_request`` → ``run_fit`` (the real
import and sampler, with ``TMPDIR`` pointed at a fresh folder that a thread measures every 0.5 s: its
largest size is the temporary disk peak), ``ModelStore.put``, then open the stored fit + its
gene × cell-line heatmap matrix, and rank all genes from the store (``rank_stored_fit``); the store
reads run just after the write (files in the page cache). CPU time is the child's own
(``resource.getrusage``), so other work on the shared machine does not inflate it; wall times do.
Per case prints one JSON line (appended to ``--out``) with: readings, parameters, gradient evaluations
(warm-up included), steps per kept draw, CPU s per gradient and per gradient per reading, min bulk
ESS, gradient evaluations per effective draw (total / min bulk ESS), peak RSS, temporary disk peak.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name: (genes, chains, tune, draws, mass matrix)
CASES = {
    "g10k": (63, 2, 150, 150, "diag"),
    "a120k_diag": (750, 2, 150, 150, "diag"),
    "a120k_lowrank": (750, 2, 150, 150, "low_rank"),
    "g800k": (5_000, 2, 50, 50, "diag"),
    "g800k_lowrank": (5_000, 2, 50, 50, "low_rank"),
    "g2900k": (18_000, 2, 50, 50, "diag"),
    # the pipeline's memory and disk at genome size on a loaded machine: one chain, trees capped at depth 6
    "g2900k_depth6": (18_000, 1, 50, 50, "diag"),
}
MAX_DEPTH = {"g2900k_depth6": 6}
CELL_LINES, SGRNAS = 40, 4
# the import reads its row and gene caps from the environment (Settings' caps are checked again in run_fit)
LIFTED_CAPS = {"SPECLET_MAX_ROWS": "100000000", "SPECLET_MAX_GENES": "1000000"}

CHILD = r'''
import json, os, resource, sys, threading, time
from pathlib import Path
root, work, case = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
sys.path.insert(0, root)
tmp = work / "tmp"; tmp.mkdir(parents=True, exist_ok=True)
import tempfile; tempfile.tempdir = str(tmp)
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
def du(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try: total += os.path.getsize(os.path.join(dirpath, f))
            except OSError: pass
    return total
peak, stop = [0], threading.Event()
def watch():
    while not stop.is_set():
        peak[0] = max(peak[0], du(tmp)); time.sleep(0.5)
out = {"case": case["name"]}
t = time.perf_counter(); c = cpu()
from speclet_core.data.demo import write_synthetic
from speclet_core.data.synthetic import simulate_screen
from speclet_core.fitting import nutpie_sampler
from speclet_core.fitting.engine import run_fit
from speclet_core.fitting.request import prepare_request
from speclet_core.records import SamplerSettings
from speclet_core.settings import Settings
nutpie_sampler.MASS_MATRIX = case["mass_matrix"]
nutpie_sampler.MAX_TREE_DEPTH = case["max_depth"]
sim = simulate_screen(case["genes"], case["cell_lines"], 1, seed=2002, sgrnas_per_gene=(case["sgrnas"], case["sgrnas"]),
                      covariates=False)
path, _ = write_synthetic(sim, work / "screen.csv")
readings = len(sim.data); del sim
out["simulate_write_s"] = round(time.perf_counter() - t, 1)
settings = Settings(data_dir=work / "data", max_genes=10**6, max_rows=10**9)
req = prepare_request(path, "sgrna_gene_cell_line", seed=1, settings=settings,
                      sampler=SamplerSettings(chains=case["chains"], tune=case["tune"], draws=case["draws"]))
threading.Thread(target=watch, daemon=True).start()
t = time.perf_counter(); c = cpu()
res = run_fit(req, settings=settings)
out["fit_wall_s"] = round(time.perf_counter() - t, 1); out["fit_cpu_s"] = round(cpu() - c, 1)
stop.set(); time.sleep(0.6)
rss_fit = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
notes = res.provenance["notes"]; stats = res.idata.sample_stats
n_par = sum(int(v.size) for v in res.idata.posterior.data_vars.values()) // (case["chains"] * case["draws"])
evals = notes.get("nutpie_gradient_evals"); scpu = notes.get("nutpie_sample_cpu_s")
d = res.diagnostics
out.update({
    "readings": readings, "kept_elements": n_par, **res.timings, "sample_cpu_s": scpu, "gradient_evals": evals,
    "steps_per_kept_draw": round(float(stats["n_steps"].mean()), 1), "depth_mean": round(float(stats["depth"].mean()), 2),
    "step_size": round(float(stats["step_size"].mean()), 5),
    "steps_per_iteration": round(evals / (case["chains"] * (case["tune"] + case["draws"])), 1),
    "cpu_ms_per_gradient": round(1000 * scpu / evals, 3),
    "cpu_ns_per_gradient_per_reading": round(1e9 * scpu / evals / readings, 2),
    "min_ess_bulk": d.get("min_ess_bulk"), "max_rhat": d.get("max_rhat"), "divergences": d.get("divergences"),
    "min_ess_at": d.get("min_ess_bulk_at"),
    "gradient_evals_per_effective_draw": round(evals / d["min_ess_bulk"], 1) if d.get("min_ess_bulk") else None,
    "kept_gradient_evals_per_effective_draw":
        round(float(stats["n_steps"].sum()) / d["min_ess_bulk"], 1) if d.get("min_ess_bulk") else None,
    "temp_peak_mb": round(peak[0] / 2**20, 1), "peak_rss_fit_mb": round(rss_fit),
    "posterior_mb": round(res.idata.posterior.nbytes / 2**20, 1),
})
from model_store import ModelStore
from speclet_core.cli.rank import rank_stored_fit
store = ModelStore(work / "fits")
t = time.perf_counter()
store.put(req.fit_id, res.idata, request=req.model_dump(mode="json"), roles=res.spec.roles(),
          diagnostics=res.diagnostics, timings=res.timings, provenance=res.provenance)
out["store_put_s"] = round(time.perf_counter() - t, 1)
del res
t = time.perf_counter()
fit = store.get(req.fit_id); m = fit.matrix("gene_cell_line", "mean")
out["open_and_heatmap_s"] = round(time.perf_counter() - t, 3); out["heatmap_shape"] = list(m.shape)
t = time.perf_counter(); ranked = rank_stored_fit(fit)
out["rank_all_genes_s"] = round(time.perf_counter() - t, 3); out["ranked_genes"] = len(ranked)
fit.close()
out["store_bytes"] = du(work / "fits")
out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps(out))
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="g10k,a120k_diag,a120k_lowrank,g800k,g2900k")
    ap.add_argument("--out", type=Path, default=Path("/tmp/speclet-genome.jsonl"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/speclet-genome-work"))
    args = ap.parse_args()
    import shutil

    for name in args.cases.split(","):
        genes, chains, tune, draws, mass = CASES[name]
        case = {"name": name, "genes": genes, "cell_lines": CELL_LINES, "sgrnas": SGRNAS, "chains": chains,
                "tune": tune, "draws": draws, "mass_matrix": mass,
                "max_depth": MAX_DEPTH.get(name, 10)}
        work = args.work / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        up0 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(work), json.dumps(case)],
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": "", **LIFTED_CAPS}, check=False)
        rec = {**case, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t0)), "uptime_start": up0,
               "uptime_end": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
               "child_wall_s": round(time.time() - t0, 1), "nproc": os.cpu_count()}
        if proc.returncode == 0:
            rec.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        else:
            rec["error"] = proc.stderr[-3000:]
        with args.out.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
