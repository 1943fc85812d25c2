"""Gradient time and draws per second of the one-lineage model: nutpie with numba (CPU) vs nutpie with JAX.

Usage (short: a few minutes on a GPU machine; the JAX side uses whatever device JAX sees)::

    .venv/bin/python benchmarks/bench_jax_gpu.py                     # 2,000 genes × 40 cell lines × 4 sgRNAs
    .venv/bin/python benchmarks/bench_jax_gpu.py --genes 500 --backends jax

Builds ``sgrna_gene_cell_line`` on a synthetic single-lineage screen, compiles it with each
backend (timed), times ``--evals`` gradient evaluations with nutpie's own benchmark (one
thread), then samples ``--chains`` × (``--tune`` + ``--draws``) and reports draws per second
(every iteration, warm-up included) and gradient evaluations per draw. Prints one JSON object.
For a GPU, JAX needs its CUDA plugin next to the CPU jaxlib that requirements.txt pins.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _jax_devices() -> list[str]:
    try:
        import jax

        return [f"{d.platform}:{getattr(d, 'device_kind', '')}" for d in jax.devices()]
    except Exception as exc:
        return [f"unavailable ({exc})"]


def bench_backend(model, backend: str, args: argparse.Namespace) -> dict:
    import numpy as np
    import nutpie

    from speclet_core.fitting.nutpie_sampler import compile_model
    from speclet_core.models.spec import public_variables

    t0 = time.perf_counter()
    compiled = compile_model(model, ("bench", "1", f"{args.genes}x{args.cells}"), public_variables(model), backend)
    compile_s = time.perf_counter() - t0
    point = np.asarray(compiled.initial_point_func(1) if hasattr(compiled, "initial_point_func") else
                       np.zeros(compiled.n_dim), dtype=np.float64).ravel()
    if point.size != compiled.n_dim:
        point = np.zeros(compiled.n_dim)
    times = compiled.benchmark_logp(point, args.evals, 1)
    per_eval = times.to_numpy(dtype=float).ravel()
    grad_s = float(np.median(per_eval[len(per_eval) // 5:]))  # first evaluations include JIT warm-up
    t1 = time.perf_counter()
    trace = nutpie.sample(compiled, chains=args.chains, tune=args.tune, draws=args.draws, seed=1,
                          progress_bar=False, cores=args.chains)
    sample_s = time.perf_counter() - t1
    steps = float(trace.sample_stats["n_steps"].mean())
    iterations = args.chains * (args.tune + args.draws)
    return {
        "backend": backend, "compile_s": round(compile_s, 1), "gradient_ms": round(grad_s * 1e3, 3),
        "sample_s": round(sample_s, 1), "draws_per_s": round(iterations / sample_s, 2),
        "steps_per_kept_draw": round(steps, 1), "parameters": int(compiled.n_dim),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes", type=int, default=2000)
    ap.add_argument("--cells", type=int, default=40)
    ap.add_argument("--evals", type=int, default=200)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--tune", type=int, default=100)
    ap.add_argument("--draws", type=int, default=100)
    ap.add_argument("--backends", nargs="+", default=["numba", "jax"], choices=["numba", "jax"])
    args = ap.parse_args()

    from speclet_core.data.screen import screen_from_frame
    from speclet_core.data.selection import select_screen
    from speclet_core.data.synthetic import simulate_screen
    from speclet_core.models.spec import get_model

    sim = simulate_screen(args.genes, args.cells, 1, seed=2002, sgrnas_per_gene=(4, 4), covariates=False)
    sel = select_screen(screen_from_frame(sim.data))
    model = get_model("sgrna_gene_cell_line").build(sel)
    out: dict = {"readings": sel.n_rows, "genes": args.genes, "cell_lines": args.cells, "nproc": os.cpu_count(),
                 "jax_devices": _jax_devices(), "results": []}
    for backend in args.backends:
        try:
            out["results"].append(bench_backend(model, backend, args))
        except Exception as exc:
            out["results"].append({"backend": backend, "error": str(exc)[:500]})
        print(json.dumps(out["results"][-1]), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
