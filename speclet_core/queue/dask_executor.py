"""Fits on a Dask cluster (``SPECLET_DASK_SCHEDULER``): the worker's other executor.

The queue, deduplication, heartbeats, limits, cancel and the store stay speclet's: the supervisor
(``speclet_core.queue.worker.Worker``) claims a job as always and, instead of starting a child itself,
submits ``run_fit_task`` to the cluster. That task, on a Dask worker, starts the very child a local
worker starts (``python -m speclet_core.queue.worker run-one … --report-fd N``), so a fit still runs in
its own process, with its own memory limit, ``TMPDIR`` and PyTensor compile folder, and is compiled where
it runs (nothing compiled is ever pickled). The child reports over a pipe; the task relays:

- progress and the process's start → ``Worker.log_event(topic)`` → the supervisor's subscription → the queue;
- "may I save?" → the supervisor's ``JobQueue.begin_saving`` → a Dask ``Variable`` → the child;
- how the fit ended → the task's result → ``JobQueue.finish``;
- stop (cancel, timeout, shutdown) ← a Dask ``Event`` the task checks twice a second: SIGTERM, then SIGKILL
  after ``KILL_GRACE_S``; a task whose future is released (the supervisor died) stops its fit the same way.

The child writes the fit through the same atomic store into ``DATA_DIR/fits``: every Dask worker must see
``SPECLET_DATA_DIR`` (and the screen tables) at the same path, a shared filesystem as on any cluster. If a
Dask worker dies mid-fit its child dies with it (``PR_SET_PDEATHSIG``), the supervisor sees the worker
leave the cluster, cancels that run (Dask would otherwise re-run it on its own), removes the unfinished
write and puts the job back at the front of speclet's queue, from where it is sent again and runs on a
live worker. Run Dask workers as processes with ``--nthreads 1`` per fit slot.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import queue as stdqueue
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from speclet_core.errors import JobError
from speclet_core.queue.fitproc import (
    EXIT_NOT_MINE,
    KILL_GRACE_S,
    REMOTE_STOP_S,
    compile_base,
    lock_compile_folder,
    with_compiledir,
)
from speclet_core.queue.jobs import JobQueue
from speclet_core.queue.records import JobRecord, JobStatus
from speclet_core.settings import Settings, default_fit_memory_mb

CONNECT_TIMEOUT_S = 10.0
STOP_POLL_S = 0.5  # how often a task asks whether it must stop (bounds the cancel latency)
SAVE_ANSWER_TIMEOUT_S = 60.0  # a "may I save?" left unanswered this long is a no
TOPIC_PREFIX = "speclet-fits:"
RUNNING_STATES = frozenset({"executing", "long-running"})

log = logging.getLogger("speclet.worker")


def stop_event_name(run_key: str) -> str:
    return f"{run_key}:stop"


def started_event_name(run_key: str) -> str:
    return f"{run_key}:started"


def save_variable_name(run_key: str) -> str:
    return f"{run_key}:may-save"


def fit_resources(settings: Settings) -> dict[str, float]:
    """The Dask resources a fit asks for (``SPECLET_DASK_RESOURCES``), e.g. ``{"GPU": 1.0}``."""
    return settings.dask_fit_resources()


# --------------------------------------------------------------------------- the supervisor's side


class DaskExecutor:
    """The supervisor's connection to the cluster: submits runs, relays their messages, knows live workers.

    Every method is called from the supervisor's loop thread (the subscription only fills ``inbox``).
    """

    def __init__(self, settings: Settings, worker_id: str, queue: JobQueue) -> None:
        from distributed import Client

        self.settings, self.worker_id, self.queue = settings, worker_id, queue
        self.resources = fit_resources(settings)
        address = settings.dask_scheduler
        try:
            self.client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise JobError(
                f"cannot reach the Dask scheduler at SPECLET_DASK_SCHEDULER={address} ({type(exc).__name__}: {exc}); "
                "start it (`dask scheduler`) and its workers (`dask worker ADDRESS --nthreads 1`), or unset "
                "SPECLET_DASK_SCHEDULER to run fits as local processes"
            ) from None
        self.topic = TOPIC_PREFIX + worker_id
        self.inbox: stdqueue.SimpleQueue[tuple[float, dict[str, Any]]] = stdqueue.SimpleQueue()
        self.client.subscribe_topic(self.topic, self.inbox.put)
        self.runs: dict[str, DaskFit] = {}
        self.live_workers: dict[str, int] = {}  # address → threads, of workers that can run a fit
        self.refresh()

    def refresh(self) -> None:
        """Read the scheduler's workers (each heartbeat): who is alive, how many fits the cluster takes."""
        # asked of the scheduler directly: Client.scheduler_info() returns a cache that the client's own periodic
        # refresh overwrites with an empty worker list, which would make every running fit look lost
        scheduler: Any = self.client.scheduler
        info = self.client.sync(scheduler.identity, n_workers=-1)
        live = {}
        for address, w in (info.get("workers") or {}).items():
            has = w.get("resources") or {}
            if all(float(has.get(name, 0)) >= amount for name, amount in self.resources.items()):
                live[address] = int(w.get("nthreads") or 1)
        self.live_workers = live

    def capacity(self) -> int:
        """Fits to have on the cluster at once: its workers' threads (at least 1; the rest wait in our queue)."""
        return max(1, sum(self.live_workers.values()))

    def start(self, job: JobRecord, log_path: Path) -> DaskFit:
        run_key = f"speclet-fit-{job.job_id[:16]}-{os.urandom(4).hex()}"
        future = self.client.submit(
            run_fit_task, job.model_dump_json(), run_key=run_key, topic=self.topic, worker_id=self.worker_id,
            data_dir=str(self.settings.data_dir), memory_mb=self.settings.fit_memory_mb, log_path=str(log_path),
            key=run_key, pure=False, retries=0, resources=self.resources or None,
        )
        fit = DaskFit(self, job, future, run_key, log_path)
        self.runs[run_key] = fit
        return fit

    def pump(self) -> None:
        """Apply the messages the runs sent since the last call."""
        while True:
            try:
                _, msg = self.inbox.get_nowait()
            except stdqueue.Empty:
                return
            fit = self.runs.get(str(msg.get("run")))
            if fit is not None:
                fit.handle(msg)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(self.topic)
        with contextlib.suppress(Exception):
            self.client.close(timeout=5)


class DaskFit:
    """One run of a fit on the cluster (a ``FitHandle`` of ``speclet_core.queue.worker``)."""

    def __init__(self, executor: DaskExecutor, job: JobRecord, future: Any, run_key: str, log_path: Path) -> None:
        self.executor, self.job, self.future, self.run_key, self.log_path = executor, job, future, run_key, log_path
        self.label = f"Dask task {run_key}"
        self.address: str | None = None  # the Dask worker running it, once it said so
        self._rc: int | None = None
        self._lost: str | None = None
        self._kill_at: float | None = None

    # messages from the task
    def handle(self, msg: dict[str, Any]) -> None:
        queue, job_id, worker_id = self.executor.queue, self.job.job_id, self.executor.worker_id
        kind = msg.get("kind")
        if kind == "attach":
            address = str(msg.get("worker") or "")
            if self.address and address != self.address:
                # Dask re-ran the task itself after its worker died: that death goes through our queue instead
                self._lost = f"its Dask worker {self.address} died mid-fit"
                return
            self.address = address
            queue.attach_process(job_id, worker_id, int(msg.get("pid") or 0), host=str(msg.get("host") or ""))
        elif kind == "progress":
            queue.update_progress(
                job_id, worker_id, phase=msg.get("phase"), draws_done=int(msg.get("draws_done") or 0),
                draws_total=int(msg.get("draws_total") or 0), divergences=int(msg.get("divergences") or 0),
                eta_s=msg.get("eta_s"),
            )
        elif kind == "may_save":
            ok = self._lost is None and queue.begin_saving(job_id, worker_id)
            from distributed import Variable

            Variable(save_variable_name(self.run_key), client=self.executor.client).set("yes" if ok else "no")

    # FitHandle
    def poll(self) -> int | None:
        if self._rc is not None:
            return self._rc
        status = self.future.status
        if status == "finished":
            self.executor.pump()  # what the task sent before it returned
            result = self.future.result()
            if result.get("rerun"):
                self._lost = f"its Dask worker {self.address or '?'} died mid-fit (Dask started it again elsewhere)"
                return None
            self.address = result.get("dask_worker") or self.address
            finish = result.get("finish")
            if isinstance(finish, dict) and finish.get("status"):
                fields = {k: finish.get(k) for k in ("error", "traceback", "verdict")}
                self.executor.queue.finish(self.job.job_id, self.executor.worker_id, JobStatus(finish["status"]),
                                           **fields)
            self._rc = int(result.get("rc", 1))
        elif status == "error":
            from distributed import KilledWorker

            exc = self.future.exception()
            if isinstance(exc, KilledWorker):
                self._lost = f"the Dask workers running it died ({exc})"
                return None
            self._note(f"the Dask task failed: {type(exc).__name__}: {exc}")
            self._rc = 1
        elif status == "cancelled":
            self._rc = -int(signal.SIGKILL)
        elif self._kill_at is not None and time.monotonic() - self._kill_at > REMOTE_STOP_S:
            self._note(f"the Dask task did not stop within {REMOTE_STOP_S:.0f} s of being told to: given up")
            self.future.cancel()
            self._rc = -int(signal.SIGKILL)
        return self._rc

    def terminate(self) -> None:
        from distributed import Event

        with contextlib.suppress(Exception):
            Event(stop_event_name(self.run_key), client=self.executor.client).set()

    def kill(self) -> None:
        # the task escalates to SIGKILL by itself KILL_GRACE_S after the stop; if it does not answer, poll gives up
        self.terminate()
        self._kill_at = self._kill_at or time.monotonic()

    def release(self) -> None:
        from distributed import Event, Variable

        client = self.executor.client
        with contextlib.suppress(Exception):
            if self._rc is None:
                self.future.cancel()  # Dask must not run it again by itself
            self.future.release()
        # the "started" mark stays set (a few bytes on the scheduler): a re-run Dask starts late must still see it
        with contextlib.suppress(Exception):
            Event(stop_event_name(self.run_key), client=client).clear()
        with contextlib.suppress(Exception):
            Variable(save_variable_name(self.run_key), client=client).delete()
        self.executor.runs.pop(self.run_key, None)

    def lost(self) -> str | None:
        if self._rc is not None:
            return None
        if self._lost is None and self.address and self.address not in self.executor.live_workers:
            self._lost = f"its Dask worker {self.address} left the cluster mid-fit"
        return self._lost

    def _note(self, text: str) -> None:
        with contextlib.suppress(OSError), open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")


# --------------------------------------------------------------------------- the Dask worker's side


def run_fit_task(job_json: str, *, run_key: str, topic: str, worker_id: str, data_dir: str, memory_mb: int | None,
                 log_path: str) -> dict[str, Any]:
    """Run one fit on this Dask worker in its own child process; returns its exit status and how it ended.

    Parameters are the supervisor's: the job, this run's key (names its stop ``Event`` and save
    ``Variable``), the topic it listens on, its worker id, the shared data folder, the fit's memory limit
    (None: this machine's share per worker thread) and the fit's log file (on the shared data folder).
    """
    from distributed import Event, get_worker

    worker = get_worker()
    key = worker.get_current_task()
    host = socket.gethostname()
    result: dict[str, Any] = {"rc": EXIT_NOT_MINE, "finish": None, "host": host, "dask_worker": worker.address}
    stop = Event(stop_event_name(run_key))
    if stop.is_set():
        return result
    started = Event(started_event_name(run_key))
    if started.is_set():
        # Dask re-runs a task whose worker died; that death goes through speclet's queue instead (the
        # supervisor requeues the job and sends a new run), so this one runs nothing
        return {**result, "rerun": True}
    started.set()
    job = JobRecord.model_validate_json(job_json)
    settings = dataclasses.replace(Settings.from_env(), data_dir=Path(data_dir))
    if memory_mb is None:
        memory_mb = default_fit_memory_mb(max(1, int(worker.state.nthreads)))

    def emit(kind: str, **fields: Any) -> None:
        worker.log_event(topic, {"run": run_key, "kind": kind, **fields})

    def must_stop() -> bool:
        ts = worker.state.tasks.get(key)
        return ts is None or ts.state not in RUNNING_STATES or stop.is_set()  # released (supervisor gone) or told

    tmp_dir = Path(tempfile.mkdtemp(prefix=f"speclet-{job.job_id[:12]}-", dir=worker.local_directory))
    locked = lock_compile_folder(compile_base(settings), "dask")  # one compile folder per running fit
    env = dict(os.environ)
    env["SPECLET_DATA_DIR"] = str(settings.data_dir)
    env["TMPDIR"] = str(tmp_dir)
    if locked is not None:
        env["PYTENSOR_FLAGS"] = with_compiledir(env.get("PYTENSOR_FLAGS", ""), locked[1])
    read_fd, write_fd = os.pipe()
    cmd = [
        sys.executable, "-m", "speclet_core.queue.worker", "run-one", job.job_id, "--worker-id", worker_id,
        "--data-dir", str(settings.data_dir), "--memory-mb", str(memory_mb), "--parent-pid", str(os.getpid()),
        "--report-fd", str(write_fd),
    ]
    proc: subprocess.Popen[bytes] | None = None
    try:
        out_path = Path(log_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with open(out_path, "ab") as out:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            out.write(f"\n==== {stamp} attempt {job.attempt} on Dask worker {worker.address} ({host})\n".encode())
            out.flush()
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, env=env,
                                    pass_fds=(write_fd,), start_new_session=True)
        os.close(write_fd)
        write_fd = -1
        where = {"dask_worker": str(worker.address)}
        _answer(proc, {"job": json.loads(job_json), "where": where})
        result["rc"], result["finish"] = _relay(proc, read_fd, emit, must_stop, run_key)
    finally:
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # leftover helpers of the fit, if any
        for fd in (read_fd, write_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        shutil.rmtree(tmp_dir, ignore_errors=True)
        if locked is not None:
            locked[0].close()
    return result


def _answer(proc: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError, OSError):
        proc.stdin.write((json.dumps(message) + "\n").encode())
        proc.stdin.flush()


def _relay(proc: subprocess.Popen[bytes], read_fd: int, emit: Any, must_stop: Any,
           run_key: str) -> tuple[int, dict[str, Any] | None]:
    """Pass the child's lines on until it exits; stop it when told. Returns (exit status, its finish line)."""
    buffer = b""
    finish: dict[str, Any] | None = None
    eof = False
    term_at: float | None = None
    exited_at: float | None = None
    next_check = 0.0
    while True:
        if not eof:
            ready, _, _ = select.select([read_fd], [], [], 0.2)
            if ready:
                chunk = os.read(read_fd, 1 << 16)
                eof = not chunk
                buffer += chunk
        else:
            time.sleep(0.05)
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            kind = msg.pop("kind", None)
            if kind == "finish":
                finish = msg
            elif kind == "may_save":
                emit("may_save")
                _answer(proc, {"ok": _wait_for_save_answer(run_key, must_stop)})
            elif kind in {"attach", "progress"}:
                emit(kind, **msg)
        now = time.monotonic()
        if now >= next_check:
            next_check = now + STOP_POLL_S
            if term_at is None and proc.poll() is None and must_stop():
                term_at = now
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        if term_at is not None and now - term_at > KILL_GRACE_S and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        rc = proc.poll()
        if rc is not None and eof:
            return rc, finish
        if rc is not None and exited_at is None:
            exited_at = now
        if exited_at is not None and now - exited_at > KILL_GRACE_S:  # a helper holds the pipe open: stop reading
            return rc if rc is not None else 1, finish


def _wait_for_save_answer(run_key: str, must_stop: Any) -> bool:
    """The supervisor's answer to "may I save?" (its ``begin_saving``); no when stopped or unanswered."""
    from distributed import Variable

    variable = Variable(save_variable_name(run_key))
    deadline = time.monotonic() + SAVE_ANSWER_TIMEOUT_S
    while time.monotonic() < deadline:
        if must_stop():
            return False
        try:
            return bool(variable.get(timeout=STOP_POLL_S) == "yes")
        except TimeoutError:
            continue
    return False
