"""The command line: real subprocesses, exit codes, no tracebacks, nothing half-written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "speclet_core", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_demo_data_then_validate(tmp_path: Path) -> None:
    out = tmp_path / "demo.csv"
    r = run_cli("demo-data", "--out", str(out), "--genes", "5", "--cell-lines", "12", "--lineages", "3", "--seed", "4")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "demo.truth.csv").exists()
    df = pd.read_csv(out)
    assert df["hugo_symbol"].nunique() == 5 and df["depmap_id"].nunique() == 12
    r = run_cli("validate", str(out))
    assert r.returncode == 0
    assert "genes                    5" in r.stdout
    assert "cell lines              12" in r.stdout


def test_validate_reports_every_problem_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "sgrna,hugo_symbol,depmap_id,lineage,lfc\n"
        "g1,KRAS,ACH-1,skin,-1\n"
        "g1,BRAF,ACH-1,skin,oops\n"
        "g2,BRAF,ACH-1,lung,0.1\n"
    )
    r = run_cli("validate", str(bad))
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert lines[0] == f"error: {bad}: 3 problems found"
    assert all(line.startswith("error: ") for line in lines)
    assert "Traceback" not in r.stderr
    joined = "\n".join(lines)
    assert "non-numeric value (e.g. 'oops') in row 3" in joined
    assert "sgRNA 'g1' maps to 2 genes" in joined
    assert "cell line 'ACH-1' maps to 2 lineages" in joined


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate", "/definitely/not/here.csv"], "file not found"),
        (["demo-data", "--out", "OUT/x.xlsx"], "unknown format"),
        (["demo-data", "--out", "OUT/x.csv", "--genes", "0"], "must be at least 1"),
        (["demo-data", "--out", "OUT/x.csv", "--cell-lines", "3", "--lineages", "3"], "two cell lines per lineage"),
        (["no-such-command"], "invalid choice"),
    ],
)
def test_bad_input_exit_2_and_nothing_written(tmp_path: Path, args: list[str], message: str) -> None:
    args = [a.replace("OUT", str(tmp_path)) for a in args]
    r = run_cli(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not beside this checkout")
def test_validate_real_tables() -> None:
    r = run_cli("validate", str(SHARED_DATA / "depmap_crc_subsample.csv"))
    assert r.returncode == 0, r.stderr
    assert "genes                  114" in r.stdout
    assert "lineages                 1" in r.stdout
