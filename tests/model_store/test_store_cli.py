"""``python -m speclet_core store …`` as a person or a script runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from store_helpers import DIAGNOSTICS, GENES, put_example

from model_store import ModelStore
from speclet_core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def run_store(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "speclet_core", "store", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_list_show_verify_delete(_isolated_data_dir: Path) -> None:
    store = ModelStore(Settings.from_env().fits_dir)
    r = run_store("list")
    assert r.returncode == 0 and r.stdout == "" and "no stored fits" in r.stderr
    ok_id, _ = put_example(store, seed=1)
    flagged_id, _ = put_example(store, seed=2, diagnostics={**DIAGNOSTICS, "verdict": "look_closer"})

    r = run_store("list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["FIT_ID", "CREATED"]
    assert [line.split()[0] for line in lines[1:]] == [flagged_id, ok_id]
    assert "hierarchical" in lines[1] and "flagged" in lines[1]
    r = run_store("list", "--status", "ok", "--json")
    assert [m["fit_id"] for m in json.loads(r.stdout)] == [ok_id]

    r = run_store("show", ok_id[:8])
    assert r.returncode == 0, r.stderr
    manifest = json.loads(r.stdout)
    assert manifest["fit_id"] == ok_id and manifest["genes"] == GENES
    assert manifest["posterior_path"] == str(_isolated_data_dir / "fits" / ok_id / "posterior.nc")
    assert Path(manifest["posterior_path"]).is_file()

    r = run_store("verify")
    assert r.returncode == 0 and "ok: 2 stored fits verified" in r.stdout

    os.truncate(manifest["posterior_path"], 4096)
    r = run_store("verify")
    assert r.returncode == 1
    assert f"damaged: {ok_id}: size_mismatch: posterior.nc is truncated" in r.stdout
    assert flagged_id not in r.stdout
    assert r.stderr.strip() == f"error: 1 of 2 stored fits damaged: {ok_id}"
    assert "Traceback" not in r.stderr
    r = run_store("show", ok_id)
    assert r.returncode == 1 and json.loads(r.stdout)["fit_id"] == ok_id and "truncated" in r.stderr

    r = run_store("delete", ok_id)
    assert r.returncode == 0 and r.stdout.strip() == f"deleted fit {ok_id}"
    assert store.fit_ids() == [flagged_id]
    r = run_store("verify")
    assert r.returncode == 0


def test_bad_ids_exit_2_without_traceback(_isolated_data_dir: Path) -> None:
    for args, message in [
        (("show", "../../etc/passwd"), "invalid fit id"),
        (("delete", "abc/def"), "invalid fit id"),
        (("show", "a" * 64), "no stored fit has id"),
        (("delete", "abcd"), "no stored fit id starts with abcd"),
    ]:
        r = run_store(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith("error: ") and message in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
