"""The job queue on its own: JSON-only rows, deduplication, the claim / heartbeat / requeue / cancel
state machine, worker liveness and a 1,000-job history (no fitting, no worker processes)."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import os
import pickle
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from speclet_core.errors import JobError
from speclet_core.queue.access import LOCAL_ADMIN
from speclet_core.queue.jobs import KEY_PREFIX_JOB, MAX_REQUEUES, JobQueue, worker_status
from speclet_core.queue.records import JobRecord, JobStatus
from speclet_core.records import FitPhase, FitRequest, SamplerSettings
from speclet_core.settings import Settings

FINGERPRINT = "ab" * 32


def make_request(seed: int = 1, model: str = "gene") -> FitRequest:
    return FitRequest(
        data_path="/data/screen.csv", data_fingerprint=FINGERPRINT, model=model, model_version="1",
        sampler=SamplerSettings(chains=2, tune=100, draws=100), seed=seed,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", heartbeat_timeout_s=30.0)


@pytest.fixture
def queue(settings: Settings) -> JobQueue:
    with JobQueue.from_settings(settings) as q:
        yield q


# --------------------------------------------------------------------------- storage


def test_rows_on_disk_are_json_and_the_folder_is_private(queue: JobQueue, settings: Settings) -> None:
    job, stored = queue.submit(make_request(), "alice")
    assert not stored and job.status == JobStatus.QUEUED and job.job_id == make_request().fit_id
    assert (settings.queue_dir.stat().st_mode & 0o777) == 0o700
    with sqlite3.connect(settings.queue_dir / "cache.db") as db:
        rows = db.execute("SELECT key, raw, mode, value FROM Cache").fetchall()
    assert {r[0] for r in rows} >= {f"{KEY_PREFIX_JOB}{job.job_id}", "index:queued", "index:seq"}
    for key, raw, mode, value in rows:
        assert raw == 1 and isinstance(key, str)
        assert mode == 1, f"{key} is not stored raw"  # MODE_RAW: bytes in the row, never a pickle
        json.loads(bytes(value))
    on_disk = json.loads(bytes(next(r[3] for r in rows if r[0] == f"{KEY_PREFIX_JOB}{job.job_id}")))
    assert on_disk["label"] == "alice" and on_disk["request"]["seed"] == 1
    assert JobRecord.model_validate(on_disk) == queue.get(job.job_id)


class _Boom:
    """Unpickling this would create a marker file: proof that nothing was unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (Path(self.marker),))


def test_a_tampered_pickled_row_is_refused_not_unpickled(queue: JobQueue, settings: Settings, tmp_path: Path) -> None:
    job, _ = queue.submit(make_request(), "alice")
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Boom(str(marker)))
    with sqlite3.connect(settings.queue_dir / "cache.db") as db:
        db.execute("UPDATE Cache SET mode = 4, value = ? WHERE key = ?", (payload, f"{KEY_PREFIX_JOB}{job.job_id}"))
        db.execute(
            "INSERT INTO Cache (key, raw, store_time, expire_time, access_time, access_count, tag, size, mode, "
            "filename, value) VALUES (?, 0, 0, NULL, 0, 0, NULL, 0, 1, NULL, ?)",
            (payload, b"[]"),
        )
    with pytest.raises(JobError, match="refusing to read it"):
        queue.get(job.job_id)
    with pytest.raises(JobError, match="pickled key"):
        list(queue._cache.iterkeys())
    assert not marker.exists()


def test_a_restart_keeps_queue_and_history(settings: Settings) -> None:
    with JobQueue.from_settings(settings) as q:
        a, _ = q.submit(make_request(1), "a")
        b, _ = q.submit(make_request(2), "b")
        q.claim("host:1:w")
    with JobQueue.from_settings(settings) as q:
        assert [j.job_id for j in q.list()] == [b.job_id, a.job_id]
        assert q.get(a.job_id).status == JobStatus.RUNNING
        assert q.get(b.job_id).status == JobStatus.QUEUED


def test_bad_job_ids_are_rejected_before_any_lookup(queue: JobQueue) -> None:
    with pytest.raises(JobError, match="64-character fit id"):
        queue.get("../../etc/passwd")
    with pytest.raises(JobError, match="never submitted"):
        queue.get("0" * 64)
    assert queue.find("0" * 64) is None


# --------------------------------------------------------------------------- submit


def test_the_same_request_twice_is_one_job(queue: JobQueue) -> None:
    first, _ = queue.submit(make_request(), "alice")
    second, stored = queue.submit(make_request(), "bob")
    assert not stored
    assert second == first and second.label == "alice"
    assert queue.counts() == {"queued": 1, "running": 0}
    queue.claim("host:1:w")
    third, _ = queue.submit(make_request(), "carol")
    assert third.status == JobStatus.RUNNING and third.attempt == 1
    assert len(queue.list()) == 1


def test_read_only_refuses_to_submit(settings: Settings) -> None:
    import dataclasses

    with JobQueue.from_settings(dataclasses.replace(settings, read_only=True)) as q:
        with pytest.raises(JobError, match="SPECLET_READ_ONLY"):
            q.submit(make_request())
        assert q.list() == []


def test_resubmitting_a_failed_fit_starts_a_new_attempt_and_keeps_history(queue: JobQueue) -> None:
    job, _ = queue.submit(make_request(), "alice")
    queue.claim("host:1:w")
    queue.finish(job.job_id, "host:1:w", JobStatus.FAILED, error="boom", traceback="Traceback…")
    again, stored = queue.submit(make_request(), "alice")
    assert not stored and again.status == JobStatus.QUEUED and again.attempt == 2
    assert again.error is None and again.traceback is None
    assert [(h.attempt, h.status, h.error) for h in again.history] == [(1, JobStatus.FAILED, "boom")]
    assert queue.counts()["queued"] == 1


# --------------------------------------------------------------------------- the worker protocol


def test_claim_heartbeat_progress_finish(queue: JobQueue) -> None:
    a, _ = queue.submit(make_request(1), "a")
    b, _ = queue.submit(make_request(2), "b")
    got = queue.claim("host:1:w1")
    assert got is not None and got.job_id == a.job_id  # oldest first
    assert got.status == JobStatus.RUNNING and got.worker_id == "host:1:w1" and got.phase == FitPhase.LOADING
    assert got.started_at is not None and got.started_at >= a.submitted_at
    assert queue.claim("host:2:w2").job_id == b.job_id
    assert queue.claim("host:3:w3") is None

    assert queue.heartbeat(a.job_id, "host:2:w2") is None  # not its job
    p = queue.update_progress(a.job_id, "host:1:w1", phase="sampling", draws_done=50, draws_total=200,
                              divergences=2, eta_s=3.5)
    assert p is not None and (p.phase, p.draws_done, p.draws_total, p.divergences, p.eta_s) == (
        FitPhase.SAMPLING, 50, 200, 2, 3.5)
    assert p.progress == pytest.approx(0.25)
    assert queue.begin_saving(a.job_id, "host:1:w1")
    assert queue.get(a.job_id).phase == FitPhase.SAVING
    done = queue.finish(a.job_id, "host:1:w1", JobStatus.DONE, verdict="converged")
    assert done is not None and done.status == JobStatus.DONE and done.verdict == "converged" and done.phase is None
    assert queue.finish(a.job_id, "host:1:w1", JobStatus.FAILED) is None  # already finished: unchanged
    assert queue.get(a.job_id).status == JobStatus.DONE
    assert queue.counts() == {"queued": 0, "running": 1}
    with pytest.raises(JobError, match="must be done, failed or cancelled"):
        queue.finish(b.job_id, "host:2:w2", JobStatus.QUEUED)


def _claim_all(queue_dir: str, worker: str, out: mp.Queue) -> None:  # runs in a spawned process
    q = JobQueue(queue_dir, settings=Settings(data_dir=Path(queue_dir).parent))
    got = []
    while (job := q.claim(worker)) is not None:
        got.append(job.job_id)
    out.put((worker, got))


def test_concurrent_claims_from_processes_never_share_a_job(queue: JobQueue, settings: Settings) -> None:
    ids = {queue.submit(make_request(seed))[0].job_id for seed in range(40)}
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(str(settings.queue_dir), f"host:{i}:w", out)) for i in range(4)]
    for p in procs:
        p.start()
    claimed = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    flat = [j for _, got in claimed for j in got]
    assert sorted(flat) == sorted(ids)  # every job claimed exactly once
    for worker, got in claimed:
        for job_id in got:
            assert queue.get(job_id).worker_id == worker


def test_a_silent_worker_loses_its_job_to_the_next(queue: JobQueue, settings: Settings) -> None:
    job, _ = queue.submit(make_request(), "a")
    queue.claim("otherhost:1:w1")
    assert queue.requeue_stale() == []  # first sight of this heartbeat starts the judge's clock
    later = time.monotonic() + settings.heartbeat_timeout_s + 1
    [requeued] = queue.requeue_stale(now=later)
    assert requeued.status == JobStatus.QUEUED and requeued.requeues == 1 and requeued.worker_id is None
    taken = queue.claim("otherhost:2:w2")
    assert taken is not None and taken.job_id == job.job_id
    # the first worker wakes up: it may neither heart-beat, report progress, save nor finish
    assert queue.heartbeat(job.job_id, "otherhost:1:w1") is None
    assert queue.update_progress(job.job_id, "otherhost:1:w1", phase="sampling") is None
    assert not queue.begin_saving(job.job_id, "otherhost:1:w1")
    assert queue.finish(job.job_id, "otherhost:1:w1", JobStatus.DONE) is None
    assert queue.get(job.job_id).worker_id == "otherhost:2:w2"


def test_a_dead_worker_on_this_machine_is_noticed_at_once(queue: JobQueue) -> None:
    import socket

    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead_pid = int(proc.stdout)
    job, _ = queue.submit(make_request(), "a")
    queue.claim(f"{socket.gethostname()}:{dead_pid}:abc")
    [requeued] = queue.requeue_stale()
    assert requeued.job_id == job.job_id and requeued.status == JobStatus.QUEUED
    queue.claim(f"{socket.gethostname()}:{os.getpid()}:me")
    assert queue.requeue_stale() == []  # a live local worker keeps its job


def test_a_fit_that_keeps_killing_its_worker_fails_after_max_requeues(queue: JobQueue, settings: Settings) -> None:
    job, _ = queue.submit(make_request(), "a")
    now = time.monotonic()
    for i in range(MAX_REQUEUES + 1):
        assert queue.claim(f"otherhost:{i}:w") is not None
        assert queue.requeue_stale(now=now) == []
        now += settings.heartbeat_timeout_s + 1
        [changed] = queue.requeue_stale(now=now)
    assert changed.status == JobStatus.FAILED and changed.requeues == MAX_REQUEUES
    assert "gave up" in changed.error and "SPECLET_FIT_MEMORY_MB" in changed.error
    assert queue.counts() == {"queued": 0, "running": 0}


def test_a_stopping_worker_puts_its_job_back_at_the_front(queue: JobQueue) -> None:
    a, _ = queue.submit(make_request(1))
    b, _ = queue.submit(make_request(2))
    queue.claim("h:1:w")
    back = queue.requeue(a.job_id, "h:1:w", "the worker was stopped")
    assert back.status == JobStatus.QUEUED and back.requeues == 0
    assert queue.claim("h:2:w").job_id == a.job_id  # ahead of b
    assert queue.claim("h:2:w").job_id == b.job_id


# --------------------------------------------------------------------------- cancel


def test_cancel_a_queued_job(queue: JobQueue) -> None:
    job, _ = queue.submit(make_request())
    cancelled = queue.cancel(job.job_id, by=LOCAL_ADMIN)
    assert cancelled.status == JobStatus.CANCELLED and cancelled.finished_at is not None
    assert queue.claim("h:1:w") is None
    with pytest.raises(JobError, match="already finished"):
        queue.cancel(job.job_id, by=LOCAL_ADMIN)
    again, _ = queue.submit(make_request())
    assert again.status == JobStatus.QUEUED and again.attempt == 2


def test_cancel_a_running_job_asks_its_worker(queue: JobQueue, settings: Settings) -> None:
    job, _ = queue.submit(make_request())
    queue.claim("otherhost:1:w")
    asked = queue.cancel(job.job_id, by=LOCAL_ADMIN)
    assert asked.status == JobStatus.RUNNING and asked.cancel_requested
    assert queue.heartbeat(job.job_id, "otherhost:1:w").cancel_requested
    assert not queue.begin_saving(job.job_id, "otherhost:1:w")  # a cancelled fit is never stored
    # if the worker dies before it can stop the fit, the job ends cancelled, not requeued
    assert queue.requeue_stale() == []
    [gone] = queue.requeue_stale(now=time.monotonic() + settings.heartbeat_timeout_s + 1)
    assert gone.status == JobStatus.CANCELLED


# --------------------------------------------------------------------------- history and liveness


def test_a_history_of_1000_jobs(settings: Settings) -> None:
    queue = JobQueue.from_settings(dataclasses.replace(settings, max_jobs=0))  # 400 stay queued: past the cap
    ids = [queue.submit(make_request(seed), f"user{seed % 7}")[0].job_id for seed in range(1000)]
    for job_id in ids[:600]:
        assert queue.claim("h:1:w").job_id == job_id
        queue.finish(job_id, "h:1:w", JobStatus.DONE if int(job_id, 16) % 2 else JobStatus.FAILED, error="x")
    queue.claim("h:1:w")
    newest = queue.list(limit=25)
    assert [j.job_id for j in newest] == ids[::-1][:25]
    assert len(queue.list(limit=None)) == 1000
    assert [j.job_id for j in queue.list(status="running")] == [ids[600]]
    assert len(queue.list(status="queued", limit=None)) == 399
    failed = queue.list(status=JobStatus.FAILED, limit=None)
    done = queue.list(status=[JobStatus.DONE], limit=None)
    assert len(failed) + len(done) == 600 and all(j.status == JobStatus.FAILED for j in failed)
    assert queue.counts() == {"queued": 399, "running": 1}
    t = time.perf_counter()
    queue.get(ids[0])
    queue.list(limit=25)
    queue.claim("h:2:w")
    assert time.perf_counter() - t < 1.0  # generous: the benchmark measures the real numbers


def test_worker_status_sees_live_and_silent_workers(settings: Settings) -> None:
    assert worker_status(settings)["alive"] is False
    assert worker_status(settings)["last_seen_s"] is None
    with JobQueue.from_settings(settings) as q:
        q.beat_worker("h:1:w", {"pid": 1, "concurrency": 1, "running": []})
    status = worker_status(settings)
    assert status["alive"] is True and status["last_seen_s"] < 5
    assert [w["worker_id"] for w in status["workers"]] == ["h:1:w"]
    assert status["start_command"] == "python -m speclet_core worker"
    with JobQueue.from_settings(settings) as q:
        workers = q._cache.get("workers")
        workers["h:1:w"]["last_seen"] = time.time() - settings.heartbeat_timeout_s - 5
        q._cache.set("workers", workers)
    status = worker_status(settings)
    assert status["alive"] is False and status["last_seen_s"] > settings.heartbeat_timeout_s
    with JobQueue.from_settings(settings) as q:
        q.remove_worker("h:1:w")
    assert worker_status(settings)["workers"] == []


# --------------------------------------------------------------------------- with the store


def _store_fit(settings: Settings, request: FitRequest) -> None:
    import arviz as az
    import numpy as np

    from model_store import ModelStore

    genes = ["BRAF", "KRAS", "TP53"]
    idata = az.from_dict(
        posterior={"gene_effect": np.random.default_rng(0).normal(size=(2, 20, 3))},
        coords={"gene": genes}, dims={"gene_effect": ["gene"]},
    )
    roles = {"gene_effect": "gene_effect", "gene_lineage_effect": None, "gene_cell_line_effect": None,
             "hyperparameters": [], "covariate_slopes": []}
    ModelStore(settings.fits_dir).put(request.fit_id, idata, request=request.model_dump(mode="json"), roles=roles,
                                      diagnostics={"verdict": "converged"}, timings={"total_s": 1.0})


def test_a_stored_fit_is_returned_at_once_and_a_deleted_one_is_fitted_again(
    queue: JobQueue, settings: Settings
) -> None:
    from model_store import ModelStore

    request = make_request(seed=5)
    _store_fit(settings, request)
    job, stored = queue.submit(request, "alice")
    assert stored and job.status == JobStatus.DONE and job.fit_id == request.fit_id
    assert queue.counts() == {"queued": 0, "running": 0}
    again, stored_again = queue.submit(request, "bob")
    assert stored_again and again == job  # the same record, not a new one per visit
    ModelStore(settings.fits_dir).delete(request.fit_id)
    refit, stored_refit = queue.submit(request, "carol")
    assert not stored_refit and refit.status == JobStatus.QUEUED and refit.attempt == 2
    assert [h.status for h in refit.history] == [JobStatus.DONE]
