"""Admission by estimate (memory and disk against the machine), the cost model's shape, the ETA, predicted vs actual."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from speclet_core.analysis import fitview
from speclet_core.data.demo import write_synthetic
from speclet_core.data.screen import screen_from_frame
from speclet_core.data.selection import select_screen
from speclet_core.data.synthetic import simulate_screen
from speclet_core.errors import ModelError
from speclet_core.fitting import cost
from speclet_core.fitting.approximate import QUICK_DRAWS, QUICK_MAX_STORED_VALUES, QUICK_MIN_DRAWS, quick_draws
from speclet_core.fitting.cost import estimate_cost, steps_per_draw
from speclet_core.fitting.engine import run_fit
from speclet_core.fitting.request import admission_problem, prepare_fit, prepare_request
from speclet_core.records import SamplerSettings
from speclet_core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def screen_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _ = write_synthetic(simulate_screen(8, 20, 2, seed=4), tmp_path_factory.mktemp("admit") / "screen.csv")
    return path


def _settings(tmp_path: Path, **budgets: int) -> Settings:
    return Settings(data_dir=tmp_path, **budgets)


# --------------------------------------------------------------------------- admission


def test_a_fit_over_the_memory_budget_is_refused_with_the_numbers_and_what_to_change(screen_path, tmp_path) -> None:
    settings = _settings(tmp_path, fit_memory_budget_mb=300, fit_disk_budget_mb=100_000)
    with pytest.raises(ModelError) as err:
        prepare_request(screen_path, "sgrna_gene_lineage", settings=settings)
    text = str(err.value)
    _, estimate = prepare_fit(screen_path, "sgrna_gene_lineage", settings=_settings(tmp_path))
    assert f"needs ≈ {cost.human_mb(estimate.peak_rss_mb)} of memory" in text
    assert "more than the 300 MB it may use (SPECLET_FIT_MEMORY_BUDGET_MB=300)" in text
    assert "select fewer genes (about" in text and "of the 8 would fit" in text
    assert "4 chains × (500 warm-up + 500 kept draws) needs ≈" in text
    assert "quick approximate method" in text and "SPECLET_FIT_MEMORY_BUDGET_MB" in text


def test_a_fit_over_the_disk_budget_is_refused_naming_temporary_and_stored_disk(screen_path, tmp_path) -> None:
    settings = _settings(tmp_path, fit_memory_budget_mb=100_000, fit_disk_budget_mb=1)
    with pytest.raises(ModelError) as err:
        prepare_request(screen_path, "sgrna_gene_lineage", settings=settings)
    text = str(err.value)
    assert "of disk (≈" in text and "temporary while sampling" in text and "stored" in text
    assert "more than the 1 MB available (SPECLET_FIT_DISK_BUDGET_MB=1)" in text
    assert "memory at its peak" not in text  # only the budget that is exceeded is named


def test_fits_within_the_budgets_are_admitted_and_the_worker_checks_again(screen_path, tmp_path) -> None:
    request, estimate = prepare_fit(screen_path, "gene", settings=_settings(tmp_path),
                                    sampler=SamplerSettings(method="quick"))
    assert request.model == "gene" and estimate.approximate and estimate.peak_rss_mb > 0
    roomy = _settings(tmp_path, fit_memory_budget_mb=estimate.peak_rss_mb.__ceil__() + 1,
                      fit_disk_budget_mb=int(estimate.disk_mb * 2) + 1)
    assert admission_problem(estimate, roomy, model="gene", genes=8) is None
    # the worker's engine admits again on the machine that runs the fit: refused before any compiling
    tight = dataclasses.replace(roomy, fit_memory_budget_mb=10)
    with pytest.raises(ModelError, match="cannot run on this machine"):
        run_fit(request, settings=tight)
    # 0 switches the checks off (a server whose administrator sizes fits by hand)
    assert admission_problem(estimate, _settings(tmp_path, fit_memory_budget_mb=0, fit_disk_budget_mb=0),
                             model="gene") is None


def test_the_cli_refuses_with_the_same_message_and_the_ceiling_still_applies(screen_path, tmp_path) -> None:
    env = {"SPECLET_DATA_DIR": str(tmp_path), "SPECLET_FIT_MEMORY_BUDGET_MB": "200", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "speclet_core", "fit", "--data", str(screen_path), "--model",
                           "sgrna_gene_lineage"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: model 'sgrna_gene_lineage': this fit of") and "Traceback" not in proc.stderr
    assert "more than the 200 MB it may use" in proc.stderr
    with pytest.raises(ModelError, match=r"limit of 3 \(SPECLET_MAX_GENES\); .*hard ceiling"):
        prepare_request(screen_path, "gene", settings=_settings(tmp_path, max_genes=3))


def test_memory_budget_defaults_to_the_machine(tmp_path) -> None:
    budget, why = Settings(data_dir=tmp_path).fit_memory_budget()
    assert budget > 0 and why  # available memory, the machine's share or the fit's address-space limit
    assert Settings(data_dir=tmp_path, fit_memory_mb=6_000).fit_memory_budget()[0] <= 6_000 - 2_700
    disk, where = Settings(data_dir=tmp_path).fit_disk_budget()
    assert disk > 0 and str(tmp_path) in where


# --------------------------------------------------------------------------- the cost model


def test_cost_grows_as_measured() -> None:
    # steps per draw: the measured points (31 @ 3,079 parameters, 63 @ 31,897-90,085) within the power law's error
    assert steps_per_draw(3_079, matrix=True) == pytest.approx(31, rel=0.05)
    assert 50 <= steps_per_draw(31_897, matrix=True) <= 75 and 55 <= steps_per_draw(90_085, matrix=True) <= 80
    assert 100 <= steps_per_draw(810_085, matrix=True) <= 140  # ≈ 127 projected at genome size
    # the gradient: linear in readings (flagship: 3 terms), within 1.5× of the measured CPU times
    for readings, params, seconds in ((10_400, 3_079, 127e-6), (120_000, 31_897, 1.26e-3), (2_880_000, 810_085, 41e-3)):
        assert cost.gradient_seconds(readings, 3, params) == pytest.approx(seconds, rel=0.5)
    # a loaded machine stretches the seconds, an idle one does not
    assert cost.machine_slowdown(2, load=0.0, cores=2) == 1.0 and cost.machine_slowdown(2, load=4.0, cores=2) == 3.0


def test_estimate_splits_by_stage_and_rescales_to_a_draws_budget() -> None:
    sel = select_screen(screen_from_frame(simulate_screen(10, 24, 3, seed=1).data))
    full = estimate_cost(sel, "sgrna_gene_lineage", load=0.0, cores=2)
    assert full.total_s == pytest.approx(full.compile_s + full.sampling_s + full.postprocess_s)
    assert full.kept_draws == 4_000 and full.tmp_disk_mb > 0 and full.stored_disk_mb > 0
    budget = full.with_sampler(SamplerSettings(chains=4, tune=500, draws=500), load=0.0)
    assert budget.parameters == full.parameters and budget.kept_draws == 2_000
    assert budget.sampling_s == pytest.approx(full.sampling_s / 2, rel=0.01)  # half the iterations, same model
    assert budget.tmp_disk_mb == pytest.approx(full.tmp_disk_mb / 2, rel=0.01)
    quick = full.with_sampler(SamplerSettings(method="quick"), load=0.0)
    assert quick.approximate and quick.tmp_disk_mb == 0 and quick.sampling_s < full.sampling_s
    words = full.describe()
    assert "compiling ≈" in words and "of memory" in words and "of disk" in words


def test_quick_draws_are_bounded_at_genome_size() -> None:
    assert quick_draws(3_000) == QUICK_DRAWS
    assert quick_draws(810_000) * 810_000 <= QUICK_MAX_STORED_VALUES  # 18,000 genes × 40 cell lines
    assert quick_draws(10**9) == QUICK_MIN_DRAWS


# --------------------------------------------------------------------------- ETA


def _job(status: str = "running", phase: str | None = "compiling", **kw):  # type: ignore[no-untyped-def]
    parts = {"compile_s": 40.0, "sampling_s": 100.0, "postprocess_s": 20.0, "total_s": 160.0}
    base = {"status": status, "phase": phase, "active": True, "estimate_s": 160.0, "estimate_parts": parts,
            "started_at": 1_000.0, "phase_started_at": 1_000.0, "eta_s": None, "draws_done": 0, "draws_total": 8_000,
            "progress": None}
    return SimpleNamespace(**{**base, **kw})


def test_eta_follows_the_stages_ahead() -> None:
    assert fitview.eta_seconds(_job("queued", None)) == (160.0, "estimate")
    assert fitview.eta_text(_job("queued", None)) == "≈ 3 min once started (estimate)"
    # compiling 10 s of an estimated 40: 30 s of compiling + sampling + post-processing left
    assert fitview.eta_seconds(_job(), now=1_010.0) == (150.0, "estimate")
    # compiling past its estimate: the later stages are still ahead, and it says so
    text = fitview.eta_text(_job(), now=1_100.0)
    assert text == "compiling longer than estimated; ≈ 2 min after it (estimate)"
    # sampling: the draw rate's time to the last draw plus the post-processing still ahead
    sampling = _job(phase="sampling", eta_s=45.0, draws_done=4_000, progress=0.5)
    assert fitview.eta_seconds(sampling, now=1_200.0) == (65.0, "draws") and fitview.eta_text(sampling) == "65 s"
    # saving: the post-processing estimate less the seconds spent in it
    saving = _job(phase="saving", phase_started_at=1_300.0)
    assert fitview.eta_seconds(saving, now=1_305.0) == (15.0, "estimate")
    assert fitview.eta_text(saving, now=1_330.0) == "longer than estimated"
    # a job from before estimates by stage: the whole estimate less the time since it started
    old = _job(estimate_parts=None)
    assert fitview.eta_seconds(old, now=1_060.0) == (100.0, "estimate")
    assert fitview.eta_text(_job(status="done", active=False)) == ""


# --------------------------------------------------------------------------- predicted vs actual


def test_a_real_fit_records_predicted_and_actual_costs(real_fit: tuple[Path, str]) -> None:
    from model_store import ModelStore

    data_dir, fit_id = real_fit
    manifest = ModelStore(data_dir / "fits").manifest(fit_id)
    recorded = manifest.provenance["cost"]
    for stage in ("compile_s", "sampling_s", "postprocess_s", "total_s", "peak_rss_mb"):
        assert recorded["predicted"][stage] > 0 and recorded["actual"][stage] > 0, stage
    assert recorded["predicted"]["parameters"] > 0 and recorded["predicted"]["kept_draws"] == 2 * 400
    assert recorded["actual"]["compile_s"] == manifest.timings["compile_s"]
    table = fitview.cost_table([manifest])
    row = table.iloc[0]
    assert row["total_s actual"] == pytest.approx(manifest.timings["total_s"] + manifest.store_timings["total_s"],
                                                  abs=0.1)
    # the ratio of the recorded (unrounded) seconds, rounded to 2 places; the table's seconds are rounded to 0.1 s
    expected_ratio = recorded["actual"]["sampling_s"] / recorded["predicted"]["sampling_s"]
    assert row["sampling_s ratio"] == pytest.approx(expected_ratio, abs=0.006)
    env = {"SPECLET_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "speclet_core", "store", "list", "--costs"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    header, line = out.stdout.splitlines()[:2]
    assert header.split("\t")[:5] == ["fit_id", "model", "readings", "parameters", "compile_s predicted"]
    assert line.startswith(fit_id[:12]) and re.search(r"\tgene_lineage\t", line)
