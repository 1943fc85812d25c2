"""The Fit page states the estimate (time, memory, disk), refuses what this machine cannot hold, offers a draws budget."""

from __future__ import annotations

import pytest

from speclet_core.fitting import cost


def test_a_fit_over_the_budget_is_refused_before_submitting(open_page, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SPECLET_FIT_MEMORY_BUDGET_MB", "1")
    at = open_page("fit", model="gene", genes=["KRAS", "MYC"])
    caption = " ".join(c.value for c in at.caption)
    assert "Estimated cost" in caption and "of memory" in caption and "of disk" in caption
    errors = [e.value for e in at.error]
    assert any("cannot run on this machine" in e and "SPECLET_FIT_MEMORY_BUDGET_MB=1" in e.replace("\\", "") for e in errors), errors
    assert next(b for b in at.button if b.label == "Start fit").disabled


def test_a_big_fit_is_offered_the_draws_budget(open_page, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(cost, "BIG_FIT_PARAMETERS", 2)  # the demo's few genes stand in for a genome-wide fit
    at = open_page("fit", model="gene", genes=["KRAS", "MYC"])
    assert not at.error
    info = next(i.value for i in at.info if "A big fit" in i.value)
    assert "4 chains × (500 warm-up + 500 kept draws)" in info and "of memory" in info
    at.button(key="draws-budget").click().run()
    assert not at.exception
    assert [at.number_input(key=k).value for k in ("chains", "tune", "draws")] == [4, 500, 500]
    assert at.button(key="draws-budget").disabled
