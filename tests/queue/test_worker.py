"""Real worker processes (no mocks): submit → progress → stored fit; three identical submissions →
one fit; SIGKILL the worker mid-fit → the next worker completes it; cancel; failures; timeouts;
bad requests refused at submit. ``serve`` has its own tests (test_serve.py)."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from speclet_core.data.synthetic import simulate_screen
from speclet_core.queue.access import LOCAL_ADMIN
from speclet_core.queue.jobs import JobQueue, worker_status
from speclet_core.queue.records import JobRecord, JobStatus
from speclet_core.records import FitPhase, SamplerSettings
from speclet_core.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.slow

TINY = {"n_genes": 6, "n_cell_lines": 12, "n_lineages": 3, "seed": 7, "sgrnas_per_gene": (2, 3)}
QUICK = ["--method", "quick", "--chains", "2", "--tune", "100", "--draws", "100"]
NUTS = ["--method", "nuts", "--chains", "2", "--tune", "150", "--draws", "150"]
HEARTBEAT_TIMEOUT_S = 4.0


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECLET_")}
    env.update({"SPECLET_DATA_DIR": str(data_dir), "SPECLET_HEARTBEAT_TIMEOUT_S": str(HEARTBEAT_TIMEOUT_S),
                "PYTHONPATH": str(PROJECT_ROOT)})
    env.update(extra)
    return env


def _start_worker(data_dir: Path, *args: str, **extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "speclet_core", "worker", *args], env=_env(data_dir, **extra), cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    settings = _settings(data_dir)
    deadline = time.monotonic() + 60
    while not any(w["pid"] == proc.pid and w["alive"] for w in worker_status(settings)["workers"]):
        assert proc.poll() is None, f"the worker exited with status {proc.returncode}"
        assert time.monotonic() < deadline, "the worker did not report itself alive within 60 s"
        time.sleep(0.1)
    return proc


def _stop_worker(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=15)


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S)


def _fit_cli(data_dir: Path, screen: Path, *args: str, wait: bool = False) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "speclet_core", "fit", "--data", str(screen), "--model", "gene", *args]
    if wait:
        cmd.append("--wait")
    return subprocess.Popen(cmd, env=_env(data_dir), cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(
    queue: JobQueue, job_id: str, predicate: Callable[[JobRecord], bool], timeout_s: float = 180
) -> JobRecord:
    deadline = time.monotonic() + timeout_s
    while True:
        job = queue.get(job_id)
        if predicate(job):
            return job
        assert time.monotonic() < deadline, f"timed out; job is {job.status} ({job.phase}), error {job.error}"
        time.sleep(0.05)


def _store(data_dir: Path):  # type: ignore[no-untyped-def]
    from model_store import ModelStore

    return ModelStore(data_dir / "fits")


def _request(screen: Path, data_dir: Path, seed: int = 1, **sampler: object):  # type: ignore[no-untyped-def]
    from speclet_core.fitting.request import prepare_request

    base = {"method": "quick", "chains": 2, "tune": 100, "draws": 100}
    return prepare_request(screen, "gene", sampler=SamplerSettings(**{**base, **sampler}), seed=seed,
                           settings=_settings(data_dir))


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, subprocess.Popen[bytes]]]:
    """One data folder, one tiny screen and one worker process shared by the tests that only submit."""
    from speclet_core.data.demo import write_synthetic

    data_dir = tmp_path_factory.mktemp("shared-data")
    screen, _ = write_synthetic(simulate_screen(**TINY), data_dir / "tiny.csv")
    worker = _start_worker(data_dir)
    yield data_dir, screen, worker
    assert _stop_worker(worker) == 0


# --------------------------------------------------------------------------- the happy path


def test_fit_wait_shows_progress_and_stores_the_fit(shared) -> None:  # type: ignore[no-untyped-def]
    data_dir, screen, _ = shared
    cli = _fit_cli(data_dir, screen, *NUTS, wait=True)
    queue = JobQueue.from_settings(_settings(data_dir))
    seen: list[tuple[str, str | None, int, int]] = []
    while cli.poll() is None:
        jobs = queue.list(limit=5)
        if jobs:
            j = jobs[0]
            point = (str(j.status), str(j.phase) if j.phase else None, j.draws_done, j.draws_total)
            if not seen or seen[-1] != point:
                seen.append(point)
        time.sleep(0.05)
    out, err = cli.communicate()
    assert cli.returncode == 0, err
    fit_id = out.strip().splitlines()[-1]
    job = queue.get(fit_id)
    assert job.status == JobStatus.DONE and job.verdict in {"converged", "look_closer", "do_not_trust"}
    assert job.started_at is not None and job.finished_at is not None and job.finished_at > job.started_at
    assert "done: fit stored" in err
    store = _store(data_dir)
    assert store.exists(fit_id) and store.verify() == []
    assert store.get(fit_id).manifest.fit_id == fit_id
    # progress advanced through the phases, in order, and draws were counted
    phases = [p for _, p, _, _ in seen if p is not None]
    order = [p.value for p in FitPhase]
    assert len(set(phases)) >= 2, seen
    assert [order.index(p) for p in phases] == sorted(order.index(p) for p in phases), seen
    assert any(done > 0 and total > 0 for _, p, done, total in seen if p in {"tuning", "sampling"}), seen


def test_three_identical_submissions_make_one_fit(shared) -> None:  # type: ignore[no-untyped-def]
    data_dir, screen, _ = shared
    args = [*QUICK, "--seed", "11"]
    clis = [_fit_cli(data_dir, screen, *args) for _ in range(3)]
    outs = [c.communicate(timeout=120) for c in clis]
    assert [c.returncode for c in clis] == [0, 0, 0], [e for _, e in outs]
    ids = {o.strip().splitlines()[-1] for o, _ in outs}
    assert len(ids) == 1
    fit_id = ids.pop()
    assert sum("queued: job" in o for o, _ in outs) == 1  # the other two were told it is already queued
    queue = JobQueue.from_settings(_settings(data_dir))
    job = _wait_for(queue, fit_id, lambda j: not j.active)
    assert job.status == JobStatus.DONE and job.attempt == 1 and job.history == ()
    assert [m.fit_id for m in _store(data_dir).list()].count(fit_id) == 1
    again = _fit_cli(data_dir, screen, *args)
    out, _ = again.communicate(timeout=120)
    assert again.returncode == 0 and "already stored" in out and out.strip().splitlines()[-1] == fit_id


def test_a_fit_that_raises_shows_its_error_in_the_job(shared) -> None:  # type: ignore[no-untyped-def]
    data_dir, _, _ = shared
    from speclet_core.data.demo import write_synthetic

    screen, _ = write_synthetic(simulate_screen(**TINY), data_dir / "changing.csv")
    request = _request(screen, data_dir, seed=21)
    write_synthetic(simulate_screen(**{**TINY, "seed": 8}), screen)  # the file changes after the request
    queue = JobQueue.from_settings(_settings(data_dir))
    job, stored = queue.submit(request, "test")
    assert not stored
    job = _wait_for(queue, job.job_id, lambda j: not j.active)
    assert job.status == JobStatus.FAILED
    assert "changed" in job.error and "Traceback" in job.traceback
    assert not _store(data_dir).exists(job.job_id)


def test_cancel_a_running_fit_stops_it_and_stores_nothing(shared) -> None:  # type: ignore[no-untyped-def]
    data_dir, screen, _ = shared
    queue = JobQueue.from_settings(_settings(data_dir))
    waiting = _fit_cli(data_dir, screen, "--method", "nuts", "--tune", "2000", "--draws", "5000", "--seed", "22",
                       wait=True)
    deadline = time.monotonic() + 120
    while not (running := [j for j in queue.list(status="running") if j.request.seed == 22]) or \
            running[0].process_id is None or running[0].phase == FitPhase.LOADING:
        assert time.monotonic() < deadline and waiting.poll() is None, "the fit never got going"
        time.sleep(0.05)
    job = running[0]
    fit_process = psutil.Process(job.process_id)
    t = time.monotonic()
    cancel = subprocess.run([sys.executable, "-m", "speclet_core", "jobs", "cancel", job.job_id], env=_env(data_dir),
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert cancel.returncode == 0 and "stopping" in cancel.stdout
    job = _wait_for(queue, job.job_id, lambda j: not j.active, timeout_s=30)
    took = time.monotonic() - t
    assert job.status == JobStatus.CANCELLED and took < 10
    assert not fit_process.is_running() or fit_process.status() == psutil.STATUS_ZOMBIE
    assert not _store(data_dir).exists(job.job_id)
    assert _store(data_dir).verify() == []
    assert not (data_dir / "tmp" / job.job_id).exists()  # its temp folder went with it
    out, err = waiting.communicate(timeout=30)  # `fit --wait` reports the cancellation and fails
    assert waiting.returncode == 1 and "error: fit cancelled" in err
    assert out.strip().splitlines()[-1] == job.job_id


# --------------------------------------------------------------------------- crashes and limits


def test_sigkill_the_worker_mid_fit_and_the_next_one_completes_it(tmp_path: Path) -> None:
    from speclet_core.data.demo import write_synthetic

    data_dir = tmp_path / "data"
    screen, _ = write_synthetic(simulate_screen(**TINY), data_dir / "tiny.csv")
    first = _start_worker(data_dir)
    queue = JobQueue.from_settings(_settings(data_dir))
    job, _ = queue.submit(_request(screen, data_dir, draws=150), "test")
    job = _wait_for(queue, job.job_id, lambda j: j.process_id is not None)
    fit_process = psutil.Process(job.process_id)
    first.kill()
    first.wait()
    fit_process.wait(timeout=10)  # the fit dies with its worker: never two workers on one fit
    second = _start_worker(data_dir)
    try:
        done = _wait_for(queue, job.job_id, lambda j: not j.active)
    finally:
        assert _stop_worker(second) == 0
    assert done.status == JobStatus.DONE and done.requeues == 1 and done.attempt == 1
    assert done.worker_id != job.worker_id
    store = _store(data_dir)
    assert store.exists(job.job_id) and store.verify() == []
    with JobQueue.from_settings(_settings(data_dir)) as reopened:  # history intact after the "reboot"
        assert [j.job_id for j in reopened.list()] == [job.job_id]


def _in_process_worker(settings: Settings) -> tuple[object, threading.Thread]:
    from speclet_core.queue.worker import Worker

    worker = Worker(settings, poll_s=0.05)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return worker, thread


def test_a_fit_past_its_timeout_is_stopped_and_failed(tmp_path: Path) -> None:
    from speclet_core.data.demo import write_synthetic

    data_dir = tmp_path / "data"
    screen, _ = write_synthetic(simulate_screen(**TINY), data_dir / "tiny.csv")
    settings = dataclasses.replace(_settings(data_dir), fit_timeout_s=2)
    worker, thread = _in_process_worker(settings)
    queue = JobQueue.from_settings(settings)
    try:
        job, _ = queue.submit(_request(screen, data_dir, method="nuts", tune=2000, draws=5000), "test")
        job = _wait_for(queue, job.job_id, lambda j: not j.active, timeout_s=30)
    finally:
        worker.stop()  # type: ignore[attr-defined]
        thread.join(timeout=15)
    assert job.status == JobStatus.FAILED and "SPECLET_FIT_TIMEOUT_S=2" in job.error
    assert job.finished_at - job.started_at < 2 + 3 + 2  # timeout + SIGTERM grace + polling
    assert not _store(data_dir).exists(job.job_id)
    assert not (data_dir / "tmp" / job.job_id).exists()  # its temp folder went with it


def test_a_worker_runs_concurrency_fits_at_once_each_with_its_own_compile_folder(tmp_path: Path) -> None:
    from speclet_core.data.demo import write_synthetic
    from speclet_core.queue.worker import Worker

    data_dir = tmp_path / "data"
    screen, _ = write_synthetic(simulate_screen(**TINY), data_dir / "tiny.csv")
    settings = _settings(data_dir)
    worker = Worker(settings, concurrency=2, poll_s=0.05)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    queue = JobQueue.from_settings(settings)
    try:
        requests = [_request(screen, data_dir, seed=s, method="nuts", draws=5000) for s in (41, 42, 43)]
        jobs = [queue.submit(r, "t")[0] for r in requests]
        running = [_wait_for(queue, j.job_id, lambda j: j.process_id is not None, timeout_s=60) for j in jobs[:2]]
        assert queue.get(jobs[2].job_id).status == JobStatus.QUEUED  # the third waits for a free slot
        flags = set()
        for job in running:
            environ = psutil.Process(job.process_id).environ()
            flags.add(environ["PYTENSOR_FLAGS"])
            assert environ["SPECLET_DATA_DIR"] == str(data_dir)
        assert len(flags) == 2 and all("base_compiledir=" in f for f in flags)
        for job in jobs:
            queue.cancel(job.job_id, by=LOCAL_ADMIN)
    finally:
        worker.stop()
        thread.join(timeout=15)
    assert [queue.get(j.job_id).status for j in jobs] == [JobStatus.CANCELLED] * 3


def test_a_fit_over_its_memory_limit_fails_with_a_memory_message(tmp_path: Path) -> None:
    from speclet_core.data.demo import write_synthetic

    data_dir = tmp_path / "data"
    screen, _ = write_synthetic(simulate_screen(**TINY), data_dir / "tiny.csv")
    settings = dataclasses.replace(_settings(data_dir), fit_memory_mb=600)
    worker, thread = _in_process_worker(settings)
    queue = JobQueue.from_settings(settings)
    try:
        job, _ = queue.submit(_request(screen, data_dir, seed=31), "test")
        job = _wait_for(queue, job.job_id, lambda j: not j.active, timeout_s=60)
    finally:
        worker.stop()  # type: ignore[attr-defined]
        thread.join(timeout=15)
    assert job.status == JobStatus.FAILED
    assert "memory" in job.error and "SPECLET_FIT_MEMORY_MB=600" in job.error
    assert worker_status(settings)["workers"] == []  # the worker itself survived and left cleanly
    assert not thread.is_alive()


def test_stopping_a_worker_puts_its_running_fit_back_in_the_queue(tmp_path: Path) -> None:
    from speclet_core.data.demo import write_synthetic

    data_dir = tmp_path / "data"
    screen, _ = write_synthetic(simulate_screen(**TINY), data_dir / "tiny.csv")
    worker = _start_worker(data_dir)
    queue = JobQueue.from_settings(_settings(data_dir))
    job, _ = queue.submit(_request(screen, data_dir, method="nuts", tune=2000, draws=5000), "test")
    job = _wait_for(queue, job.job_id, lambda j: j.process_id is not None)
    fit_process = psutil.Process(job.process_id)
    t = time.monotonic()
    assert _stop_worker(worker) == 0
    assert time.monotonic() - t < 10
    fit_process.wait(timeout=5)
    back = queue.get(job.job_id)
    assert back.status == JobStatus.QUEUED and back.requeues == 0 and back.worker_id is None
    assert worker_status(_settings(data_dir))["alive"] is False


# --------------------------------------------------------------------------- refused at submit


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--model", "no_such_model"], "no_such_model"),
        (["--model", "gene", "--genes", "KRAS,NOTAGENE"], "NOTAGENE"),
        (["--model", "gene", "--genes", ","], "no genes"),
        (["--model", "gene", "--lineages", "nowhere"], "nowhere"),
    ],
)
def test_bad_requests_are_refused_at_submit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    from speclet_core.cli.main import main
    from speclet_core.data.demo import write_synthetic

    screen, _ = write_synthetic(simulate_screen(**TINY), tmp_path / "tiny.csv")
    code = main(["fit", "--data", str(screen), *args, *QUICK])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("error: ") and expected in err and "Traceback" not in err
    assert JobQueue.from_settings(Settings.from_env()).list() == []


def test_an_empty_selection_is_refused_at_submit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from speclet_core.cli.main import main
    from speclet_core.data.demo import write_synthetic
    from speclet_core.data.screen import load_screen

    screen, _ = write_synthetic(simulate_screen(**TINY), tmp_path / "tiny.csv")
    data = load_screen(screen).data
    lineage = sorted(data["lineage"].unique())[0]
    other_cell_line = sorted(data.loc[data["lineage"] != lineage, "depmap_id"].unique())[0]
    code = main(["fit", "--data", str(screen), "--model", "gene", "--lineages", lineage,
                 "--cell-lines", other_cell_line, *QUICK])
    _, err = capsys.readouterr()
    assert code == 2 and "no readings" in err
    assert JobQueue.from_settings(Settings.from_env()).list() == []


def test_memory_limit_symptoms_are_called_out_of_memory() -> None:
    from speclet_core.queue.worker import _out_of_memory

    assert _out_of_memory(MemoryError())
    assert _out_of_memory(OSError("libfoo.so: failed to map segment from shared object"))
    # a C extension refused memory under RLIMIT_AS: only a symptom of memory when a limit is set
    assert _out_of_memory(SystemError("error return without exception set"), limited=True)
    assert not _out_of_memory(SystemError("error return without exception set"))
    assert not _out_of_memory(ValueError("bad value"), limited=True)
