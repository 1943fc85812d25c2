"""Measure the constants of ``speclet_core/fitting/cost.py``: CPU per gradient, compile, steps per draw, peak RSS, disk.

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_cost.py                 # every configuration below
    nice -n 10 .venv/bin/python benchmarks/bench_cost.py --only quick-2.9M

Each configuration runs in its own process (peak RSS is that fit's) with its own ``TMPDIR`` (the sampler's
temporary store is measured there, polled every 0.25 s): simulate a screen, ``prepare_request`` → ``run_fit`` →
``ModelStore.put``. Phase boundaries come from the fit's progress callback; each phase gets wall and CPU seconds
(``time.process_time``: every thread of the process, so a shared machine's load does not inflate it) and its peak
RSS (``/proc/self/status`` VmRSS, polled). The quick (ADVI) runs time one gradient per iteration, which gives the
CPU cost of one gradient at that size. The prediction of ``estimate_cost`` for the same request is printed
beside what was measured. Results: JSON lines on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# name: (model, genes, cell lines, lineages, sgRNAs per gene, method, chains, tune, draws, quick iterations)
CONFIGS = {
    "quick-10k": ("sgrna_gene_lineage", 20, 130, 8, 4, "quick", 1, 0, 0, 600),
    "quick-120k": ("sgrna_gene_lineage", 100, 300, 10, 4, "quick", 1, 0, 0, 300),
    "quick-cl-160k": ("sgrna_gene_cell_line", 1000, 40, 1, 4, "quick", 1, 0, 0, 200),
    "nuts-10k": ("sgrna_gene_lineage", 20, 130, 8, 4, "nuts", 2, 150, 150, 0),
    "nuts-120k": ("sgrna_gene_lineage", 100, 300, 10, 4, "nuts", 2, 60, 60, 0),
    "nuts-cl-160k": ("sgrna_gene_cell_line", 1000, 40, 1, 4, "nuts", 2, 60, 60, 0),
    "quick-2.9M": ("sgrna_gene_cell_line", 18000, 40, 1, 4, "quick", 1, 0, 0, 40),
}


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _tree_bytes(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


def run_one(name: str) -> dict:
    """One configuration in this process."""
    import dataclasses

    from model_store import ModelStore
    from speclet_core.data.demo import write_synthetic
    from speclet_core.data.synthetic import simulate_screen
    from speclet_core.fitting import approximate
    from speclet_core.fitting.engine import run_fit
    from speclet_core.fitting.request import estimate_request, prepare_request
    from speclet_core.records import SamplerSettings
    from speclet_core.settings import Settings

    model, genes, cells, lineages, guides, method, chains, tune, draws, iterations = CONFIGS[name]
    work = Path(tempfile.mkdtemp(prefix="bench-cost-"))
    t = time.perf_counter()
    sim = simulate_screen(genes, cells, lineages, seed=5, sgrnas_per_gene=(guides, guides), covariates=False)
    path, _ = write_synthetic(sim, work / "screen.parquet")
    simulate_s = time.perf_counter() - t
    del sim
    settings = dataclasses.replace(Settings.from_env(), data_dir=work / "data")
    if method == "quick":
        approximate.QUICK_ITERATIONS = iterations
        sampler = SamplerSettings(method="quick")
    else:
        sampler = SamplerSettings(chains=chains, tune=tune, draws=draws)
    request = prepare_request(path, model, sampler=sampler, seed=1, settings=settings)
    t = time.perf_counter()
    estimate = estimate_request(request)
    estimate_call_s = time.perf_counter() - t

    marks: list[tuple[str, float, float]] = []
    peaks: dict[str, float] = {}
    tmp_peak = [0]
    stop = threading.Event()
    current = ["loading"]

    def poll() -> None:
        tmpdir = tempfile.gettempdir()
        while not stop.is_set():
            peaks[current[0]] = max(peaks.get(current[0], 0.0), _rss_mb())
            tmp_peak[0] = max(tmp_peak[0], _tree_bytes(tmpdir))
            time.sleep(0.25)

    def progress(p) -> None:
        phase = str(p.phase)
        if phase != current[0] or not marks:
            marks.append((phase, time.perf_counter(), time.process_time()))
            current[0] = phase

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    t0, c0 = time.perf_counter(), time.process_time()
    result = run_fit(request, settings=settings, progress=progress)
    marks.append(("store", time.perf_counter(), time.process_time()))
    current[0] = "store"
    stored = ModelStore(settings.fits_dir).put(
        request.fit_id, result.idata, request=request.model_dump(mode="json"), roles=result.spec.roles(),
        diagnostics=result.diagnostics, timings=result.timings, provenance=result.provenance,
    )
    marks.append(("end", time.perf_counter(), time.process_time()))
    stop.set()
    watcher.join()
    phases: dict[str, dict[str, float]] = {}
    for (ph, w, c), (_, w2, c2) in zip(marks, marks[1:], strict=False):
        entry = phases.setdefault(ph, {"wall_s": 0.0, "cpu_s": 0.0})
        entry["wall_s"] += round(w2 - w, 2)
        entry["cpu_s"] += round(c2 - c, 2)
    out = {
        "name": name, "model": model, "genes": genes, "cell_lines": cells, "readings": estimate.rows,
        "parameters": estimate.parameters, "stored_values_per_draw": estimate.stored_values_per_draw,
        "method": method, "chains": chains, "tune": tune, "draws": draws, "quick_iterations": iterations,
        "simulate_s": round(simulate_s, 1), "estimate_call_s": round(estimate_call_s, 2),
        "timings": result.timings, "phases": phases,
        "peak_rss_mb_by_phase": {k: round(v) for k, v in peaks.items()},
        "peak_rss_mb": round(max(peaks.values())),
        "tmp_peak_mb": round(tmp_peak[0] / 2**20, 1),
        "stored_mb": round(stored.total_bytes / 2**20, 1),
        "total_wall_s": round(time.perf_counter() - t0, 1), "total_cpu_s": round(time.process_time() - c0, 1),
        "predicted": estimate.as_dict(),
    }
    if "posterior" in result.idata and method == "nuts":
        steps = result.idata.sample_stats["n_steps"].values
        out["steps_per_draw"] = round(float(steps.mean()), 1)
        out["tree_depth_mean"] = round(float(result.idata.sample_stats["depth"].values.mean()), 2)
        iters = chains * (tune + draws)
        sampling_cpu = phases.get("tuning", {}).get("cpu_s", 0) + phases.get("sampling", {}).get("cpu_s", 0)
        out["ns_per_reading_per_gradient_cpu"] = round(
            sampling_cpu / (iters * out["steps_per_draw"]) / estimate.rows * 1e9, 2)
    if method == "quick":
        sampling_cpu = phases.get("sampling", {}).get("cpu_s", 0)
        out["ns_per_reading_per_gradient_cpu"] = round(sampling_cpu / iterations / estimate.rows * 1e9, 2)
        out["quick_draws"] = result.provenance["notes"].get("quick_draws")
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", default=None, help="configuration names (default: all)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one)), flush=True)
        return 0
    names = args.only or list(CONFIGS)
    print(json.dumps({"load_before": os.getloadavg(), "utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}),
          flush=True)
    for name in names:
        with tempfile.TemporaryDirectory(prefix="bench-cost-tmp-") as tmp:
            env = {**os.environ, "TMPDIR": tmp, "SPECLET_MAX_ROWS": "20000000", "SPECLET_MAX_GENES": "50000"}
            proc = subprocess.run([sys.executable, __file__, "--one", name], env=env, capture_output=True, text=True)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(json.dumps({"name": name, "error": proc.stderr[-3000:]}), flush=True)
            continue
        res = json.loads(line[len("RESULT "):])
        res["load_after"] = os.getloadavg()
        print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
