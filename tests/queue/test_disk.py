"""The queue's SQLite file damaged: a clear JobError on opening and on later reads; moved aside, kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from speclet_core.errors import JobError
from speclet_core.queue.disk import move_aside_if_damaged, queue_damage, queue_file
from speclet_core.queue.jobs import JobQueue
from speclet_core.settings import Settings


def _queue(data_dir: Path) -> JobQueue:
    return JobQueue.from_settings(Settings(data_dir=data_dir))


def test_a_file_that_is_not_a_database_is_named_with_the_fix(tmp_path: Path) -> None:
    path = queue_file(tmp_path / "queue")
    path.parent.mkdir()
    path.write_bytes(b"garbage" * 1000)
    assert queue_damage(path.parent) == "file is not a database"
    with pytest.raises(JobError) as err:
        _queue(tmp_path)
    text = str(err.value)
    assert str(path) in text and "damaged (file is not a database)" in text
    assert "Stored fits are not affected" in text and f"mv {path} {path}.damaged" in text and "serve" in text


def test_damage_inside_the_file_is_reported_on_reading_and_moved_aside(tmp_path: Path) -> None:
    with _queue(tmp_path) as queue:
        for i in range(300):
            queue._cache.set(f"filler:{i}", "x" * 2000)
    path = queue_file(tmp_path / "queue")
    data = bytearray(path.read_bytes())
    data[8192:48192] = os.urandom(40000)  # pages in the middle of the file, not its header
    path.write_bytes(bytes(data))
    reason = queue_damage(path.parent)
    assert reason is not None and "problem(s) found by SQLite's check" in reason
    with pytest.raises(JobError, match="the job queue file is damaged"):
        with _queue(tmp_path) as queue:
            [queue._cache.get(f"filler:{i}") for i in range(300)]
    moved = move_aside_if_damaged(path.parent)
    assert moved is not None and moved[0].read_bytes() == bytes(data) and not path.exists()
    with _queue(tmp_path) as fresh:  # an empty, working queue in its place
        assert fresh.list() == [] and not fresh.has_jobs()
    assert queue_damage(path.parent) is None and move_aside_if_damaged(path.parent) is None


def test_a_sound_or_missing_queue_is_left_alone(tmp_path: Path) -> None:
    assert move_aside_if_damaged(tmp_path / "queue") is None
    with _queue(tmp_path) as queue:
        assert queue.list() == []
    assert queue_damage(tmp_path / "queue") is None and move_aside_if_damaged(tmp_path / "queue") is None
    assert queue_file(tmp_path / "queue").is_file()
