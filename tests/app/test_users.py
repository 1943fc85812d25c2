"""AppTests of users kept apart: two browser sessions (two AppTest instances) on one queue; a read-only server;
the caps' messages on the Fit page."""

from __future__ import annotations

import pytest

from speclet_core.queue.access import Submitter
from speclet_core.queue.jobs import JobQueue
from speclet_core.queue.records import JobStatus
from speclet_core.records import FitRequest, SamplerSettings
from speclet_core.settings import Settings

CANCEL = "Cancel this fit"


def _buttons(at) -> list[str]:  # type: ignore[no-untyped-def]
    return [b.label for b in at.button]


def _start(at) -> None:  # type: ignore[no-untyped-def]
    next(b for b in at.button if b.label == "Start fit").click().run()
    assert not at.exception, [e.value for e in at.exception]


def test_a_second_session_cannot_cancel_the_first_sessions_fit(open_page, data_dir) -> None:  # type: ignore[no-untyped-def]
    first = open_page("fit", model="gene", genes=["KRAS", "MYC"])
    _start(first)
    assert any("Fit queued" in s.value for s in first.success)
    [job] = JobQueue.from_settings(Settings(data_dir=data_dir)).list()
    me = first.session_state["submitter_session"]
    assert job.submitter == me and me.startswith("session-")

    second = open_page("fit", model="gene")
    other = second.session_state["submitter_session"]
    assert other != me
    queue_table = next(d.value for d in second.dataframe if "status" in d.value.columns)
    assert list(queue_table["status"]) == ["queued"] and list(queue_table["submitted by"]) == [me]
    assert CANCEL not in _buttons(second)  # the job is listed, but not offered for cancelling
    assert any("only a fit's submitter (or an administrator) can cancel it" in c.value for c in second.caption)
    home = open_page("home")  # a third session, on Home: no Cancel either
    assert CANCEL not in _buttons(home)

    # the first session sees Cancel on the Fit page and on Home, and it works
    first.run()
    assert CANCEL in _buttons(first)
    first.switch_page("pages/home.py").run()
    assert not first.exception and first.session_state["submitter_session"] == me
    assert first.selectbox(key="cancel_target").value == job.job_id
    next(b for b in first.button if b.label == CANCEL).click().run()
    assert not first.exception, [e.value for e in first.exception]
    assert JobQueue.from_settings(Settings(data_dir=data_dir)).get(job.job_id).status == JobStatus.CANCELLED


def test_a_read_only_server_shows_no_cancel_button(open_page, data_dir, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    request = FitRequest(data_path=str(data_dir / "x.csv"), data_fingerprint="ef" * 32, model="gene",
                         model_version="1", sampler=SamplerSettings(chains=2, tune=100, draws=100))
    with JobQueue.from_settings(Settings(data_dir=data_dir)) as q:
        job, _ = q.submit(request, "dashboard", submitter=Submitter(name="session-anyone"))
        q.claim("otherhost:1:w")
    monkeypatch.setenv("SPECLET_READ_ONLY", "true")
    for page in ("home", "fit"):
        at = open_page(page)
        queue_table = next(d.value for d in at.dataframe if "status" in d.value.columns)
        assert list(queue_table["status"]) == ["running"]  # the queue is shown …
        assert CANCEL not in _buttons(at) and "Start fit" not in _buttons(at)  # … but nothing can change it
        assert not at.get("selectbox") or all(s.key != "cancel_target" for s in at.selectbox)
    assert JobQueue.from_settings(Settings(data_dir=data_dir)).get(job.job_id).status == JobStatus.RUNNING


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SPECLET_MAX_JOBS_PER_USER": "1"}, "already have 1 fits queued or running (SPECLET_MAX_JOBS_PER_USER = 1)"),
        ({"SPECLET_MAX_JOBS": "1"}, "the queue is full: 1 fits are queued or running on this server (SPECLET_MAX_JOBS"),
    ],
)
def test_the_fit_page_says_which_cap_refused_a_submission(open_page, data_dir, monkeypatch, env,  # type: ignore[no-untyped-def]
                                                          message) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    at = open_page("fit", model="gene", genes=["KRAS"])
    _start(at)
    assert any("Fit queued" in s.value for s in at.success)
    at.multiselect(key="genes").set_value(["KRAS", "MYC"]).run()
    _start(at)
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert len(JobQueue.from_settings(Settings(data_dir=data_dir)).list()) == 1
