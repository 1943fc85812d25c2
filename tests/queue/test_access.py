"""Users kept apart, on a real queue database: who may cancel, read-only servers, the caps on queued jobs,
identities from a proxy header, rows written before submitters existed, and the CLI as the local administrator."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from speclet_core.errors import JobError, SettingsError
from speclet_core.queue.access import LOCAL_ADMIN, Submitter, identify_submitter
from speclet_core.queue.jobs import KEY_PREFIX_JOB, JobQueue
from speclet_core.queue.records import JobRecord, JobStatus
from speclet_core.records import FitRequest, SamplerSettings
from speclet_core.settings import PROJECT_ROOT, Settings

ALICE = Submitter(name="alice")
BOB = Submitter(name="bob")
ADMIN = Submitter(name="carol", admin=True)


def make_request(seed: int = 1) -> FitRequest:
    return FitRequest(
        data_path="/data/screen.csv", data_fingerprint="cd" * 32, model="gene", model_version="1",
        sampler=SamplerSettings(chains=2, tune=100, draws=100), seed=seed,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", max_jobs=5, max_jobs_per_user=2)


@pytest.fixture
def queue(settings: Settings) -> JobQueue:
    with JobQueue.from_settings(settings) as q:
        yield q


# --------------------------------------------------------------------------- cancel: only the submitter or an admin


def test_only_the_submitter_or_an_admin_may_cancel(queue: JobQueue) -> None:
    a, _ = queue.submit(make_request(1), "dashboard", submitter=ALICE)
    b, _ = queue.submit(make_request(2), "dashboard", submitter=ALICE)
    assert queue.get(a.job_id).submitter == "alice"
    with pytest.raises(JobError, match=r"submitted by alice, not by you \(bob\): only its submitter or an administrator"):
        queue.cancel(a.job_id, by=BOB)
    assert queue.get(a.job_id).status == JobStatus.QUEUED  # untouched
    assert not queue.may_cancel(a, BOB) and queue.may_cancel(a, ALICE) and queue.may_cancel(a, ADMIN)
    assert queue.cancel(a.job_id, by=ALICE).status == JobStatus.CANCELLED
    # a running job: bob is refused, the admin's request reaches the worker
    queue.claim("otherhost:1:w")
    assert queue.get(b.job_id).status == JobStatus.RUNNING
    with pytest.raises(JobError, match="submitted by alice"):
        queue.cancel(b.job_id, by=BOB)
    assert not queue.get(b.job_id).cancel_requested
    assert queue.cancel(b.job_id, by=ADMIN).cancel_requested
    assert queue.heartbeat(b.job_id, "otherhost:1:w").cancel_requested


def test_a_duplicate_submission_stays_its_first_submitters(queue: JobQueue) -> None:
    first, _ = queue.submit(make_request(), submitter=ALICE)
    again, _ = queue.submit(make_request(), submitter=BOB)
    assert again.job_id == first.job_id and again.submitter == "alice"
    with pytest.raises(JobError, match="submitted by alice"):
        queue.cancel(first.job_id, by=BOB)


# --------------------------------------------------------------------------- read-only: the core refuses


def test_a_read_only_server_refuses_submit_and_cancel(settings: Settings) -> None:
    with JobQueue.from_settings(settings) as q:
        job, _ = q.submit(make_request(), submitter=ALICE)
    with JobQueue.from_settings(dataclasses.replace(settings, read_only=True)) as ro:
        for who in (ALICE, ADMIN, LOCAL_ADMIN):  # not even the submitter or an administrator
            with pytest.raises(JobError, match=r"read-only \(SPECLET_READ_ONLY is set\): it cancels no fits"):
                ro.cancel(job.job_id, by=who)
            assert not ro.may_cancel(ro.get(job.job_id), who)
        with pytest.raises(JobError, match=r"read-only \(SPECLET_READ_ONLY is set\).*starts no new"):
            ro.submit(make_request(2), submitter=ADMIN)
        assert [(j.job_id, j.status) for j in ro.list()] == [(job.job_id, JobStatus.QUEUED)]


# --------------------------------------------------------------------------- caps


def test_the_cap_per_submitter_names_itself_and_a_finished_job_frees_a_slot(queue: JobQueue) -> None:
    a, _ = queue.submit(make_request(1), submitter=ALICE)
    queue.submit(make_request(2), submitter=ALICE)
    with pytest.raises(JobError, match=r"you \(alice\) already have 2 fits queued or running "
                                       r"\(SPECLET_MAX_JOBS_PER_USER = 2\); wait until one finishes or cancel one"):
        queue.submit(make_request(3), submitter=ALICE)
    assert queue.find(make_request(3).fit_id) is None
    # another submitter is not held up; the same request again takes no slot
    assert queue.submit(make_request(3), submitter=BOB)[0].status == JobStatus.QUEUED
    assert queue.submit(make_request(1), submitter=ALICE)[0].job_id == a.job_id
    # running still counts; finishing frees the slot
    claimed = queue.claim("h:1:w")
    assert claimed is not None and claimed.job_id == a.job_id
    with pytest.raises(JobError, match="SPECLET_MAX_JOBS_PER_USER"):
        queue.submit(make_request(3 + 1), submitter=ALICE)
    queue.finish(a.job_id, "h:1:w", JobStatus.DONE)
    assert queue.submit(make_request(4), submitter=ALICE)[0].status == JobStatus.QUEUED
    # a cancelled job frees it too
    queue.cancel(make_request(4).fit_id, by=ALICE)
    assert queue.submit(make_request(5), submitter=ALICE)[0].status == JobStatus.QUEUED
    # administrators are exempt from the per-submitter cap
    for seed in (6, 7):
        queue.submit(make_request(seed), submitter=ADMIN)
    assert queue.counts() == {"queued": 5, "running": 0}


def test_the_total_cap_holds_for_everyone(queue: JobQueue) -> None:
    for seed, who in enumerate([ALICE, ALICE, BOB, BOB, ADMIN]):
        queue.submit(make_request(seed), submitter=who)
    for who in (Submitter(name="dave"), ADMIN, LOCAL_ADMIN):
        with pytest.raises(JobError, match=r"the queue is full: 5 fits are queued or running on this server "
                                           r"\(SPECLET_MAX_JOBS = 5\); wait until some finish"):
            queue.submit(make_request(10), submitter=who)
    queue.cancel(make_request(0).fit_id, by=ALICE)
    assert queue.submit(make_request(10), submitter=Submitter(name="dave"))[0].status == JobStatus.QUEUED


def test_zero_means_no_cap(settings: Settings) -> None:
    with JobQueue.from_settings(dataclasses.replace(settings, max_jobs=0, max_jobs_per_user=0)) as q:
        for seed in range(12):
            q.submit(make_request(seed), submitter=ALICE)
        assert q.counts()["queued"] == 12


# --------------------------------------------------------------------------- rows from before submitters


def test_a_row_written_before_submitters_existed_loads_and_only_an_admin_cancels_it(
    queue: JobQueue, settings: Settings
) -> None:
    request = make_request(9)
    old = {  # a queued job exactly as the previous version wrote it: no "submitter" key
        "job_id": request.fit_id, "request": request.model_dump(mode="json"), "label": "dashboard",
        "status": "queued", "phase": None, "draws_done": 0, "draws_total": 0, "divergences": 0, "eta_s": None,
        "submitted_at": 1.7e9, "started_at": None, "finished_at": None, "heartbeat_at": None, "worker_id": None,
        "process_id": None, "error": None, "traceback": None, "verdict": None, "attempt": 2, "requeues": 0,
        "cancel_requested": False, "seq": 1,
        "history": [{"attempt": 1, "status": "failed", "error": "boom", "submitted_at": 1.6e9, "started_at": None,
                     "finished_at": None, "worker_id": None}],
    }
    assert "submitter" not in JobRecord.model_validate(old).model_dump(exclude_defaults=True)
    queue._cache.set(KEY_PREFIX_JOB + request.fit_id, old)
    queue._cache.set("index:queued", [request.fit_id])
    queue._cache.set("index:seq", 1)
    queue._cache.set(f"order:{1:012d}", request.fit_id)
    with JobQueue.from_settings(settings) as fresh:  # a new process opening the same folder
        job = fresh.get(request.fit_id)
        assert job.submitter == "" and job.history[0].submitter == "" and job.label == "dashboard"
        assert [j.job_id for j in fresh.list()] == [request.fit_id]
        with pytest.raises(JobError, match="submitted by an earlier speclet version"):
            fresh.cancel(job.job_id, by=ALICE)
        # it counts against the total cap, under nobody's name
        for seed, who in ((1, ALICE), (2, ALICE), (3, BOB), (4, BOB)):
            fresh.submit(make_request(seed), submitter=who)
        with pytest.raises(JobError, match=r"5 fits are queued or running"):
            fresh.submit(make_request(5), submitter=Submitter(name="dave"))
        assert fresh.cancel(job.job_id, by=ADMIN).status == JobStatus.CANCELLED


# --------------------------------------------------------------------------- identities


def test_identity_from_a_proxy_header_or_the_session(tmp_path: Path) -> None:
    plain = Settings(data_dir=tmp_path)
    assert identify_submitter({"X-Forwarded-User": "alice"}, "session-1234", plain) == Submitter(name="session-1234")
    proxied = Settings.from_env({"SPECLET_DATA_DIR": str(tmp_path), "SPECLET_USER_HEADER": "X-Forwarded-User",
                                 "SPECLET_ADMIN_USERS": "carol, dave"})
    assert proxied.admin_users == ("carol", "dave")
    assert identify_submitter({"x-forwarded-user": " alice "}, "session-1", proxied) == Submitter(name="alice")
    assert identify_submitter({"X-Forwarded-User": "carol"}, "session-1", proxied) == ADMIN
    # no header (a request that bypassed the proxy), or an empty one: an anonymous session, never an admin
    assert identify_submitter({}, "session-1", proxied) == Submitter(name="session-1")
    assert identify_submitter({"X-Forwarded-User": "  "}, "carol", proxied) == Submitter(name="carol", admin=False)
    with pytest.raises(SettingsError, match=r"SPECLET_USER_HEADER='X Forwarded': expected an HTTP header name"):
        Settings.from_env({"SPECLET_USER_HEADER": "X Forwarded"})


# --------------------------------------------------------------------------- the CLI is the local administrator


def _cli(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "SPECLET_DATA_DIR": str(data_dir), "PYTHONPATH": str(PROJECT_ROOT), **env}
    return subprocess.run([sys.executable, "-m", "speclet_core", *args], env=environ, capture_output=True,
                          text=True, timeout=120)


def test_the_cli_cancels_anyones_job_but_not_on_a_read_only_server(settings: Settings) -> None:
    with JobQueue.from_settings(settings) as q:
        a, _ = q.submit(make_request(1), "dashboard", submitter=ALICE)
        b, _ = q.submit(make_request(2), "dashboard", submitter=BOB)
    listed = _cli(settings.data_dir, "jobs", "list")
    assert listed.returncode == 0 and "[alice]" in listed.stdout and "[bob]" in listed.stdout
    ro = _cli(settings.data_dir, "jobs", "cancel", a.job_id, SPECLET_READ_ONLY="true")
    assert ro.returncode == 2 and "error: this speclet server is read-only" in ro.stderr, ro.stderr
    assert "Traceback" not in ro.stderr
    done = _cli(settings.data_dir, "jobs", "cancel", a.job_id)
    assert done.returncode == 0 and "cancelled" in done.stdout, done.stderr
    with JobQueue.from_settings(settings) as q:
        assert q.get(a.job_id).status == JobStatus.CANCELLED and q.get(b.job_id).status == JobStatus.QUEUED
