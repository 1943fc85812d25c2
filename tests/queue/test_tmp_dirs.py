"""Each fit's temp folder is DATA_DIR/tmp/<job>/<worker>, removed however the fit process ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from speclet_core.data.synthetic import simulate_screen
from speclet_core.queue.jobs import JobQueue, worker_status
from speclet_core.queue.records import JobRecord, JobStatus
from speclet_core.queue.worker import fit_tmp_dir, tmp_root
from speclet_core.records import FitPhase, SamplerSettings
from speclet_core.settings import PROJECT_ROOT, Settings

TINY = {"n_genes": 6, "n_cell_lines": 12, "n_lineages": 3, "seed": 7, "sgrnas_per_gene": (2, 3)}
HEARTBEAT_TIMEOUT_S = 4.0


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S)


def _start_worker(data_dir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECLET_")}
    env.update({"SPECLET_DATA_DIR": str(data_dir), "SPECLET_HEARTBEAT_TIMEOUT_S": str(HEARTBEAT_TIMEOUT_S),
                "PYTHONPATH": str(PROJECT_ROOT)})
    proc = subprocess.Popen([sys.executable, "-m", "speclet_core", "worker"], env=env, cwd=PROJECT_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not any(w["pid"] == proc.pid and w["alive"] for w in worker_status(_settings(data_dir))["workers"]):
        assert proc.poll() is None and time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.1)
    return proc


def _wait_for(queue: JobQueue, job_id: str, predicate: Callable[[JobRecord], bool], timeout_s: float = 180) -> JobRecord:
    deadline = time.monotonic() + timeout_s
    while not predicate(job := queue.get(job_id)):
        assert time.monotonic() < deadline, f"timed out; job is {job.status} ({job.phase}), error {job.error}"
        time.sleep(0.05)
    return job


def _submit_long_fit(data_dir: Path) -> tuple[JobQueue, JobRecord]:
    from speclet_core.data.demo import write_synthetic
    from speclet_core.fitting.request import prepare_request

    screen, _ = write_synthetic(simulate_screen(**TINY), data_dir / "tiny.csv")
    settings = _settings(data_dir)
    request = prepare_request(screen, "gene", sampler=SamplerSettings(method="nuts", chains=2, tune=3000,
                                                                         draws=20000), seed=3, settings=settings)
    queue = JobQueue.from_settings(settings)
    job, _ = queue.submit(request, "tmp-test")
    return queue, job


def test_sigkill_of_a_sampling_fit_leaves_no_temp_folder(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    queue, job = _submit_long_fit(data_dir)
    worker = _start_worker(data_dir)
    try:
        job = _wait_for(queue, job.job_id, lambda j: j.phase in (FitPhase.TUNING, FitPhase.SAMPLING))
        run_dir = fit_tmp_dir(_settings(data_dir), job.job_id, job.worker_id)
        deadline = time.monotonic() + 60
        while not list(run_dir.glob("speclet-nutpie-*")):  # the sampler's draws go to the fit's own TMPDIR
            assert time.monotonic() < deadline, f"no sampler temp folder in {run_dir}"
            time.sleep(0.1)
        assert psutil.Process(job.process_id).environ()["TMPDIR"] == str(run_dir)
        os.kill(job.process_id, signal.SIGKILL)
        failed = _wait_for(queue, job.job_id, lambda j: not j.active, timeout_s=30)
        assert failed.status == JobStatus.FAILED and "SIGKILL" in failed.error
        assert not run_dir.exists() and not run_dir.parent.exists()
        assert worker.poll() is None  # the worker itself carries on
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0
        queue.close()
    assert list(tmp_root(_settings(data_dir)).iterdir()) == []


def test_a_killed_workers_temp_folders_are_swept_by_the_next_worker(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    queue, job = _submit_long_fit(data_dir)
    first = _start_worker(data_dir)
    job = _wait_for(queue, job.job_id, lambda j: j.process_id is not None)
    old_run = fit_tmp_dir(_settings(data_dir), job.job_id, job.worker_id)
    (old_run / "speclet-nutpie-leftover").mkdir(parents=True, exist_ok=True)
    fit_process = psutil.Process(job.process_id)
    first.kill()  # SIGKILL: the supervisor cannot clean up; its fit dies with it
    first.wait()
    fit_process.wait(timeout=10)
    assert old_run.exists()
    second = _start_worker(data_dir)
    try:
        assert not old_run.exists()  # swept at start, before the new worker claims anything
        job = _wait_for(queue, job.job_id, lambda j: j.status == JobStatus.RUNNING and j.worker_id != job.worker_id
                        and j.process_id is not None, timeout_s=60)
        assert fit_tmp_dir(_settings(data_dir), job.job_id, job.worker_id).is_dir()  # the new run's own folder
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=15) == 0
    assert not (tmp_root(_settings(data_dir)) / job.job_id).exists()  # stopped: its fit's folder removed too
    queue.close()
