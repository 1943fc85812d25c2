"""The same 4 per-lineage fits (an ``atlas``) on 1 and on 2 local Dask workers: wall time and ratio.

    .venv/bin/python benchmarks/bench_dask.py [--method nuts|quick] [--draws N] [--out docs/benchmarks/dask.md]

Each round starts a fresh ``dask scheduler``, N ``dask worker --nthreads 1 --no-nanny`` processes and one
speclet worker with ``SPECLET_DASK_SCHEDULER`` set, on a fresh data folder (cold compile caches in both rounds),
submits ``atlas --wait`` over a 4-lineage synthetic screen, and times submit → all stored. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECLET_")}
    env.update({"SPECLET_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), **extra})
    return env


def _round(n_workers: int, args: argparse.Namespace) -> dict[str, object]:
    from speclet_core.data.demo import write_synthetic
    from speclet_core.data.synthetic import simulate_screen
    from speclet_core.queue.jobs import worker_status
    from speclet_core.settings import Settings

    root = Path(tempfile.mkdtemp(prefix=f"bench-dask-{n_workers}-"))
    data_dir = root / "data"
    screen, _ = write_synthetic(simulate_screen(n_genes=args.genes, n_cell_lines=args.cell_lines, n_lineages=4,
                                                seed=5), data_dir / "screen.csv")
    procs: list[subprocess.Popen[bytes]] = []
    env = _env(data_dir)

    def start(name: str, *cmd: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with open(root / f"{name}.log", "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", *cmd], env={**env, **(extra_env or {})}, cwd=ROOT,
                                    stdout=out, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    try:
        sched_file = root / "scheduler.json"
        start("scheduler", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
              "--scheduler-file", str(sched_file))
        while not sched_file.exists():
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        for i in range(n_workers):
            start(f"dask-{i}", "dask", "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                  "--local-directory", str(root / f"w{i}"))
        sup = start("speclet-worker", "speclet_core", "worker", extra_env={"SPECLET_DASK_SCHEDULER": address})
        settings = Settings(data_dir=data_dir)
        while not any(w["pid"] == sup.pid and w["alive"] for w in worker_status(settings)["workers"]):
            time.sleep(0.1)
        t0 = time.perf_counter()
        atlas = subprocess.run(
            [sys.executable, "-m", "speclet_core", "atlas", "--data", str(screen), "--model", args.model,
             "--method", args.method, "--chains", "2", "--tune", str(args.draws), "--draws", str(args.draws),
             "--wait"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - t0
        if atlas.returncode != 0:
            raise SystemExit(f"atlas failed on {n_workers} worker(s): {atlas.stderr}")
        record = json.loads((data_dir / "atlases" / f"{atlas.stdout.strip().splitlines()[-1]}.json").read_text())
        from model_store import ModelStore

        store = ModelStore(data_dir / "fits")
        workers = {store.get(f).manifest.provenance.get("dask_worker") for f in record["fits"].values()}
        totals = [float(store.get(f).manifest.timings.get("total_s", 0)) for f in record["fits"].values()]
        return {"workers": n_workers, "wall_s": wall, "fit_s_sum": sum(totals), "ran_on": len(workers)}
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="gene_cell_line")
    parser.add_argument("--method", default="nuts", choices=["nuts", "quick"])
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--genes", type=int, default=20)
    parser.add_argument("--cell-lines", type=int, default=32)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rows = [_round(n, args) for n in (1, 2)]
    load_after = os.getloadavg()[0]
    ratio = rows[0]["wall_s"] / rows[1]["wall_s"]  # type: ignore[operator]
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, load average {load_before:.1f} → {load_after:.1f}")
    print(f"4 fits of `{args.model}` ({args.method}, 2 chains × ({args.draws} tune + {args.draws} draws)), "
          f"{args.genes} genes × {args.cell_lines} cell lines × 4 lineages")
    print("| Dask workers | wall, submit → all stored (s) | sum of the fits' own total_s | distinct workers used |")
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['workers']} | {r['wall_s']:.1f} | {r['fit_s_sum']:.1f} | {r['ran_on']} |")
    print(f"wall ratio 1 worker / 2 workers: {ratio:.2f}")


if __name__ == "__main__":
    main()
