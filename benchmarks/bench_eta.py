"""How right is the live ETA once sampling has started? One real fit, the worker's progress writer, ETA vs truth.

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_eta.py [--model gene_lineage --chains 2 --tune 300 --draws 300]

The fit runs through ``run_fit`` with the worker's own ``_ProgressWriter`` (draw-rate ETA) and is stored; at every
progress write the job's ETA is computed as the pages compute it (``fitview.eta_seconds`` with the submission's
estimate by stage) and compared, afterwards, with the seconds that were really left until the fit was stored.
Prints one JSON line: the ratio ETA / truth at 10 %, 25 %, 50 %, 75 % and 90 % of the draws, and its range after
the first 10 %.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="gene_lineage")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--draws", type=int, default=300)
    args = parser.parse_args()

    from model_store import ModelStore
    from speclet_core.analysis.fitview import eta_seconds
    from speclet_core.data.demo import ensure_demo_screen
    from speclet_core.fitting.engine import run_fit
    from speclet_core.fitting.request import prepare_fit
    from speclet_core.queue.jobs import _estimate_parts
    from speclet_core.queue.worker import _ProgressWriter
    from speclet_core.records import SamplerSettings
    from speclet_core.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="bench-eta-"))
    settings = Settings(data_dir=work)
    load_before = os.getloadavg()
    sampler = SamplerSettings(chains=args.chains, tune=args.tune, draws=args.draws)
    request, estimate = prepare_fit(ensure_demo_screen(work), args.model, sampler=sampler, seed=3, settings=settings)
    parts = _estimate_parts(estimate)
    seen: list[tuple[float, float | None, float]] = []  # (time, ETA the pages would show, fraction of draws)
    state = {"phase": None, "since": time.time()}

    class Channel:
        def progress(self, *, phase, draws_done, draws_total, divergences, eta_s):  # type: ignore[no-untyped-def]
            now = time.time()
            if phase != state["phase"]:
                state["phase"], state["since"] = phase, now
            job = SimpleNamespace(status="running", active=True, phase=phase, eta_s=eta_s, estimate_parts=parts,
                                  estimate_s=parts["total_s"], started_at=start, phase_started_at=state["since"])
            left, _ = eta_seconds(job, now)
            if draws_total and str(phase) in ("tuning", "sampling"):
                seen.append((now, left, draws_done / draws_total))

    start = time.time()
    result = run_fit(request, settings=settings, progress=_ProgressWriter(Channel()))
    ModelStore(settings.fits_dir).put(request.fit_id, result.idata, request=request.model_dump(mode="json"),
                                      roles=result.spec.roles(), diagnostics=result.diagnostics,
                                      timings=result.timings, provenance=result.provenance)
    end = time.time()
    ratios = [(f, left / (end - t)) for t, left, f in seen if left is not None and end - t > 0]
    at = {}
    for mark in (0.1, 0.25, 0.5, 0.75, 0.9):
        hit = next((r for f, r in ratios if f >= mark), None)
        at[f"{mark:.0%}"] = None if hit is None else round(hit, 2)
    after = [r for f, r in ratios if f >= 0.1]
    print(json.dumps({
        "model": args.model, "sampler": sampler.model_dump(mode="json"), "load_before": load_before,
        "load_after": os.getloadavg(), "wall_s": round(end - start, 1), "timings": result.timings,
        "estimate": parts, "eta_over_truth_at": at,
        "eta_over_truth_range_after_10pct": [round(min(after), 2), round(max(after), 2)] if after else None,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
