"""Real processes: a writer killed with SIGKILL mid-put, and two writers of the same fit id at once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import model_store.store as store_module
import model_store.writer as writer_module
from model_store import ModelStore

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

PAUSED = "model_store test writer: paused after the NetCDF"
# The child imports everything, sets the writer's hook to pause after the NetCDF, says "ready",
# waits for the go file, then puts one small fit.
CHILD = f"""
import json, sys, time
from pathlib import Path
sys.path[:0] = [{str(ROOT)!r}, {str(HERE)!r}]
from store_helpers import put_example
from model_store import ModelStore
import model_store.writer
store, go, pause_s = ModelStore(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])

def pause(path):
    print({PAUSED!r}, flush=True, file=sys.stderr)
    time.sleep(pause_s)

model_store.writer.after_netcdf = pause
print("ready", flush=True)
while not go.exists():
    time.sleep(0.01)
fit_id, manifest = put_example(store, seed=1)
print(json.dumps({{"fit_id": fit_id, "manifest_sha256": manifest.manifest_sha256}}), flush=True)
"""


@pytest.fixture
def start_writer() -> Iterator[Callable[[Path, Path, float], subprocess.Popen[str]]]:
    """Start writer processes that pause ``pause_s`` seconds in the middle of ``put``; killed at the end."""
    procs: list[subprocess.Popen[str]] = []

    def start(root: Path, go: Path, pause_s: float) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(go), str(pause_s)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read() if proc.stderr else line
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait_for_pause(proc: subprocess.Popen[str]) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if PAUSED in line:
            return
    raise AssertionError(f"the writer ended before the test hook (exit status {proc.wait()})")


def test_writer_killed_mid_put_leaves_nothing_visible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      start_writer: Callable[..., subprocess.Popen[str]]) -> None:
    root, go = tmp_path / "fits", tmp_path / "go"
    proc = start_writer(root, go, pause_s=120)
    try:
        go.touch()
        _wait_for_pause(proc)  # the NetCDF is written; summaries and manifest are not
        store = ModelStore(root)
        leftovers = [p for p in (root / ".incoming").iterdir() if p.is_dir()]
        assert len(leftovers) == 1 and (leftovers[0] / "posterior.nc").exists()
        monkeypatch.setattr(store_module, "STALE_AFTER_S", 0.0)
        assert store.clean_incomplete() == 0  # a live writer's folder is never removed
        assert leftovers[0].exists()
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert store.fit_ids() == [] and store.list() == []
    assert store.verify() == []
    from store_helpers import make_request, put_example

    assert not store.exists(make_request(seed=1).fit_id)
    fit_id, manifest = put_example(store, seed=1)  # a later put succeeds (and cleans the dead writer's folder)
    assert store.exists(fit_id) and store.verify() == []
    assert not leftovers[0].exists()
    assert [p.name for p in (root / ".incoming").iterdir()] == []


def test_two_writers_of_the_same_fit_leave_one_intact_fit(tmp_path: Path,
                                                          start_writer: Callable[..., subprocess.Popen[str]]) -> None:
    root, go = tmp_path / "fits", tmp_path / "go"
    procs = [start_writer(root, go, pause_s=1.0) for _ in range(2)]
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert PAUSED in err  # both really wrote a copy
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0] == results[1]  # the loser returns the winner's manifest
    store = ModelStore(root)
    assert store.fit_ids() == [results[0]["fit_id"]]
    assert store.verify() == []
    assert store.manifest(results[0]["fit_id"]).manifest_sha256 == results[0]["manifest_sha256"]
    assert list((root / ".incoming").iterdir()) == []  # the loser removed its copy and its lock
    with store.get(results[0]["fit_id"]) as fit:
        assert fit.draws("gene_effect", gene="KRAS").shape == (2, 50)


def test_hook_is_off_unless_set(tmp_path: Path) -> None:
    """The pause exists only in the test writers above: a put in this process never stops."""
    from store_helpers import put_example

    assert writer_module.after_netcdf is None
    started = time.perf_counter()
    put_example(ModelStore(tmp_path / "fits"), seed=3)
    assert writer_module.after_netcdf is None and time.perf_counter() - started < 60
