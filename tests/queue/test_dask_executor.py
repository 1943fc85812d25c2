"""Fits on a real local Dask cluster: a ``dask scheduler`` and two ``dask worker --nthreads 1`` processes,
a speclet worker with ``SPECLET_DASK_SCHEDULER`` set, fits submitted through the CLI. They run on the Dask
workers (the job and the stored provenance say so), are stored and verify, identical submissions run
once, cancel stops a fit within seconds, and a Dask worker killed mid-fit → the fit is retried on the
other worker and completes with nothing half-written left."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import xarray as xr

from speclet_core.data.synthetic import simulate_screen
from speclet_core.errors import SettingsError
from speclet_core.queue.jobs import JobQueue, worker_status
from speclet_core.queue.records import Executor, JobRecord, JobStatus
from speclet_core.records import FitPhase
from speclet_core.settings import PROJECT_ROOT, Settings

TINY = {"n_genes": 6, "n_cell_lines": 12, "n_lineages": 3, "seed": 7, "sgrnas_per_gene": (2, 3)}
QUICK = ["--method", "quick", "--chains", "2", "--tune", "100", "--draws", "100"]
HEARTBEAT_TIMEOUT_S = 4.0


@dataclass
class Cluster:
    data_dir: Path
    screen: Path
    address: str
    workers: dict[str, subprocess.Popen[bytes]]  # Dask worker name → process
    speclet_worker: subprocess.Popen[bytes]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECLET_")}
    env.update({"SPECLET_DATA_DIR": str(data_dir), "SPECLET_HEARTBEAT_TIMEOUT_S": str(HEARTBEAT_TIMEOUT_S),
                "PYTHONPATH": str(PROJECT_ROOT)})
    env.update(extra)
    return env


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S)


def _wait(predicate: Callable[[], object], what: str, timeout_s: float = 60) -> object:
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def _wait_job(queue: JobQueue, job_id: str, predicate: Callable[[JobRecord], bool], timeout_s: float = 240) -> JobRecord:
    deadline = time.monotonic() + timeout_s
    while True:
        job = queue.get(job_id)
        if predicate(job):
            return job
        assert time.monotonic() < deadline, f"timed out; job is {job.status} ({job.phase}), error {job.error}"
        time.sleep(0.1)


def _cli(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "speclet_core", *args], env=_env(data_dir), cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _fit(cluster: Cluster, *args: str, wait: bool = False) -> subprocess.Popen[str]:
    return _cli(cluster.data_dir, "fit", "--data", str(cluster.screen), "--model", "gene", *args,
                *(["--wait"] if wait else []))


def _dask_workers(address: str) -> dict[str, dict]:
    from distributed import Client

    with Client(address, timeout=10, set_as_default=False) as client:
        return dict(client.scheduler_info(n_workers=-1)["workers"])


def _store(data_dir: Path):  # type: ignore[no-untyped-def]
    from model_store import ModelStore

    return ModelStore(data_dir / "fits")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    from speclet_core.data.demo import write_synthetic

    root = tmp_path_factory.mktemp("dask")
    data_dir = root / "data"
    screen, _ = write_synthetic(simulate_screen(**TINY), data_dir / "tiny.csv")
    env = _env(data_dir)
    procs: list[subprocess.Popen[bytes]] = []
    logs = root / "logs"
    logs.mkdir()

    def start(name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(logs / f"{name}.log", "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", *args], env=env, cwd=PROJECT_ROOT, stdout=out,
                                    stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    scheduler_file = root / "scheduler.json"
    start("scheduler", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
          "--scheduler-file", str(scheduler_file))
    try:
        _wait(scheduler_file.exists, "the Dask scheduler")
        address = json.loads(scheduler_file.read_text())["address"]
        workers = {
            name: start(name, "dask", "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                        "--name", name, "--local-directory", str(root / name))
            for name in ("dask-a", "dask-b")
        }
        _wait(lambda: len(_dask_workers(address)) == 2, "two Dask workers")
        env["SPECLET_DASK_SCHEDULER"] = address  # the speclet worker sends its fits to the cluster
        proc = start("speclet-worker", "speclet_core", "worker")
        settings = _settings(data_dir)
        _wait(lambda: any(w["pid"] == proc.pid and w["alive"] and w.get("executor") == "dask"
                          for w in worker_status(settings)["workers"]), "the speclet worker on Dask")
        yield Cluster(data_dir, screen, address, workers, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()


def _provenance(data_dir: Path, fit_id: str) -> dict[str, str]:
    return dict(_store(data_dir).get(fit_id).manifest.provenance)


# --------------------------------------------------------------------------- settings (fast)


def test_dask_settings_are_checked_at_start() -> None:
    assert Settings(dask_resources="GPU=1, fast_disk=0.5").dask_fit_resources() == {"GPU": 1.0, "fast_disk": 0.5}
    assert Settings().dask_fit_resources() == {} and Settings().dask_scheduler == ""
    with pytest.raises(SettingsError, match="NAME=AMOUNT"):
        Settings(dask_resources="GPU")
    with pytest.raises(SettingsError, match="tcp://"):
        Settings.from_env({"SPECLET_DASK_SCHEDULER": "head:8786"})


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run([sys.executable, "-m", "speclet_core", "worker"], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=120,
                          env=_env(tmp_path, SPECLET_DASK_SCHEDULER=f"tcp://127.0.0.1:{port}"))
    assert proc.returncode == 2, proc.stderr
    assert f"cannot reach the Dask scheduler at SPECLET_DASK_SCHEDULER=tcp://127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- a real cluster (slow)


@pytest.mark.slow
def test_fits_run_on_the_dask_workers_and_are_stored(cluster: Cluster) -> None:
    clis = [_fit(cluster, *QUICK, "--seed", str(seed), wait=True) for seed in (1, 2)]
    outs = [c.communicate(timeout=300) for c in clis]
    assert [c.returncode for c in clis] == [0, 0], [e for _, e in outs]
    assert all("done: fit stored" in err for _, err in outs)
    fit_ids = [out.strip().splitlines()[-1] for out, _ in outs]
    queue = JobQueue.from_settings(_settings(cluster.data_dir))
    live = set(_dask_workers(cluster.address))
    ran_on = set()
    for fit_id in fit_ids:
        job = queue.get(fit_id)
        assert job.status == JobStatus.DONE and job.executor == Executor.DASK
        assert job.host == socket.gethostname() and job.verdict in {"converged", "look_closer", "do_not_trust"}
        prov = _provenance(cluster.data_dir, fit_id)
        assert prov["executor"] == "dask" and prov["host"] == socket.gethostname()
        assert prov["dask_worker"] in live
        ran_on.add(prov["dask_worker"])
        path = _store(cluster.data_dir).get(fit_id).posterior_path
        with xr.open_dataset(path) as root:  # the NetCDF's own attributes say where it ran too
            assert root.attrs["executor"] == "dask" and root.attrs["dask_worker"] == prov["dask_worker"]
    assert len(ran_on) == 2  # submitted together, they ran side by side on the two workers
    assert _store(cluster.data_dir).verify() == []


@pytest.mark.slow
def test_identical_submissions_run_once_on_the_cluster(cluster: Cluster) -> None:
    args = [*QUICK, "--seed", "11"]
    clis = [_fit(cluster, *args) for _ in range(3)]
    outs = [c.communicate(timeout=120) for c in clis]
    assert [c.returncode for c in clis] == [0, 0, 0], [e for _, e in outs]
    ids = {o.strip().splitlines()[-1] for o, _ in outs}
    assert len(ids) == 1
    fit_id = ids.pop()
    assert sum("queued: job" in o for o, _ in outs) == 1
    queue = JobQueue.from_settings(_settings(cluster.data_dir))
    job = _wait_job(queue, fit_id, lambda j: not j.active)
    assert job.status == JobStatus.DONE and job.attempt == 1 and job.requeues == 0
    log_text = (cluster.data_dir / "logs" / "fits" / f"{fit_id}.log").read_text()
    assert log_text.count("on Dask worker") == 1  # one run on the cluster, not three
    again = _fit(cluster, *args)
    out, _ = again.communicate(timeout=120)
    assert again.returncode == 0 and "already stored" in out


@pytest.mark.slow
def test_cancel_stops_a_fit_on_a_dask_worker_within_seconds(cluster: Cluster) -> None:
    queue = JobQueue.from_settings(_settings(cluster.data_dir))
    waiting = _fit(cluster, "--method", "nuts", "--tune", "3000", "--draws", "20000", "--seed", "22", wait=True)
    deadline = time.monotonic() + 180
    while not (running := [j for j in queue.list(status="running") if j.request.seed == 22]) or \
            running[0].process_id is None or running[0].phase in {None, FitPhase.LOADING}:
        assert time.monotonic() < deadline and waiting.poll() is None, "the fit never got going"
        time.sleep(0.1)
    job = running[0]
    fit_process = psutil.Process(job.process_id)  # the child of the Dask worker (one machine here)
    assert fit_process.parent().pid in {p.pid for p in cluster.workers.values()}
    t = time.monotonic()
    cancel = _cli(cluster.data_dir, "jobs", "cancel", job.job_id)
    out, err = cancel.communicate(timeout=60)
    assert cancel.returncode == 0, err
    job = _wait_job(queue, job.job_id, lambda j: not j.active, timeout_s=30)
    took = time.monotonic() - t
    assert job.status == JobStatus.CANCELLED and took < 10, (job.status, took)
    _wait(lambda: not fit_process.is_running() or fit_process.status() == psutil.STATUS_ZOMBIE, "the fit to stop", 5)
    assert not _store(cluster.data_dir).exists(job.job_id)
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 1 and "error: fit cancelled" in err


@pytest.mark.slow
def test_an_atlas_is_one_stored_fit_per_lineage_and_runs_once(cluster: Cluster) -> None:
    from speclet_core.data.demo import write_synthetic

    synthetic = simulate_screen(n_genes=4, n_cell_lines=12, n_lineages=4, seed=3, sgrnas_per_gene=(2, 2))
    screen, _ = write_synthetic(synthetic, cluster.data_dir / "four.csv")
    args = ["atlas", "--data", str(screen), "--model", "gene", *QUICK]
    cli = _cli(cluster.data_dir, *args, "--wait")
    out, err = cli.communicate(timeout=300)
    assert cli.returncode == 0, err
    assert "done: all 4 fits stored" in err and "atlas: 0/4 stored" in err
    atlas_id = out.strip().splitlines()[-1]
    record = json.loads((cluster.data_dir / "atlases" / f"{atlas_id}.json").read_text())
    assert sorted(record["fits"]) == sorted(synthetic.data["lineage"].unique()) and len(record["fits"]) == 4
    store = _store(cluster.data_dir)
    for lineage, fit_id in record["fits"].items():
        fit = store.get(fit_id)
        assert fit.manifest.request.selection["lineages"] == [lineage]
        assert fit.manifest.provenance["executor"] == "dask"
    assert store.verify() == []
    again = _cli(cluster.data_dir, *args)
    out2, err2 = again.communicate(timeout=120)
    assert again.returncode == 0, err2
    assert out2.strip().splitlines()[-1] == atlas_id and out2.count("already stored") == 4


@pytest.mark.slow
def test_a_dask_worker_killed_mid_fit_is_retried_elsewhere(cluster: Cluster) -> None:
    """Last in this file: it leaves the cluster with one worker."""
    queue = JobQueue.from_settings(_settings(cluster.data_dir))
    submit = _fit(cluster, "--method", "nuts", "--chains", "2", "--tune", "300", "--draws", "300", "--seed", "33")
    out, err = submit.communicate(timeout=60)
    assert submit.returncode == 0, err
    fit_id = out.strip().splitlines()[-1]
    job = _wait_job(queue, fit_id, lambda j: j.process_id is not None and j.phase not in {None, FitPhase.LOADING})
    fit_process = psutil.Process(job.process_id)
    victim = next(name for name, p in cluster.workers.items() if p.pid == fit_process.parent().pid)
    victim_address = next(a for a, w in _dask_workers(cluster.address).items() if w.get("name") == victim)
    cluster.workers[victim].send_signal(signal.SIGKILL)
    cluster.workers[victim].wait()
    fit_process.wait(timeout=10)  # the fit dies with its Dask worker
    done = _wait_job(queue, fit_id, lambda j: not j.active, timeout_s=300)
    assert done.status == JobStatus.DONE and done.requeues == 1 and done.attempt == 1, done.error
    prov = _provenance(cluster.data_dir, fit_id)
    assert prov["executor"] == "dask" and prov["dask_worker"] != victim_address
    store = _store(cluster.data_dir)
    assert store.verify() == []
    incoming = cluster.data_dir / "fits" / ".incoming"
    assert not incoming.exists() or [p.name for p in incoming.iterdir() if not p.name.endswith(".lock")] == []
    log_text = (cluster.data_dir / "logs" / "fits" / f"{fit_id}.log").read_text()
    assert log_text.count("on Dask worker") == 2
