"""First start (issue 14): an empty installation's first fit is followed on Home and opens by itself.

The queue is real (diskcache in the test's data dir) and the demo job is queued by the same
``ensure_first_fit`` that ``serve`` calls; the "worker" here is the test, driving the job through
its phases with the queue's own calls, then storing a real NetCDF under the job's fit id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from store_helpers import DIAGNOSTICS, ROLES, TIMINGS, make_idata
from streamlit.testing.v1 import AppTest

from model_store import ModelStore
from speclet_core.analysis import fitview
from speclet_core.queue.bootstrap import FIRST_FIT_LABEL, ensure_first_fit
from speclet_core.queue.jobs import JobQueue
from speclet_core.queue.records import JobStatus
from speclet_core.records import FitPhase
from speclet_core.settings import Settings

WORKER = "host:1:test"


def _texts(at: AppTest) -> str:
    return "\n".join([e.value for e in at.info] + [e.value for e in at.success] + [e.value for e in at.caption]
                     + [str(e.proto.text) for e in at.get("progress")])


def test_first_start_is_followed_on_home_and_opens_without_a_click(open_page: Callable[..., AppTest],
                                                                  data_dir: Path) -> None:
    settings = Settings.from_env()
    job = ensure_first_fit(settings)
    assert job is not None and job.label == FIRST_FIT_LABEL
    assert job.estimate_s is not None and job.estimate_s > 0  # the cost model's estimate travels with the job

    at = open_page("home")
    text = _texts(at)
    assert "first fit is queued" in text and fitview.FIRST_FIT_PROMISE in text
    assert "No stored fits yet" not in text  # the old first-start message that never updated
    assert "waiting for a worker" in text  # the progress bar under it

    queue = JobQueue.from_settings(settings)
    claimed = queue.claim(WORKER)
    assert claimed is not None and claimed.job_id == job.job_id
    queue.update_progress(job.job_id, WORKER, phase=FitPhase.COMPILING, draws_total=8000)
    at.run()
    text = _texts(at)
    assert "first fit is running: compiling · 0 s" in text or "first fit is running: compiling · 1 s" in text
    assert "(estimate)" in text or "longer than estimated" in text  # an ETA while compiling

    queue.update_progress(job.job_id, WORKER, phase=FitPhase.SAMPLING, draws_done=2000, draws_total=8000, eta_s=30)
    at.run()
    # the draw rate's 30 s to the last draw, plus the estimated summarising and saving after it
    left = 30 + queue.get(job.job_id).estimate_parts["postprocess_s"]
    assert f"sampling 25%, about {left:.0f} s left" in _texts(at) or f"about {left / 60:.0f} min left" in _texts(at)

    # another page, no fit open yet: it says what is happening instead of only "No fit is open"
    at.switch_page("pages/forest.py").run()
    assert "No fit is open yet" in at.info[0].value and "first fit is running" in at.info[0].value

    # the worker stores the fit and finishes the job; the next rerun (the fragment's) opens it everywhere
    assert queue.begin_saving(job.job_id, WORKER)
    ModelStore(settings.fits_dir).put(job.job_id, make_idata(seed=3), request=job.request.model_dump(mode="json"),
                                      roles=ROLES, diagnostics=DIAGNOSTICS, timings=TIMINGS)
    queue.finish(job.job_id, WORKER, JobStatus.DONE, verdict="converged")
    at.run()
    assert not at.exception
    assert at.query_params["fit"] in (job.job_id, [job.job_id])
    assert at.title[0].value == "Forest plot" and at.get("vega_lite_chart")  # the results, with no click
    caption = "\n".join(c.value for c in at.caption)
    assert "opened automatically" in caption and "Demo screen" in caption and "synthetic" in caption

    at.switch_page("pages/home.py").run()
    assert any("opened automatically" in s.value for s in at.success)
    assert at.dataframe[0].value["screen"].iloc[0] == "Demo screen (synthetic)"


def test_no_refreshing_or_promise_when_no_fit_is_coming(open_page: Callable[..., AppTest]) -> None:
    at = open_page("home")
    assert not at.get("progress") and not any("first fit" in i.value for i in at.info)
    assert any("No stored fits yet" in c.value for c in at.caption)
    at = open_page("diagnostics")
    assert at.info[0].value.startswith("No fit is open.")


def test_saving_shows_its_seconds(data_dir: Path) -> None:
    """Post-processing and writing show a phase with its seconds so far, and a counting phase at 100% too."""
    settings = Settings.from_env()
    job = ensure_first_fit(settings)
    assert job is not None
    queue = JobQueue.from_settings(settings)
    queue.claim(WORKER)
    queue.update_progress(job.job_id, WORKER, phase=FitPhase.SAMPLING, draws_done=8000, draws_total=8000)
    running = queue.get(job.job_id)
    assert fitview.phase_text(running, now=running.phase_started_at + 40) == "sampling 100%, finishing · 40 s"
    queue.update_progress(job.job_id, WORKER, phase=FitPhase.SAVING, draws_done=8000, draws_total=8000)
    saving = queue.get(job.job_id)
    assert saving.phase_started_at >= running.phase_started_at
    assert queue.begin_saving(job.job_id, WORKER)
    # the worker's begin_saving continues the engine's saving phase: its clock does not restart
    assert queue.get(job.job_id).phase_started_at == saving.phase_started_at
    table = fitview.jobs_table([queue.get(job.job_id)], now=saving.phase_started_at + 65)
    assert table["phase"].iloc[0] == "saving · 65 s"
    assert time.time() - saving.phase_started_at < 60
