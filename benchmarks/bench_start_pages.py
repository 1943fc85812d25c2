"""Server-side render time of the Home, Data explorer, Fit and Diagnostics pages with a big stored fit.

A posterior of 2,000 genes × 1,000 cell lines (lazily generated, as in bench_store.py) is put
into a fresh store; each page is then run through Streamlit's AppTest (the same script run the
server does, without the browser) several times: the first run is cold (empty caches), the
others warm. Target (issue #7): every page under 2 s server-side.

    .venv/bin/python benchmarks/bench_start_pages.py [--genes 2000 --cell-lines 1000 --draws 250]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

PAGES = ["home", "data", "fit", "diagnostics"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--genes", type=int, default=2000)
    p.add_argument("--cell-lines", type=int, default=1000)
    p.add_argument("--draws", type=int, default=250, help="draws per chain (page times do not depend on it)")
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--data-dir", type=Path, help="reuse the stored fit of an earlier run in this folder")
    p.add_argument("--pages", default=",".join(PAGES))
    args = p.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="speclet-bench-pages-"))
    os.environ["SPECLET_DATA_DIR"] = str(data_dir)
    from bench_store import bench_request, lazy_idata

    from model_store import ModelStore

    roles = {"gene_effect": "gene_effect", "gene_lineage_effect": "gene_lineage_effect",
             "gene_cell_line_effect": "gene_cell_line_effect", "hyperparameters": ["mu_gene", "sigma_gene"],
             "covariate_slopes": []}
    request = bench_request("pages")
    t0 = time.perf_counter()
    store = ModelStore(data_dir / "fits")
    idata = None if store.exists(request.fit_id) else lazy_idata(args.genes, args.cell_lines, args.draws, args.chains)
    diagnostics = {"max_rhat": 1.004, "min_ess_bulk": 450.0, "min_ess_tail": 420.0, "divergences": 0,
                   "bfmi_min": 0.9, "treedepth_hits": 0, "verdict": "converged", "reasons": [], "approximate": False}
    if idata is not None:
        store.put(request.fit_id, idata, request=request.model_dump(mode="json"), roles=roles,
                  diagnostics=diagnostics, timings={"total_s": 0.0})
    put_s = time.perf_counter() - t0
    fit_id = request.fit_id
    print(f"stored a {args.genes} × {args.cell_lines} fit ({args.chains}×{args.draws} draws) in {put_s:.0f} s; "
          f"data dir {data_dir}")

    import streamlit as st
    from page_runs import time_page, use_navigation_mode

    use_navigation_mode()
    results = {}
    st.cache_data.clear()
    st.cache_resource.clear()
    for page in args.pages.split(","):
        times = [time_page(page, fit_id)[0] for _ in range(args.runs)]
        results[page] = {"cold_s": round(times[0], 3), "warm_median_s": round(statistics.median(times[1:]), 3)}
        print(f"{page:12s} cold {times[0]:6.2f} s   warm median {statistics.median(times[1:]):6.2f} s")
    out = ROOT / "benchmarks" / "out" / "start_pages.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "put_s": put_s, "pages": results}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
