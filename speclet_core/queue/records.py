"""The queue's records: a job's status, its attempts, and what a submission did.

A ``JobRecord`` is stored as JSON in the queue (``speclet_core.queue.jobs``) and read by
the worker, the CLI and the pages; a running job's phase is the fitting engine's ``FitPhase``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from pydantic import Field, model_validator

from speclet_core.records import FitPhase, FitRequest, Record


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})


class Executor(StrEnum):
    """Where a worker runs its fits: child processes on its own machine, or tasks on a Dask cluster."""

    LOCAL = "local"
    DASK = "dask"


class AttemptRecord(Record):
    """How an earlier attempt of a job ended (kept when the request is submitted again)."""

    attempt: int
    status: JobStatus
    error: str | None = None
    submitted_at: float
    started_at: float | None = None
    finished_at: float | None = None
    worker_id: str | None = None
    submitter: str = ""


class JobRecord(Record):
    """One fit request in the queue: its state, progress, and how it ended."""

    job_id: str = Field(description="Equal to the fit id: one job per fit.")
    request: FitRequest
    label: str = Field(default="", description="Who or what submitted it (free text, shown in the job list).")
    # Rows written before this field existed load with "" (nobody's: only an administrator may cancel them).
    submitter: str = Field(default="", description="Identity of the submitter (speclet_core.queue.access).")
    status: JobStatus = JobStatus.QUEUED
    phase: FitPhase | None = Field(default=None, description="What a running fit is doing now.")
    draws_done: int = Field(default=0, ge=0, description="Draws finished in the current phase (all chains).")
    draws_total: int = Field(default=0, ge=0, description="Draws the current phase will make (all chains).")
    divergences: int = Field(default=0, ge=0, description="Divergent transitions so far.")
    eta_s: float | None = Field(default=None, description="Estimated seconds left, from the current draw rate.")
    estimate_s: float | None = Field(default=None, ge=0, description=(
        "Seconds the whole fit was expected to take when it was submitted (speclet_core.fitting.cost); "
        "gives the ETA while nothing is counted yet (loading, compiling)."))
    estimate_parts: dict[str, float] | None = Field(default=None, description=(
        "The submission's estimate by stage (compile_s, sampling_s, postprocess_s, total_s, peak_rss_mb, disk_mb): "
        "the ETA while compiling counts the stages still ahead, and after sampling the post-processing left."))
    phase_started_at: float | None = Field(default=None, description=(
        "Unix time the current phase began: pages show seconds spent in a phase that counts no draws "
        "(compiling, saving) so a long step shows it is alive."))
    submitted_at: float = Field(description="Unix time of the (latest) submission.")
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = Field(default=None, description="Unix time the worker last said it is alive.")
    worker_id: str | None = None
    process_id: int | None = Field(default=None, description="Process id of the running fit, on the machine that runs it.")
    executor: Executor | None = Field(default=None, description="How the fit runs: a local process or a Dask task.")
    host: str | None = Field(default=None, description="Machine that runs (or ran) the fit.")
    error: str | None = Field(default=None, description="Short message for the person who submitted the fit.")
    traceback: str | None = Field(default=None, description="Full traceback, for the log.")
    verdict: str | None = Field(default=None, description="Convergence verdict of a done fit.")
    attempt: int = Field(default=1, ge=1, description="1 for the first submission; +1 for each re-submission.")
    requeues: int = Field(default=0, ge=0, description="Times this attempt went back to the queue as its worker died.")
    cancel_requested: bool = False
    seq: int = Field(default=0, ge=0, description="Submission order: larger is newer.")
    history: tuple[AttemptRecord, ...] = ()

    @model_validator(mode="after")
    def _id_is_fit_id(self) -> JobRecord:
        if self.job_id != self.request.fit_id:
            raise ValueError(
                f"job id {self.job_id[:12]}… is not the fit id of its request ({self.request.fit_id[:12]}…)"
            )
        return self

    @property
    def fit_id(self) -> str:
        return self.job_id

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def progress(self) -> float | None:
        """Fraction of the current phase done (0–1), when the phase counts draws."""
        if self.draws_total <= 0:
            return None
        return min(1.0, self.draws_done / self.draws_total)

    def as_attempt(self) -> AttemptRecord:
        """How this attempt ended, for the history of the next one."""
        return AttemptRecord.model_validate(self.model_dump(include=set(AttemptRecord.model_fields)))


class SubmitOutcome(NamedTuple):
    """What a submission did: the job, whether the fit was already stored, whether this call queued it."""

    job: JobRecord
    already_stored: bool
    created: bool
