"""The job queue: fit requests waiting for, running in, or finished by a worker.

The queue lives in ``SPECLET_DATA_DIR/queue`` as a diskcache (SQLite) database whose
rows are JSON only (``speclet_core.queue.disk``), so a shared server never unpickles
what another user wrote. Every state change is a
read-modify-write inside ``cache.transact()`` (SQLite ``BEGIN IMMEDIATE``), so two
workers can never claim one job.

One job per fit id: the job id *is* the fit id. Submitting a request whose fit is
stored returns a ``done`` job at once; one that is queued or running returns that job;
one that failed or was cancelled starts a new attempt (``attempt`` + 1) and keeps the
earlier attempts in ``history``.

Keys: ``job:<id>`` holds a ``JobRecord``; ``index:queued`` (FIFO) and ``index:running``
list the active ids; each submission takes the next number of ``index:seq`` and writes
``order:<n>`` → job id (a job's record keeps its latest ``seq``), so a submission writes a
few small rows whatever the history's length, and listing the newest jobs reads only them;
``workers`` maps worker id → heartbeat.

    queued ──claim──▶ running ──finish──▶ done | failed | cancelled
      ▲                  │ heartbeat unchanged > SPECLET_HEARTBEAT_TIMEOUT_S (judge's clock), or stopped
      └──── requeue ◀────┘ (failed after MAX_REQUEUES such restarts)
"""

from __future__ import annotations

import builtins
import os
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from model_store.ids import FIT_ID_RE
from speclet_core.errors import JobError
from speclet_core.queue.access import LOCAL_ADMIN, READ_ONLY_CANCEL, Submitter, cancel_refusal, cap_refusal, may_cancel
from speclet_core.queue.disk import TAMPER_FIX, open_cache
from speclet_core.queue.records import ACTIVE_STATUSES, Executor, JobRecord, JobStatus, SubmitOutcome
from speclet_core.records import FitPhase, FitRequest
from speclet_core.settings import Settings

QUEUE_SCHEMA_VERSION = 1
MAX_REQUEUES = 3  # a fit that keeps killing its worker (e.g. the machine runs out of memory) fails after this
LABEL_MAX = 120
ERROR_MAX = 2_000
TRACEBACK_MAX = 50_000

KEY_PREFIX_JOB = "job:"
KEY_QUEUED = "index:queued"
KEY_RUNNING = "index:running"
KEY_SEQ = "index:seq"
KEY_PREFIX_ORDER = "order:"
KEY_WORKERS = "workers"
KEY_SCHEMA = "schema"

# --------------------------------------------------------------------------- worker ids


def make_worker_id() -> str:
    """``host:pid:random``, unique per worker process start."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


def _worker_host_pid(worker_id: str | None) -> tuple[str, int] | None:
    if not worker_id:
        return None
    parts = worker_id.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# --------------------------------------------------------------------------- the queue


class JobQueue:
    """Submit, watch and cancel fits; the worker's claim / heartbeat / finish protocol.

    Parameters
    ----------
    queue_dir
        Folder of the queue database (``Settings.queue_dir``).
    fits_dir
        The model store's root, to return stored fits at once; defaults to ``queue_dir/../fits``.
    settings
        Read-only mode and heartbeat timeout (read once at the entry point and passed down).
    """

    def __init__(self, queue_dir: Path | str, *, settings: Settings, fits_dir: Path | str | None = None):
        self.queue_dir = Path(queue_dir)
        self.fits_dir = Path(fits_dir) if fits_dir is not None else self.queue_dir.parent / "fits"
        self.settings = settings
        self._cache = open_cache(self.queue_dir)
        # job id → (the heartbeat as last read, this process's monotonic time it was first read so): staleness is
        # judged on this clock alone, never by comparing the worker's wall clock (maybe another host's) with ours
        self._beats_seen: dict[str, tuple[tuple[str | None, float | None], float]] = {}
        if self._cache.get(KEY_SCHEMA) is None:
            self._cache.add(KEY_SCHEMA, QUEUE_SCHEMA_VERSION)

    @classmethod
    def from_settings(cls, settings: Settings) -> JobQueue:
        return cls(settings.queue_dir, fits_dir=settings.fits_dir, settings=settings)

    def close(self) -> None:
        self._cache.close()

    def __enter__(self) -> JobQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- low level

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._cache.transact(retry=True):
            yield

    def _load(self, job_id: str) -> JobRecord | None:
        raw = self._cache.get(KEY_PREFIX_JOB + job_id)
        if raw is None:
            return None
        try:
            return JobRecord.model_validate(raw)
        except ValidationError as exc:
            raise JobError(
                f"{self.queue_dir}: job {job_id} is not a valid job record ({exc.error_count()} problems, first: "
                f"{exc.errors()[0]['msg']}); it was written by another speclet version or damaged. {TAMPER_FIX}"
            ) from None

    def _save(self, job: JobRecord) -> None:
        self._cache.set(KEY_PREFIX_JOB + job.job_id, job.model_dump(mode="json"))

    def _ids(self, key: str) -> builtins.list[str]:
        return list(self._cache.get(key) or [])

    def _set_ids(self, key: str, ids: builtins.list[str]) -> None:
        self._cache.set(key, ids)

    def _remove_id(self, key: str, job_id: str) -> None:
        ids = self._ids(key)
        if job_id in ids:
            ids.remove(job_id)
            self._set_ids(key, ids)

    def _append_id(self, key: str, job_id: str, *, front: bool = False) -> None:
        ids = [i for i in self._ids(key) if i != job_id]
        if front:
            ids.insert(0, job_id)
        else:
            ids.append(job_id)
        self._set_ids(key, ids)

    def _number(self, job: JobRecord) -> JobRecord:
        """Give a (re)submitted job the next submission number (inside a transaction)."""
        seq = int(self._cache.get(KEY_SEQ) or 0) + 1
        self._cache.set(KEY_SEQ, seq)
        self._cache.set(f"{KEY_PREFIX_ORDER}{seq:012d}", job.job_id)
        return job.model_copy(update={"seq": seq})

    def _newest_first(self) -> Iterator[JobRecord]:
        """Every job once, most recently submitted first (skips the entries of earlier submissions)."""
        for n in range(int(self._cache.get(KEY_SEQ) or 0), 0, -1):
            job_id = self._cache.get(f"{KEY_PREFIX_ORDER}{n:012d}")
            job = self._load(job_id) if job_id is not None else None
            if job is not None and job.seq == n:
                yield job

    def has_jobs(self) -> bool:
        """Whether anything was ever submitted to this queue."""
        return bool(self._cache.get(KEY_SEQ))

    def _is_stored(self, fit_id: str) -> bool:
        from model_store import ModelStore

        return bool(ModelStore(self.fits_dir).exists(fit_id))

    @staticmethod
    def _check_id(job_id: str) -> str:
        if not isinstance(job_id, str) or not FIT_ID_RE.fullmatch(job_id):
            raise JobError(f"invalid job id {str(job_id)[:80]!r}: expected the 64-character fit id (hexadecimal)")
        return job_id

    # ---------------------------------------------------------------- people and pages

    def submit(
        self, request: FitRequest, label: str = "", *, submitter: Submitter = LOCAL_ADMIN
    ) -> tuple[JobRecord, bool]:
        """Queue a fit, unless it is stored or already queued / running.

        ``submitter`` owns a new job (only it or an administrator may cancel it) and counts against
        the caps (``speclet_core.queue.access``); the pages always pass the browser session's, and
        in-process callers default to the local administrator. Finding an identical job queued or
        running returns it, whoever submitted it, and takes no slot.

        Returns
        -------
        (job, already_stored)
            ``already_stored`` is True when the fit is in the store (``job.status`` is done).
        """
        outcome = self.submit_request(request, label, submitter=submitter)
        return outcome.job, outcome.already_stored

    def submit_request(
        self, request: FitRequest, label: str = "", *, submitter: Submitter = LOCAL_ADMIN,
        estimate_s: float | None = None, estimate: Any = None,
    ) -> SubmitOutcome:
        """As ``submit``, also saying whether this call queued the job (``created``) or found it.

        ``estimate``: the fit's ``CostEstimate`` (``speclet_core.fitting.cost``; or ``estimate_s``, its seconds
        alone), kept with a new job for its ETA before the sampler counts draws and after it stops.
        """
        parts = _estimate_parts(estimate)
        if parts is not None and estimate_s is None:
            estimate_s = parts["total_s"]
        if self.settings.read_only:
            raise JobError(
                "this speclet server is read-only (SPECLET_READ_ONLY is set): it shows stored fits but starts no new "
                "ones; unset SPECLET_READ_ONLY to run fits"
            )
        if not isinstance(request, FitRequest):
            raise JobError(
                "submit expects a FitRequest (from speclet_core.fitting.request.prepare_request), "
                f"got {type(request).__name__}"
            )
        label = " ".join(str(label).split())[:LABEL_MAX]
        fit_id = request.fit_id
        stored = self._is_stored(fit_id)
        now = time.time()
        with self._transaction():
            job = self._load(fit_id)
            if stored:
                if job is not None and (job.status == JobStatus.DONE or job.active):
                    return SubmitOutcome(job, True, False)
                # Stored by another route (another attempt, an imported store): record it as done.
                history = (*job.history, job.as_attempt()) if job is not None else ()
                done = JobRecord(
                    job_id=fit_id, request=request, label=label, submitter=submitter.name, status=JobStatus.DONE,
                    submitted_at=now,
                    finished_at=now, attempt=job.attempt + 1 if job else 1, history=history,
                )
                done = self._number(done)
                self._save(done)
                return SubmitOutcome(done, True, False)
            if job is not None and job.active:
                return SubmitOutcome(job, False, False)
            refusal = cap_refusal(submitter, self._active_submitters(), self.settings)
            if refusal is not None:
                raise JobError(refusal)
            history = (*job.history, job.as_attempt()) if job is not None else ()
            new = JobRecord(
                job_id=fit_id, request=request, label=label, submitter=submitter.name, submitted_at=now,
                attempt=job.attempt + 1 if job else 1, history=history,
                estimate_s=None if estimate_s is None else max(0.0, float(estimate_s)), estimate_parts=parts,
            )
            new = self._number(new)
            self._save(new)
            self._append_id(KEY_QUEUED, fit_id)
            return SubmitOutcome(new, False, True)

    def get(self, job_id: str) -> JobRecord:
        """The job with this id; ``JobError`` if there is none."""
        job = self._load(self._check_id(job_id))
        if job is None:
            raise JobError(f"no job {job_id} in {self.queue_dir}; it was never submitted here (check SPECLET_DATA_DIR)")
        return job

    def find(self, job_id: str) -> JobRecord | None:
        """The job with this id, or None."""
        return self._load(self._check_id(job_id))

    def list(
        self, status: JobStatus | str | Iterable[JobStatus | str] | None = None, limit: int | None = 100
    ) -> builtins.list[JobRecord]:
        """Jobs, most recently submitted first, optionally only those with the given status(es)."""
        if status is None:
            wanted = None
        elif isinstance(status, str):
            wanted = {JobStatus(status)}
        else:
            wanted = {JobStatus(s) for s in status}
        out: builtins.list[JobRecord] = []
        if wanted is not None and wanted <= ACTIVE_STATUSES:  # the small active indexes suffice
            for key, st in ((KEY_QUEUED, JobStatus.QUEUED), (KEY_RUNNING, JobStatus.RUNNING)):
                if st in wanted:
                    out += [j for j in map(self._load, self._ids(key)) if j is not None and j.status == st]
            out.sort(key=lambda j: j.seq, reverse=True)
            return out[:limit] if limit is not None else out
        for job in self._newest_first():
            if wanted is None or job.status in wanted:
                out.append(job)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def counts(self) -> dict[str, int]:
        """Number of jobs queued and running (cheap: reads the two indexes only)."""
        return {"queued": len(self._ids(KEY_QUEUED)), "running": len(self._ids(KEY_RUNNING))}

    def _active_submitters(self) -> builtins.list[str]:
        """The submitter of every queued or running job (raw rows: no validation of whole records)."""
        owners = []
        for job_id in dict.fromkeys([*self._ids(KEY_QUEUED), *self._ids(KEY_RUNNING)]):
            raw = self._cache.get(KEY_PREFIX_JOB + job_id)
            if isinstance(raw, dict) and raw.get("status") in ACTIVE_STATUSES:
                owners.append(str(raw.get("submitter") or ""))
        return owners

    def may_cancel(self, job: JobRecord, by: Submitter) -> bool:
        """Whether ``by`` may cancel ``job`` here (what ``cancel`` checks; the pages offer Cancel only then)."""
        return may_cancel(job, by, self.settings)

    def cancel(self, job_id: str, *, by: Submitter) -> JobRecord:
        """Cancel a queued job now, or ask the worker to stop a running one (it stops within seconds).

        Only the job's submitter or an administrator may, and never on a read-only server
        (``speclet_core.queue.access.cancel_refusal`` says why not, in a ``JobError``).
        """
        self._check_id(job_id)
        if self.settings.read_only:  # before touching the database: a read-only server writes nothing
            raise JobError(READ_ONLY_CANCEL)
        with self._transaction():
            job = self._load(job_id)
            if job is None:
                raise JobError(f"no job {job_id} to cancel in {self.queue_dir}")
            refusal = cancel_refusal(job, by, self.settings)
            if refusal is not None:
                raise JobError(refusal)
            if job.status == JobStatus.QUEUED:
                job = job.model_copy(update={
                    "status": JobStatus.CANCELLED, "finished_at": time.time(), "error": "cancelled before it started",
                })
                self._save(job)
                self._remove_id(KEY_QUEUED, job_id)
                return job
            if not job.cancel_requested:
                job = job.model_copy(update={"cancel_requested": True})
                self._save(job)
            return job

    # ---------------------------------------------------------------- workers

    def claim(self, worker_id: str, executor: Executor = Executor.LOCAL) -> JobRecord | None:
        """Take the oldest queued job for ``worker_id`` (running from now on, on ``executor``), or None."""
        if not self._ids(KEY_QUEUED):  # cheap check without taking the write lock
            return None
        with self._transaction():
            queued = self._ids(KEY_QUEUED)
            claimed: JobRecord | None = None
            while queued and claimed is None:
                job_id = queued.pop(0)
                job = self._load(job_id)
                if job is None or job.status != JobStatus.QUEUED:
                    continue
                now = time.time()
                claimed = job.model_copy(update={
                    "status": JobStatus.RUNNING, "worker_id": worker_id, "started_at": now, "heartbeat_at": now,
                    "process_id": None, "executor": Executor(executor), "host": None,
                    "phase": FitPhase.LOADING, "draws_done": 0, "draws_total": 0, "divergences": 0, "eta_s": None,
                    "phase_started_at": now,
                })
                self._save(claimed)
                self._append_id(KEY_RUNNING, job_id)
            self._set_ids(KEY_QUEUED, queued)
            return claimed

    def _update_running(self, job_id: str, worker_id: str, **changes: Any) -> JobRecord | None:
        with self._transaction():
            job = self._load(job_id)
            if job is None or job.status != JobStatus.RUNNING or job.worker_id != worker_id:
                return None
            now = time.time()
            if "phase" in changes and changes["phase"] != job.phase:  # a new phase: its clock starts now
                changes["phase_started_at"] = now
            job = job.model_copy(update={"heartbeat_at": now, **changes})
            self._save(job)
            return job

    def heartbeat(self, job_id: str, worker_id: str) -> JobRecord | None:
        """Say the worker still runs this job; None means the job is no longer this worker's (stop the fit)."""
        return self._update_running(job_id, worker_id)

    def attach_process(self, job_id: str, worker_id: str, pid: int, host: str | None = None) -> JobRecord | None:
        """The fit's own process says it has started on ``host`` (also a heartbeat); None if the job is no longer
        this worker's."""
        changes: dict[str, Any] = {"process_id": int(pid)}
        if host is not None:
            changes["host"] = str(host)[:LABEL_MAX]
        return self._update_running(job_id, worker_id, **changes)

    def update_progress(
        self,
        job_id: str,
        worker_id: str,
        *,
        phase: FitPhase | str | None,
        draws_done: int = 0,
        draws_total: int = 0,
        divergences: int = 0,
        eta_s: float | None = None,
    ) -> JobRecord | None:
        """Record a running fit's progress (also a heartbeat); None if the job is no longer this worker's."""
        return self._update_running(
            job_id, worker_id,
            phase=FitPhase(phase) if phase is not None else None,
            draws_done=max(0, int(draws_done)), draws_total=max(0, int(draws_total)),
            divergences=max(0, int(divergences)), eta_s=None if eta_s is None else max(0.0, float(eta_s)),
        )

    def begin_saving(self, job_id: str, worker_id: str) -> bool:
        """Whether the fit may now be written to the store (False if cancelled or no longer this worker's)."""
        with self._transaction():
            job = self._load(job_id)
            if job is None or job.status != JobStatus.RUNNING or job.worker_id != worker_id or job.cancel_requested:
                return False
            now = time.time()
            started = job.phase_started_at if job.phase == FitPhase.SAVING else now  # the engine may be in it already
            self._save(job.model_copy(update={
                "phase": FitPhase.SAVING, "heartbeat_at": now, "eta_s": None, "phase_started_at": started,
            }))
            return True

    def finish(
        self,
        job_id: str,
        worker_id: str,
        status: JobStatus,
        *,
        error: str | None = None,
        traceback: str | None = None,
        verdict: str | None = None,
    ) -> JobRecord | None:
        """End a running job as done, failed or cancelled; None if it is no longer this worker's."""
        status = JobStatus(status)
        if status in ACTIVE_STATUSES:
            raise JobError(f"finish() ends a job: status must be done, failed or cancelled, not {status}")
        with self._transaction():
            job = self._load(job_id)
            if job is None or job.status != JobStatus.RUNNING or job.worker_id != worker_id:
                return None
            job = job.model_copy(update={
                "status": status, "finished_at": time.time(), "phase": None, "eta_s": None,
                "error": _clip(error, ERROR_MAX), "traceback": _clip(traceback, TRACEBACK_MAX), "verdict": verdict,
            })
            self._save(job)
            self._remove_id(KEY_RUNNING, job_id)
            return job

    def requeue(self, job_id: str, worker_id: str, reason: str, *, died: bool = False) -> JobRecord | None:
        """Put a running job back at the front of the queue; None if not this worker's.

        ``died``: the machine running the fit died (a Dask worker left the cluster), which counts towards
        ``MAX_REQUEUES`` like a dead worker; otherwise the worker is stopping and it does not count.
        """
        with self._transaction():
            job = self._load(job_id)
            if job is None or job.status != JobStatus.RUNNING or job.worker_id != worker_id:
                return None
            return self._requeue_locked(job, reason, count=died)

    def _requeue_locked(self, job: JobRecord, reason: str, *, count: bool) -> JobRecord:
        now = time.time()
        if job.cancel_requested:
            new = job.model_copy(update={
                "status": JobStatus.CANCELLED, "finished_at": now, "phase": None, "eta_s": None,
                "error": f"cancelled ({reason})",
            })
            self._remove_id(KEY_RUNNING, job.job_id)
        elif count and job.requeues >= MAX_REQUEUES:
            new = job.model_copy(update={
                "status": JobStatus.FAILED, "finished_at": now, "phase": None, "eta_s": None,
                "error": f"gave up after the worker running this fit died {job.requeues + 1} times ({reason}); the fit "
                         "may need more memory than the machine has (see SPECLET_FIT_MEMORY_MB) or a smaller selection",
            })
            self._remove_id(KEY_RUNNING, job.job_id)
        else:
            new = job.model_copy(update={
                "status": JobStatus.QUEUED, "worker_id": None, "started_at": None, "heartbeat_at": None,
                "process_id": None, "host": None,
                "phase": None, "draws_done": 0, "draws_total": 0, "divergences": 0, "eta_s": None,
                "requeues": job.requeues + (1 if count else 0),
            })
            self._remove_id(KEY_RUNNING, job.job_id)
            self._append_id(KEY_QUEUED, job.job_id, front=True)
        self._save(new)
        return new

    def requeue_stale(self, now: float | None = None) -> builtins.list[JobRecord]:
        """Send running jobs whose worker went silent back to the queue; returns what changed.

        A worker is silent when its job's heartbeat has not changed for ``heartbeat_timeout_s`` on
        this process's own monotonic clock (``now``, default ``time.monotonic()``), counted from the
        first time this process read that heartbeat: heartbeats are compared with each other, never
        with this machine's wall clock, so a worker host whose clock is off is judged correctly. A job
        whose worker runs on this machine is judged by its process alone: requeued at once when the
        process is gone, never while it is alive.
        """
        running = self._ids(KEY_RUNNING)
        if not running:
            self._beats_seen.clear()
            return []
        timeout = self.settings.heartbeat_timeout_s
        host = socket.gethostname()
        changed: builtins.list[JobRecord] = []
        with self._transaction():
            now = time.monotonic() if now is None else now
            running = self._ids(KEY_RUNNING)
            for job_id in running:
                job = self._load(job_id)
                if job is None or job.status != JobStatus.RUNNING:
                    self._remove_id(KEY_RUNNING, job_id)
                    continue
                beat = (job.worker_id, job.heartbeat_at)
                seen = self._beats_seen.get(job_id)
                if seen is None or seen[0] != beat:
                    self._beats_seen[job_id] = (beat, now)
                    silent = 0.0
                else:
                    silent = now - seen[1]
                where = _worker_host_pid(job.worker_id)
                if where is not None and where[0] == host:
                    if not _pid_gone(where[1]):
                        continue  # alive on this machine: however long it has been quiet
                    why = "its worker process is gone"
                elif silent > timeout:
                    why = f"its worker's heartbeat did not change for {silent:.0f} s"
                else:
                    continue
                changed.append(self._requeue_locked(job, why, count=True))
                self._beats_seen.pop(job_id, None)
        for job_id in set(self._beats_seen) - set(running):
            del self._beats_seen[job_id]
        return changed

    # ---------------------------------------------------------------- worker liveness

    def beat_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        """Record that a worker is alive (and prune workers silent for a long time)."""
        now = time.time()
        horizon = max(600.0, 20 * self.settings.heartbeat_timeout_s)
        with self._transaction():
            workers = dict(self._cache.get(KEY_WORKERS) or {})
            workers = {k: v for k, v in workers.items() if now - float(v.get("last_seen", 0)) < horizon}
            workers[worker_id] = {**info, "worker_id": worker_id, "last_seen": now}
            self._cache.set(KEY_WORKERS, workers)

    def remove_worker(self, worker_id: str) -> None:
        with self._transaction():
            workers = dict(self._cache.get(KEY_WORKERS) or {})
            if workers.pop(worker_id, None) is not None:
                self._cache.set(KEY_WORKERS, workers)

    def workers(self) -> builtins.list[dict[str, Any]]:
        """Every worker seen recently, most recently seen first."""
        workers = list((self._cache.get(KEY_WORKERS) or {}).values())
        return sorted(workers, key=lambda w: -float(w.get("last_seen", 0)))


ESTIMATE_PARTS = ("compile_s", "sampling_s", "postprocess_s", "total_s", "peak_rss_mb", "disk_mb")


def _estimate_parts(estimate: Any) -> dict[str, float] | None:
    """The stages of a ``CostEstimate`` a job keeps (None without one)."""
    if estimate is None:
        return None
    return {k: round(max(0.0, float(getattr(estimate, k))), 3) for k in ESTIMATE_PARTS}


def _clip(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n… ({len(text) - limit} characters left out) …\n{text[-half:]}"


# --------------------------------------------------------------------------- helpers for the app and serve


def worker_status(settings: Settings) -> dict[str, Any]:
    """Whether a live worker is seen: ``{"alive", "last_seen_s", "workers": [...], "queued", "running"}``.

    A worker is alive when it heart-beat within ``heartbeat_timeout_s``. ``last_seen_s`` is the
    age of the most recent heartbeat of any worker (None if no worker was ever seen).
    """
    with JobQueue.from_settings(settings) as queue:
        now = time.time()
        workers = []
        for w in queue.workers():
            age = now - float(w.get("last_seen", 0))
            workers.append({**w, "age_s": age, "alive": age <= settings.heartbeat_timeout_s})
        counts = queue.counts()
    return {
        "alive": any(w["alive"] for w in workers),
        "last_seen_s": min((w["age_s"] for w in workers), default=None),
        "workers": workers,
        "start_command": "python -m speclet_core worker",
        **counts,
    }
