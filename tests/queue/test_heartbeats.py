"""Heartbeat staleness across hosts: judged on the judge's own clock, never by comparing two wall clocks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from speclet_core.queue.jobs import JobQueue
from speclet_core.queue.records import JobStatus
from speclet_core.records import FitRequest, SamplerSettings
from speclet_core.settings import Settings

TIMEOUT_S = 2.0
SKEW_S = 31.0

# A worker on "farhost" whose wall clock is off by SKEW (a real process, its own time.time shifted):
# it heart-beats its job every 0.2 s until the file STOP appears.
BEATER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    skew = float(sys.argv[3])
    real = time.time
    time.time = lambda: real() + skew
    from speclet_core.queue.jobs import JobQueue
    from speclet_core.settings import Settings
    settings = Settings(data_dir=Path(sys.argv[1]), heartbeat_timeout_s=2.0)
    stop = Path(sys.argv[2])
    with JobQueue.from_settings(settings) as queue:
        while not stop.exists():
            assert queue.heartbeat(sys.argv[4], "farhost:4242:w1") is not None, "lost the job"
            time.sleep(0.2)
""")


def _request() -> FitRequest:
    return FitRequest(data_path="/data/screen.csv", data_fingerprint="cd" * 32, model="gene", model_version="1",
                      sampler=SamplerSettings(chains=2, tune=100, draws=100), seed=7)


def _judge_while_beating(tmp_path: Path, skew: float) -> None:
    settings = Settings(data_dir=tmp_path / f"data{skew:+.0f}", heartbeat_timeout_s=TIMEOUT_S)
    stop = tmp_path / f"stop{skew:+.0f}"
    with JobQueue.from_settings(settings) as judge:
        job, _ = judge.submit(_request())
        assert judge.claim("farhost:4242:w1") is not None
        beater = subprocess.Popen([sys.executable, "-c", BEATER, str(settings.data_dir), str(stop), str(skew),
                                   job.job_id], stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 3 * TIMEOUT_S  # well past the timeout, while the worker is healthy
            while time.monotonic() < deadline:
                assert judge.requeue_stale() == [], f"a healthy job was requeued (worker clock {skew:+} s)"
                assert beater.poll() is None, beater.stderr.read() if beater.stderr else ""
                time.sleep(0.25)
            assert judge.get(job.job_id).status == JobStatus.RUNNING
            assert judge.get(job.job_id).requeues == 0
        finally:
            stop.touch()
            beater.wait(timeout=30)
        assert beater.returncode == 0, beater.stderr.read() if beater.stderr else ""
        # the worker went quiet: the job goes back after the timeout on the judge's clock, not before
        stopped = time.monotonic()
        requeued = []
        while not requeued and time.monotonic() - stopped < 4 * TIMEOUT_S:
            requeued = judge.requeue_stale()
            time.sleep(0.1)
        waited = time.monotonic() - stopped
        assert [j.job_id for j in requeued] == [job.job_id] and requeued[0].status == JobStatus.QUEUED
        assert TIMEOUT_S - 0.5 <= waited <= TIMEOUT_S + 1.5, waited


def test_a_worker_clock_behind_does_not_get_its_healthy_job_requeued(tmp_path: Path) -> None:
    _judge_while_beating(tmp_path, -SKEW_S)  # i.e. the judge's clock is 31 s ahead


def test_a_worker_clock_ahead_still_loses_its_job_when_it_goes_quiet(tmp_path: Path) -> None:
    _judge_while_beating(tmp_path, +SKEW_S)


def test_a_quiet_job_whose_worker_is_alive_on_this_machine_is_never_timed_out(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", heartbeat_timeout_s=TIMEOUT_S)
    with JobQueue.from_settings(settings) as judge:
        job, _ = judge.submit(_request())
        judge.claim(f"{socket.gethostname()}:{os.getpid()}:me")  # no heartbeat ever again
        now = time.monotonic()
        assert judge.requeue_stale(now=now) == []
        assert judge.requeue_stale(now=now + 100 * TIMEOUT_S) == []
        assert judge.get(job.job_id).status == JobStatus.RUNNING
