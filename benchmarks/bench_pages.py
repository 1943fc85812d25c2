"""Server-side render time of the result pages with a stored fit of 2,000 genes × 1,000 cell lines.

Builds, in a fresh data dir: a screen table of 2,000 genes × 1,000 cell lines × 20 lineages (one
reading per gene and cell line: 2 M readings, with RNA expression), and a fake posterior of it
(no PyMC; the big gene × cell-line variable is generated lazily, gene by gene, while the store
writes it) with every variable the result pages read: ``gene_effect``, ``gene_lineage_effect``,
``gene_cell_line_effect``, ``rna_slope``, a thinned posterior predictive and a small prior
predictive; no log-likelihood (left out of fits this size). A second, gene-level fit of the same
readings gives the Compare page something to compare.

Each view is then run through Streamlit's AppTest (the script run the server does, without the
browser): the first run is cold (empty caches), the next ones warm. Also reported: the rows shipped
to the browser per run (all charts together; the target is < 50k marks per chart).
Target (issue #8 / part 1): every page under 2 s server-side. With ``--browser`` the same views are
then opened in headless Chromium against a served app (``run_app.py``) and the time until the last
chart is drawn is reported too (that includes shipping the rows and Vega rendering them).

    .venv/bin/python benchmarks/bench_pages.py [--genes 2000 --cell-lines 1000 --draws 100 --runs 4] [--browser]
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# (page, query parameters): the default view of each page plus its heaviest common interactions
VIEWS: list[tuple[str, dict[str, Any]]] = [
    ("forest", {}),
    ("forest", {"forest_view": "One gene across cell lines", "forest_gene": "GENE00007"}),
    ("heatmap", {}),
    ("heatmap", {"heat_n": "200", "heat_order": "similar profiles (clustering)"}),
    ("rankings", {}),
    ("rankings", {"rank_scope": "lineage_03"}),
    ("covariates", {}),
    ("covariates", {"cov_scatter": "true"}),  # reloads the 2 M readings from the screen table
    ("ppc", {}),
    ("ppc", {"ppc_split": "true"}),  # per gene: reloads the readings too
    ("compare", {}),
]


def screen_table(genes: int, cell_lines: int, lineages: int, seed: int = 0) -> Any:
    """One reading per gene × cell line, realistic labels, RNA expression."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    gene_labels = np.array([f"GENE{i:05d}" for i in range(genes)])
    cells = np.array([f"ACH-{i:06d}" for i in range(cell_lines)])
    lineage_of = np.array([f"lineage_{i % lineages:02d}" for i in range(cell_lines)])
    g = np.repeat(np.arange(genes), cell_lines)
    c = np.tile(np.arange(cell_lines), genes)
    gene_mean = rng.normal(-0.3, 0.5, genes)
    return pd.DataFrame({
        "sgrna": np.char.add("SG", gene_labels)[g],
        "hugo_symbol": gene_labels[g],
        "depmap_id": cells[c],
        "lineage": lineage_of[c],
        "lfc": gene_mean[g] + rng.normal(0, 0.4, g.size),
        "rna_expr": np.clip(rng.normal(4, 1.5, g.size), 0, None),
    }), gene_mean


def lazy_posterior(sel: Any, gene_mean: np.ndarray, chains: int, draws: int, seed: int = 0) -> dict[str, Any]:
    """Posterior variables; ``gene_cell_line_effect`` is generated per gene on request, never held whole."""
    import xarray as xr
    from xarray.backends import BackendArray
    from xarray.core import indexing

    genes, cells, lins = list(sel.genes), list(sel.cell_lines), list(sel.lineages)
    n_g, n_c, n_l = len(genes), len(cells), len(lins)
    rng = np.random.default_rng(seed)
    cell_offset = rng.normal(0, 0.2, n_c)

    class CellDraws(BackendArray):
        shape = (chains, draws, n_g, n_c)
        dtype = np.dtype(np.float64)

        def __getitem__(self, key: Any) -> np.ndarray:
            return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC, self._read)

        def _read(self, key: tuple[Any, ...]) -> np.ndarray:
            wanted = range(n_g)[key[2]] if isinstance(key[2], slice) else [int(key[2])]
            block = np.stack([gene_mean[gi] + cell_offset + 0.3 * np.random.default_rng([seed, gi]).standard_normal(
                (chains, draws, n_c)) for gi in wanted], axis=2)
            return block[key[0], key[1], slice(None) if isinstance(key[2], slice) else 0, key[3]]

    def small(*shape: int, centre: Any = 0.0, sd: float = 0.05) -> np.ndarray:
        return centre + sd * rng.standard_normal((chains, draws, *shape))

    post = xr.Dataset(
        {
            "mu_gene": (("chain", "draw"), small(centre=-0.3)),
            "sigma_gene": (("chain", "draw"), np.abs(small(centre=0.5))),
            "sigma": (("chain", "draw"), np.abs(small(centre=0.4, sd=0.01))),
            "gene_effect": (("chain", "draw", "gene"), small(n_g, centre=gene_mean)),
            "rna_slope": (("chain", "draw", "gene"), small(n_g, centre=rng.normal(-0.1, 0.1, n_g))),
            "gene_lineage_effect": (("chain", "draw", "gene", "lineage"),
                                    small(n_g, n_l, centre=gene_mean[:, None], sd=0.1)),
            "gene_cell_line_effect": (("chain", "draw", "gene", "cell_line"),
                                      indexing.LazilyIndexedArray(CellDraws())),
        },
        coords={"chain": np.arange(chains), "draw": np.arange(draws), "gene": genes, "lineage": lins,
                "cell_line": cells},
    )
    return {"posterior": post.assign_coords(cell_line_lineage=("cell_line", [lins[i] for i in sel.cell_line_lineage]))}


def predictive_groups(sel: Any, gene_mean: np.ndarray, seed: int = 1) -> dict[str, Any]:
    import xarray as xr

    rng = np.random.default_rng(seed)
    y = sel.data["lfc"].to_numpy(np.float64)
    g = sel.index("hugo_symbol")
    n = y.size

    def group(values: np.ndarray) -> xr.Dataset:
        c, d = values.shape[:2]
        return xr.Dataset({"lfc": (("chain", "draw", "reading"), values.astype(np.float32))},
                          coords={"chain": np.arange(c), "draw": np.arange(d), "reading": np.arange(n)})

    pp = (gene_mean[g] + 0.4 * rng.standard_normal((2, 5, n), dtype=np.float32)).astype(np.float32)
    prior = (2.0 * rng.standard_normal((1, 5, n), dtype=np.float32)).astype(np.float32)
    return {"posterior_predictive": group(pp), "prior_predictive": group(prior),
            "observed_data": xr.Dataset({"lfc": (("reading",), y)}, coords={"reading": np.arange(n)})}


def build(args: argparse.Namespace, data_dir: Path) -> tuple[str, dict[str, float]]:
    import arviz as az

    from model_store import ModelStore
    from speclet_core.data.screen import load_screen
    from speclet_core.data.selection import select_screen
    from speclet_core.records import FitRequest, SamplerSettings, Selection

    timings: dict[str, float] = {}
    t = time.perf_counter()
    table, gene_mean = screen_table(args.genes, args.cell_lines, args.lineages)
    path = data_dir / "screens" / "big.parquet"
    path.parent.mkdir(parents=True)
    table.to_parquet(path, index=False)
    timings["write_screen_s"] = time.perf_counter() - t
    t = time.perf_counter()
    sel = select_screen(load_screen(path))
    timings["load_and_select_screen_s"] = time.perf_counter() - t
    diagnostics = {"max_rhat": 1.004, "min_ess_bulk": 450.0, "min_ess_tail": 420.0, "divergences": 0, "bfmi_min": 0.9,
                   "treedepth_hits": 0, "verdict": "converged", "reasons": [], "approximate": False}
    store = ModelStore(data_dir / "fits")
    predictive = predictive_groups(sel, gene_mean)
    fit_ids = []
    for model, roles in (
        ("bench_full", {"gene_effect": "gene_effect", "gene_lineage_effect": "gene_lineage_effect",
                        "gene_cell_line_effect": "gene_cell_line_effect", "hyperparameters": ["mu_gene", "sigma_gene"],
                        "covariate_slopes": ["rna_slope"]}),
        ("bench_gene", {"gene_effect": "gene_effect", "gene_lineage_effect": None, "gene_cell_line_effect": None,
                        "hyperparameters": ["mu_gene", "sigma_gene"], "covariate_slopes": []}),
    ):
        t = time.perf_counter()
        groups = lazy_posterior(sel, gene_mean, args.chains, args.draws)
        if model == "bench_gene":
            groups["posterior"] = groups["posterior"][["mu_gene", "sigma_gene", "sigma", "gene_effect"]]
        idata = az.InferenceData(**groups, **predictive)
        request = FitRequest(data_path=str(path), data_fingerprint=sel.fingerprint, selection=Selection(), model=model,
                             model_version="1", sampler=SamplerSettings(chains=args.chains, draws=args.draws))
        store.put(request.fit_id, idata, request=request.model_dump(mode="json"), roles=roles,
                  diagnostics=diagnostics, timings={"total_s": 0.0})
        timings[f"put_{model}_s"] = time.perf_counter() - t
        fit_ids.append(request.fit_id)
    return fit_ids[0], timings


def shipped_rows(at: Any) -> list[int]:
    rows = []
    for el in at.get("vega_lite_chart"):
        spec = json.loads(el.proto.spec)
        n = sum(len(v) for v in spec.get("datasets", {}).values())
        for ds in el.proto.datasets:
            import pyarrow as pa

            n += pa.ipc.open_stream(ds.data.data).read_all().num_rows
        rows.append(n)
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--genes", type=int, default=2000)
    p.add_argument("--cell-lines", type=int, default=1000)
    p.add_argument("--lineages", type=int, default=20)
    p.add_argument("--draws", type=int, default=100, help="draws per chain")
    p.add_argument("--chains", type=int, default=2)
    p.add_argument("--runs", type=int, default=4, help="runs per view: 1 cold + the rest warm")
    p.add_argument("--browser", action="store_true", help="also time the views in headless Chromium")
    args = p.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="speclet-bench-pages-"))
    os.environ["SPECLET_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("SPECLET_READ_ONLY", "1")  # no worker banner lookups: only the pages are measured
    fit_id, build_timings = build(args, data_dir)
    print(json.dumps({k: round(v, 1) for k, v in build_timings.items()}))

    import streamlit as st
    from page_runs import time_page, use_navigation_mode

    use_navigation_mode()
    results = []
    for page, params in VIEWS:
        st.cache_data.clear()
        st.cache_resource.clear()
        times, rows = [], []
        for _ in range(args.runs):
            seconds, at = time_page(page, fit_id, params, timeout=600)
            times.append(seconds)
            rows = shipped_rows(at)
        view = f"{page} {params}" if params else page
        warm = statistics.median(times[1:]) if len(times) > 1 else float("nan")
        results.append({"view": view, "cold_s": round(times[0], 2), "warm_median_s": round(warm, 2),
                        "chart_rows": rows})
        print(f"{view:80s} cold {times[0]:6.2f} s  warm {warm:6.2f} s  chart rows {rows}")
    browser = browser_times(data_dir, fit_id) if args.browser else []
    out = ROOT / "benchmarks" / "out" / "pages.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "build": build_timings, "views": results, "browser": browser},
                              indent=2))
    return 0


STATE_JS = """() => [
  !!document.querySelector('[data-testid=stStatusWidget]'),
  document.querySelectorAll('[data-testid=stVegaLiteChart]').length,
  document.querySelectorAll('[data-testid=stVegaLiteChart] svg, [data-testid=stVegaLiteChart] canvas').length,
]"""


def browser_times(data_dir: Path, fit_id: str) -> list[dict[str, Any]]:
    """Seconds from navigation until every chart of the view is drawn and the script has finished."""
    import shutil
    import socket
    import subprocess
    import urllib.parse
    import urllib.request

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("no chromium: browser timings skipped")
        return []
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "SPECLET_DATA_DIR": str(data_dir)}
    log = open(data_dir / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "run_app.py", "--server.headless", "true", "--server.port", str(port),
                             "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    out = []
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for name, params in [("home", {}), *VIEWS]:
                query = urllib.parse.urlencode({"fit": fit_id, **params})
                t = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/{name}?{query}", wait_until="domcontentloaded")
                page.wait_for_selector("[data-testid=stMain] h1", timeout=300_000)
                # done = the script has stopped and every chart has its svg/canvas, unchanged for 1.5 s
                last, changed = None, time.perf_counter()
                while time.perf_counter() - t < 300:
                    state = page.evaluate(STATE_JS)
                    if state != last:
                        last, changed = state, time.perf_counter()
                    done = not state[0] and state[2] >= state[1]
                    if done and time.perf_counter() - changed >= 1.5:
                        break
                    time.sleep(0.05)
                running, n, drawn = last
                seconds = changed - t
                if running or drawn < n:
                    seconds = float("nan")
                view = f"{name} {params}" if params else name
                out.append({"view": view, "seconds": round(seconds, 2), "charts": n})
                print(f"browser {view:80s} {seconds:6.2f} s ({n} charts)")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    return out


if __name__ == "__main__":
    raise SystemExit(main())
