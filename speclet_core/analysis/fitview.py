"""Tables and sentences about fits and jobs for the Home and Fit pages (no Streamlit here)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
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


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 lineage``, ``2 lineages`` (``many`` for irregular plurals)."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def _labels(value: Any, limit: int = 4) -> str:
    items = list(value)
    shown = ", ".join(map(str, items[:limit]))
    return shown + (f" … (+{len(items) - limit})" if len(items) > limit else "")


def _count_labels(value: Any, limit: int = 4, *, everything: bool = False) -> str:
    """``2: KRAS, MYC``; ``all 6: blood, … (+3)`` when the fit took all of its screen's; never a bare "all"."""
    if value in (None, "all") or not list(value):
        return "all in the screen"
    items = list(value)
    if len(items) == 1 and not everything:
        return str(items[0])
    return f"{'all ' if everything else ''}{len(items)}: {_labels(items, limit)}"


def lineages_text(manifest: FitManifest, limit: int = 3) -> str:
    """The fit's lineages by name ("colorectal"; "all 6: blood, …" only when it took all of the screen's)."""
    chosen = manifest.request.selection.get("lineages")
    names = manifest.lineages or (chosen if chosen not in (None, "all") else ())
    return _count_labels(names, limit, everything=chosen in (None, "all"))


def genes_text(manifest: FitManifest, limit: int = 4) -> str:
    chosen = manifest.request.selection.get("genes")
    names = manifest.genes or (chosen if chosen not in (None, "all") else ())
    return _count_labels(names, limit, everything=chosen in (None, "all"))


DEMO_SCREEN_NAME = "Demo screen"
SYNTHETIC = "synthetic"


def screen_of(manifest: FitManifest, upload_names: Mapping[str, str] | None = None) -> tuple[str, bool]:
    """(display name, synthetic?) of the screen a fit was made on, from its manifest alone.

    The demo screen by its name, an upload by its original file name when ``upload_names`` (key →
    file name) knows it, else the table's file name; synthetic when a truth table lies beside it.
    """
    from speclet_core.data.demo import DEMO_NAME, truth_path_for

    raw = manifest.request.data_path
    if not raw:
        return "unknown screen (not recorded)", False
    path = Path(raw)
    synthetic = truth_path_for(path).is_file()
    if path.parent.name == "demo" and path.name.startswith(DEMO_NAME + "."):
        return DEMO_SCREEN_NAME, True
    stem = path.name.split(".")[0]
    if upload_names and stem in upload_names:
        return f"upload {upload_names[stem]}", synthetic
    if stem.startswith("upload-"):
        return f"uploaded table {stem[len('upload-'):][:8]}", synthetic
    return path.name, synthetic


def screen_text(manifest: FitManifest, upload_names: Mapping[str, str] | None = None) -> str:
    """The screen's name with "(synthetic)" when it is one: the Fits tables' screen column and captions."""
    name, synthetic = screen_of(manifest, upload_names)
    return f"{name} ({SYNTHETIC})" if synthetic else name


def recent_fits_table(manifests: Sequence[FitManifest],
                      upload_names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per stored fit: when, screen, model, genes, lineages, verdict, sampling time, fit id."""
    rows = []
    for m in manifests:
        sampler = m.request.sampler
        rows.append(
            {
                "created": _when(m.created_utc),
                "screen": screen_text(m, upload_names),
                "model": m.model,
                # a model without a lineage term has no lineage coordinate: the selection names them
                "genes": genes_text(m),
                "lineages": lineages_text(m),
                "method": "quick (approximate)" if sampler.get("method") == "quick" else
                f"NUTS {sampler.get('chains', '?')}×{sampler.get('draws', '?')}",
                "diagnostics": verdict_badge(m),
                "fit time (s)": round(float(m.timings.get("total_s", float("nan"))), 1),
                "fit_id": m.fit_id,
            }
        )
    columns = ["created", "screen", "model", "genes", "lineages", "method", "diagnostics", "fit time (s)", "fit_id"]
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


# Measured wall time of the first fit (bootstrap.FIRST_FIT_SAMPLER on the demo screen, compile included):
# 142 s on an idle 2-core machine, 248–310 s with other work running (issue 14; docs/benchmarks.md).
FIRST_FIT_PROMISE = "usually 2–5 minutes, depending on how busy the machine is"


def first_start_message(n_stored: int, jobs: Sequence[Any], *, waiting_for_queue: bool = False) -> str | None:
    """What to tell a new user while the automatic first fit runs (None once fits exist).

    ``waiting_for_queue``: nothing is queued yet on an empty installation (the server queues the
    first fit a few seconds after it starts).
    """
    if n_stored:
        return None
    active = [j for j in jobs if j.active]
    if not active:
        if waiting_for_queue and not jobs:
            return ("Welcome! The server is about to queue a first fit of the demo screen; this page follows it "
                    "and opens it when it is done.")
        return None
    j = active[0]
    if str(j.status) == "queued":
        return ("Welcome! The demo screen's first fit is queued and starts as soon as the worker is free "
                f"({FIRST_FIT_PROMISE}). This page follows it and opens it on every page when it is done.")
    counting = j.progress is not None and str(j.phase) in ("tuning", "sampling")
    pct = f" ({j.progress:.0%} of {j.phase})" if counting else ""
    eta = f", about {_eta(j.eta_s)} left" if j.eta_s is not None else f" ({FIRST_FIT_PROMISE} in all)"
    return (f"Welcome! The demo screen's first fit is running: {j.phase or 'starting'}{pct}{eta}. "
            "This page follows it and opens it on every page when it is done.")


def terms_table(spec: Any) -> pd.DataFrame:
    """The model's terms and the question each answers."""
    return pd.DataFrame({"term": list(spec.terms), "what it tells you": list(spec.terms.values())})


def model_graph_source(model: str, selection: Any) -> str:
    """Graphviz DOT source of the model built on ``selection`` (boxes are the named dims)."""
    import pymc as pm

    from speclet_core.models.spec import get_model

    return str(pm.model_to_graphviz(get_model(model).build(selection)).source)


def fit_caption(manifest: FitManifest, upload_names: Mapping[str, str] | None = None) -> str:
    """One Markdown line about a fit for the pages' captions: its screen (and whether it is synthetic) first."""
    row = recent_fits_table([manifest], upload_names).iloc[0]
    e = escape_markdown
    name, synthetic = screen_of(manifest, upload_names)
    screen = f"Screen **{e(name)}**" + (" (**synthetic**: simulated readings with known truth, not real data)"
                                        if synthetic else "")
    n_lin = len(manifest.lineages) or None
    lineage_word = "lineage" if n_lin == 1 else "lineages"
    gene_word = "gene" if len(manifest.genes) == 1 else "genes"
    return (f"{screen} · model **{e(row['model'])}** (v{e(manifest.model_version)}) · {gene_word} {e(row['genes'])} · "
            f"{lineage_word} {e(row['lineages'])} · {row['method']} · fitted {row['created']} in "
            f"{row['fit time (s)']} s · fit `{manifest.fit_id[:12]}`")
