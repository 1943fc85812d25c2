"""Write one fit's files into a folder: the ArviZ NetCDF, streamed block by block, and its summaries.

The NetCDF is a plain ArviZ file (one HDF5 group per InferenceData group), so
``arviz.from_netcdf`` and ``xarray.open_dataset(path, group="posterior")`` open it.
Draws of the sampled groups are written block by block along ``gene`` (or the
largest other dimension) in per-gene chunks with a Fletcher-32 checksum each, and
the posterior's statistics are computed from the same blocks, so memory stays
bounded by the block size whatever the posterior's size, and a page reading one
gene reads one chunk.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Any

import h5netcdf
import numpy as np
import xarray as xr

from model_store.stats import ElementStats, summarise_draws
from model_store.summaries import (
    P_BELOW_THRESHOLD,
    MatrixKind,
    VariableStats,
    headline,
    worst_elements,
    write_gene_summary,
    write_matrix,
    write_summary,
)
from speclet_core.errors import StoreError

log = logging.getLogger(__name__)

# Called with the NetCDF's path once it is written, before the summaries and the manifest: tests set it
# to stop a writer in the middle of ``put`` (and kill it there). Always None in the application.
after_netcdf: Callable[[Path], None] | None = None

POSTERIOR_FILE = "posterior.nc"
SUMMARY_FILE = "summary.parquet"
GENE_SUMMARY_FILE = "gene_summary.parquet"
MATRIX_FILES = {MatrixKind.GENE_CELL_LINE: "matrix_gene_cell_line.parquet", MatrixKind.GENE_LINEAGE: "matrix_gene_lineage.parquet"}
# Groups holding draws: streamed in chunks, floats stored as StorageOptions.float_dtype.
SAMPLE_GROUPS = frozenset(
    {"posterior", "posterior_predictive", "prior", "prior_predictive", "log_likelihood", "log_prior", "predictions"}
)
SAMPLE_DIMS = ("chain", "draw")
LABEL_DIMS = ("gene", "lineage", "cell_line", "sgrna")
VERSIONED_PACKAGES = ("arviz", "xarray", "numpy", "scipy", "pandas", "pyarrow", "h5netcdf", "h5py", "pymc",
                      "pytensor", "nutpie", "speclet")


class FloatDtype(StrEnum):
    """Precision of stored draws: float32 halves the size; its rounding (1e-7) is far below Monte Carlo error."""

    FLOAT32 = "float32"
    FLOAT64 = "float64"


@dataclass(frozen=True)
class StorageOptions:
    """How draws are laid out on disk (chosen by benchmarks/bench_store.py, see docs/benchmarks/store.md)."""

    float_dtype: FloatDtype = FloatDtype.FLOAT32
    # gzip level (with byte shuffle) for the draws; 0 stores them uncompressed. Level 1 made the
    # benchmark's 16 GB posterior 17% smaller for ~3x the NetCDF write time; reads stayed within targets.
    compression_level: int = 1
    chunk_bytes: int = 4 << 20  # target size of one HDF5 chunk
    block_values: int = 1 << 21  # values summarised at once: bounds put's memory (~100 bytes each)
    summary_threads: int = 0  # threads computing summaries; 0: min(4, CPU count)

    def __post_init__(self) -> None:
        if not 0 <= self.compression_level <= 9:
            raise StoreError(f"compression_level {self.compression_level}: expected 0 (none) to 9")
        if self.chunk_bytes < 1024 or self.block_values < 1024:
            raise StoreError("chunk_bytes and block_values must be at least 1024")

    def describe(self) -> dict[str, Any]:
        return {
            "float_dtype": str(self.float_dtype),
            "compression": f"gzip-{self.compression_level}+shuffle" if self.compression_level else "none",
            "chunk_bytes": self.chunk_bytes,
            "fletcher32": True,
        }


@dataclass
class WriteReport:
    """What ``write_fit_files`` wrote: layout facts for the manifest, and how long each part took."""

    variables: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    labels: dict[str, list[str]] = field(default_factory=dict)
    summary_variables: list[str] = field(default_factory=list)
    element_diagnostics: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def package_versions() -> dict[str, str]:
    """Versions of the packages that made a fit, read from installed metadata (nothing is imported)."""
    out = {"python": sys.version.split()[0]}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def netcdf_attr(value: Any) -> Any:
    """An attribute value netCDF can hold: strings and numbers as they are, anything else as JSON."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, str | int | float | np.integer | np.floating):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf" and value.ndim == 1:
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _netcdf_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return {str(k): netcdf_attr(v) for k, v in attrs.items()}


def _split_order(dims: tuple[str, ...], shape: tuple[int, ...]) -> list[int]:
    """Axes in the order they are cut into chunks: gene first, then the largest others, draws last."""
    others = [i for i, d in enumerate(dims) if d not in SAMPLE_DIMS and d != "gene"]
    others.sort(key=lambda i: -shape[i])
    first = [dims.index("gene")] if "gene" in dims else []
    samples = [dims.index(d) for d in ("draw", "chain") if d in dims]
    return first + others + samples


def choose_chunks(dims: tuple[str, ...], shape: tuple[int, ...], itemsize: int, target_bytes: int) -> tuple[int, ...]:
    """HDF5 chunk shape: all draws of as many genes as fit in ``target_bytes`` (one gene at least)."""
    chunk = [max(1, s) for s in shape]
    for axis in _split_order(dims, shape):
        total = math.prod(chunk) * itemsize
        if total <= target_bytes:
            break
        rest = total // chunk[axis]
        fits = max(1, min(chunk[axis], target_bytes // max(rest, 1)))
        # Equal chunks: 1000 cut at 524 would store 2 × 524 (5% padding); 2 × 500 stores none.
        pieces = math.ceil(chunk[axis] / fits)
        chunk[axis] = math.ceil(chunk[axis] / pieces)
    return tuple(chunk)


def _blocks(dims: tuple[str, ...], shape: tuple[int, ...], chunks: tuple[int, ...], block_values: int) -> Iterator[tuple[slice, ...]]:
    """Whole-chunk slabs along the first cut axis that is not a sample axis, each about ``block_values``."""
    axes = [a for a in _split_order(dims, shape) if dims[a] not in SAMPLE_DIMS]
    if not axes:
        yield tuple(slice(None) for _ in shape)
        return
    axis = axes[0]
    per_index = math.prod(shape) // max(shape[axis], 1)
    step = max(chunks[axis], (block_values // max(per_index, 1)) // chunks[axis] * chunks[axis])
    for start in range(0, shape[axis], step):
        where = [slice(None)] * len(shape)
        where[axis] = slice(start, min(start + step, shape[axis]))
        yield tuple(where)


def _streamable(da: xr.DataArray) -> bool:
    return da.dtype.kind in "iuf" and da.size > 0 and da.ndim > 0


def _stored_dtype(group: str, dtype: np.dtype, options: StorageOptions) -> np.dtype:
    if group in SAMPLE_GROUPS and dtype.kind == "f" and dtype.itemsize > np.dtype(options.float_dtype).itemsize:
        return np.dtype(options.float_dtype)
    return dtype


def _labels(ds: xr.Dataset, dim: str) -> list[str]:
    if dim in ds.coords:
        return [str(v) for v in ds.coords[dim].values]
    return [str(i) for i in range(ds.sizes[dim])]


def _effect_threshold_vars(roles: dict[str, Any]) -> set[str]:
    return {v for k in ("gene_effect", "gene_lineage_effect", "gene_cell_line_effect") if (v := roles.get(k))}


def _groups(idata: Any) -> list[str]:
    return list(idata.groups())


def _skeleton_encoding(ds: xr.Dataset, options: StorageOptions) -> dict[str, dict[str, Any]]:
    encoding: dict[str, dict[str, Any]] = {}
    for name, da in ds.data_vars.items():
        if da.dtype.kind in "iuf" and da.ndim > 0 and da.size > 0:
            enc: dict[str, Any] = {"fletcher32": True}
            if options.compression_level:
                enc.update(zlib=True, complevel=options.compression_level, shuffle=True)
            encoding[str(name)] = enc
    return encoding


def _elements_first(block: np.ndarray, dims: tuple[str, ...]) -> tuple[np.ndarray, tuple[int, ...]]:
    """A block as (element, chain, draw) for the statistics, and the shape of its elements."""
    to_front = [dims.index("chain"), dims.index("draw")] + [i for i, d in enumerate(dims) if d not in SAMPLE_DIMS]
    moved = np.transpose(block, to_front)
    block_shape = moved.shape[2:]
    draws = moved.reshape(moved.shape[0], moved.shape[1], math.prod(block_shape)).transpose(2, 0, 1)
    return draws, block_shape


def _timed_summary(draws: np.ndarray, threshold: float | None) -> tuple[ElementStats, float]:
    started = time.perf_counter()
    result = summarise_draws(draws, threshold=threshold)
    return result, time.perf_counter() - started


# Free space a fit needs beyond its estimated size: HDF5 metadata, the summaries' Parquet overhead, the
# manifest, and slack so the disk is not left full for everyone else.
DISK_MARGIN_FACTOR = 1.2
DISK_MARGIN_BYTES = 8 << 20
SUMMARY_BYTES_PER_ELEMENT = 160  # ~16 statistics of 8 bytes per posterior element, across the summary files


def estimate_fit_bytes(idata: Any, options: StorageOptions) -> int:
    """Upper estimate of a fit's files on disk: every value at its stored precision, uncompressed, plus summaries.

    Read from the arrays' shapes only (nothing is loaded), so it is cheap for any posterior.
    """
    total = 0
    for group in _groups(idata):
        ds = idata[group]
        for da in ds.variables.values():
            total += math.prod(da.shape) * _stored_dtype(group, da.dtype, options).itemsize
    posterior = idata["posterior"] if "posterior" in _groups(idata) else None
    if posterior is not None:
        elements = sum(math.prod(s for d, s in zip(da.dims, da.shape, strict=True) if d not in SAMPLE_DIMS)
                       for da in posterior.data_vars.values())
        total += elements * SUMMARY_BYTES_PER_ELEMENT
    return total


def needed_free_bytes(estimate: int) -> int:
    """Free space required before writing a fit of ``estimate`` bytes."""
    return int(estimate * DISK_MARGIN_FACTOR) + DISK_MARGIN_BYTES


ROLE_DIMS = {"gene_effect": {"gene"}, "gene_lineage_effect": {"gene", "lineage"},
             "gene_cell_line_effect": {"gene", "cell_line"}}


def check_roles(idata: Any, roles: dict[str, Any]) -> None:
    """Check the model's roles against the posterior; one error lists every mismatch."""
    if "posterior" not in list(idata.groups()):
        raise StoreError("cannot store a fit without a posterior group: expected an InferenceData from sampling")
    post = idata["posterior"]
    problems: list[str] = []
    missing_dims = [d for d in SAMPLE_DIMS if d not in post.dims]
    if missing_dims:
        problems.append(f"the posterior has no {' or '.join(missing_dims)} dimension (found {list(post.dims)})")
    if not roles.get("gene_effect"):
        problems.append("roles name no gene_effect variable: every model declares its gene-level effect")
    for role, wanted in ROLE_DIMS.items():
        name = roles.get(role)
        if not name:
            continue
        if name not in post.data_vars:
            problems.append(f"role {role} names {name!r}, which is not in the posterior "
                            f"(variables: {', '.join(map(str, post.data_vars)) or 'none'})")
            continue
        da = post[name]
        element_dims = {str(d) for d in da.dims if d not in SAMPLE_DIMS}
        if element_dims != wanted or da.dtype.kind not in "iuf":
            problems.append(f"role {role} variable {name!r} has dims {list(da.dims)} and dtype {da.dtype}; "
                            f"expected numbers with dims chain, draw, {', '.join(sorted(wanted))}")
    for role in ("hyperparameters", "covariate_slopes"):
        for name in roles.get(role) or []:
            if name not in post.data_vars:
                problems.append(f"role {role} lists {name!r}, which is not in the posterior")
    for dim in ("gene", "cell_line", "lineage", "sgrna"):
        if dim in post.coords:
            labels = [str(v) for v in post.coords[dim].values]
            if len(set(labels)) != len(labels):
                problems.append(f"coordinate {dim} has repeated labels; each {dim} must appear once")
    if problems:
        raise StoreError("the fit's posterior does not match its model's roles:\n" + "\n".join(f"  - {p}" for p in problems))


def write_fit_files(folder: Path, idata: Any, *, root_attrs: dict[str, Any], roles: dict[str, Any],
                    options: StorageOptions) -> WriteReport:
    """Write ``posterior.nc`` and the summary Parquet files of one fit into ``folder``.

    ``idata`` is an ``arviz.InferenceData`` (its arrays may be lazily loaded: only one block is
    read at a time). Roles must already be checked against the posterior.
    """
    report = WriteReport()
    path = folder / POSTERIOR_FILE
    t0 = time.perf_counter()
    groups = _groups(idata)
    attrs = {**_netcdf_attrs(dict(getattr(idata, "attrs", None) or {})), **_netcdf_attrs(root_attrs)}
    xr.Dataset(attrs=attrs).to_netcdf(path, mode="w", engine="h5netcdf")

    streamed: dict[str, list[str]] = {}
    for group in groups:
        ds: xr.Dataset = idata[group]
        names = [str(n) for n, da in ds.data_vars.items() if group in SAMPLE_GROUPS and _streamable(da)]
        streamed[group] = names
        skeleton = ds.drop_vars(names).drop_encoding()
        skeleton.attrs = _netcdf_attrs(skeleton.attrs)
        for variable in skeleton.variables.values():
            variable.attrs = _netcdf_attrs(variable.attrs)
        skeleton.to_netcdf(path, mode="a", group=group, engine="h5netcdf",
                           encoding=_skeleton_encoding(skeleton, options))
        report.variables[group] = {
            str(n): {"dims": list(da.dims), "shape": list(da.shape),
                     "dtype": str(_stored_dtype(group, da.dtype, options) if str(n) in names else da.dtype)}
            for n, da in ds.data_vars.items()
        }

    posterior = idata["posterior"]
    report.labels = {d: _labels(posterior, d) for d in LABEL_DIMS if d in posterior.dims}
    all_labels = {str(d): _labels(posterior, str(d)) for d in posterior.dims if d not in SAMPLE_DIMS}
    threshold_vars = _effect_threshold_vars(roles)
    stats: list[VariableStats] = []
    summary_s = 0.0
    threads = options.summary_threads or min(4, os.cpu_count() or 1)
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="summarise") if threads > 1 else None
    # (future or result, statistics holder, where, block shape); at most `threads` blocks wait, bounding memory.
    pending: deque[tuple[Any, VariableStats, tuple[slice, ...], tuple[int, ...]]] = deque()

    def collect(limit: int) -> None:
        nonlocal summary_s
        while len(pending) > limit:
            job, holder, element_where, block_shape = pending.popleft()
            result, seconds = job.result() if pool is not None else job
            holder.fill(element_where, result, block_shape)
            summary_s += seconds

    io_s = 0.0
    try:
        with h5netcdf.File(path, "a") as nc:
            for group in groups:
                if not streamed[group]:
                    continue
                ds = idata[group]
                target_group = nc[group]
                for name in streamed[group]:
                    da = ds[name]
                    dims = tuple(str(d) for d in da.dims)
                    for d, size in zip(dims, da.shape, strict=True):
                        if d not in target_group.dimensions:
                            target_group.dimensions[d] = size
                    dtype = _stored_dtype(group, da.dtype, options)
                    chunks = choose_chunks(dims, da.shape, dtype.itemsize, options.chunk_bytes)
                    kwargs: dict[str, Any] = {"chunks": chunks, "fletcher32": True}
                    if options.compression_level:
                        kwargs.update(compression="gzip", compression_opts=options.compression_level, shuffle=True)
                    var = target_group.create_variable(name, dims, dtype=dtype, **kwargs)
                    var.attrs.update(_netcdf_attrs(da.attrs))
                    summarise = group == "posterior" and all(d in dims for d in SAMPLE_DIMS)
                    if summarise:
                        element_dims = tuple(d for d in dims if d not in SAMPLE_DIMS)
                        element_shape = tuple(s for d, s in zip(dims, da.shape, strict=True) if d not in SAMPLE_DIMS)
                        holder = VariableStats(name, element_dims, element_shape, name in threshold_vars)
                        stats.append(holder)
                        threshold = P_BELOW_THRESHOLD if holder.with_p_below else None
                    for where in _blocks(dims, da.shape, chunks, options.block_values):
                        t = time.perf_counter()
                        block = np.asarray(da.variable[where].values).astype(dtype, copy=False)
                        var[where] = block
                        io_s += time.perf_counter() - t
                        if summarise:
                            draws, block_shape = _elements_first(block, dims)
                            element_where = tuple(w for w, d in zip(where, dims, strict=True) if d not in SAMPLE_DIMS)
                            job = (pool.submit(_timed_summary, draws, threshold) if pool is not None
                                   else _timed_summary(draws, threshold))
                            pending.append((job, holder, element_where, block_shape))
                            collect(threads)
            collect(0)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    report.files.append(POSTERIOR_FILE)
    report.timings["netcdf_write_s"] = io_s  # reading blocks from the source and writing them
    report.timings["stream_wall_s"] = time.perf_counter() - t0  # NetCDF written, posterior summarised
    if after_netcdf is not None:
        after_netcdf(path)

    t1 = time.perf_counter()
    stats = [s for s in stats if math.prod(s.shape) > 0]
    report.summary_variables = write_summary(folder / SUMMARY_FILE, stats, all_labels)
    report.files.append(SUMMARY_FILE)
    by_name = {s.name: s for s in stats}
    gene_var = by_name[roles["gene_effect"]]
    write_gene_summary(folder / GENE_SUMMARY_FILE, gene_var, all_labels["gene"])
    report.files.append(GENE_SUMMARY_FILE)
    for kind, filename in MATRIX_FILES.items():
        role_var = roles.get(kind.role)
        if role_var:
            write_matrix(folder / filename, by_name[role_var], kind, all_labels)
            report.files.append(filename)
    report.element_diagnostics = {**headline(stats), "worst": worst_elements(stats, all_labels)}
    report.timings["summary_compute_s"] = summary_s  # summed over threads
    report.timings["summary_files_s"] = time.perf_counter() - t1
    return report
