"""An atlas end to end through the CLI: ``atlas --wait`` with a real local worker fits 4 lineages of a synthetic
screen (short NUTS), and ``rank --atlas`` recovers the planted lineage-selective dependencies, never calls the
planted tumour-suppressor-like positive effect or a null gene a dependency, and carries every member fit's verdict.
An atlas whose fits are still queued, an unknown atlas id and mixed-up options are refused with one clear line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest

from speclet_core.analysis.atlas import ATLAS_COLUMNS, worst_verdict
from speclet_core.analysis.contrasts import selective_list
from speclet_core.data.demo import write_synthetic
from speclet_core.data.synthetic import SyntheticScreen, simulate_screen
from speclet_core.queue.jobs import worker_status
from speclet_core.settings import PROJECT_ROOT, Settings

# 12 genes × 4 lineages × 3-5 cell lines; seed 2 plants one selective gene in each of blood, colorectal and skin
SCREEN = {"n_genes": 12, "n_cell_lines": 14, "n_lineages": 4, "seed": 2, "sgrnas_per_gene": (2, 3),
          "n_pan_essential": 2, "n_lineage_selective": 3, "covariates": False}
SUPPRESSOR, SUPPRESSED_IN = "TP53", "lung"  # +1.0 LFC in lung: knocking it out helps growth there
NUTS = ["--method", "nuts", "--chains", "2", "--tune", "300", "--draws", "300", "--seed", "3"]


@dataclass
class Atlas:
    data_dir: Path
    atlas_id: str
    screen: SyntheticScreen
    wall_s: float


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECLET_")}
    env.update({"SPECLET_DATA_DIR": str(data_dir), "PYTHONPATH": str(PROJECT_ROOT)})
    return env


def _cli(data_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "speclet_core", *args], env=_env(data_dir), cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=timeout)


def _planted_screen(path: Path) -> tuple[Path, SyntheticScreen]:
    screen = simulate_screen(**SCREEN)
    data = screen.data.copy()
    data.loc[(data["hugo_symbol"] == SUPPRESSOR) & (data["lineage"] == SUPPRESSED_IN), "lfc"] += 1.0
    out, _ = write_synthetic(SyntheticScreen(data=data, truth=screen.truth, params=screen.params), path)
    return out, screen


@pytest.fixture(scope="module")
def fitted_atlas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Atlas]:
    data_dir = tmp_path_factory.mktemp("atlas-cli")
    path, screen = _planted_screen(data_dir / "screen.csv")
    worker = subprocess.Popen([sys.executable, "-m", "speclet_core", "worker", "--concurrency", "2"],
                              env=_env(data_dir), cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not any(w["pid"] == worker.pid and w["alive"] for w in worker_status(Settings(data_dir=data_dir))["workers"]):
            assert worker.poll() is None and time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)
        t0 = time.monotonic()
        r = _cli(data_dir, "atlas", "--data", str(path), "--model", "gene", *NUTS, "--wait", timeout=600)
        wall = time.monotonic() - t0
        assert r.returncode == 0, r.stderr
        assert "done: all 4 fits stored" in r.stderr
        yield Atlas(data_dir, r.stdout.strip().splitlines()[-1], screen, wall)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)


@pytest.mark.slow
def test_an_atlas_recovers_planted_lineage_selective_dependencies(fitted_atlas: Atlas, tmp_path: Path) -> None:
    data_dir, atlas_id = fitted_atlas.data_dir, fitted_atlas.atlas_id
    record = json.loads((data_dir / "atlases" / f"{atlas_id}.json").read_text())
    verdicts = {lin: json.loads((data_dir / "fits" / fid / "manifest.json").read_text())["diagnostics"]["verdict"]
                for lin, fid in record["fits"].items()}
    out = tmp_path / "atlas.csv"
    strict = _cli(data_dir, "rank", "--atlas", atlas_id[:8], "--out", str(out))
    flagged = sorted(lin for lin, v in verdicts.items() if v != "converged")
    if flagged:  # short NUTS runs: some member fits may not pass their diagnostics; then refused by default
        assert strict.returncode == 2 and strict.stderr.startswith("error: ") and "--allow-flagged" in strict.stderr
        assert all(f"{lin}: fit" in strict.stderr for lin in flagged) and not out.exists()
    r = _cli(data_dir, "rank", "--atlas", atlas_id[:8], "--allow-flagged", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert f"wrote 48 rows (12 genes × 4 lineages) of atlas {atlas_id[:12]}" in r.stdout
    assert r.stderr.count("warning: ") == len(flagged)
    table = pd.read_csv(out)
    assert tuple(table.columns) == ATLAS_COLUMNS
    assert table.groupby("lineage")["fit_verdict"].first().to_dict() == verdicts  # every row carries its verdict
    assert set(table["atlas_verdict"]) == {worst_verdict(list(verdicts.values()))}

    truth = fitted_atlas.screen.truth
    planted = truth[truth["parameter"] == "lineage_selective"][["gene", "lineage"]].itertuples(index=False)
    planted = {(g, lin) for g, lin in planted}
    roles = truth[truth["parameter"] == "pan_essential"].set_index("gene")["value"]
    null_genes = set(roles.index) - {g for g, _ in planted} - set(roles[roles > 0].index) - {SUPPRESSOR}
    rows = table.set_index(["gene", "lineage"])
    listed: dict[str, list[str]] = {}
    for lineage, part in table.groupby("lineage"):
        part = part.sort_values("p_selective", ascending=False, kind="stable").reset_index(drop=True)
        listed[lineage] = selective_list(part)["gene"].tolist()
    for gene, lineage in planted:
        assert rows.loc[(gene, lineage), "p_selective"] >= 0.9, (gene, lineage, rows.loc[(gene, lineage)].to_dict())
        assert gene in listed[lineage]
    suppressor = table[table["gene"] == SUPPRESSOR]
    assert rows.loc[(SUPPRESSOR, SUPPRESSED_IN), "mean_in_lineage"] > 0.5
    assert (suppressor["p_dependency"] < 0.05).all() and (suppressor["p_selective"] < 0.05).all()
    assert all(SUPPRESSOR not in genes for genes in listed.values())
    for lineage, genes in listed.items():
        assert not null_genes & set(genes), (lineage, genes)
    # one lineage's rows are the same rows of the whole comparison
    skin = _cli(data_dir, "rank", "--atlas", atlas_id, "--lineage", "skin", "--allow-flagged")
    assert skin.returncode == 0, skin.stderr
    only = pd.read_csv(StringIO(skin.stdout))
    assert set(only["lineage"]) == {"skin"}
    pd.testing.assert_frame_equal(only.reset_index(drop=True),
                                  table[table["lineage"] == "skin"].reset_index(drop=True))
    print(f"atlas of 4 NUTS fits through the CLI: {fitted_atlas.wall_s:.0f} s")


def test_rank_atlas_refuses_unfinished_unknown_and_mixed_up_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """In-process (``cli.main.main``, as ``python -m speclet_core`` runs it): no worker, so the fits stay queued."""
    from speclet_core.cli.main import main

    monkeypatch.setenv("SPECLET_DATA_DIR", str(tmp_path / "data"))
    path, _ = _planted_screen(tmp_path / "screen.csv")

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = run("atlas", "--data", str(path), "--model", "gene", "--lineages", "blood,skin", *NUTS)
    assert code == 0, err
    atlas_id = out.strip().splitlines()[-1]
    code, out, err = run("rank", "--atlas", atlas_id)
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err and not out
    assert "2 of 2 lineage fits are not stored yet" in err and "blood: fit" in err and "queued" in err
    code, out, err = run("atlas", "show", atlas_id[:8])
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("blood: fit ") and lines[0].endswith(" queued") and lines[1].startswith("skin: fit ")
    assert lines[-1] == f"atlas {atlas_id[:12]} (gene): 0/2 fits stored"
    code, _, err = run("atlas", "--model", "gene")
    assert code == 2 and "--data FILE is required" in err
    code, _, err = run("atlas", "show")
    assert code == 2 and "use `atlas show ATLAS_ID`" in err
    code, _, err = run("rank", "--atlas", "beef1234")
    assert code == 2 and "no atlas beef1234" in err and atlas_id[:12] in err
    for args, words in ((["rank"], "give a FIT_ID"), (["rank", "abcd1234", "--atlas", atlas_id], "not both"),
                        (["rank", "--atlas", atlas_id, "--contrast", "skin"], "--contrast does not apply"),
                        (["rank", "abcd1234", "--allow-flagged"], "only apply with --atlas")):
        code, _, err = run(*args)
        assert code == 2 and err.startswith("error: ") and words in err, (args, err)
