"""The one verdict on a fit's convergence: thresholds, the rule, headlines and badges.

A fit is flagged (``look_closer``) when any parameter has R-hat > 1.01, bulk ESS < 400 or
tail ESS < 100, or there is any divergence, BFMI < 0.3 or a tree-depth hit; it is
``do_not_trust`` when the problems are gross (R-hat > 1.05, bulk ESS < 100, divergences in
more than 1 % of draws, or BFMI < 0.2). An approximate (quick) fit is never ``converged``:
it is a first look only. Thresholds follow Vehtari et al. (2021).

The store keeps the level and reasons with each fit; every place that shows a verdict
(the store's status, the badges, the Diagnostics page, the CLI) reads them back with
:func:`verdict_of` instead of judging again, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from model_store.manifest import FitDiagnostics, FitManifest
from speclet_core.records import Record, Verdict

RHAT_FLAG = 1.01
RHAT_FAIL = 1.05
ESS_FLAG = 400.0
ESS_FAIL = 100.0
ESS_TAIL_FLAG = 100.0
BFMI_FLAG = 0.3
BFMI_FAIL = 0.2
DIVERGENT_FAIL_FRACTION = 0.01
APPROXIMATE_REASON = "approximate: first look only ({method}); refit with method 'nuts' before trusting intervals"
MISSING_REASON = "no verdict was stored with this fit; refit it to judge its convergence"

# what makes one element of the summary "break a threshold" (table highlights, page captions)
BREAK_RULE = f"R-hat > {RHAT_FLAG}, bulk ESS < {ESS_FLAG:.0f} or tail ESS < {ESS_TAIL_FLAG:.0f}"

HEADLINES = {
    Verdict.CONVERGED: "Converged: the diagnostics give no reason for doubt",
    Verdict.LOOK_CLOSER: "Look closer before relying on this fit",
    Verdict.DO_NOT_TRUST: "Do not trust this fit yet",
}
APPROXIMATE_HEADLINE = "Approximate fit: a first look only"
CONVERGED_NOTE = (
    f"R-hat ≤ {RHAT_FLAG}, bulk ESS ≥ {ESS_FLAG:.0f}, tail ESS ≥ {ESS_TAIL_FLAG:.0f}, "
    f"BFMI ≥ {BFMI_FLAG}, no divergences and no tree-depth hits."
)

VERDICT_BADGES = {
    "converged": "✅ converged",
    "look_closer": "⚠️ look closer",
    "do_not_trust": "⛔ do not trust",
    "approximate": "≈ approximate (first look)",
}
UNKNOWN_BADGE = "? unknown"


# where a stored verdict is read from: a manifest, its diagnostics, or either as JSON
VerdictSource = Mapping[str, Any] | FitManifest | FitDiagnostics


class FitVerdict(Record):
    """A fit's verdict: its level, a one-line headline and the reasons behind it."""

    level: Verdict
    headline: str
    reasons: tuple[str, ...] = ()
    approximate: bool = False


def _headline(level: Verdict, approximate: bool) -> str:
    return APPROXIMATE_HEADLINE if approximate else HEADLINES[level]


def judge(numbers: Mapping[str, Any], total_draws: int, *, approximate: bool = False) -> FitVerdict:
    """Judge a fit from its diagnostic numbers (see the module docstring for the rules).

    Parameters
    ----------
    numbers
        ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``, ``bfmi_min``,
        ``treedepth_hits`` (each may be None) and the ``*_at`` locations of the worst values.
    total_draws
        Kept draws over all chains (the divergence fraction's denominator).
    approximate
        A quick approximate fit: never converged, whatever the numbers say.
    """
    if approximate or numbers.get("approximate"):
        reason = APPROXIMATE_REASON.format(method=numbers.get("method") or "quick")
        return FitVerdict(level=Verdict.LOOK_CLOSER, headline=APPROXIMATE_HEADLINE, reasons=(reason,), approximate=True)
    fail: list[str] = []
    flag: list[str] = []
    rhat, ess_b, ess_t = numbers.get("max_rhat"), numbers.get("min_ess_bulk"), numbers.get("min_ess_tail")
    div, bfmi, depth = numbers.get("divergences"), numbers.get("bfmi_min"), numbers.get("treedepth_hits")
    if rhat is None or ess_b is None:
        flag.append("too few draws to compute R-hat and ESS; run more draws")
    if rhat is not None and rhat > RHAT_FLAG:
        text = (
            f"R-hat {rhat:.3f} > {RHAT_FLAG} at {numbers.get('max_rhat_at')}: chains disagree; "
            "run more tuning and draws"
        )
        (fail if rhat > RHAT_FAIL else flag).append(text)
    if ess_b is not None and ess_b < ESS_FLAG:
        text = (
            f"bulk ESS {ess_b:.0f} < {ESS_FLAG:.0f} at {numbers.get('min_ess_bulk_at')}: too few independent draws; "
            "run more draws"
        )
        (fail if ess_b < ESS_FAIL else flag).append(text)
    if ess_t is not None and ess_t < ESS_TAIL_FLAG:
        flag.append(
            f"tail ESS {ess_t:.0f} < {ESS_TAIL_FLAG:.0f} at {numbers.get('min_ess_tail_at')}: intervals are unreliable"
        )
    if div:
        text = (
            f"{div} divergent transition{'s' if div != 1 else ''}: the sampler missed part of the posterior; "
            "raise target_accept (e.g. 0.95) or simplify the model"
        )
        (fail if div > DIVERGENT_FAIL_FRACTION * total_draws else flag).append(text)
    if bfmi is not None and bfmi < BFMI_FLAG:
        text = f"BFMI {bfmi:.2f} < {BFMI_FLAG}: energy explores poorly (often a funnel); run longer"
        (fail if bfmi < BFMI_FAIL else flag).append(text)
    if depth:
        flag.append(f"{depth} draws hit the maximum tree depth: sampling was inefficient, results may be too")
    level = Verdict.DO_NOT_TRUST if fail else Verdict.LOOK_CLOSER if flag else Verdict.CONVERGED
    return FitVerdict(level=level, headline=HEADLINES[level], reasons=tuple(fail + flag))


def _stored(fit: VerdictSource) -> Mapping[str, Any]:
    """A fit's stored diagnostics as a mapping, from its manifest, its diagnostics, or their JSON."""
    if isinstance(fit, FitManifest):
        fit = fit.diagnostics
    if isinstance(fit, FitDiagnostics):
        return fit.model_dump()
    return fit.get("diagnostics", fit) or {}


def verdict_of(fit: VerdictSource) -> FitVerdict:
    """The verdict stored with a fit (a manifest or its ``diagnostics``), as judged when it was fitted.

    A fit stored without a recognised verdict is ``look_closer`` (the store lists it as
    flagged too), with a reason saying so.
    """
    diagnostics = _stored(fit)
    approximate = bool(diagnostics.get("approximate"))
    try:
        level = Verdict(str(diagnostics.get("verdict")))
    except ValueError:
        return FitVerdict(level=Verdict.LOOK_CLOSER, headline=_headline(Verdict.LOOK_CLOSER, approximate),
                          reasons=(MISSING_REASON,), approximate=approximate)
    reasons = tuple(str(r) for r in diagnostics.get("reasons") or ())
    return FitVerdict(level=level, headline=_headline(level, approximate), reasons=reasons, approximate=approximate)


def badge_of(fit: VerdictSource) -> str:
    """A short badge for a fit's stored verdict (a manifest or its ``diagnostics``)."""
    d = _stored(fit)
    if d.get("approximate"):
        return VERDICT_BADGES["approximate"]
    return VERDICT_BADGES.get(str(d.get("verdict")), UNKNOWN_BADGE)


def verdict_line(fit: VerdictSource) -> str:
    """The badge's symbol and the verdict's headline, once: '⚠️ Look closer before relying on this fit'."""
    symbol = badge_of(fit).split(" ", 1)[0]
    return f"{symbol} {verdict_of(fit).headline}"
