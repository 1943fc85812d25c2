"""Tables and sentences about fits and jobs for the Home and Fit pages (no Streamlit here)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
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
SYNTHETIC_NOTE = "Synthetic screen: simulated readings with known truth, not real data"


def screen_of(manifest: FitManifest) -> tuple[str, bool]:
    """(display name, synthetic?) of the screen a fit was made on, from its manifest alone (not the active screen).

    The demo screen by its name, an upload by its original file name (recorded beside it by
    ``sources.save_upload``), else the table's file name; synthetic when a truth table lies beside it.
    """
    from speclet_core.data.demo import DEMO_NAME, truth_path_for
    from speclet_core.data.sources import upload_name_for

    raw = manifest.request.data_path
    if not raw:
        return "unknown screen (not recorded)", False
    path = Path(raw)
    synthetic = truth_path_for(path).is_file()
    if path.name.startswith(DEMO_NAME + ".") and synthetic:
        return DEMO_SCREEN_NAME, True
    stem = path.name.split(".")[0]
    if stem.startswith("upload-"):
        name = upload_name_for(path)
        return (f"upload {name}" if name else f"uploaded table {stem[len('upload-'):][:8]}"), synthetic
    if stem.startswith("import-"):
        return f"DepMap import {stem[len('import-'):][:8]}", synthetic
    return path.name, synthetic


def screen_text(manifest: FitManifest) -> str:
    """The screen's name with "(synthetic)" when it is one: the Fits tables' screen column."""
    name, synthetic = screen_of(manifest)
    return f"{name} ({SYNTHETIC})" if synthetic else name


def recent_fits_table(manifests: Sequence[FitManifest]) -> pd.DataFrame:
    """One row per stored fit: when, screen, model, genes, lineages, verdict, sampling time, fit id."""
    rows = []
    for m in manifests:
        sampler = m.request.sampler
        rows.append(
            {
                "created": _when(m.created_utc),
                "screen": screen_text(m),
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


# Phases in which the sampler counts draws (progress and a draw-rate ETA); in the others, the seconds spent show life.
COUNTING_PHASES = ("tuning", "sampling")


def phase_text(job: Any, now: float | None = None) -> str:
    """A running job's phase with its progress or its seconds so far: ``sampling 45%``, ``saving · 34 s``.

    A counting phase at 100% (the sampler finishing its trace) also shows its seconds, so no step looks stuck.
    """
    if not job.phase or not job.active:
        return ""
    now = time.time() if now is None else now
    phase = str(job.phase)
    since = job.phase_started_at or job.started_at
    elapsed = f" · {_eta(now - since)}" if since else ""
    if phase in COUNTING_PHASES and job.progress is not None:
        if job.progress < 1.0:
            return f"{phase} {job.progress:.0%}"
        return f"{phase} 100%, finishing{elapsed}"
    return f"{phase}{elapsed}"


def eta_seconds(job: Any, now: float | None = None) -> tuple[float | None, str]:
    """Seconds a job has left and how that is known: ``("draws")`` from the draw rate, ``("estimate")`` from the
    cost estimate made at submission, ``("over")`` past the estimate; ``(None, "")`` when nothing says.

    While draws are counted: the draw rate's time to the last draw (the worker measures it in the phase) plus the
    estimated post-processing (summaries, diagnostics, writing). Before (loading, compiling): the stages still ahead
    by the estimate, compiling less its seconds so far. After sampling: the post-processing estimate less its
    seconds so far.
    """
    if not job.active:
        return None, ""
    now = time.time() if now is None else now
    phase = str(job.phase or "")
    parts = getattr(job, "estimate_parts", None) or {}
    post = parts.get("postprocess_s")
    if str(job.status) == "queued":
        return (job.estimate_s, "estimate") if job.estimate_s is not None else (None, "")
    in_phase = max(0.0, now - (job.phase_started_at or job.started_at or now))
    if phase in COUNTING_PHASES:
        if job.eta_s is not None:
            return job.eta_s + (post or 0.0), "draws"
        if parts:
            return parts["sampling_s"] + (post or 0.0), "estimate"
        return None, ""
    if phase in ("loading", "compiling"):
        if parts:
            compile_left = parts["compile_s"] - in_phase if phase == "compiling" else parts["compile_s"]
            if compile_left < 1 and phase == "compiling":
                return parts["sampling_s"] + parts["postprocess_s"], "over"
            return compile_left + parts["sampling_s"] + parts["postprocess_s"], "estimate"
        if job.estimate_s is not None and job.started_at:
            left = job.estimate_s - (now - job.started_at)
            return (left, "estimate") if left >= 1 else (None, "over")
        return None, ""
    if phase == "saving" and post is not None:
        left = post - in_phase
        return (left, "estimate") if left >= 1 else (None, "over")
    return None, ""


def eta_text(job: Any, now: float | None = None) -> str:
    """Time left for a person (``eta_seconds``): ``3 min`` from the draw rate, ``≈ 3 min (estimate)`` from the
    cost estimate, ``longer than estimated`` past it; "" when nothing says."""
    seconds, basis = eta_seconds(job, now)
    if basis == "draws":
        return _eta(seconds)
    if basis == "estimate":
        if str(job.status) == "queued":
            return f"≈ {_eta(seconds)} once started (estimate)"
        return f"≈ {_eta(seconds)} (estimate)"
    if basis == "over":
        if seconds is not None:  # compiling past its estimate: the stages after it are still ahead
            return f"compiling longer than estimated; ≈ {_eta(seconds)} after it (estimate)"
        return "longer than estimated"
    return ""


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
                "phase": phase_text(j, now),
                "progress": float(progress) if progress is not None and j.active else None,
                "draws": f"{j.draws_done:,}/{j.draws_total:,}" if j.draws_total else "",
                "divergences": int(j.divergences),
                "ETA": eta_text(j, now),
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


COST_COLUMNS = ("compile_s", "sampling_s", "postprocess_s", "total_s", "peak_rss_mb")


def cost_table(manifests: Sequence[FitManifest]) -> pd.DataFrame:
    """Predicted vs actual cost of each stored fit (``store list --costs``), to check ``fitting/cost.py``'s constants.

    Predicted: the estimate made when the fit started (at that moment's machine load). Actual: the engine's
    timings and peak RSS; post-processing and the total include the store's write (``store_timings``). Fits stored
    before costs were recorded have no predicted columns.
    """
    rows = []
    for m in manifests:
        cost = m.provenance.get("cost") or {}
        predicted = cost.get("predicted") or {}
        actual = dict(cost.get("actual") or {})
        if not actual:
            actual = {"compile_s": m.timings.get("compile_s"), "sampling_s": m.timings.get("sample_s"),
                      "postprocess_s": m.timings.get("postprocess_s"), "total_s": m.timings.get("total_s")}
        store_s = float(m.store_timings.get("total_s") or 0.0)
        for key in ("postprocess_s", "total_s"):
            if actual.get(key) is not None:
                actual[key] = float(actual[key]) + store_s
        row: dict[str, Any] = {"fit_id": m.fit_id, "model": m.model, "readings": predicted.get("rows"),
                               "parameters": predicted.get("parameters")}
        for col in COST_COLUMNS:
            p, a = predicted.get(col), actual.get(col)
            row[f"{col} predicted"] = None if p is None else round(float(p), 1)
            row[f"{col} actual"] = None if a is None else round(float(a), 1)
            row[f"{col} ratio"] = round(float(a) / float(p), 2) if p and a is not None else None
        row["load ×"] = predicted.get("slowdown")
        rows.append(row)
    columns = ["fit_id", "model", "readings", "parameters",
               *[f"{c} {k}" for c in COST_COLUMNS for k in ("predicted", "actual", "ratio")], "load ×"]
    return pd.DataFrame(rows, columns=columns)


# Measured wall time of the first fit (bootstrap.FIRST_FIT_SAMPLER, gene_lineage on the demo screen, through a worker
# as `serve` runs it, claim to stored): 80 s on this 2-core machine at load average 2.2 (compile 42 s, sampling 22 s,
# summaries 4 s, writing 12 s; 2026-12-03); not done after 7.7 min at load average 13.5 (other sessions' fits);
# issue 14 saw 142 s idle and 248–310 s under load.
FIRST_FIT_PROMISE = "1–5 minutes on a quiet 2-core machine, longer while other work runs"


def _first_job(jobs: Sequence[Any]) -> Any | None:
    active = [j for j in jobs if j.active]
    return active[-1] if active else None  # the oldest active job (lists are newest first): the one that finishes first


def first_start_message(n_stored: int, jobs: Sequence[Any], *, on_home: bool = True,
                        now: float | None = None) -> str | None:
    """What to tell a visitor while an empty installation's first fit is queued or running (None once fits exist).

    ``on_home``: Home follows the fit and opens it; any other page says no fit is open *yet*.
    """
    from speclet_core.queue.bootstrap import FIRST_FIT_LABEL

    job = None if n_stored else _first_job(jobs)
    if job is None:
        return None
    what = "The demo screen's first fit" if job.label == FIRST_FIT_LABEL else f"The first fit ({job.request.model})"
    lead = "Welcome! " if on_home else "No fit is open yet. "
    follow = ("This page follows it and, when it is stored, opens it on every page (no click needed)." if on_home
              else "This page shows it as soon as it is stored.")
    promise = FIRST_FIT_PROMISE if job.label == FIRST_FIT_LABEL else ""
    if str(job.status) == "queued":
        when = f" ({promise})" if promise else ""
        return f"{lead}{what} is queued and starts as soon as a worker is free{when}. {follow}"
    eta = eta_text(job, now)  # the draw rate's ETA, or the cost estimate's while compiling
    if eta and eta[0].isdigit():
        left = f", about {eta} left"
    elif eta.startswith("≈"):
        left = f", {eta} left"
    else:  # past the estimate (or none): the measured range of the whole first fit
        left = f"; the whole fit takes {promise}" if promise else ""
    return f"{lead}{what} is running: {phase_text(job, now) or 'starting'}{left}. {follow}"


def first_start_progress(jobs: Sequence[Any], now: float | None = None) -> tuple[float, str]:
    """(fraction 0–1, label) for the progress bar under ``first_start_message``: the draws counted (tuning and
    sampling are most of a fit's time), a sliver before them and nearly full while summarising and saving."""
    job = _first_job(jobs)
    if job is None:
        return 0.0, ""
    now = time.time() if now is None else now
    if str(job.status) == "queued":
        return 0.0, "waiting for a worker"
    phase = str(job.phase or "")
    if phase in COUNTING_PHASES and job.progress is not None:
        fraction = 0.05 + 0.85 * job.progress
    else:
        fraction = 0.95 if phase == "saving" else 0.02
    return fraction, f"{phase_text(job, now) or 'starting'} · running for {_eta(now - (job.started_at or now))}"


def terms_table(spec: Any) -> pd.DataFrame:
    """The model's terms and the question each answers."""
    return pd.DataFrame({"term": list(spec.terms), "what it tells you": list(spec.terms.values())})


def model_graph_source(model: str, selection: Any) -> str:
    """Graphviz DOT source of the model built on ``selection`` (boxes are the named dims)."""
    import pymc as pm

    from speclet_core.models.spec import get_model

    return str(pm.model_to_graphviz(get_model(model).build(selection)).source)


def fit_caption(manifest: FitManifest) -> str:
    """One Markdown line about a fit for the pages' captions: its screen (and whether it is synthetic) first."""
    row = recent_fits_table([manifest]).iloc[0]
    e = escape_markdown
    name, synthetic = screen_of(manifest)
    screen = f"Screen **{e(name)}**" + (" (**synthetic**: simulated readings with known truth, not real data)"
                                        if synthetic else "")
    n_lin = len(manifest.lineages) or None
    lineage_word = "lineage" if n_lin == 1 else "lineages"
    gene_word = "gene" if len(manifest.genes) == 1 else "genes"
    return (f"{screen} · model **{e(row['model'])}** (v{e(manifest.model_version)}) · {gene_word} {e(row['genes'])} · "
            f"{lineage_word} {e(row['lineages'])} · {row['method']} · fitted {row['created']} in "
            f"{row['fit time (s)']} s · fit `{manifest.fit_id[:12]}`")
