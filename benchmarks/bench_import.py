"""Benchmark: import 50 genes × 3 lineages from a release-shaped DepMap folder (≈1.5 GB LFC CSV).

Writes a synthetic current-layout release into a temporary folder (stream-written, never held in
memory): ``AvanaLogfoldChange.csv`` with 70,000 guides × 1,100 sequences, its guide and screen maps,
``Model.csv`` with ~1,000 cell lines over 30 lineages, and (unless ``--no-omics``) expression and
copy-number matrices of 1,000 cell lines × 17,500 genes (≈300 MB each). Each import then runs in its
own process, which reports its wall time and peak resident memory (``VmHWM``):

1. streaming the CSV files (no cache);
2. the first cached import (builds the Parquet cache of the LFC matrix, then reads it);
3. a cached import of 50 other genes;
4. streaming again with every lineage (all 1,100 columns) to show memory does not grow with columns.

Run: ``.venv/bin/python benchmarks/bench_import.py [--dir /tmp/x] [--keep] [--no-omics]``.
The folder is deleted afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parent.parent
LINEAGES = [
    "Lung", "Lymphoid", "CNS/Brain", "Skin", "Esophagus/Stomach", "Ovary/Fallopian Tube", "Bowel", "Breast",
    "Pancreas", "Head and Neck", "Myeloid", "Bone", "Kidney", "Soft Tissue", "Bladder/Urinary Tract", "Uterus",
    "Peripheral Nervous System", "Liver", "Biliary Tract", "Fibroblast", "Thyroid", "Prostate", "Cervix", "Eye",
    "Pleura", "Ampulla of Vater", "Vulva/Vagina", "Adrenal Gland", "Testis", "Other",
]
CHOSEN = ["Bowel", "Skin", "Lung"]
# Peak RSS is read from /proc/self/status (VmHWM), which starts afresh at exec; ru_maxrss would carry
# over the high-water mark of the (large) benchmark process that forked the child.
CHILD = r"""
import json, sys, time, tempfile
from pathlib import Path

def hwm_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

args = json.loads(sys.argv[1])
t0 = time.perf_counter()
from speclet_core.depmap.importer import import_depmap
from speclet_core.depmap.output import write_screen
from speclet_core.settings import Settings
t_import = time.perf_counter() - t0
rss_modules = hwm_mib()
t1 = time.perf_counter()
result = import_depmap(args["release"], args["genes"], args["lineages"], cache=args["cache"], settings=Settings.from_env())
out = Path(tempfile.mkdtemp()) / "screen.parquet"
write_screen(result, out)
elapsed = time.perf_counter() - t1
print(json.dumps({
    "seconds": round(elapsed, 2),
    "module_import_s": round(t_import, 2),
    "peak_rss_mib": round(hwm_mib(), 1),
    "rss_after_module_import_mib": round(rss_modules, 1),
    "counts": result.metadata["counts"],
    "timings": result.metadata["timings"],
    "cache": result.metadata["cache"],
    "out_bytes": out.stat().st_size,
}))
"""


def _csv_writer(path: Path, schema: pa.Schema) -> pacsv.CSVWriter:
    return pacsv.CSVWriter(str(path), schema, write_options=pacsv.WriteOptions(quoting_style="needed"))


def _random_guides(rng: np.random.Generator, n: int) -> np.ndarray:
    letters = np.frombuffer(b"ACGT", dtype="S1")
    codes = rng.integers(0, 4, size=(n, 20))
    seqs = letters[codes].view("S20").ravel().astype(str)
    return seqs


def generate_release(root: Path, n_guides: int, n_sequences: int, n_models: int, omics: bool, seed: int) -> dict:
    """Stream-write a release-shaped folder; return what was written (genes, sizes)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    n_genes = n_guides // 4
    genes = [f"GENE{i:05d}" for i in range(n_genes)]
    entrez = rng.choice(np.arange(1, 10**6), size=n_genes, replace=False)
    gene_cols = [f"{g} ({e})" for g, e in zip(genes, entrez, strict=True)]
    guides = _random_guides(rng, n_guides)
    while len(set(guides)) < n_guides:  # astronomically unlikely; keep ids unique anyway
        guides = _random_guides(rng, n_guides)
    guide_gene = np.repeat(np.arange(n_genes), 4)[:n_guides]

    # guide map: 3 % not used by Chronos, 1 % with a second alignment (half on another gene)
    used = rng.random(n_guides) > 0.03
    second = rng.random(n_guides) < 0.01
    rows_guide = np.concatenate([np.arange(n_guides), np.flatnonzero(second)])
    rows_gene = np.concatenate([guide_gene, np.where(rng.random(second.sum()) < 0.5, guide_gene[second],
                                                     (guide_gene[second] + 1) % n_genes)])
    gm = pa.table({
        "sgRNA": pa.array(guides[rows_guide]),
        "GenomeAlignment": pa.array([f"chr1_{i}_+" for i in range(len(rows_guide))]),
        "Gene": pa.array(np.asarray(gene_cols)[rows_gene]),
        "nAlignments": pa.array(np.where(second[rows_guide], 2, 1)),
        "UsedByChronos": pa.array(np.where(used[rows_guide], "True", "False")),
        "DropReason": pa.array(np.where(used[rows_guide], "", "low efficacy")),
    })
    pacsv.write_csv(gm, root / "AvanaGuideMap.csv", write_options=pacsv.WriteOptions(quoting_style="needed"))

    # cell lines over 30 lineages (Lung, Lymphoid, CNS/Brain … most common first)
    weights = np.linspace(3.0, 0.2, len(LINEAGES))
    weights /= weights.sum()
    model_ids = [f"ACH-{i:06d}" for i in range(1, n_models + 1)]
    model_lineage = rng.choice(len(LINEAGES), size=n_models, p=weights)
    pa_models = pa.table({
        "ModelID": model_ids,
        "CellLineName": [f"LINE{i}" for i in range(n_models)],
        "OncotreeLineage": [LINEAGES[i] for i in model_lineage],
        "OncotreeSubtype": [f"{LINEAGES[i]} subtype {rng.integers(3)}" for i in model_lineage],
        "PrimaryOrMetastasis": rng.choice(["Primary", "Metastatic"], size=n_models).tolist(),
    })
    pacsv.write_csv(pa_models, root / "Model.csv", write_options=pacsv.WriteOptions(quoting_style="needed"))

    # sequences: every model once, the rest second replicates; 4 % fail QC
    seq_model = np.concatenate([np.arange(n_models), rng.choice(n_models, n_sequences - n_models)])
    seq_ids = [f"CDS-{i:06d}" for i in range(n_sequences)]
    smap = pa.table({
        "SequenceID": seq_ids,
        "ScreenID": [f"SC-{m:06d}" for m in seq_model],
        "ModelConditionID": [f"MC-{m:06d}" for m in seq_model],
        "ModelID": [model_ids[m] for m in seq_model],
        "ScreenType": ["2DS"] * n_sequences,
        "Library": ["Avana"] * n_sequences,
        "Days": [21] * n_sequences,
        "pDNABatch": [f"Avana-{b}" for b in rng.integers(1, 5, n_sequences)],
        "PassesQC": np.where(rng.random(n_sequences) > 0.04, "True", "False").tolist(),
        "ExcludeFromCRISPRCombined": ["False"] * n_sequences,
    })
    pacsv.write_csv(smap, root / "ScreenSequenceMap.csv", write_options=pacsv.WriteOptions(quoting_style="needed"))

    # the LFC matrix, 2,000 guides at a time
    schema = pa.schema([("", pa.string())] + [(s, pa.float64()) for s in seq_ids])
    chunk = 2000
    with _csv_writer(root / "AvanaLogfoldChange.csv", schema) as w:
        for start in range(0, n_guides, chunk):
            stop = min(start + chunk, n_guides)
            vals = rng.normal(-0.2, 0.6, size=(stop - start, n_sequences))
            vals[rng.random(vals.shape) < 0.002] = np.nan
            cols = [pa.array(guides[start:stop])] + [pa.array(vals[:, j]) for j in range(n_sequences)]
            w.write_table(pa.Table.from_arrays(cols, schema=schema))

    if omics:
        for name, loc, sd in (
            ("OmicsExpressionProteinCodingGenesTPMLogp1.csv", 3.0, 2.0),
            ("OmicsCNGene.csv", 1.0, 0.15),
        ):
            schema = pa.schema([("", pa.string())] + [(g, pa.float64()) for g in gene_cols])
            with _csv_writer(root / name, schema) as w:
                for start in range(0, n_models, 50):
                    stop = min(start + 50, n_models)
                    vals = np.clip(rng.normal(loc, sd, size=(stop - start, n_genes)), 0, None)
                    cols = [pa.array(model_ids[start:stop])] + [pa.array(vals[:, j]) for j in range(n_genes)]
                    w.write_table(pa.Table.from_arrays(cols, schema=schema))
    sizes = {p.name: p.stat().st_size for p in sorted(root.iterdir()) if p.is_file()}
    return {"genes": genes, "sizes": sizes}


def run_child(release: Path, genes: list[str], lineages: list[str] | str, cache: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    arg = json.dumps({"release": str(release), "genes": genes, "lineages": lineages, "cache": cache})
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, arg], capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"import failed:\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = round(wall, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=None, help="release folder to write (default: a new folder in /tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the generated release afterwards")
    ap.add_argument("--reuse", action="store_true", help="use --dir as it is if it already holds a release")
    ap.add_argument("--guides", type=int, default=70_000)
    ap.add_argument("--sequences", type=int, default=1_100)
    ap.add_argument("--models", type=int, default=1_000)
    ap.add_argument("--no-omics", action="store_true", help="no expression / copy-number matrices")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()

    root = args.dir or Path(tempfile.mkdtemp(prefix="speclet-bench-release-", dir="/tmp"))
    report: dict = {
        "machine": f"{os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}",
        "load_before": os.getloadavg(),
    }
    try:
        t0 = time.perf_counter()
        if args.reuse and (root / "AvanaLogfoldChange.csv").exists():
            n_genes = args.guides // 4
            info = {"genes": [f"GENE{i:05d}" for i in range(n_genes)],
                    "sizes": {p.name: p.stat().st_size for p in sorted(root.iterdir()) if p.is_file()}}
        else:
            info = generate_release(root, args.guides, args.sequences, args.models, not args.no_omics, args.seed)
        report["generate_s"] = round(time.perf_counter() - t0, 1)
        report["file_sizes_mb"] = {k: round(v / 1e6, 1) for k, v in info["sizes"].items()}
        print(json.dumps({"generated": report}, indent=1), flush=True)

        shutil.rmtree(root / ".speclet-cache", ignore_errors=True)  # the first cached import must build it
        rng = np.random.default_rng(args.seed + 1)
        picks = rng.choice(len(info["genes"]), size=100, replace=False)
        genes_a = [info["genes"][i] for i in picks[:50]]
        genes_b = [info["genes"][i] for i in picks[50:]]
        runs = {
            "stream (no cache), 50 genes x 3 lineages": (genes_a, CHOSEN, False),
            "first cached import (builds cache), 50 genes x 3 lineages": (genes_a, CHOSEN, True),
            "cached import, 50 other genes x 3 lineages": (genes_b, CHOSEN, True),
            "stream (no cache), 50 genes x all lineages": (genes_a, "all", False),
        }
        results = {}
        for name, (genes, lineages, cache) in runs.items():
            results[name] = run_child(root, genes, lineages, cache)
            print(json.dumps({name: results[name]}), flush=True)
        cache_dir = root / ".speclet-cache"
        report["cache_sizes_mb"] = {
            p.name: round(p.stat().st_size / 1e6, 1) for p in sorted(cache_dir.glob("*.parquet"))
        } if cache_dir.exists() else {}
        report["results"] = results
        report["load_after"] = os.getloadavg()
        print(json.dumps(report, indent=1))
        limit = 1024
        worst = max(r["peak_rss_mib"] for r in results.values())
        print(f"peak RSS over all runs: {worst:.0f} MiB ({'under' if worst < limit else 'OVER'} {limit} MiB)")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
