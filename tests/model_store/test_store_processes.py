"""Real processes: a writer killed with SIGKILL mid-put, and two writers of the same fit id at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import model_store.store as store_module
from model_store import ModelStore
from model_store.writer import TEST_PAUSE_ENV

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

# The child imports everything, says "ready", waits for the go file, then puts one small fit.
CHILD = f"""
import json, sys, time
from pathlib import Path
sys.path[:0] = [{str(ROOT)!r}, {str(HERE)!r}]
from store_helpers import put_example
from model_store import ModelStore
store, go = ModelStore(sys.argv[1]), Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.01)
fit_id, manifest = put_example(store, seed=1)
print(json.dumps({{"fit_id": fit_id, "manifest_sha256": manifest["manifest_sha256"]}}), flush=True)
"""


def _start_writer(root: Path, go: Path, pause_s: float) -> subprocess.Popen[str]:
    env = {**os.environ, TEST_PAUSE_ENV: str(pause_s)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(go)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", proc.stderr.read() if proc.stderr else line
    return proc


def _wait_for_pause(proc: subprocess.Popen[str]) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if TEST_PAUSE_ENV in line:
            return
    raise AssertionError(f"the writer ended before the test hook (exit status {proc.wait()})")


def test_writer_killed_mid_put_leaves_nothing_visible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, go = tmp_path / "fits", tmp_path / "go"
    proc = _start_writer(root, go, pause_s=120)
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


def test_two_writers_of_the_same_fit_leave_one_intact_fit(tmp_path: Path) -> None:
    root, go = tmp_path / "fits", tmp_path / "go"
    procs = [_start_writer(root, go, pause_s=1.0) for _ in range(2)]
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert TEST_PAUSE_ENV in err  # both really wrote a copy
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0] == results[1]  # the loser returns the winner's manifest
    store = ModelStore(root)
    assert store.fit_ids() == [results[0]["fit_id"]]
    assert store.verify() == []
    assert store.manifest(results[0]["fit_id"])["manifest_sha256"] == results[0]["manifest_sha256"]
    assert list((root / ".incoming").iterdir()) == []  # the loser removed its copy and its lock
    with store.get(results[0]["fit_id"]) as fit:
        assert fit.draws("gene_effect", gene="KRAS").shape == (2, 50)


def test_hook_is_off_unless_set() -> None:
    assert TEST_PAUSE_ENV not in os.environ
    started = time.perf_counter()
    from model_store.writer import _pause_for_tests

    _pause_for_tests()
    assert time.perf_counter() - started < 0.5
