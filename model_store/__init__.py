"""The store of fitted posteriors (never imports streamlit or pymc).

``ModelStore(root).put(...)`` writes a fit atomically; ``get(fit_id)`` opens it lazily as a
``StoredFit`` whose summaries, matrices and draws are read only when asked for.
"""

from model_store.ids import check_fit_id, compute_fit_id, fit_id_from_request
from model_store.store import SCHEMA_VERSION, FitStatus, ModelStore, ProblemKind, StoredFit, StoreProblem
from model_store.summaries import P_BELOW_THRESHOLD, MatrixKind, MatrixStat
from model_store.writer import FloatDtype, StorageOptions

__all__ = [
    "P_BELOW_THRESHOLD",
    "SCHEMA_VERSION",
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
