"""What every sampler shares: progress reports, the record a sampler hands back, and draws as a Dataset.

The samplers (``nutpie_sampler``, ``pymc_sampler``, ``approximate``) report through one
``Reporter`` and return one ``SamplerResult``, so the engine treats them alike.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from speclet_core.records import FitPhase

PROGRESS_INTERVAL_S = 0.5


@dataclass(frozen=True)
class FitProgress:
    """Where a running fit is: relayed by the worker to the queue and the Fit page.

    ``draws_done`` / ``draws_total`` count every iteration of every chain, warm-up
    included, so their ratio is the fraction of sampling work done. ``divergences``
    counts divergent transitions after warm-up so far.
    """

    phase: FitPhase
    draws_done: int = 0
    draws_total: int = 0
    divergences: int = 0


ProgressCallback = Callable[[FitProgress], None]


class Reporter:
    """Throttles progress calls (≤ 2 per second, phase changes always) and keeps the callback's error.

    nutpie calls back from its own thread, where an exception cannot stop sampling; the
    error is kept and re-raised by the sampling loop, so a callback can cancel a fit.
    """

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.last_phase: FitPhase | None = None
        self.last_time = 0.0
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.counts = (0, 0, 0)

    def __call__(
        self, phase: FitPhase, done: int = 0, total: int = 0, divergences: int = 0, *, force: bool = False
    ) -> None:
        if self.callback is None or self.error is not None:
            return
        with self.lock:
            self.counts = (done, total, divergences)
            now = time.monotonic()
            if not force and phase == self.last_phase and now - self.last_time < PROGRESS_INTERVAL_S:
                return
            self.last_phase, self.last_time = phase, now
            try:
                self.callback(FitProgress(phase, int(done), int(total), int(divergences)))
            except BaseException as exc:  # re-raised by the sampling loop (cancellation)
                self.error = exc

    def raise_if_failed(self) -> None:
        """Re-raise the error the progress callback raised (a worker cancelling the fit)."""
        if self.error is not None:
            raise self.error


@dataclass(frozen=True)
class SamplerResult:
    """Draws of the stored variables, sampler statistics (None for approximations), times and notes."""

    posterior: xr.Dataset
    sample_stats: xr.Dataset | None
    compile_s: float
    sample_s: float
    notes: dict[str, Any] = field(default_factory=dict)


def dataset_from_draws(model: Any, arrays: dict[str, np.ndarray]) -> xr.Dataset:
    """(chain, draw, *dims) arrays → a Dataset with the model's named dims and coords."""
    data_vars = {}
    coords: dict[str, Any] = {}
    for name, arr in arrays.items():
        dims = list(model.named_vars_to_dims.get(name, ()) or ())
        for i in range(len(dims), arr.ndim - 2):
            dims.append(f"{name}_dim_{i}")
        for dim in dims:
            if dim in model.coords and model.coords[dim] is not None:
                coords[dim] = list(model.coords[dim])
        data_vars[name] = (["chain", "draw", *dims], arr)
    coords["chain"] = np.arange(next(iter(arrays.values())).shape[0])
    coords["draw"] = np.arange(next(iter(arrays.values())).shape[1])
    return xr.Dataset(data_vars, coords=coords)


def available_cores() -> int:
    """CPU cores this process may use (its affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# The one warning a fit raised with the blanket filter removed (pip-installed PyTensor): it concerns
# PyTensor's C backend, which a fit uses only for small helper functions (nutpie and the quick fit
# compile with numba), and it would repeat in every fit's log.
_NO_BLAS = "PyTensor could not link to a BLAS installation"


@contextlib.contextmanager
def quiet_pymc() -> Iterator[None]:
    """PyMC's step-by-step INFO logs and PyTensor's missing-BLAS warning, silenced while a fit runs.

    A worker relays progress itself. Every other warning still shows: it is news worth
    reading in the job's log.
    """
    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_NO_BLAS, category=UserWarning)
            yield
    finally:
        logger.setLevel(level)
