"""The one verdict: its reasons name the numbers, and a stored verdict is read back, not judged again."""

from __future__ import annotations

from model_store.manifest import FitDiagnostics
from speclet_core.diagnostics import verdict
from speclet_core.records import Verdict

GOOD = {"max_rhat": 1.003, "min_ess_bulk": 900.0, "min_ess_tail": 800.0, "divergences": 0, "bfmi_min": 0.9,
        "treedepth_hits": 0}


def test_judge_levels_and_reasons() -> None:
    assert verdict.judge(GOOD, 4_000) == verdict.FitVerdict(level=Verdict.CONVERGED,
                                                             headline=verdict.HEADLINES[Verdict.CONVERGED])
    few = verdict.judge({**GOOD, "divergences": 3}, 4_000)
    assert few.level == Verdict.LOOK_CLOSER and few.reasons[0].startswith("3 divergent transitions")
    many = verdict.judge({**GOOD, "divergences": 3, "max_rhat": 1.3, "max_rhat_at": "gene_effect[KRAS]"}, 200)
    assert many.level == Verdict.DO_NOT_TRUST and many.headline == "Do not trust this fit yet"
    assert "R-hat 1.300 > 1.01 at gene_effect[KRAS]" in many.reasons[0] and len(many.reasons) == 2
    assert verdict.judge({**GOOD, "min_ess_bulk": 50.0}, 4_000).level == Verdict.DO_NOT_TRUST
    assert verdict.judge({**GOOD, "min_ess_bulk": 300.0}, 4_000).level == Verdict.LOOK_CLOSER


def test_an_approximate_fit_is_never_converged() -> None:
    quick = verdict.judge({**GOOD, "method": "ADVI"}, 4_000, approximate=True)
    assert quick.level == Verdict.LOOK_CLOSER and quick.approximate
    assert quick.headline == verdict.APPROXIMATE_HEADLINE and "ADVI" in quick.reasons[0]
    assert verdict.judge({**GOOD, "approximate": True}, 4_000) == verdict.judge(GOOD, 4_000, approximate=True)


def test_verdict_of_reads_what_was_stored() -> None:
    # the stored level wins even where today's numbers would say otherwise: it is what the store lists
    stored = {**GOOD, "max_rhat": 1.2, "verdict": "converged", "reasons": []}
    assert verdict.verdict_of(stored).level == Verdict.CONVERGED
    typed = FitDiagnostics(**{**GOOD, "verdict": "do_not_trust", "reasons": ("R-hat 1.2",)})
    assert verdict.verdict_of(typed) == verdict.FitVerdict(
        level=Verdict.DO_NOT_TRUST, headline="Do not trust this fit yet", reasons=("R-hat 1.2",))
    assert verdict.verdict_of({"diagnostics": typed.model_dump()}) == verdict.verdict_of(typed)
    missing = verdict.verdict_of(GOOD)
    assert missing.level == Verdict.LOOK_CLOSER and missing.reasons == (verdict.MISSING_REASON,)


def test_badges() -> None:
    assert verdict.badge_of({"verdict": "do_not_trust"}) == "⛔ do not trust"
    assert verdict.badge_of({"diagnostics": {"verdict": "look_closer", "approximate": True}}) == (
        "≈ approximate (first look)")
    assert verdict.badge_of({}) == verdict.UNKNOWN_BADGE
    assert verdict.badge_of(FitDiagnostics(verdict="converged")) == "✅ converged"
