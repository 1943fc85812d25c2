"""Submitting while the disk holding the queue is full: a clear JobError, not a raw sqlite3 error."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from speclet_core.errors import JobError
from speclet_core.queue.jobs import JobQueue
from speclet_core.records import FitRequest, SamplerSettings
from speclet_core.settings import Settings


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / f"small-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root?'})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _request(seed: int) -> FitRequest:
    return FitRequest(data_path="/data/screen.csv", data_fingerprint="ef" * 32, model="gene", model_version="1",
                      sampler=SamplerSettings(chains=2, tune=100, draws=100), seed=seed)


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


def test_submit_on_a_full_disk_says_disk_full(small_disk: Path) -> None:
    settings = Settings(data_dir=small_disk / "data")
    with JobQueue.from_settings(settings) as queue:
        queue.submit(_request(0))
        _fill(small_disk)
        with pytest.raises(JobError) as info:
            for seed in range(1, 200):  # SQLite may still have a free page or two
                queue.submit(_request(seed), "x" * 100)
        message = str(info.value)
        assert message.startswith(f"disk full: cannot write the job queue {settings.queue_dir / 'cache.db'}")
        assert "MB free" in message and "free space on that disk" in message and "submit again" in message
        assert "OperationalError" not in message
        (small_disk / "filler").unlink()
        job, _ = queue.submit(_request(500))  # space again: the queue works as before
        assert queue.get(job.job_id).status == "queued"
