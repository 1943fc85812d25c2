"""Result pages with a stored genome-wide fit: 18,000 genes × 40 cell lines, model ``sgrna_gene_cell_line``.

Writes, in a fresh data dir, a fake but well-formed posterior of that model through the real store writer
(``tests/app/genome_helpers.py``: float32 draws, per-gene chunks, 2 chains × 100 draws, the gene × cell-line
effect generated gene by gene while it is written, sample stats, 2.9 M observed readings, a verdict judged
from its numbers). Then times, per view, the server side of each result page (AppTest runs: one cold after
clearing the caches, then warm ones) and counts the rows shipped per chart; and times the analysis calls
alone: the stored posterior opened + the heatmap matrices read, ranking all genes, the Diagnostics summary.
The same analysis calls are timed on a 5,000-gene fit too (issue #16 targets: < 1 s and < 2 s).

    .venv/bin/python benchmarks/bench_pages_genome.py [--genes 18000 --cell-lines 40 --draws 100 --runs 3]
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "app"), str(ROOT / "benchmarks")]

# (page, query parameters): each page's default view and its heaviest common interactions
VIEWS: list[tuple[str, dict[str, Any]]] = [
    ("heatmap", {}),
    ("heatmap", {"heat_n": "200", "heat_order": "similar profiles (clustering)"}),
    ("heatmap", {"heat_how": "Search by name", "heat_genes": ["G17000", "KRAS", "G00042"]}),
    ("rankings", {}),
    ("rankings", {"rank_page": "90"}),
    ("forest", {}),
    ("forest", {"forest_view": "One gene across cell lines", "forest_gene": "MYC"}),
    ("diagnostics", {}),
]


def time_analysis(data_dir: Path, fit_id: str, repeats: int = 3) -> dict[str, float]:
    """Seconds (best of ``repeats``, each on a freshly opened fit) of the analysis calls the pages make."""
    from model_store import ModelStore
    from speclet_core.analysis.heatmap import HEATMAP_STATS, heatmap_view
    from speclet_core.analysis.ranking import rank_genes
    from speclet_core.analysis.subsets import top_genes
    from speclet_core.diagnostics.checks import rank_worst, summarise_variables

    out: dict[str, list[float]] = {"open_and_heatmap_matrix_s": [], "heatmap_view_top50_s": [],
                                   "rank_all_genes_s": [], "diagnostics_summary_s": []}
    for _ in range(repeats):
        t = time.perf_counter()
        fit = ModelStore(data_dir / "fits").get(fit_id)
        matrices = {s: fit.matrix("gene_cell_line", s) for s in HEATMAP_STATS}
        out["open_and_heatmap_matrix_s"].append(time.perf_counter() - t)
        t = time.perf_counter()
        genes = top_genes(fit.gene_summary(), 50)
        heatmap_view(matrices, genes, column_lineage={})
        out["heatmap_view_top50_s"].append(time.perf_counter() - t)
        t = time.perf_counter()
        rank_genes(fit.draws("gene_effect", load=False))
        out["rank_all_genes_s"].append(time.perf_counter() - t)
        t = time.perf_counter()
        summary = fit.summary()
        summarise_variables(summary)
        rank_worst(summary, k=50)
        out["diagnostics_summary_s"].append(time.perf_counter() - t)
        fit.close()
    return {k: round(min(v), 3) for k, v in out.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--genes", type=int, default=18_000)
    p.add_argument("--cell-lines", type=int, default=40)
    p.add_argument("--draws", type=int, default=100, help="draws per chain")
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--runs", type=int, default=3, help="runs per view: 1 cold + the rest warm")
    p.add_argument("--mid-genes", type=int, default=5_000, help="the second fit, analysis calls only (0: none)")
    p.add_argument("--skip-pages", action="store_true")
    p.add_argument("--data-dir", type=Path, help="reuse the fits stored there by an earlier run (else a fresh dir)")
    args = p.parse_args()

    from genome_helpers import put_genome_fit

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="speclet-bench-genome-"))
    os.environ["SPECLET_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("SPECLET_READ_ONLY", "1")  # no worker banner lookups: only the pages are measured
    result: dict[str, Any] = {"args": vars(args), "load_before": os.getloadavg()}
    print(data_dir, flush=True)
    sizes = [("genome", args.genes)] + ([("mid", args.mid_genes)] if args.mid_genes else [])
    fits: dict[str, str] = {}
    for name, genes in sizes:
        t = time.perf_counter()
        stored = data_dir / name / "fit_id"
        if stored.is_file():
            fits[name] = stored.read_text()
        else:
            fits[name] = put_genome_fit(data_dir / name, genes, args.cell_lines, chains=args.chains, draws=args.draws)
            stored.write_text(fits[name])
            result[f"put_{name}_s"] = round(time.perf_counter() - t, 1)
        folder = data_dir / name / "fits"
        result[f"stored_{name}_mb"] = round(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6, 1)
        result[f"analysis_{name}"] = time_analysis(data_dir / name, fits[name])
        print(name, json.dumps({k: v for k, v in result.items() if name in k}), flush=True)

    views = []
    if not args.skip_pages:
        import streamlit as st
        from bench_pages import shipped_rows
        from page_runs import time_page, use_navigation_mode

        os.environ["SPECLET_DATA_DIR"] = str(data_dir / "genome")
        use_navigation_mode()
        for page, params in VIEWS:
            st.cache_data.clear()
            st.cache_resource.clear()
            times, rows = [], []
            for _ in range(args.runs):
                seconds, at = time_page(page, fits["genome"], params, timeout=600)
                times.append(seconds)
                rows = shipped_rows(at)
            widgets = sum(len(getattr(w.proto, "options", [])) for kind in ("multiselect", "selectbox")
                          for w in at.get(kind))
            table_rows = [len(df.value) for df in at.dataframe]
            view = f"{page} {params}" if params else page
            warm = statistics.median(times[1:]) if len(times) > 1 else float("nan")
            views.append({"view": view, "cold_s": round(times[0], 2), "warm_median_s": round(warm, 2),
                          "chart_rows": rows, "picker_options": widgets, "table_rows": table_rows})
            print(f"{view:80s} cold {times[0]:6.2f} s  warm {warm:6.2f} s  chart rows {rows}  options {widgets}  table rows {table_rows}",
                  flush=True)
    result["views"] = views
    result["load_after"] = os.getloadavg()
    out = ROOT / "benchmarks" / "out" / "pages_genome.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
