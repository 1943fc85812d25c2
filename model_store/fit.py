"""One stored fit, opened lazily: summaries from Parquet, draws from the NetCDF, only when asked for."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import xarray as xr

from model_store.files import StoreProblem, verify_files
from model_store.manifest import FitManifest, FitRoles, fix_hint
from model_store.summaries import MatrixKind, MatrixStat
from model_store.writer import GENE_SUMMARY_FILE, MATRIX_FILES, POSTERIOR_FILE, SUMMARY_FILE
from speclet_core.errors import CorruptFitError, FitNotFoundError, SpecletError, StoreError


class StoredFit:
    """A stored fit, opened lazily: nothing beyond the manifest is read until asked for.

    Summaries come from small Parquet files; ``draws`` reads only the selected part of one
    variable from the NetCDF. Close it (or use ``with``) to release the NetCDF handles.
    """

    def __init__(self, fit_id: str, folder: Path, manifest: FitManifest) -> None:
        self.fit_id = fit_id
        self.folder = folder
        self.manifest = manifest
        self._datasets: dict[str, xr.Dataset] = {}
        self._idata: Any = None
        # Pages share one StoredFit across sessions (threads): open each handle once.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"StoredFit({self.fit_id[:12]}…, model={self.manifest.model!r})"

    def __enter__(self) -> StoredFit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def posterior_path(self) -> Path:
        return self.folder / POSTERIOR_FILE

    @property
    def roles(self) -> FitRoles:
        return self.manifest.roles

    @contextlib.contextmanager
    def _reading(self, what: str, filename: str) -> Iterator[None]:
        """Turn file errors into store errors a page can show: deleted meanwhile, or damaged."""
        try:
            yield
        except SpecletError:
            raise
        except FileNotFoundError:
            raise FitNotFoundError(
                f"fit {self.fit_id} was deleted while {what} was being read; it is no longer in the store"
            ) from None
        except (OSError, pa.ArrowException, RuntimeError) as exc:
            raise CorruptFitError(
                f"fit {self.fit_id}: {filename} is damaged, reading {what} failed ({type(exc).__name__}: {exc}); "
                + fix_hint(self.fit_id)
            ) from None

    def _parquet(self, filename: str, what: str) -> pq.ParquetFile:
        with self._reading(what, filename):
            return pq.ParquetFile(self.folder / filename, page_checksum_verification=True)

    def summary(self, var_names: Sequence[str] | None = None) -> pd.DataFrame:
        """Per-element table of the posterior: variable, its coordinates, mean, sd, 89% HDI, R-hat, ESS."""
        order = list(self.manifest.summary_variables)
        if var_names is None:
            groups = list(range(len(order)))
        else:
            unknown = [v for v in var_names if v not in order]
            if unknown:
                raise StoreError(f"fit {self.fit_id[:12]} has no summarised variable {', '.join(map(repr, unknown))}; "
                                 f"it has {', '.join(order)}")
            groups = [order.index(v) for v in var_names]
        pf = self._parquet(SUMMARY_FILE, "the summary table")
        with self._reading("the summary table", SUMMARY_FILE):
            return pf.read_row_groups(groups).to_pandas()

    def gene_summary(self) -> pd.DataFrame:
        """The gene-level effect: one row per gene with mean, sd, 89% HDI, P(effect < -0.5), R-hat, ESS."""
        pf = self._parquet(GENE_SUMMARY_FILE, "the gene summary")
        with self._reading("the gene summary", GENE_SUMMARY_FILE):
            return pf.read().to_pandas()

    def matrix(self, kind: MatrixKind | str, stat: MatrixStat | str = MatrixStat.MEAN) -> pd.DataFrame:
        """Genes × cell lines (or lineages) of one statistic, precomputed at put time (the heatmap's data)."""
        try:
            kind = MatrixKind(kind)
            stat = MatrixStat(stat)
        except ValueError:
            raise StoreError(
                f"matrix({kind!r}, {stat!r}): kind must be one of {', '.join(k.value for k in MatrixKind)} "
                f"and stat one of {', '.join(s.value for s in MatrixStat)}"
            ) from None
        filename = MATRIX_FILES[kind]
        if filename not in self.manifest.sizes:
            raise StoreError(
                f"fit {self.fit_id[:12]} (model {self.manifest.model}) has no {kind.role} variable, so there "
                f"is no {kind.value.replace('_', ' × ', 1).replace('_', ' ')} matrix; its roles: {self.roles.to_dict()}"
            )
        other = kind.column_dim
        genes = list(self.manifest.genes)
        columns = list(self.manifest.cell_lines if other == "cell_line" else self.manifest.lineages)
        what = f"the {kind.value} {stat.value} matrix"
        pf = self._parquet(filename, what)
        with self._reading(what, filename):
            values = pf.read(columns=[stat.value]).column(0).to_numpy()
        if values.size != len(genes) * len(columns):
            raise CorruptFitError(f"fit {self.fit_id}: {filename} holds {values.size} cells, expected "
                                  f"{len(genes)} × {len(columns)}; " + fix_hint(self.fit_id))
        return pd.DataFrame(values.reshape(len(genes), len(columns)), index=pd.Index(genes, name="gene"),
                            columns=pd.Index(columns, name=other))

    def dataset(self, group: str = "posterior") -> xr.Dataset:
        """One group of the NetCDF, opened lazily (kept open until ``close``)."""
        groups = self.manifest.groups
        if group not in groups:
            raise StoreError(f"fit {self.fit_id[:12]} has no {group!r} group; it has {', '.join(groups)}")
        with self._lock:
            if group not in self._datasets:
                with self._reading(f"the {group} group", POSTERIOR_FILE):
                    self._datasets[group] = xr.open_dataset(self.posterior_path, group=group, engine="h5netcdf",
                                                            cache=False)
            return self._datasets[group]

    def draws(self, var: str, *, group: str = "posterior", load: bool = True, **sel: Any) -> xr.DataArray:
        """Draws of one variable, only the selected labels (e.g. ``draws("gene_effect", gene="KRAS")``).

        Reads just that part of the file; ``load=False`` returns it unread (lazy).
        """
        ds = self.dataset(group)
        if var not in ds.data_vars:
            raise StoreError(f"fit {self.fit_id[:12]} has no variable {var!r} in {group}; "
                             f"it has {', '.join(map(str, ds.data_vars))}")
        da = ds[var]
        chosen: dict[str, Any] = {}
        for dim, wanted in sel.items():
            if dim not in da.dims:
                raise StoreError(f"{var} has no dimension {dim!r}; its dimensions are {', '.join(map(str, da.dims))}")
            labels = da.indexes[dim] if dim in da.indexes else pd.RangeIndex(da.sizes[dim])
            many = isinstance(wanted, list | tuple | np.ndarray | pd.Index)
            asked = list(wanted) if many else [wanted]
            if labels.dtype.kind in "iu":  # the summary table holds every label as text, e.g. reading "17"
                asked = [int(w) if isinstance(w, str) and w.lstrip("-").isdigit() else w for w in asked]
            chosen[dim] = asked if many else asked[0]
            missing = [w for w in asked if w not in labels]
            if missing:
                shown = ", ".join(map(str, labels[:5]))
                raise StoreError(f"{dim} {', '.join(map(repr, missing[:5]))} not in fit {self.fit_id[:12]} "
                                 f"({len(labels)} {dim} labels, e.g. {shown})")
        if chosen:
            da = da.sel(chosen)
        if load:
            with self._reading(f"draws of {var}", POSTERIOR_FILE):
                da = da.load()
        return da

    def open_idata(self) -> Any:
        """The whole fit as ``arviz.InferenceData`` (lazily loaded groups)."""
        import arviz as az

        with self._lock:
            if self._idata is None:
                with self._reading("the InferenceData", POSTERIOR_FILE):
                    self._idata = az.from_netcdf(self.posterior_path)
            return self._idata

    def verify(self) -> list[StoreProblem]:
        """Full check of this fit's files against the manifest's sizes and sha256 checksums."""
        return verify_files(self.fit_id, self.folder, self.manifest)

    def close(self) -> None:
        with self._lock:
            for ds in self._datasets.values():
                ds.close()
            self._datasets.clear()
            if self._idata is not None:
                for group in self._idata.groups():
                    self._idata[group].close()
                self._idata = None
