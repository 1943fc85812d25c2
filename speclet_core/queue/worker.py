"""The worker: takes fits from the queue and runs each in its own child process.

``Worker.run()`` is the supervisor loop (``python -m speclet_core worker``). It claims
jobs, starts one child per fit (``python -m speclet_core.queue.worker run-one JOB_ID …``), and
every ``heartbeat_s`` tells the queue that it and each of its fits are alive. It enforces
the per-fit timeout, stops a fit whose job was cancelled (SIGTERM, then SIGKILL after
``KILL_GRACE_S``) and removes anything that fit stored, and on SIGTERM / SIGINT stops its
fits and puts their jobs back at the front of the queue.

A child sets a memory limit (``RLIMIT_AS``) on itself, dies with its supervisor
(``PR_SET_PDEATHSIG`` plus a parent watchdog), writes its progress into the job record,
and stores the fit only after ``JobQueue.begin_saving`` confirms the job is still its own
and not cancelled. A crash or runaway fit therefore takes down only its own process.

Each fit's temporary files (the sampler's draws on disk, anything else that uses ``TMPDIR``) go to
``DATA_DIR/tmp/<job>/<worker>``: the supervisor removes that folder when the child exits, however it
ended (stored, failed, killed, timed out, cancelled), and a worker sweeps the folders of dead workers
when it starts, so nothing piles up in the container's own layer.

Each supervisor holds an exclusive lock on one PyTensor compile folder per fit slot
(``DATA_DIR/cache/pytensor/wK-sN``), so concurrent fits never share a compile cache
while later fits in the same slot reuse it.

Where a fit runs is a seam: ``_LocalFit`` (the child process above) or, with
``SPECLET_DASK_SCHEDULER`` set, ``speclet_core.queue.dask_executor.DaskFit`` (the same child started by a
task on a Dask worker, talking to this supervisor through Dask). Both answer ``poll`` / ``terminate`` /
``kill``, so the queue, heartbeats, limits, cancel and the store's cleanup below are the same for both.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import json
import logging
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Protocol

from model_store.ids import FIT_ID_RE
from speclet_core.errors import SpecletError
from speclet_core.queue.fitproc import (
    EXIT_NOT_MINE,
    KILL_GRACE_S,
    REMOTE_STOP_S,
    compile_base,
    lock_compile_folder,
    with_compiledir,
)
from speclet_core.queue.jobs import JobQueue, make_worker_id
from speclet_core.queue.records import Executor, JobRecord, JobStatus
from speclet_core.records import FitPhase
from speclet_core.settings import Settings

EXIT_GRACE_S = 30.0  # a fit that recorded its end has this long to exit (writing files, interpreter shutdown)
MAX_LOOP_FAILURES = 30  # consecutive failed loop turns (≈ 30 s) before the worker gives up
POLL_S = 0.2  # supervisor loop period: bounds submit-to-start latency with an idle worker
PROGRESS_MIN_INTERVAL_S = 0.5  # the child writes progress at most twice a second
PR_SET_PDEATHSIG = 1

log = logging.getLogger("speclet.worker")


class StopReason(StrEnum):
    CANCEL = "cancel"
    TIMEOUT = "timeout"
    LOST = "lost"  # the job was requeued to another worker
    SHUTDOWN = "shutdown"


class FitHandle(Protocol):
    """One running fit as the supervisor sees it, wherever it runs."""

    label: str  # for the log: "process 1234", "Dask task …"

    def poll(self) -> int | None:
        """The fit's exit status once it has stopped (negative: killed by that signal), else None."""

    def terminate(self) -> None:
        """Ask the fit to stop now (it has ``KILL_GRACE_S`` before ``kill``)."""

    def kill(self) -> None:
        """Stop the fit at once."""

    def release(self) -> None:
        """After it stopped: free what is left of it (helper processes, Dask's record of the task)."""

    def lost(self) -> str | None:
        """Why the machine running the fit is gone (the fit goes back to the queue), or None."""


class _LocalFit:
    """A fit in a child process of this supervisor (its own process group)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.label = f"process {proc.pid}"

    def poll(self) -> int | None:
        return self.proc.poll()

    def terminate(self) -> None:
        _signal_group(self.proc.pid, signal.SIGTERM)

    def kill(self) -> None:
        _signal_group(self.proc.pid, signal.SIGKILL)

    def release(self) -> None:
        _signal_group(self.proc.pid, signal.SIGKILL)  # leftover helpers of the fit, if any

    def lost(self) -> str | None:
        return None  # a dead child is an exit status, judged by _after_exit


@dataclasses.dataclass
class _Running:
    job: JobRecord
    fit: FitHandle
    slot: int
    started: float  # monotonic
    log_path: Path
    tmp_dir: Path | None  # a local fit's TMPDIR (a Dask fit's lives on its Dask worker)
    stop_reason: StopReason | None = None
    term_sent_at: float | None = None
    killed: bool = False
    finished_at: float | None = None  # monotonic time the job was seen ended while its process still ran


def setup_logging(settings: Settings, *, console: bool = True) -> Path:
    """Log to ``DATA_DIR/logs/worker.log`` (appending, shared by all workers) and to stderr."""
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    path = settings.logs_dir / "worker.log"
    fmt = logging.Formatter("%(asctime)s %(levelname)s [worker %(process)d] %(message)s")
    root = logging.getLogger("speclet")
    root.setLevel(logging.INFO)
    if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path for h in root.handlers):
        fh = logging.FileHandler(path, encoding="utf-8")
        fh.setFormatter(fmt)
        root.addHandler(fh)
    if console and not any(type(h) is logging.StreamHandler for h in root.handlers):
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(fmt)
        root.addHandler(sh)
    return path


def fit_log_path(settings: Settings, job_id: str) -> Path:
    """Where a fit's child process writes its output and traceback."""
    return settings.logs_dir / "fits" / f"{job_id}.log"


def tmp_root(settings: Settings) -> Path:
    """``DATA_DIR/tmp``: one folder per job, inside it one per worker that ran it."""
    return settings.data_dir / "tmp"


def fit_tmp_dir(settings: Settings, job_id: str, worker_id: str) -> Path:
    """The ``TMPDIR`` of one run of a fit: ``DATA_DIR/tmp/<job>/<worker id>`` (``:`` written as ``_``)."""
    return tmp_root(settings) / job_id / worker_id.replace(":", "_")


def _remove_tmp(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # the job's folder, once no other run of it has one there


class Worker:
    """Supervisor of up to ``concurrency`` fit processes.

    Parameters
    ----------
    settings
        Data folder, limits and timeouts.
    concurrency
        Fits run at the same time (default ``settings.max_concurrent_fits``).
    """

    def __init__(self, settings: Settings, *, concurrency: int | None = None, poll_s: float = POLL_S) -> None:
        self.settings = settings
        self.concurrency = max(1, int(concurrency or settings.max_concurrent_fits or 1))
        self.memory_mb = settings.fit_memory_limit_mb(self.concurrency)  # each fit's limit (0: none)
        self.poll_s = poll_s
        self.heartbeat_s = max(0.2, min(2.0, settings.heartbeat_timeout_s / 4))
        self.worker_id = make_worker_id()
        self.queue = JobQueue.from_settings(settings)
        self.running: dict[str, _Running] = {}
        self._stop = threading.Event()
        self._compile_lock: IO[str] | None = None
        self._compile_base: Path | None = None
        self.started_at = time.time()
        self.dask: Any = None  # the DaskExecutor when SPECLET_DASK_SCHEDULER is set (connected in run())

    # ---------------------------------------------------------------- lifecycle

    def stop(self) -> None:
        """Ask the loop to stop (safe from a signal handler or another thread)."""
        self._stop.set()

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # an in-process worker (tests) is stopped with stop()

        def handler(signum: int, _frame: object) -> None:
            log.info("received %s: stopping", signal.Signals(signum).name)
            self._stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self) -> int:
        """Run fits until stopped; returns the exit status (0 after a clean stop)."""
        self._install_signal_handlers()
        if self.settings.dask_scheduler:
            from speclet_core.queue.dask_executor import DaskExecutor

            try:
                self.dask = DaskExecutor(self.settings, self.worker_id, self.queue)
            except SpecletError:
                self.queue.close()
                raise
        else:
            self._lock_compile_folder()
        self._clean_store()
        self._sweep_tmp()
        if self.dask is not None:
            log.info("worker %s started: fits go to the Dask cluster at %s (as many at once as it has threads), "
                     "data in %s", self.worker_id, self.settings.dask_scheduler, self.settings.data_dir)
        else:
            log.info("worker %s started: %d fit(s) at a time, each limited to %s, data in %s", self.worker_id,
                     self.concurrency, f"{self.memory_mb} MiB" if self.memory_mb else "no memory limit",
                     self.settings.data_dir)
        next_beat = 0.0
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    now = time.monotonic()
                    if now >= next_beat:
                        self._beat()
                        next_beat = now + self.heartbeat_s
                    if self.dask is not None:
                        self.dask.pump()  # progress and save requests relayed from the Dask workers
                    self._enforce_limits()
                    self._reap()
                    while len(self.running) < self._capacity() and not self._stop.is_set():
                        job = self.queue.claim(self.worker_id, Executor.DASK if self.dask else Executor.LOCAL)
                        if job is None:
                            break
                        self._start(job)
                    failures = 0
                except Exception:
                    # a busy or briefly unreadable queue must not take running fits down with the worker
                    failures += 1
                    log.exception("worker loop failed (%d in a row)", failures)
                    if failures >= MAX_LOOP_FAILURES:
                        raise
                    self._stop.wait(1.0)
                self._stop.wait(self.poll_s)
        finally:
            self._shutdown()
        return 0

    def _capacity(self) -> int:
        """Fits this supervisor runs at once: its concurrency, or on Dask the cluster's threads (≥ 1)."""
        return self.dask.capacity() if self.dask is not None else self.concurrency

    def _shutdown(self) -> None:
        for entry in self.running.values():
            self._signal(entry, StopReason.SHUTDOWN)
        deadline = time.monotonic() + KILL_GRACE_S
        while self.running and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)
        for entry in list(self.running.values()):
            self._kill(entry)
        deadline = time.monotonic() + (REMOTE_STOP_S if self.dask is not None else 30.0)
        while self.running and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)
        self._reap()
        for job_id, entry in list(self.running.items()):  # a Dask task that never answered: back to the queue
            entry.fit.release()
            del self.running[job_id]
            self.queue.requeue(job_id, self.worker_id, "the worker was stopped")
        self.queue.remove_worker(self.worker_id)
        if self.dask is not None:
            self.dask.close()
        self.queue.close()
        if self._compile_lock is not None:
            self._compile_lock.close()
        log.info("worker %s stopped", self.worker_id)

    # ---------------------------------------------------------------- heartbeats and limits

    def _beat(self) -> None:
        if self.dask is not None:
            self.dask.refresh()
        self.queue.beat_worker(self.worker_id, {
            "pid": os.getpid(), "host": self.worker_id.rsplit(":", 2)[0], "started_at": self.started_at,
            "concurrency": self._capacity(), "running": sorted(self.running),
            "executor": str(Executor.DASK if self.dask is not None else Executor.LOCAL),
            **({"dask_scheduler": self.settings.dask_scheduler} if self.dask is not None else {}),
        })
        for job_id, entry in list(self.running.items()):
            why = entry.fit.lost()
            if why is not None:
                self._requeue_lost(entry, why)
                continue
            if entry.stop_reason is not None:
                continue
            job = self.queue.heartbeat(job_id, self.worker_id)
            if job is None:
                current = self.queue.find(job_id)
                if current is not None and not current.active and current.worker_id == self.worker_id:
                    # the fit recorded its own end and is exiting; stop it only if it lingers
                    entry.finished_at = entry.finished_at or time.monotonic()
                    continue
                log.warning("job %s is no longer this worker's (requeued elsewhere): stopping its fit", job_id[:12])
                self._signal(entry, StopReason.LOST)
            elif job.cancel_requested:
                log.info("job %s cancelled: stopping its fit", job_id[:12])
                self._signal(entry, StopReason.CANCEL)
        for job in self.queue.requeue_stale():
            log.warning("job %s: its worker stopped heart-beating → %s", job.job_id[:12], job.status)

    def _requeue_lost(self, entry: _Running, why: str) -> None:
        """The machine running a fit died: forget the run, clean what it left, send the job back to the queue."""
        job_id = entry.job.job_id
        entry.fit.kill()
        entry.fit.release()
        del self.running[job_id]
        self._clean_store()  # its unfinished write (the dead writer's lock is free now) must not linger
        job = self.queue.requeue(job_id, self.worker_id, why, died=True)
        log.warning("job %s: %s → %s", job_id[:12], why, job.status if job else "no longer this worker's")

    def _enforce_limits(self) -> None:
        now = time.monotonic()
        timeout = self.settings.fit_timeout_s
        for entry in self.running.values():
            if entry.stop_reason is None and timeout > 0 and now - entry.started > timeout:
                log.warning("job %s ran longer than %d s: stopping it", entry.job.job_id[:12], timeout)
                self._signal(entry, StopReason.TIMEOUT)
            if entry.term_sent_at is not None and not entry.killed and now - entry.term_sent_at > KILL_GRACE_S:
                self._kill(entry)
            if entry.finished_at is not None and entry.term_sent_at is None and now - entry.finished_at > EXIT_GRACE_S:
                log.warning("job %s ended but its process did not exit: stopping it", entry.job.job_id[:12])
                entry.term_sent_at = now
                entry.fit.terminate()

    def _signal(self, entry: _Running, reason: StopReason) -> None:
        if entry.stop_reason is None:
            entry.stop_reason = reason
        if entry.term_sent_at is None and entry.fit.poll() is None:
            entry.term_sent_at = time.monotonic()
            entry.fit.terminate()

    def _kill(self, entry: _Running) -> None:
        entry.killed = True
        entry.fit.kill()

    # ---------------------------------------------------------------- children

    def _free_slot(self) -> int:
        used = {e.slot for e in self.running.values()}
        return next(i for i in range(self.concurrency + 1) if i not in used)

    def _start(self, job: JobRecord) -> None:
        slot = self._free_slot()
        log_path = fit_log_path(self.settings, job.job_id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.dask is not None:
            fit = self.dask.start(job, log_path)
            self.running[job.job_id] = _Running(job=job, fit=fit, slot=slot, started=time.monotonic(),
                                                log_path=log_path, tmp_dir=None)
            log.info("job %s (%s, %s) sent to the Dask cluster as %s", job.job_id[:12], job.request.model,
                     job.label or "-", fit.label)
            return
        tmp_dir = fit_tmp_dir(self.settings, job.job_id, self.worker_id)
        shutil.rmtree(tmp_dir, ignore_errors=True)  # left by an earlier run of this job on this worker
        tmp_dir.mkdir(mode=0o700, parents=True)
        env = dict(os.environ)
        env["SPECLET_DATA_DIR"] = str(self.settings.data_dir)
        env["TMPDIR"] = str(tmp_dir)  # the sampler's draws and every library's temp files, removed at exit
        if self._compile_base is not None:
            compiledir = self._compile_base.with_name(f"{self._compile_base.name}-s{slot}")
            env["PYTENSOR_FLAGS"] = with_compiledir(env.get("PYTENSOR_FLAGS", ""), compiledir)
        cmd = [
            sys.executable, "-m", "speclet_core.queue.worker", "run-one", job.job_id,
            "--worker-id", self.worker_id,
            "--data-dir", str(self.settings.data_dir),
            "--memory-mb", str(self.memory_mb),
            "--parent-pid", str(os.getpid()),
        ]
        with open(log_path, "ab") as out:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            out.write(f"\n==== {stamp} attempt {job.attempt} on {self.worker_id}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,  # its own process group: one signal reaches PyMC's helpers too
            )
        self.running[job.job_id] = _Running(job=job, fit=_LocalFit(proc), slot=slot, started=time.monotonic(),
                                            log_path=log_path, tmp_dir=tmp_dir)
        log.info("job %s (%s, %s) started in process %d", job.job_id[:12], job.request.model, job.label or "-",
                 proc.pid)

    def _reap(self) -> None:
        for job_id, entry in list(self.running.items()):
            rc = entry.fit.poll()
            if rc is None:
                continue
            del self.running[job_id]
            entry.fit.release()
            if entry.tmp_dir is not None:
                _remove_tmp(entry.tmp_dir)  # before the job's end is recorded: whoever sees it ended sees it clean
            try:
                self._after_exit(entry, rc)
            except SpecletError as exc:
                log.error("job %s: could not record how it ended: %s", job_id[:12], exc)

    def _after_exit(self, entry: _Running, rc: int) -> None:
        """Make the job record say how the child ended, whatever the child managed to write."""
        job_id = entry.job.job_id
        reason = entry.stop_reason
        # judged before the cleanup below frees what the dead writer left
        disk_full = rc < 0 and reason is None and _disk_nearly_full(self.settings.fits_dir)
        if reason is not None or rc < 0:
            self._clean_store()
        if reason == StopReason.LOST:
            return
        job = self.queue.find(job_id)
        if job is None or job.status != JobStatus.RUNNING or job.worker_id != self.worker_id:
            log.info("job %s ended: %s (exit status %s)", job_id[:12], job.status if job else "gone", rc)
            return
        stored = self._stored(job_id)
        if reason == StopReason.CANCEL:
            if stored:
                # The cancel came while the fit was being saved: a cancelled fit leaves nothing behind.
                from model_store import ModelStore

                ModelStore(self.settings.fits_dir).delete(job_id)
            self.queue.finish(job_id, self.worker_id, JobStatus.CANCELLED, error="cancelled while running")
            log.info("job %s cancelled", job_id[:12])
        elif reason == StopReason.SHUTDOWN:
            if stored:
                self.queue.finish(job_id, self.worker_id, JobStatus.DONE)
            else:
                self.queue.requeue(job_id, self.worker_id, "the worker was stopped")
                log.info("job %s put back in the queue", job_id[:12])
        elif stored:
            self.queue.finish(job_id, self.worker_id, JobStatus.DONE)
        elif reason == StopReason.TIMEOUT:
            limit = self.settings.fit_timeout_s
            self.queue.finish(
                job_id, self.worker_id, JobStatus.FAILED,
                error=f"stopped after {limit} s: a fit may run at most SPECLET_FIT_TIMEOUT_S={limit} s; "
                      "use fewer draws, the quick method or a smaller selection, or raise the limit",
                traceback=_tail(entry.log_path),
            )
        elif disk_full and job.phase == FitPhase.SAVING:
            from model_store.store import disk_full_message

            self.queue.finish(
                job_id, self.worker_id, JobStatus.FAILED,
                error=disk_full_message(self.settings.fits_dir) + f" ({_describe_exit(rc, 0)} while writing the "
                      f"fit; see {entry.log_path})",
                traceback=_tail(entry.log_path),
            )
        else:
            self.queue.finish(
                job_id, self.worker_id, JobStatus.FAILED,
                error=_describe_exit(rc, self.memory_mb) + f"; see {entry.log_path}",
                traceback=_tail(entry.log_path),
            )

    def _clean_store(self) -> None:
        """Remove half-written fits that killed fit processes left in the store's incoming folder."""
        from model_store import ModelStore

        try:
            removed = ModelStore(self.settings.fits_dir).clean_incomplete()
        except (SpecletError, OSError) as exc:
            log.warning("could not clean the store's unfinished writes: %s", exc)
            return
        if removed:
            log.info("removed %d unfinished write(s) from the store", removed)

    def _sweep_tmp(self) -> None:
        """Remove the temp folders of runs that no live worker owns (their worker was killed or is gone)."""
        root = tmp_root(self.settings)
        host = self.worker_id.rsplit(":", 2)[0]
        removed = 0
        try:
            jobs = [e for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
        except OSError:
            return  # no folder yet (or unreadable: nothing of ours to clean)
        for job_dir in jobs:
            job = self.queue.find(job_dir.name) if FIT_ID_RE.fullmatch(job_dir.name) else None
            with contextlib.suppress(OSError):
                for run in os.scandir(job_dir.path):
                    parts = run.name.rsplit("_", 2)  # host_pid_random: a worker id with ":" written as "_"
                    owner, owner_host = ":".join(parts), parts[0]
                    pid = parts[1] if len(parts) == 3 else ""
                    owner_alive = owner_host == host and pid.isdigit() and _pid_alive(int(pid))
                    if job is not None and job.status == JobStatus.RUNNING and job.worker_id == owner and (
                            owner_host != host or owner_alive):
                        continue  # a live run (here, or on another host sharing DATA_DIR)
                    _remove_tmp(Path(run.path))
                    removed += 1
            with contextlib.suppress(OSError):
                os.rmdir(job_dir.path)
        if removed:
            log.info("removed %d temp folder(s) of fits whose worker is gone", removed)

    def _stored(self, fit_id: str) -> bool:
        from model_store import ModelStore

        return bool(ModelStore(self.settings.fits_dir).exists(fit_id))

    def _lock_compile_folder(self) -> None:
        """Hold ``BASE/wK.lock`` for the lowest free K; children compile in ``BASE/wK-sN``.

        BASE is the ``base_compiledir`` already in ``PYTENSOR_FLAGS`` if any (a shared, warm
        cache), else ``DATA_DIR/cache/pytensor`` (kept with the data, e.g. on Docker's volume).
        """
        locked = lock_compile_folder(compile_base(self.settings), "w")
        if locked is not None:
            self._compile_lock, self._compile_base = locked


DISK_NEARLY_FULL_BYTES = 64 << 20


def _disk_nearly_full(folder: Path) -> bool:
    """Whether the disk holding ``folder`` has under 64 MB or 1% free (a writer killed there likely ran out)."""
    from model_store.store import free_bytes

    try:
        total = shutil.disk_usage(next(p for p in (folder, *folder.parents) if p.exists())).total
        free = free_bytes(folder)
    except (OSError, StopIteration):
        return False
    return free < max(DISK_NEARLY_FULL_BYTES, total // 100)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _describe_exit(rc: int, memory_mb: int) -> str:
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        text = f"the fit process was killed by {name}"
        if -rc == signal.SIGKILL or (memory_mb and -rc in (signal.SIGABRT, signal.SIGSEGV)):
            text += " (often: it ran out of memory"
            text += f"; SPECLET_FIT_MEMORY_MB={memory_mb})" if memory_mb else ")"
        return text
    return f"the fit process stopped with exit status {rc} without reporting a result"


def _tail(path: Path, limit: int = 20_000) -> str | None:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return None


# --------------------------------------------------------------------------- the child


class FitChannel(Protocol):
    """How a fit process reports to whoever runs it: the queue itself, or its Dask task (``PipeChannel``)."""

    executor: Executor
    where: dict[str, str]  # extra provenance: e.g. the Dask worker's address

    def attach(self, pid: int, host: str) -> JobRecord | None: ...

    def progress(self, *, phase: FitPhase | None, draws_done: int, draws_total: int, divergences: int,
                 eta_s: float | None) -> None: ...

    def begin_saving(self) -> bool: ...

    def finish(self, status: JobStatus, *, error: str | None = None, traceback: str | None = None,
               verdict: str | None = None) -> None: ...


class QueueChannel:
    """A local fit process writes into the job queue directly."""

    executor = Executor.LOCAL
    where: dict[str, str] = {}

    def __init__(self, queue: JobQueue, job_id: str, worker_id: str) -> None:
        self.queue, self.job_id, self.worker_id = queue, job_id, worker_id

    def attach(self, pid: int, host: str) -> JobRecord | None:
        return self.queue.attach_process(self.job_id, self.worker_id, pid, host=host)

    def progress(self, **fields: Any) -> None:
        self.queue.update_progress(self.job_id, self.worker_id, **fields)

    def begin_saving(self) -> bool:
        return self.queue.begin_saving(self.job_id, self.worker_id)

    def finish(self, status: JobStatus, **fields: Any) -> None:
        self.queue.finish(self.job_id, self.worker_id, status, **fields)


class PipeChannel:
    """A fit process started by a Dask task: JSON lines to the task on ``out_fd``, its answers on stdin.

    The task's first line is ``{"job": JobRecord, "where": {...}}``; it relays the lines to the
    supervisor through Dask and returns the ``finish`` line as the task's result.
    """

    executor = Executor.DASK

    def __init__(self, out_fd: int, answers: IO[str]) -> None:
        self._out = os.fdopen(out_fd, "w", encoding="utf-8", buffering=1)
        self._answers = answers
        first = json.loads(answers.readline() or "{}")
        self.job = JobRecord.model_validate(first["job"])
        self.where = {str(k): str(v) for k, v in (first.get("where") or {}).items()}

    def _send(self, kind: str, **fields: Any) -> None:
        self._out.write(json.dumps({"kind": kind, **fields}) + "\n")

    def attach(self, pid: int, host: str) -> JobRecord | None:
        self._send("attach", pid=pid, host=host)
        return self.job

    def progress(self, *, phase: FitPhase | None, **fields: Any) -> None:
        self._send("progress", phase=None if phase is None else str(phase), **fields)

    def begin_saving(self) -> bool:
        self._send("may_save")
        answer = self._answers.readline()  # the supervisor's begin_saving, relayed by the task
        return bool(answer) and json.loads(answer).get("ok") is True

    def finish(self, status: JobStatus, **fields: Any) -> None:
        self._send("finish", status=str(status), **fields)


class _ProgressWriter:
    """The ``progress`` callback of ``run_fit``: writes phase, draws, divergences and ETA into the job."""

    def __init__(self, channel: FitChannel) -> None:
        self.channel = channel
        self._last_write = 0.0
        self._last_phase: str | None = None
        self._anchor: tuple[float, int] | None = None  # (time, draws) when the current phase started counting

    def __call__(self, progress: Any) -> None:
        now = time.monotonic()
        phase = str(getattr(progress, "phase", "") or "")
        try:
            job_phase: FitPhase | None = FitPhase(phase)
        except ValueError:
            job_phase = None
        done = int(getattr(progress, "draws_done", 0) or 0)
        total = int(getattr(progress, "draws_total", 0) or 0)
        changed = phase != self._last_phase
        if changed or self._anchor is None or done < self._anchor[1]:
            self._anchor = (now, done)
        eta = None
        t0, d0 = self._anchor
        if total > 0 and done > d0 and now > t0:
            eta = (total - done) / ((done - d0) / (now - t0))
        if not changed and now - self._last_write < PROGRESS_MIN_INTERVAL_S and done < total:
            return
        self._last_phase = phase
        self._last_write = now
        self.channel.progress(
            phase=job_phase, draws_done=done, draws_total=total,
            divergences=int(getattr(progress, "divergences", 0) or 0), eta_s=eta,
        )


def _die_with_parent(parent_pid: int) -> None:
    """Make sure this fit stops when its supervisor dies (so two workers never run one fit)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(EXIT_NOT_MINE)

    def watch() -> None:  # where prctl is missing (not Linux)
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _limit_memory(memory_mb: int) -> None:
    """Limit the fit's address space (the soft limit: the failure path lifts it to record the error)."""
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _lift_memory_limit() -> None:
    """Back to the hard limit, so that writing the failure into the queue cannot itself run out of memory."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def run_one(job_id: str, worker_id: str, settings: Settings, channel: FitChannel | None = None) -> int:
    """Run one claimed job in this process: fit, store, record the outcome. Returns the exit status.

    ``channel`` is how this process reports (default: the queue itself, as a local worker's child).
    """
    memory_mb = settings.fit_memory_limit_mb()
    if channel is None:
        channel = QueueChannel(JobQueue.from_settings(settings), job_id, worker_id)
    host = socket.gethostname()
    job = channel.attach(os.getpid(), host)
    if job is None or job.job_id != job_id:
        print(f"job {job_id} is not running on {worker_id}; nothing to do", flush=True)
        return EXIT_NOT_MINE
    print(f"fit {job_id}: model {job.request.model}, data {job.request.data_path}, on {host} "
          f"({channel.executor})", flush=True)
    try:
        _limit_memory(memory_mb)
        from model_store import ModelStore
        from speclet_core.fitting.engine import run_fit

        result = run_fit(job.request, settings=settings, progress=_ProgressWriter(channel))
        if not channel.begin_saving():
            print("the job was cancelled or taken over before saving: nothing stored", flush=True)
            return EXIT_NOT_MINE
        # where it ran, beside what the fit knows (model_store writes provenance into the manifest and NetCDF attrs)
        where = {"executor": str(channel.executor), "host": host, **channel.where}
        ModelStore(settings.fits_dir).put(
            job_id, result.idata, request=job.request.model_dump(mode="json"), roles=result.spec.roles(),
            diagnostics=result.diagnostics, timings=result.timings, provenance={**result.provenance, **where},
        )
        verdict = result.diagnostics.get("verdict") if isinstance(result.diagnostics, dict) else None
        channel.finish(JobStatus.DONE, verdict=verdict)
        print(f"fit {job_id} stored (verdict: {verdict})", flush=True)
        return 0
    except SpecletError as exc:
        tb = traceback.format_exc()
        error = str(exc)
    except Exception as exc:
        tb = traceback.format_exc()
        if _out_of_memory(exc, limited=memory_mb > 0):
            limit = f"the limit SPECLET_FIT_MEMORY_MB={memory_mb}" if memory_mb else "the machine's memory"
            error = f"the fit ran out of memory ({limit}); choose fewer genes or cell lines, or raise the limit"
        else:
            error = f"unexpected failure ({type(exc).__name__}: {exc}); the full traceback is in the job's log"
    _lift_memory_limit()
    print(tb, flush=True)
    channel.finish(JobStatus.FAILED, error=error, traceback=tb)
    return 1


def _out_of_memory(exc: BaseException, *, limited: bool = False) -> bool:
    """MemoryError, or what a memory limit looks like while loading a library (mmap refused).

    Under an address-space limit a C extension whose allocation fails may also return an error without
    setting one, which Python reports as ``SystemError: error return without exception set``.
    """
    if isinstance(exc, MemoryError):
        return True
    text = str(exc)
    if limited and isinstance(exc, SystemError) and "without exception set" in text:
        return True
    return isinstance(exc, OSError | ImportError) and (
        "failed to map segment" in text or "Cannot allocate memory" in text
    )


def _child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m speclet_core.queue.worker")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run-one", help="run one claimed job (started by the worker, not by people)")
    p.add_argument("job_id")
    p.add_argument("--worker-id", required=True)
    p.add_argument("--data-dir", required=True, type=Path)
    p.add_argument("--memory-mb", type=int, default=0)
    p.add_argument("--parent-pid", type=int, required=True)
    p.add_argument("--report-fd", type=int, default=None,
                   help="report on this file descriptor (JSON lines) and read answers on stdin (a Dask task)")
    args = parser.parse_args(argv)
    _die_with_parent(args.parent_pid)
    # the supervisor's data folder and memory limit win over this process's environment
    settings = dataclasses.replace(Settings.from_env(), data_dir=args.data_dir, fit_memory_mb=args.memory_mb)
    try:
        channel = PipeChannel(args.report_fd, sys.stdin) if args.report_fd is not None else None
        rc = run_one(args.job_id, args.worker_id, settings, channel)
    except Exception:
        traceback.print_exc()
        rc = 1
    # Exit without the interpreter's shutdown: after an HDF5 write that failed on a full disk, h5py's
    # exit-time cleanup crashes the process (SIGSEGV), after the failure has been recorded.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
