"""ModelStore in one process: round trip, plain-ArviZ files, summaries, damage, safety, listing, schema."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import arviz as az
import h5py
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import xarray as xr
from pydantic import ValidationError
from store_helpers import (
    CELL_LINES,
    DIAGNOSTICS,
    GENES,
    LINEAGES,
    ROLES,
    TIMINGS,
    make_idata,
    make_request,
    put_example,
)

import model_store.manifest as manifest_module
import model_store.store as store_module
from model_store import FitManifest, FitStatus, FloatDtype, MatrixKind, MatrixStat, ModelStore, StorageOptions
from model_store.ids import IDENTITY_KEYS
from speclet_core.errors import CorruptFitError, FitNotFoundError, SpecletError, StoreError


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "fits")


def _flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))


# --------------------------------------------------------------------------- ids


def test_identity_keys_are_the_requests_identity() -> None:
    request = make_request()
    assert tuple(request.identity()) == IDENTITY_KEYS
    assert make_request(seed=1).fit_id == make_request(seed=1).fit_id
    assert make_request(seed=1).fit_id != make_request(seed=2).fit_id
    assert make_request(fingerprint="a" * 64).fit_id != make_request().fit_id


@pytest.mark.parametrize("bad", ["../" + "a" * 61, "a" * 30 + "/" + "a" * 33, "a" * 63 + "\x00", "..", "/etc/passwd",
                                 "A" * 64, "a" * 65, ""])
def test_ids_that_could_escape_the_store_are_rejected(store: ModelStore, bad: str) -> None:
    request = make_request()
    with pytest.raises(StoreError, match="invalid fit id"):
        store.get(bad)
    with pytest.raises(StoreError, match="invalid fit id"):
        store.exists(bad)
    with pytest.raises(StoreError, match="invalid fit id"):
        store.delete(bad)
    with pytest.raises(StoreError, match="invalid fit id"):
        store.put(bad, make_idata(), request=request.model_dump(mode="json"), roles=ROLES, diagnostics=DIAGNOSTICS,
                  timings=TIMINGS)
    with pytest.raises(StoreError, match="invalid fit id"):
        store.resolve(bad)
    assert not store.root.exists()  # nothing was created anywhere


def test_put_refuses_an_id_that_is_not_the_requests(store: ModelStore) -> None:
    request = make_request()
    with pytest.raises(StoreError, match="does not match its request"):
        store.put(make_request(seed=9).fit_id, make_idata(), request=request.model_dump(mode="json"), roles=ROLES,
                  diagnostics=DIAGNOSTICS, timings=TIMINGS)


def test_roles_that_do_not_match_the_posterior_are_listed(store: ModelStore) -> None:
    request = make_request()
    roles = {**ROLES, "gene_effect": "alpha", "gene_lineage_effect": "gene_cell_line_effect",
             "hyperparameters": ["tau"]}
    with pytest.raises(StoreError) as err:
        store.put(request.fit_id, make_idata(), request=request.model_dump(mode="json"), roles=roles,
                  diagnostics=DIAGNOSTICS, timings=TIMINGS)
    text = str(err.value)
    assert "'alpha', which is not in the posterior" in text
    assert "gene_lineage_effect variable 'gene_cell_line_effect' has dims" in text
    assert "'tau'" in text
    assert not store.exists(request.fit_id)


def test_symlinked_fit_folder_is_never_followed(store: ModelStore, tmp_path: Path) -> None:
    fit_id, _ = put_example(store)
    elsewhere = tmp_path / "elsewhere"
    os.rename(store.path_of(fit_id), elsewhere)
    os.symlink(elsewhere, store.path_of(fit_id))
    with pytest.raises(StoreError, match="symbolic link"):
        store.get(fit_id)


# --------------------------------------------------------------------------- round trip


def _assert_same_group(stored: xr.Dataset, original: xr.Dataset, cast: dict[str, np.dtype] | None = None) -> None:
    assert set(stored.data_vars) == set(original.data_vars)
    assert stored.attrs == original.attrs
    for name in original.coords:
        np.testing.assert_array_equal(stored.coords[name].values, original.coords[name].values)
    for name, da in original.data_vars.items():
        got = stored[name]
        assert got.dims == da.dims
        expected = da.values.astype(cast[name]) if cast and name in cast else da.values
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got.values, expected)


def test_round_trip_lossless_with_float64(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "fits", options=StorageOptions(float_dtype=FloatDtype.FLOAT64))
    idata = make_idata(seed=3)
    fit_id, manifest = put_example(store, idata=idata)
    with store.get(fit_id) as fit:
        stored = fit.open_idata()
        assert set(stored.groups()) == set(idata.groups())
        for group in idata.groups():
            _assert_same_group(stored[group], idata[group])
        assert fit.manifest.storage["float_dtype"] == "float64"


def test_round_trip_float32_default(store: ModelStore) -> None:
    idata = make_idata(seed=4)
    fit_id, manifest = put_example(store, idata=idata)
    assert manifest.storage["float_dtype"] == "float32"
    with store.get(fit_id) as fit:
        stored = fit.open_idata()
        for group in ("posterior", "posterior_predictive", "log_likelihood"):
            cast = {n: np.dtype("float32") for n in idata[group].data_vars}
            _assert_same_group(stored[group], idata[group], cast)
        for group in ("sample_stats", "observed_data"):  # small and exact: never cast
            _assert_same_group(stored[group], idata[group])
        assert stored.sample_stats["diverging"].dtype == bool
        # the non-index coordinate (each cell line's lineage) survives
        assert list(stored.posterior.coords["cell_line_lineage"].values[:3]) == ["colorectal", "colorectal", "blood"]


def test_file_opens_with_plain_arviz_and_xarray_with_real_labels(store: ModelStore) -> None:
    fit_id, manifest = put_example(store)
    path = Path(str(manifest.posterior_path))
    assert path == store.path_of(fit_id) / "posterior.nc"
    idata = az.from_netcdf(path)
    assert list(idata.posterior.coords["gene"].values) == GENES
    assert list(idata.posterior.coords["cell_line"].values) == CELL_LINES
    ds = xr.open_dataset(path, group="posterior")
    assert list(ds.coords["lineage"].values) == LINEAGES
    assert float(ds["gene_effect"].sel(gene="KRAS").mean()) < -1.0  # truth -1.5
    ds.close()
    root = xr.open_dataset(path)  # provenance in the root group's attributes
    attrs = root.attrs
    root.close()
    request = make_request()
    assert attrs["fit_id"] == fit_id
    assert attrs["model"] == "hierarchical" and attrs["model_version"] == "1.0"
    assert attrs["data_fingerprint"] == request.data_fingerprint
    assert json.loads(attrs["selection"])["genes"] == sorted(GENES)
    assert json.loads(attrs["sampler"])["draws"] == 50
    assert attrs["seed"] == 1
    assert json.loads(attrs["timings"]) == TIMINGS
    versions = json.loads(attrs["package_versions"])
    assert versions["arviz"] == az.__version__ and versions["xarray"] == xr.__version__
    assert attrs["created_utc"].endswith("Z")
    assert attrs["inference_library"] == "nutpie"  # the InferenceData's own attributes are kept too


def test_the_store_writes_the_fits_provenance_and_its_own_facts_win(store: ModelStore) -> None:
    """The store is the one provenance writer: the fit's own facts become root attrs, its ids cannot be forged."""
    request = make_request(seed=5)
    provenance = {"model_title": "Hierarchical", "data_path": request.data_path, "selection_counts": {"genes": 7},
                  "approximate": "false", "notes": {"log_likelihood": "stored"}, "fit_id": "0" * 64,
                  "package_versions": {"numpy": "0.0"}}
    manifest = store.put(request.fit_id, make_idata(), request=request.model_dump(mode="json"), roles=ROLES,
                         diagnostics=DIAGNOSTICS, timings=TIMINGS, provenance=provenance)
    with xr.open_dataset(str(manifest.posterior_path)) as root:
        attrs = dict(root.attrs)
    assert attrs["model_title"] == "Hierarchical" and attrs["data_path"] == "/data/screen.csv"
    assert attrs["approximate"] == "false" and json.loads(attrs["notes"]) == {"log_likelihood": "stored"}
    assert json.loads(attrs["selection_counts"]) == {"genes": 7}
    assert attrs["fit_id"] == request.fit_id  # the store's own keys win over the fit's
    assert json.loads(attrs["package_versions"])["numpy"] == np.__version__
    assert manifest.provenance["package_versions"]["numpy"] == np.__version__
    assert manifest.provenance["model_title"] == "Hierarchical"


def test_blocks_and_chunks_do_not_change_the_result(tmp_path: Path) -> None:
    """Tiny blocks (many per variable, summarised inline) give the same files as big ones (summarised in threads)."""
    idata = make_idata(seed=6)
    big = ModelStore(tmp_path / "a", options=StorageOptions(block_values=1024, summary_threads=3))
    small = ModelStore(tmp_path / "b", options=StorageOptions(block_values=1024, chunk_bytes=1024, summary_threads=1))
    fit_a, _ = put_example(big, idata=idata)
    fit_b, _ = put_example(small, idata=idata)
    with big.get(fit_a) as a, small.get(fit_b) as b:
        pd.testing.assert_frame_equal(a.summary(), b.summary())
        for kind in MatrixKind:
            pd.testing.assert_frame_equal(a.matrix(kind, "hdi_5.5%"), b.matrix(kind, "hdi_5.5%"))
        np.testing.assert_array_equal(a.draws("gene_cell_line_effect").values, b.draws("gene_cell_line_effect").values)
        chunks = b.dataset()["gene_cell_line_effect"].encoding["chunksizes"]
        assert chunks[2] == 1  # one gene per chunk at most


def test_compressed_files_hold_the_same_values(tmp_path: Path) -> None:
    idata = make_idata(seed=2)
    plain = ModelStore(tmp_path / "a", options=StorageOptions(compression_level=0))
    packed = ModelStore(tmp_path / "b", options=StorageOptions(compression_level=4))
    fit_a, ma = put_example(plain, idata=idata)
    fit_b, mb = put_example(packed, idata=idata)
    assert ma.storage["compression"] == "none" and mb.storage["compression"] == "gzip-4+shuffle"
    assert mb.sizes["posterior.nc"] < ma.sizes["posterior.nc"]
    with plain.get(fit_a) as a, packed.get(fit_b) as b:
        np.testing.assert_array_equal(a.draws("gene_effect").values, b.draws("gene_effect").values)
        assert b.dataset()["gene_effect"].encoding["zlib"] is True
        assert a.dataset()["gene_effect"].encoding["zlib"] is False


# --------------------------------------------------------------------------- summaries


def test_summaries_match_arviz_and_the_draws(store: ModelStore) -> None:
    idata = make_idata(seed=8)
    fit_id, manifest = put_example(store, idata=idata)
    post32 = idata.posterior.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = az.summary(post32, var_names=["gene_effect"], hdi_prob=0.89, round_to="none")
    with store.get(fit_id) as fit:
        table = fit.summary(["gene_effect"])
        assert list(table["gene"]) == GENES and set(table["variable"]) == {"gene_effect"}
        for col in ("mean", "sd", "hdi_5.5%", "hdi_94.5%", "r_hat", "ess_bulk", "ess_tail"):
            np.testing.assert_allclose(table[col].to_numpy(), expected[col].to_numpy(), rtol=1e-6, atol=1e-6,
                                       err_msg=col)

        every = fit.summary()
        sizes = {v: int(np.prod([idata.posterior.sizes[d] for d in idata.posterior[v].dims[2:]]))
                 for v in idata.posterior.data_vars}
        assert every["variable"].value_counts().to_dict() == sizes
        hyper = every[every["variable"] == "sigma_gene"]
        assert hyper["gene"].isna().all() and len(hyper) == 1

        genes = fit.gene_summary()
        assert list(genes["gene"]) == GENES
        draws = post32["gene_effect"].values
        np.testing.assert_allclose(genes["p_below"], (draws < -0.5).mean(axis=(0, 1)))
        np.testing.assert_allclose(genes["mean"], table["mean"])

        mean = fit.matrix("gene_cell_line", "mean")
        assert mean.shape == (len(GENES), len(CELL_LINES))
        assert list(mean.index) == GENES and list(mean.columns) == CELL_LINES
        gcl = post32["gene_cell_line_effect"]
        np.testing.assert_allclose(mean.to_numpy(), gcl.astype(np.float64).mean(("chain", "draw")).values, rtol=1e-12)
        low = fit.matrix(MatrixKind.GENE_CELL_LINE, MatrixStat.HDI_LOW)
        cell = gcl.sel(gene="MYC", cell_line="ACH-000044").values.ravel()
        assert low.loc["MYC", "ACH-000044"] == az.hdi(cell, hdi_prob=0.89)[0]
        p = fit.matrix("gene_lineage", "p_below")
        assert list(p.columns) == LINEAGES
        gl = post32["gene_lineage_effect"]
        np.testing.assert_allclose(p.to_numpy(), (gl < -0.5).mean(("chain", "draw")).values)

    head = manifest.element_diagnostics
    assert head["max_r_hat"] == pytest.approx(every["r_hat"].max())
    assert head["min_ess_bulk"] == pytest.approx(every["ess_bulk"].min())
    worst = head["worst"]["r_hat"][0]
    row = every.sort_values("r_hat", ascending=False).iloc[0]
    assert worst["variable"] == row["variable"] and worst["value"] == pytest.approx(row["r_hat"])


def test_draws_reads_only_what_is_asked(store: ModelStore) -> None:
    fit_id, _ = put_example(store)
    with store.get(fit_id) as fit:
        one = fit.draws("gene_cell_line_effect", gene="KRAS")
        assert one.dims == ("chain", "draw", "cell_line") and one.shape == (2, 50, len(CELL_LINES))
        two = fit.draws("gene_cell_line_effect", gene=["KRAS", "MYC"], cell_line="ACH-000012")
        assert two.shape == (2, 50, 2)
        lazy = fit.draws("gene_effect", load=False)
        assert not lazy.variable._in_memory
        with pytest.raises(StoreError, match=r"gene 'NOPE' not in fit .* e\.g\. KRAS"):
            fit.draws("gene_effect", gene="NOPE")
        with pytest.raises(StoreError, match="no dimension 'cell_line'"):
            fit.draws("gene_effect", cell_line="ACH-000001")
        with pytest.raises(StoreError, match="no variable 'alpha'"):
            fit.draws("alpha")


def test_model_without_two_way_effects_has_no_matrices(store: ModelStore) -> None:
    idata = make_idata()
    idata.posterior = idata.posterior.drop_vars(["gene_cell_line_effect", "gene_lineage_effect"])
    request = make_request(seed=5)
    roles = {**ROLES, "gene_cell_line_effect": None, "gene_lineage_effect": None}
    manifest = store.put(request.fit_id, idata, request=request.model_dump(mode="json"), roles=roles,
                         diagnostics={**DIAGNOSTICS, "verdict": "look_closer"}, timings=TIMINGS)
    assert manifest.status == "flagged"
    with store.get(request.fit_id) as fit:
        with pytest.raises(StoreError, match="has no gene_cell_line_effect variable"):
            fit.matrix("gene_cell_line")
        assert len(fit.gene_summary()) == len(GENES)


# --------------------------------------------------------------------------- store operations


def test_put_twice_is_a_no_op(store: ModelStore) -> None:
    fit_id, first = put_example(store)
    mtime = os.stat(store.path_of(fit_id) / "posterior.nc").st_mtime_ns
    again = store.put(fit_id, make_idata(seed=99), request=make_request().model_dump(mode="json"), roles=ROLES,
                      diagnostics=DIAGNOSTICS, timings=TIMINGS)
    assert again == first
    assert os.stat(store.path_of(fit_id) / "posterior.nc").st_mtime_ns == mtime


def test_list_filters_and_orders_newest_first(store: ModelStore) -> None:
    assert store.list() == []  # no folder yet: empty, not an error
    a, _ = put_example(store, seed=1)
    b, _ = put_example(store, seed=2, diagnostics={**DIAGNOSTICS, "verdict": "do_not_trust"})
    other = make_idata(genes=["EGFR", "KRAS"])
    c_request = make_request(seed=3)
    store.put(c_request.fit_id, other, request={**c_request.model_dump(mode="json")}, roles=ROLES,
              diagnostics=DIAGNOSTICS, timings=TIMINGS)
    c = c_request.fit_id
    assert [m.fit_id for m in store.list()] == [c, b, a]
    assert [m.fit_id for m in store.list(status="flagged")] == [b]
    assert [m.fit_id for m in store.list(status=FitStatus.OK)] == [c, a]
    assert [m.fit_id for m in store.list(gene="EGFR")] == [c]
    assert {m.fit_id for m in store.list(gene="KRAS", lineage="skin")} == {a, b, c}
    assert store.list(lineage="lung") == []
    assert store.list(model="other") == []
    with pytest.raises(StoreError, match="expected one of ok, flagged"):
        store.list(status="queued")


def test_delete_and_disk_usage(store: ModelStore) -> None:
    fit_id, manifest = put_example(store)
    assert store.disk_usage() == manifest.total_bytes + os.path.getsize(store.path_of(fit_id) / "manifest.json")
    assert store.resolve(fit_id[:6]) == fit_id
    store.delete(fit_id)
    assert not store.exists(fit_id)
    assert store.disk_usage() == 0
    with pytest.raises(FitNotFoundError, match="no stored fit has id"):
        store.get(fit_id)
    with pytest.raises(FitNotFoundError):
        store.delete(fit_id)
    with pytest.raises(FitNotFoundError, match="no stored fit id starts with"):
        store.resolve(fit_id[:6])


def test_reader_survives_a_concurrent_delete(store: ModelStore) -> None:
    fit_id, _ = put_example(store)
    fit = store.get(fit_id)
    before = fit.draws("gene_effect", gene="KRAS").values
    store.delete(fit_id)
    try:  # an open handle may still read the unlinked file; otherwise the page is told the fit is gone
        np.testing.assert_array_equal(fit.draws("gene_effect", gene="KRAS").values, before)
    except FitNotFoundError:
        pass
    with pytest.raises(FitNotFoundError):
        fit.gene_summary()
    fit.close()


# --------------------------------------------------------------------------- damage


def test_truncated_netcdf_is_reported_by_get_and_verify(store: ModelStore) -> None:
    fit_id, manifest = put_example(store)
    good, _ = put_example(store, seed=2)
    path = Path(str(manifest.posterior_path))
    os.truncate(path, path.stat().st_size // 2)
    with pytest.raises(CorruptFitError, match=r"posterior\.nc is truncated: expected \d+ bytes, found \d+"):
        store.get(fit_id)
    problems = store.verify()
    assert [(p.fit_id, p.kind.value) for p in problems] == [(fit_id, "size_mismatch")]
    assert fit_id in str(problems[0]) and "store delete" in problems[0].message
    assert store.get(good).gene_summary().shape[0] == len(GENES)  # the other fit is untouched


def test_flipped_bits_are_caught_by_checksums(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "fits", options=StorageOptions(chunk_bytes=4096))  # one gene per chunk
    fit_id, manifest = put_example(store)
    path = Path(str(manifest.posterior_path))
    with h5py.File(path, "r") as h5:
        dset = h5["posterior/gene_cell_line_effect"]
        assert dset.chunks == (2, 50, 1, len(CELL_LINES))
        offset = dset.id.get_chunk_info(3).byte_offset  # the chunk of BRAF, the 4th gene
    _flip_byte(path, offset + 100)
    problems = store.verify()
    assert [(p.fit_id, p.kind.value) for p in problems] == [(fit_id, "checksum_mismatch")]
    with store.get(fit_id) as fit:  # sizes match, so opening is cheap and fine ...
        assert fit.draws("gene_cell_line_effect", gene="KRAS").shape[0] == 2  # an undamaged chunk reads
        with pytest.raises(CorruptFitError, match=r"posterior\.nc is damaged, reading draws of gene_cell_line_effect"):
            fit.draws("gene_cell_line_effect")  # ... and the damaged chunk fails its Fletcher-32 checksum


def test_damaged_parquet_is_caught_when_read(store: ModelStore) -> None:
    fit_id, _ = put_example(store)
    path = store.path_of(fit_id) / "matrix_gene_cell_line.parquet"
    meta = pq.ParquetFile(path).metadata.row_group(0)
    mean = next(meta.column(i) for i in range(meta.num_columns) if meta.column(i).path_in_schema == "mean")
    _flip_byte(path, mean.data_page_offset + mean.total_compressed_size // 2)  # inside the mean column's page
    with store.get(fit_id) as fit, pytest.raises(CorruptFitError, match="matrix_gene_cell_line.parquet is damaged"):
        fit.matrix("gene_cell_line", "mean")
    assert [p.kind.value for p in store.verify()] == ["checksum_mismatch"]


def test_edited_or_missing_manifest(store: ModelStore) -> None:
    fit_id, _ = put_example(store)
    path = store.path_of(fit_id) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["status"] = "ok" if manifest["status"] == "flagged" else "flagged"
    path.write_text(json.dumps(manifest))
    with pytest.raises(CorruptFitError, match="does not match its own checksum"):
        store.get(fit_id)
    assert store.list() == []  # a damaged fit is left out of listings, never crashes them
    path.write_text("{ not json")
    assert "not valid JSON" in store.verify()[0].message
    path.unlink()
    assert not store.exists(fit_id)
    assert [p.kind.value for p in store.verify()] == ["bad_manifest"]


def test_damaged_fit_is_replaced_by_a_new_put(store: ModelStore) -> None:
    fit_id, manifest = put_example(store)
    os.truncate(str(manifest.posterior_path), 1000)
    again, new = put_example(store)
    assert again == fit_id and new.created_utc > manifest.created_utc
    assert store.verify() == []


# --------------------------------------------------------------------------- schema versions


def _rewrite_manifest(store: ModelStore, fit_id: str, **changes: Any) -> None:
    path = store.path_of(fit_id) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    manifest["manifest_sha256"] = manifest_module.manifest_hash(manifest)
    path.write_text(json.dumps(manifest))


def test_newer_schema_says_so(store: ModelStore) -> None:
    fit_id, _ = put_example(store)
    _rewrite_manifest(store, fit_id, schema_version=manifest_module.SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="written by a newer speclet .* upgrade speclet"):
        store.get(fit_id)
    assert store.verify()[0].kind.value == "unsupported_schema"


def test_older_schema_migrates_or_says_so(store: ModelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    fit_id, _ = put_example(store)
    _rewrite_manifest(store, fit_id, schema_version=0, status=None, diagnostics={"verdict": "converged"})
    with pytest.raises(StoreError, match="store schema 0, which this version cannot read or migrate"):
        store.get(fit_id)

    def from_0(manifest: dict[str, Any]) -> dict[str, Any]:  # schema 0 had no status: derive it
        status = "ok" if manifest["diagnostics"].get("verdict") == "converged" else "flagged"
        return {**manifest, "status": status, "schema_version": 1}

    monkeypatch.setitem(manifest_module.MIGRATIONS, 0, from_0)
    with store.get(fit_id) as fit:
        assert fit.manifest.status == "ok" and fit.manifest.schema_version == 1
        assert len(fit.gene_summary()) == len(GENES)
    assert store.verify() == []


def test_manifest_is_a_typed_record_validated_on_load(store: ModelStore) -> None:
    fit_id, manifest = put_example(store)
    loaded = store.manifest(fit_id)
    assert isinstance(loaded, FitManifest) and loaded == manifest
    assert loaded.shape_of("observed_data", "lfc") == (len(GENES) * len(CELL_LINES),)
    assert loaded.shape_of("observed_data", "nothing") is None and not loaded.has_group("prior")
    assert loaded.roles.variable_of("gene_lineage_effect") == "gene_lineage_effect"
    assert loaded.diagnostics.verdict == "converged" and loaded.status is FitStatus.OK
    with pytest.raises(ValidationError):  # frozen: pages cannot change a manifest they share
        loaded.model = "other"
    _rewrite_manifest(store, fit_id, roles={"gene_effect": "gene_effect", "colour": "blue"}, total_bytes="many")
    with pytest.raises(CorruptFitError, match=r"does not describe a fit \(roles.colour: .*total_bytes: "):
        store.get(fit_id)


def test_put_refuses_what_the_manifest_could_not_hold(store: ModelStore) -> None:
    request = make_request(seed=9)
    with pytest.raises(StoreError, match="diagnostics.colour"):
        store.put(request.fit_id, make_idata(), request=request.model_dump(mode="json"), roles=ROLES,
                  diagnostics={**DIAGNOSTICS, "colour": "blue"}, timings=TIMINGS)
    assert not store.exists(request.fit_id)


def test_store_errors_are_speclet_errors() -> None:
    assert issubclass(CorruptFitError, SpecletError) and issubclass(FitNotFoundError, StoreError)


def test_one_stored_fit_serves_many_threads(store: ModelStore) -> None:
    """Pages share a cached StoredFit across sessions: concurrent reads give the same numbers."""
    from concurrent.futures import ThreadPoolExecutor

    fit_id, _ = put_example(store)
    with store.get(fit_id) as fit, ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda g: fit.draws("gene_cell_line_effect", gene=g).values, GENES * 3))
        expected = fit.draws("gene_cell_line_effect").values
    for i, values in enumerate(results):
        np.testing.assert_array_equal(values, expected[:, :, i % len(GENES)])


def test_no_pickle_anywhere() -> None:
    """Fits are NetCDF, Parquet and JSON only; nothing in the store's code can unpickle."""
    sources = Path(store_module.__file__).parent.glob("*.py")
    assert not [p.name for p in sources if "pickle" in p.read_text()]


def test_chunks_hold_whole_genes_without_padding() -> None:
    from model_store.writer import choose_chunks

    dims = ("chain", "draw", "gene", "cell_line")
    chunks = choose_chunks(dims, (2, 1000, 2000, 1000), 4, 4 << 20)
    assert chunks == (2, 1000, 1, 500)  # one gene, its 1,000 cell lines in two equal 4 MB chunks
    assert choose_chunks(dims, (2, 1000, 2000, 100), 4, 4 << 20) == (2, 1000, 5, 100)  # whole genes
    assert choose_chunks(("chain", "draw", "gene"), (2, 1000, 2000), 8, 4 << 20) == (2, 1000, 250)
    assert choose_chunks(("chain", "draw"), (4, 1000), 8, 4 << 20) == (4, 1000)


def test_draws_accepts_the_summary_tables_text_labels(store: ModelStore) -> None:
    """Integer coordinates (e.g. readings) appear as text in the summary table; draws() takes either."""
    fit_id, _ = put_example(store)
    with store.get(fit_id) as fit:
        as_text = fit.draws("lfc", group="posterior_predictive", reading="3")
        as_int = fit.draws("lfc", group="posterior_predictive", reading=3)
        np.testing.assert_array_equal(as_text.values, as_int.values)
        assert fit.draws("lfc", group="posterior_predictive", reading=["3", "4"]).shape == (2, 50, 2)
