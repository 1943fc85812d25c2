"""The chunk sweeper: nutpie's temporary zarr store keeps the kept draws only, and they are the same draws."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pymc as pm
import pytest

from speclet_core.fitting.nutpie_sampler import ChunkSweeper, compile_model, read_draw_stats, read_draws

KEPT = ["kept", "s"]


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def _sample(store_dir: Path, sweep: bool) -> tuple[dict[str, np.ndarray], dict[str, int], int]:
    import nutpie

    with pm.Model() as model:
        mu = pm.Normal("mu", shape=(6, 3))
        s = pm.HalfNormal("s")
        pm.Deterministic("kept", mu[:, 0] + 1)
        pm.Normal("y", mu.sum(axis=1), s, observed=np.linspace(-1, 1, 6))
    compiled = compile_model(model, ("sweeper-probe", "1", "x"), KEPT)
    store_dir.mkdir()
    sweeper = ChunkSweeper(store_dir, KEPT, interval_s=0.05)
    with sweeper if sweep else open(os.devnull):
        trace = nutpie.sample(compiled, draws=70, tune=60, chains=2, cores=2, seed=11, progress_bar=False,
                              save_warmup=False, zarr_store=nutpie.zarr_store.LocalStore(str(store_dir)))
        post = read_draws(trace.posterior, KEPT)
        stats = read_draw_stats(trace.sample_stats)
    arrays = {v: post[v].values for v in KEPT} | {"n_steps": stats["n_steps"].values}
    return arrays, _files(store_dir), sweeper.swept_bytes


@pytest.mark.slow
def test_sweeper_keeps_the_same_draws_and_deletes_every_unread_chunk(tmp_path: Path) -> None:
    plain, plain_files, _ = _sample(tmp_path / "plain", sweep=False)
    swept, swept_files, freed = _sample(tmp_path / "swept", sweep=True)
    for name, values in plain.items():  # same seed, same draws: sweeping changed nothing that is read
        np.testing.assert_array_equal(swept[name], values, err_msg=name)
    assert not np.isnan(swept["kept"]).any()
    unread = [f for f in plain_files if "/c/" in f and "unconstrained_parameter/" not in f  # a coordinate
              and f.startswith(("warmup_posterior/", "warmup_sample_stats/gradient/", "posterior/mu/",
                                "sample_stats/gradient/", "sample_stats/unconstrained_draw/"))]
    assert unread, "the unswept store holds warm-up, free-variable and gradient chunks"
    assert not [f for f in swept_files if f in unread], "every unread chunk is deleted"
    assert [f for f in swept_files if f.startswith("posterior/kept/c/")], "kept chunks stay"
    assert [f for f in swept_files if f.startswith("warmup_sample_stats/n_steps/c/")], "warm-up steps stay"
    assert all(f in swept_files for f in plain_files if f.endswith("zarr.json")), "metadata stays"
    kept_bytes = sum(v for f, v in swept_files.items() if f.startswith(("posterior/kept/", "posterior/s/")))
    assert freed > 0 and sum(swept_files.values()) < sum(plain_files.values()) - freed / 2
    assert kept_bytes > 0


def test_sweeper_leaves_arrays_without_metadata_and_coordinates_alone(tmp_path: Path) -> None:
    (tmp_path / "warmup_posterior" / "x" / "c" / "0").mkdir(parents=True)
    chunk = tmp_path / "warmup_posterior" / "x" / "c" / "0" / "0"
    chunk.write_bytes(b"12345678")
    partial = tmp_path / "warmup_posterior" / "x" / "c" / "0" / "1#tmp"
    partial.write_bytes(b"1234")
    coord = tmp_path / "posterior" / "gene" / "c"
    coord.mkdir(parents=True)
    (coord / "0").write_bytes(b"abc")
    (tmp_path / "posterior" / "gene" / "zarr.json").write_text('{"shape": [3], "dimension_names": ["gene"]}')
    sweeper = ChunkSweeper(tmp_path, ["gene_effect"])
    assert sweeper.sweep() == 0 and chunk.exists(), "no metadata yet: not decided, not deleted"
    (tmp_path / "warmup_posterior" / "x" / "zarr.json").write_text(
        '{"shape": [1, 2], "dimension_names": ["chain", "draw"]}')
    sweeper = ChunkSweeper(tmp_path, ["gene_effect"])
    assert sweeper.sweep() == 8 and not chunk.exists()
    assert partial.exists(), "a file being written is never touched"
    assert (coord / "0").exists(), "coordinates stay"
