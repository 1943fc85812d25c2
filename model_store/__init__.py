"""The store of fitted posteriors (never imports streamlit or pymc).

``ModelStore(root).put(...)`` writes a fit atomically; ``get(fit_id)`` opens it lazily as a
``StoredFit`` whose summaries, matrices and draws are read only when asked for.
"""

from importlib import import_module
from typing import Any

from model_store.ids import check_fit_id, compute_fit_id, fit_id_from_request

# The store proper pulls in xarray, pandas and h5netcdf (≈ 2 s): import it on first use, so that code needing
# only fit ids (``speclet_core.records``, a fit process starting up) stays fast.
_LAZY = {
    "SCHEMA_VERSION": "model_store.manifest",
    "FitDiagnostics": "model_store.manifest",
    "FitManifest": "model_store.manifest",
    "FitRoles": "model_store.manifest",
    "FitStatus": "model_store.manifest",
    "ModelStore": "model_store.store",
    "ProblemKind": "model_store.files",
    "StoredFit": "model_store.fit",
    "StoreProblem": "model_store.files",
    "P_BELOW_THRESHOLD": "model_store.summaries",
    "MatrixKind": "model_store.summaries",
    "MatrixStat": "model_store.summaries",
    "FloatDtype": "model_store.writer",
    "StorageOptions": "model_store.writer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'model_store' has no attribute {name!r}")


__all__ = [
    "P_BELOW_THRESHOLD",
    "SCHEMA_VERSION",
    "FitDiagnostics",
    "FitManifest",
    "FitRoles",
    "FitStatus",
    "FloatDtype",
    "MatrixKind",
    "MatrixStat",
    "ModelStore",
    "ProblemKind",
    "StorageOptions",
    "StoreProblem",
    "StoredFit",
    "check_fit_id",
    "compute_fit_id",
    "fit_id_from_request",
]
