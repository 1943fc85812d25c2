"""Tables and sentences about fits and jobs for the Home and Fit pages (no Streamlit here)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from model_store.manifest import FitManifest
from speclet_core.analysis.escaping import escape_markdown
from speclet_core.diagnostics.verdict import VerdictSource, badge_of


def verdict_badge(fit: VerdictSource) -> str:
    """A short badge for a fit's stored verdict; approximate fits are never 'converged'."""
    return badge_of(fit)


def is_approximate(manifest: FitManifest) -> bool:
    """True for quick (ADVI) fits, whose intervals are a first look only."""
    return manifest.approximate


def fit_label(manifest: FitManifest) -> str:
    """A short name for a fit in pickers and legends: model, size, id prefix."""
    method = "quick" if manifest.approximate else "NUTS"
    return f"{manifest.model} · {len(manifest.genes)} genes · {method} · {manifest.fit_id[:8]}"


def _when(ts: Any) -> str:
    if ts is None or ts == "":
        return ""
    if isinstance(ts, int | float):
        dt = datetime.fromtimestamp(float(ts), tz=UTC)
    else:
        try:
            dt = datetime.fromisoformat(str(ts))
        except ValueError:
            return str(ts)
    return dt.strftime("%Y-%m-%d %H:%M UTC")


def _labels(value: Any, limit: int = 4) -> str:
    if value in (None, "all"):
        return "all"
    items = list(value)
    shown = ", ".join(map(str, items[:limit]))
    return shown + (f" … (+{len(items) - limit})" if len(items) > limit else "")


def _count_labels(value: Any, limit: int = 4) -> str:
    return "all" if value in (None, "all") else f"{len(value)}: {_labels(value, limit)}"


def recent_fits_table(manifests: Sequence[FitManifest]) -> pd.DataFrame:
    """One row per stored fit: when, model, genes, lineages, verdict, sampling time, fit id."""
    rows = []
    for m in manifests:
        sampler = m.request.sampler
        selection = m.request.selection
        # a model without a lineage term has no lineage coordinate: fall back to what was selected
        genes = m.genes or selection.get("genes") or "all"
        lineages = m.lineages or selection.get("lineages") or "all"
        rows.append(
            {
                "created": _when(m.created_utc),
                "model": m.model,
                "genes": _count_labels(genes),
                "lineages": _count_labels(lineages, 3),
                "method": "quick (approximate)" if sampler.get("method") == "quick" else
                f"NUTS {sampler.get('chains', '?')}×{sampler.get('draws', '?')}",
                "diagnostics": verdict_badge(m),
                "fit time (s)": round(float(m.timings.get("total_s", float("nan"))), 1),
                "fit_id": m.fit_id,
            }
        )
    columns = ["created", "model", "genes", "lineages", "method", "diagnostics", "fit time (s)", "fit_id"]
    return pd.DataFrame(rows, columns=columns)


def filter_manifests(
    manifests: Iterable[FitManifest], model: str | None = None, gene: str | None = None, lineage: str | None = None
) -> list[FitManifest]:
    out = []
    for m in manifests:
        if model and m.model != model:
            continue
        if gene and gene not in m.genes:
            continue
        if lineage and lineage not in m.lineages:
            continue
        out.append(m)
    return out


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0.0, float(seconds))
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def jobs_table(jobs: Sequence[Any], now: float | None = None) -> pd.DataFrame:
    """The queue as a table: status, phase, progress, draws, divergences, ETA, error."""
    now = time.time() if now is None else now
    rows = []
    for j in jobs:
        req = j.request
        progress = j.progress
        rows.append(
            {
                "status": str(j.status),
                "phase": str(j.phase) if j.phase and j.active else "",
                "progress": float(progress) if progress is not None and j.active else None,
                "draws": f"{j.draws_done:,}/{j.draws_total:,}" if j.draws_total else "",
                "divergences": int(j.divergences),
                "ETA": _eta(j.eta_s) if j.active else "",
                "model": req.model,
                "submitted": _when(j.submitted_at),
                "waiting/running": _eta(now - (j.started_at or j.submitted_at)) if j.active else "",
                "label": j.label,
                "submitted by": j.submitter,
                "error": j.error or "",
                "fit_id": j.job_id,
            }
        )
    columns = ["status", "phase", "progress", "draws", "divergences", "ETA", "model", "submitted",
               "waiting/running", "label", "submitted by", "error", "fit_id"]
    return pd.DataFrame(rows, columns=columns)


def first_start_message(n_stored: int, jobs: Sequence[Any]) -> str | None:
    """What to tell a new user while the automatic first fit runs (None once fits exist)."""
    if n_stored:
        return None
    active = [j for j in jobs if j.active]
    if not active:
        return None
    j = active[0]
    if str(j.status) == "queued":
        return ("Welcome! The demo screen's first fit is queued and starts as soon as the worker is free. "
                "Every page will show real posteriors when it is done (about a minute).")
    counting = j.progress is not None and str(j.phase) in ("tuning", "sampling")
    pct = f" ({j.progress:.0%} of {j.phase})" if counting else ""
    return (f"Welcome! The demo screen's first fit is running: {j.phase or 'starting'}{pct}. "
            "Every page will show real posteriors when it is done.")


def terms_table(spec: Any) -> pd.DataFrame:
    """The model's terms and the question each answers."""
    return pd.DataFrame({"term": list(spec.terms), "what it tells you": list(spec.terms.values())})


def model_graph_source(model: str, selection: Any) -> str:
    """Graphviz DOT source of the model built on ``selection`` (boxes are the named dims)."""
    import pymc as pm

    from speclet_core.models.spec import get_model

    return str(pm.model_to_graphviz(get_model(model).build(selection)).source)


def fit_caption(manifest: FitManifest) -> str:
    """One Markdown line about a fit for the pages' captions (its gene and lineage names escaped)."""
    row = recent_fits_table([manifest]).iloc[0]
    e = escape_markdown
    return (f"Model **{e(row['model'])}** (v{e(manifest.model_version)}) · genes {e(row['genes'])} · lineages "
            f"{e(row['lineages'])} · {row['method']} · fitted {row['created']} in {row['fit time (s)']} s · "
            f"fit `{manifest.fit_id[:12]}`")
