"""A fit process that crashes while saving on a (nearly) full disk is recorded as 'disk full', not a crash."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from speclet_core.queue.jobs import JobQueue
from speclet_core.queue.records import JobStatus
from speclet_core.queue.worker import Worker, _LocalFit, _Running
from speclet_core.records import FitRequest, SamplerSettings
from speclet_core.settings import Settings

SEGFAULT = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"  # as h5py does on a full disk


def _crash_while_saving(data_dir: Path) -> str:
    settings = Settings(data_dir=data_dir)
    worker = Worker(settings)
    with JobQueue.from_settings(settings) as queue:
        request = FitRequest(data_path="/data/screen.csv", data_fingerprint="aa" * 32, model="gene",
                             model_version="1", sampler=SamplerSettings(chains=2, tune=100, draws=100), seed=1)
        job, _ = queue.submit(request)
        job = queue.claim(worker.worker_id)
        assert job is not None and queue.begin_saving(job.job_id, worker.worker_id)
        proc = subprocess.Popen([sys.executable, "-c", SEGFAULT], start_new_session=True)
        assert proc.wait(timeout=30) < 0
        tmp_dir = data_dir / "tmp" / job.job_id / "run"
        entry = _Running(job=job, fit=_LocalFit(proc), slot=0, started=time.monotonic(), log_path=data_dir / "fit.log",
                         tmp_dir=tmp_dir)
        worker._after_exit(entry, proc.returncode)
        ended = queue.get(job.job_id)
    worker.queue.close()
    assert ended.status == JobStatus.FAILED
    return ended.error or ""


def test_a_crash_while_saving_on_a_full_disk_is_recorded_as_disk_full(tmp_path: Path) -> None:
    mount_point = tmp_path / f"small-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root?'})")
    try:
        error = _crash_while_saving(mount_point / "data")
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
    assert error.startswith(f"disk full: not enough free disk in {mount_point / 'data' / 'fits'}: "), error
    assert "MB free" in error and "SIGSEGV" in error and "while writing the fit" in error


def test_the_same_crash_with_room_on_the_disk_is_reported_as_a_crash(tmp_path: Path) -> None:
    import shutil

    if shutil.disk_usage(tmp_path).free < 1 << 30:
        pytest.skip("needs a disk with over 1 GB free")
    error = _crash_while_saving(tmp_path / "data")
    assert error.startswith("the fit process was killed by SIGSEGV") and "disk full" not in error
