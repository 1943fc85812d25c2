"""Job queue speed: each queue operation with 1,000 jobs in the history, and submit-to-start
latency with an idle worker.

Run: ``.venv/bin/python benchmarks/bench_queue.py [--history 1000] [--reps 200] [--latency-runs 10]``.
Targets (issue #6): every queue operation under 10 ms with 1,000 jobs in the history;
an idle worker starts a submitted fit in under 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from speclet_core.errors import JobError
from speclet_core.queue.access import LOCAL_ADMIN
from speclet_core.queue.jobs import JobQueue, worker_status
from speclet_core.queue.records import JobStatus
from speclet_core.records import FitRequest, SamplerSettings
from speclet_core.settings import Settings

FINGERPRINT = "cd" * 32


def _request(seed: int, data_path: str = "/nonexistent/screen.csv") -> FitRequest:
    return FitRequest(data_path=data_path, data_fingerprint=FINGERPRINT, model="gene", model_version="1",
                      sampler=SamplerSettings(chains=2, tune=100, draws=100), seed=seed)


def _time(fn: Callable[[int], object], reps: int) -> dict[str, float]:
    samples = []
    for i in range(reps):
        t = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return {"median": statistics.median(samples), "p95": samples[int(0.95 * (len(samples) - 1))], "max": samples[-1]}


def bench_operations(history: int, reps: int) -> list[tuple[str, dict[str, float]]]:
    data_dir = Path(tempfile.mkdtemp(prefix="speclet-bench-queue-"))
    settings = Settings(data_dir=data_dir, max_jobs=0)  # the queue itself, past the server's cap on queued jobs
    q = JobQueue.from_settings(settings)
    t = time.perf_counter()
    ids = [q.submit(_request(seed), f"user{seed % 5}")[0].job_id for seed in range(history)]
    fill_s = time.perf_counter() - t
    for job_id in ids[: history - 10]:  # a realistic history: almost all finished, a few waiting
        q.claim("bench:1:w")
        q.finish(job_id, "bench:1:w", JobStatus.DONE)
    q.claim("bench:1:w")  # one running
    running = q.list(status="running")[0].job_id
    q.beat_worker("bench:1:w", {"pid": 1})
    seed0 = history + 1000
    results = [
        ("submit (new job)", _time(lambda i: q.submit(_request(seed0 + i), "bench"), reps)),
        ("submit (duplicate → existing job)", _time(lambda i: q.submit(_request(0), "bench"), reps)),
        ("get", _time(lambda i: q.get(ids[i % len(ids)]), reps)),
        ("list(limit=50)", _time(lambda i: q.list(limit=50), reps)),
        ("list(status=running)", _time(lambda i: q.list(status="running"), reps)),
        ("heartbeat", _time(lambda i: q.heartbeat(running, "bench:1:w"), reps)),
        ("update_progress", _time(lambda i: q.update_progress(running, "bench:1:w", phase="sampling",
                                                               draws_done=i, draws_total=reps), reps)),
        ("claim + finish", _time(lambda i: q.finish(q.claim("bench:2:w").job_id, "bench:2:w", JobStatus.DONE),
                                 reps)),
        ("cancel (queued job)", _time(lambda i: q.cancel(q.submit(_request(10 * seed0 + i))[0].job_id, by=LOCAL_ADMIN), reps)),
        ("requeue_stale (nothing stale)", _time(lambda i: q.requeue_stale(), reps)),
        ("beat_worker", _time(lambda i: q.beat_worker("bench:1:w", {"pid": 1}), reps)),
        ("worker_status (opens the queue)", _time(lambda i: worker_status(settings), reps)),
    ]
    total = len(q.list(limit=None))
    each_ms = fill_s / history * 1000
    print(f"history: {history} jobs before timing, {total} after (filling took {fill_s:.1f} s, {each_ms:.2f} ms each)")
    q.close()
    return results


def bench_latency(runs: int) -> list[tuple[float, float | None, float | None]]:
    """Seconds from submit to (claimed, fit process started, fit compiling) for ``runs`` submissions
    of a tiny quick fit to an idle worker (each is cancelled once it compiles)."""
    from speclet_core.data.demo import write_synthetic
    from speclet_core.data.synthetic import simulate_screen
    from speclet_core.fitting.request import prepare_request

    data_dir = Path(tempfile.mkdtemp(prefix="speclet-bench-latency-"))
    settings = Settings(data_dir=data_dir)
    screen, _ = write_synthetic(simulate_screen(6, 12, 3, seed=7, sgrnas_per_gene=(2, 3)), data_dir / "tiny.csv")
    env = {**os.environ, "SPECLET_DATA_DIR": str(data_dir), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    worker = subprocess.Popen([sys.executable, "-m", "speclet_core", "worker"], env=env,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    out: list[tuple[float, float | None, float | None]] = []
    try:
        deadline = time.monotonic() + 30
        while not worker_status(settings)["alive"]:
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not start")
            time.sleep(0.1)
        q = JobQueue.from_settings(settings)
        sampler = SamplerSettings(method="quick", chains=2, tune=100, draws=100)
        for i in range(runs):
            request = prepare_request(screen, "gene", sampler=sampler, seed=50_000 + i, settings=settings)
            time.sleep(1.0)  # the worker is idle, polling
            job, _ = q.submit(request, "bench")
            started = compiling = None
            t_end = time.monotonic() + 60
            while time.monotonic() < t_end:
                rec = q.get(job.job_id)
                # the fit process's first write (its pid) and each progress write stamp the heartbeat
                if rec.process_id is not None and started is None:
                    started = rec.heartbeat_at - rec.submitted_at
                if rec.phase not in (None, "loading") and compiling is None:
                    compiling = rec.heartbeat_at - rec.submitted_at
                if not rec.active or compiling is not None:
                    break
                time.sleep(0.005)
            rec = q.get(job.job_id)
            out.append(((rec.started_at or float("nan")) - rec.submitted_at, started, compiling))
            if rec.status == JobStatus.RUNNING:
                with contextlib.suppress(JobError):  # it may have ended by itself meanwhile
                    q.cancel(job.job_id, by=LOCAL_ADMIN)
            while q.get(job.job_id).active:
                time.sleep(0.05)
        q.close()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=20)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--history", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--latency-runs", type=int, default=10)
    args = ap.parse_args()
    print(f"python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")
    print("\n## queue operations (ms)")
    print(f"{'operation':<36}{'median':>9}{'p95':>9}{'max':>9}")
    for name, r in bench_operations(args.history, args.reps):
        print(f"{name:<36}{r['median']:>9.2f}{r['p95']:>9.2f}{r['max']:>9.2f}")
    if args.latency_runs:
        print("\n## submit → start with an idle worker (s)")
        lat = bench_latency(args.latency_runs)
        for name, k in (("claimed by the worker, fit process spawned", 0), ("fit process running (pid recorded)", 1),
                        ("fit loaded data, built the model (compiling)", 2)):
            xs = sorted(x[k] for x in lat if x[k] is not None)
            if xs:
                print(f"submit → {name}: median {statistics.median(xs):.3f}, max {xs[-1]:.3f} (n={len(xs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
