"""``serve`` with real processes: Streamlit and a worker start and stop together; a SIGKILLed worker is
started again while the health check keeps answering, and the new worker takes the dead one's fit;
Streamlit dying stops everything; a damaged queue file is moved aside at start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from speclet_core.queue.bootstrap import FIRST_FIT_LABEL
from speclet_core.queue.jobs import JobQueue, worker_status
from speclet_core.queue.records import JobStatus
from speclet_core.queue.serve import RESTART_FIRST_S, RESTART_MAX_S, restart_delay, wait_until_healthy
from speclet_core.settings import PROJECT_ROOT, Settings, default_fit_memory_mb

HEARTBEAT_TIMEOUT_S = 4.0


def test_restart_delay_doubles_from_one_second_to_a_minute() -> None:
    assert [restart_delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert restart_delay(1) == RESTART_FIRST_S and restart_delay(100) == RESTART_MAX_S


# --------------------------------------------------------------------------- real serve processes

slow = pytest.mark.slow


def _env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECLET_")}
    env.update({"SPECLET_DATA_DIR": str(data_dir), "SPECLET_HEARTBEAT_TIMEOUT_S": str(HEARTBEAT_TIMEOUT_S),
                "PYTHONPATH": str(PROJECT_ROOT), "SPECLET_PORT": str(port), "SPECLET_WORKERS": "1",
                "SPECLET_READ_ONLY": "false"})
    return env


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_serve(data_dir: Path, port: int, log: Path | None = None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "speclet_core", "serve"]
    if log is None:
        return subprocess.Popen(cmd, env=_env(data_dir, port), cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.STDOUT)
    with open(log, "wb") as out:  # the child keeps its own copy of the file
        return subprocess.Popen(cmd, env=_env(data_dir, port), cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT)


def _healthy_now(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as resp:
            return resp.status == 200 and resp.read().strip() == b"ok"
    except OSError:
        return False


def _live_worker_pids(data_dir: Path) -> list[int]:
    return [w["pid"] for w in worker_status(_settings(data_dir))["workers"] if w["alive"]]


def _wait_serving(proc: subprocess.Popen[bytes], data_dir: Path, port: int) -> list[psutil.Process]:
    assert wait_until_healthy(port, timeout_s=90), "Streamlit never answered /_stcore/health"
    deadline = time.monotonic() + 60
    while not _live_worker_pids(data_dir):
        assert proc.poll() is None and time.monotonic() < deadline, "no live worker under serve"
        time.sleep(0.1)
    return psutil.Process(proc.pid).children(recursive=True)


def _stop_serve(proc: subprocess.Popen[bytes], children: list[psutil.Process]) -> float:
    t = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    took = time.monotonic() - t
    _, alive = psutil.wait_procs(children, timeout=2)
    assert alive == []
    return took


@slow
def test_serve_runs_streamlit_and_a_worker_and_stops_both_on_sigterm(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", _free_port()
    proc = _start_serve(data_dir, port)
    try:
        children = _wait_serving(proc, data_dir, port)
        assert (data_dir / "demo" / "demo_screen.parquet").is_file()
        queue = JobQueue.from_settings(_settings(data_dir))
        deadline = time.monotonic() + 60
        while not queue.has_jobs():  # an empty installation gets the demo's first fit
            assert time.monotonic() < deadline, "serve queued no first fit"
            time.sleep(0.2)
        [first] = queue.list()
        assert first.label == FIRST_FIT_LABEL and first.request.model == "gene_lineage"
        assert _stop_serve(proc, children) < 10
        assert worker_status(_settings(data_dir))["alive"] is False
    finally:
        if proc.poll() is None:
            proc.kill()


@slow
def test_a_sigkilled_worker_is_restarted_health_keeps_answering_and_the_new_worker_takes_its_fit(
    tmp_path: Path,
) -> None:
    data_dir, port, log = tmp_path / "data", _free_port(), tmp_path / "serve.log"
    proc = _start_serve(data_dir, port, log)
    try:
        _wait_serving(proc, data_dir, port)
        queue = JobQueue.from_settings(_settings(data_dir))
        deadline = time.monotonic() + 120
        while True:  # the demo's first fit, running in its own process under worker 1
            jobs = queue.list()
            if jobs and jobs[0].status == JobStatus.RUNNING and jobs[0].process_id is not None:
                break
            assert time.monotonic() < deadline, f"the first fit never started: {jobs}"
            time.sleep(0.1)
        job = jobs[0]
        fit = psutil.Process(job.process_id)
        # the default memory limit, derived from the machine, reached the fit process as its RLIMIT_AS
        limit_mb = default_fit_memory_mb(1)
        assert limit_mb > 0 and fit.rlimit(psutil.RLIMIT_AS)[0] == limit_mb * 2**20  # the enforced (soft) limit
        [old_pid] = _live_worker_pids(data_dir)

        killed_at = time.monotonic()
        os.kill(old_pid, signal.SIGKILL)
        fit.wait(timeout=10)  # the fit dies with its worker
        health_checks = 0
        while True:  # until the new worker runs the dead worker's fit
            assert proc.poll() is None, "serve stopped after its worker died"
            assert _healthy_now(port), "the health check stopped answering while the worker was down"
            health_checks += 1
            now_job = queue.get(job.job_id)
            if now_job.status == JobStatus.RUNNING and now_job.process_id not in (None, job.process_id):
                break
            assert time.monotonic() - killed_at < 60, f"the fit was not taken up again: {now_job}"
            time.sleep(0.2)
        retaken_s = time.monotonic() - killed_at
        # the dead worker's record is dropped once its heartbeat goes stale: wait for it
        while len(new_pids := _live_worker_pids(data_dir)) != 1 and time.monotonic() - killed_at < 60:
            time.sleep(0.5)
        assert len(new_pids) == 1 and new_pids[0] != old_pid and psutil.pid_exists(new_pids[0])
        assert now_job.worker_id != job.worker_id and now_job.requeues == 1 and now_job.attempt == job.attempt
        assert str(new_pids[0]) in now_job.worker_id.split(":")
        assert health_checks >= 2 and retaken_s < 20
        print(f"fit taken up again {retaken_s:.1f} s after the SIGKILL ({health_checks} health checks all ok)")

        children = psutil.Process(proc.pid).children(recursive=True)
        assert _stop_serve(proc, children) < 10
        assert queue.get(job.job_id).status == JobStatus.QUEUED  # put back for the next start
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "worker 1 (process" in text and "exited unexpectedly" in text and "starting it again in 1 s" in text
    assert "stopping everything" not in text


@slow
def test_serve_stops_everything_non_zero_when_streamlit_dies(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", _free_port()
    proc = _start_serve(data_dir, port)
    try:
        children = _wait_serving(proc, data_dir, port)
        [streamlit] = [p for p in psutil.Process(proc.pid).children() if "run_app.py" in " ".join(p.cmdline())]
        streamlit.kill()
        assert proc.wait(timeout=15) != 0
        _, alive = psutil.wait_procs(children, timeout=5)
        assert alive == []
    finally:
        if proc.poll() is None:
            proc.kill()


@slow
def test_serve_moves_a_damaged_queue_aside_and_starts_with_an_empty_one(tmp_path: Path) -> None:
    data_dir, port, log = tmp_path / "data", _free_port(), tmp_path / "serve.log"
    damaged = data_dir / "queue" / "cache.db"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not a database " * 4096)
    proc = _start_serve(data_dir, port, log)
    try:
        children = _wait_serving(proc, data_dir, port)
        [kept] = list(damaged.parent.glob("cache.db.damaged-*"))
        assert kept.read_bytes() == b"not a database " * 4096  # the damaged copy is kept as it was
        queue = JobQueue.from_settings(_settings(data_dir))
        deadline = time.monotonic() + 60
        while not queue.has_jobs():  # a working, fresh queue: the first fit was queued in it
            assert time.monotonic() < deadline, "serve queued no first fit in the fresh queue"
            time.sleep(0.2)
        _stop_serve(proc, children)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "the job queue file was damaged (file is not a database): moved it aside to" in text
    assert str(kept) in text
