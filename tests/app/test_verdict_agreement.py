"""One verdict everywhere: the stored status, ``store list --status``, the Home badge and the Diagnostics headline.

Fits on each side of every threshold of ``speclet_core.diagnostics.verdict`` are judged as the fitting
engine judges them, stored, and then read back through every place that shows a verdict.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from store_helpers import DIAGNOSTICS, ROLES, make_idata, make_request
from streamlit.testing.v1 import AppTest

from model_store import ModelStore
from speclet_core.cli.main import main as cli_main
from speclet_core.diagnostics import verdict
from speclet_core.records import Verdict

CHAINS, DRAWS = 4, 1_000  # 4,000 draws: 1 % of them is 40 divergences
GOOD = {**DIAGNOSTICS, "max_rhat": 1.003, "min_ess_bulk": 900.0, "min_ess_tail": 800.0, "chains": CHAINS,
        "draws": DRAWS, "method": "NUTS"}
OK, LOOK, FAIL = Verdict.CONVERGED, Verdict.LOOK_CLOSER, Verdict.DO_NOT_TRUST

CASES: list[tuple[str, dict[str, Any], Verdict]] = [
    ("all good", {}, OK),
    ("R-hat at 1.01", {"max_rhat": 1.01}, OK),
    ("R-hat just over 1.01", {"max_rhat": 1.0101}, LOOK),
    ("R-hat at 1.05", {"max_rhat": 1.05}, LOOK),
    ("R-hat 1.06 (the issue's example)", {"max_rhat": 1.06}, FAIL),
    ("R-hat unknown", {"max_rhat": None}, LOOK),
    ("bulk ESS at 400", {"min_ess_bulk": 400.0}, OK),
    ("bulk ESS just under 400", {"min_ess_bulk": 399.0}, LOOK),
    ("bulk ESS at 100", {"min_ess_bulk": 100.0}, LOOK),
    ("bulk ESS just under 100", {"min_ess_bulk": 99.0}, FAIL),
    ("tail ESS at 100", {"min_ess_tail": 100.0}, OK),
    ("tail ESS just under 100", {"min_ess_tail": 99.0}, LOOK),
    ("one divergence", {"divergences": 1}, LOOK),
    ("20 divergences in 4,000 draws (the issue's example)", {"divergences": 20}, LOOK),
    ("divergences at 1 % of draws", {"divergences": 40}, LOOK),
    ("divergences over 1 % of draws", {"divergences": 41}, FAIL),
    ("BFMI at 0.3", {"bfmi_min": 0.3}, OK),
    ("BFMI just under 0.3", {"bfmi_min": 0.29}, LOOK),
    ("BFMI at 0.2", {"bfmi_min": 0.2}, LOOK),
    ("BFMI just under 0.2", {"bfmi_min": 0.19}, FAIL),
    ("one tree-depth hit", {"treedepth_hits": 1}, LOOK),
    ("approximate fit with perfect numbers", {"approximate": True, "method": "ADVI"}, LOOK),
]
ALERTS = {OK: "success", LOOK: "warning", FAIL: "error"}
HOME_ROWS = 10  # Home lists the ten newest fits


def _diagnostics(overrides: dict[str, Any]) -> dict[str, Any]:
    """What ``compute_diagnostics`` stores for these numbers: the numbers plus the one rule's level and reasons."""
    numbers = {**GOOD, **overrides}
    judged = verdict.judge(numbers, CHAINS * DRAWS, approximate=bool(numbers["approximate"]))
    return {**numbers, "verdict": judged.level.value, "reasons": list(judged.reasons)}


def _cli_list(status: str, capsys: pytest.CaptureFixture[str]) -> set[str]:
    capsys.readouterr()
    code = cli_main(["store", "list", "--status", status, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return {m["fit_id"] for m in json.loads(out)} if out.strip() else set()


@pytest.mark.parametrize("chunk", range(0, len(CASES), HOME_ROWS))
def test_every_place_shows_the_same_verdict(
    chunk: int, open_page: Callable[..., AppTest], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("SPECLET_DATA_DIR", str(data_dir))
    store = ModelStore(data_dir / "fits")
    idata = make_idata(seed=0)
    cases = CASES[chunk : chunk + HOME_ROWS]
    fits: dict[str, tuple[str, Verdict]] = {}
    for i, (name, overrides, expected) in enumerate(cases):
        diagnostics = _diagnostics(overrides)
        assert diagnostics["verdict"] == expected, f"{name}: the rule says {diagnostics['verdict']}"
        request = make_request(seed=chunk + i + 1)
        # the fit time tells the Home rows apart (all other columns are alike)
        store.put(request.fit_id, idata, request=request.model_dump(mode="json"), roles=ROLES,
                  diagnostics=diagnostics, timings={"total_s": float(i)})
        fits[request.fit_id] = (name, expected)

    ok = {fit_id for fit_id, (_, level) in fits.items() if level == OK}
    assert {m.fit_id for m in store.list(status="ok")} == ok
    assert {m.fit_id for m in store.list(status="flagged")} == set(fits) - ok
    assert _cli_list("ok", capsys) == ok
    assert _cli_list("flagged", capsys) == set(fits) - ok

    home = open_page("home").dataframe[0].value
    badges = dict(zip(home["fit time (s)"], home["diagnostics"], strict=True))
    for i, (name, overrides, expected) in enumerate(cases):
        badge = verdict.VERDICT_BADGES["approximate" if overrides.get("approximate") else expected.value]
        assert badges[float(i)] == badge, name

    for fit_id, (name, expected) in fits.items():
        stored = store.manifest(fit_id).diagnostics
        at = open_page("diagnostics", fit=fit_id)
        headlines = (*verdict.HEADLINES.values(), verdict.APPROXIMATE_HEADLINE)
        # the verdict box, among other alerts (e.g. the banner saying no worker runs)
        boxes = [(kind, a.value) for kind in ALERTS.values() for a in getattr(at, kind)
                 if any(a.value.startswith(f"**{h}**") for h in headlines)]
        headline = verdict.APPROXIMATE_HEADLINE if stored.approximate else verdict.HEADLINES[expected]
        assert len(boxes) == 1, f"{name}: {boxes}"
        kind, text = boxes[0]
        assert kind == ALERTS[expected] and text.startswith(f"**{headline}**"), f"{name}: {boxes}"
        assert stored.reasons and all(r in text for r in stored.reasons) or expected == OK, f"{name}: {text}"
