"""The log-fold-change readings of an import: the wanted rows and columns of the matrix, one row per reading."""

from __future__ import annotations

import numpy as np
import pandas as pd

from speclet_core.depmap.matrix import MatrixSpec, RowRequest, column_name
from speclet_core.depmap.progress import ImportPhase
from speclet_core.depmap.release import MODEL_ANNOTATIONS, SCREEN_OF_LIBRARY, ReleaseTables
from speclet_core.depmap.run import ImportRun
from speclet_core.errors import SelectionError
from speclet_core.labels import join_labels


def long_readings(run: ImportRun, t: ReleaseTables, guides: pd.Series, seqs: pd.DataFrame) -> pd.DataFrame:
    """Stream the LFC matrix (wanted rows and columns only) and turn it into one row per reading."""
    f = run.files
    spec = MatrixSpec(f.lfc, tuple(t.lfc_header), key_col=0)
    positions = seqs["position"].tolist()
    run.progress.emit(ImportPhase.LFC, 0.05, f"reading {f.lfc.name}", force=True)
    table = run.read_matrix(spec, RowRequest(frozenset(guides.index), tuple(positions)), ImportPhase.LFC, (0.05, 0.85))
    sg = np.asarray(table.column(column_name(0)).to_numpy(zero_copy_only=False), dtype=object)
    first = ~pd.Index(sg).duplicated(keep="first")
    if not first.all():
        run.warnings.append(f"{f.lfc.name}: {int((~first).sum())} guide row(s) repeated; used the first of each")
    sg = sg[first]
    absent = sorted(set(guides.index) - set(sg))
    run.dropped["guides_not_in_lfc"] = len(absent)
    if absent:
        run.warnings.append(f"{len(absent)} kept guide(s) have no row in {f.lfc.name} ({join_labels(absent)})")
    values = np.empty((len(sg), len(positions)), dtype="float64")
    for j, pos in enumerate(positions):
        values[:, j] = np.asarray(table.column(column_name(pos)).to_numpy(zero_copy_only=False), dtype="float64")[first]

    # guide-major: reading k is guide k // n_seq in sequence k % n_seq
    n_seq = len(positions)
    lfc = values.ravel()
    ok = ~np.isnan(lfc)
    run.dropped["readings_missing_lfc"] = int((~ok).sum())
    if not ok.any():
        raise SelectionError(f"{f.lfc.name}: every selected reading is missing; choose other genes or lineages")
    guide_idx = np.repeat(np.arange(len(sg)), n_seq)[ok]
    seq_idx = np.tile(np.arange(n_seq), len(sg))[ok]
    out = pd.DataFrame(
        {
            "sgrna": sg[guide_idx],
            "hugo_symbol": guides.reindex(sg).to_numpy()[guide_idx],
            "depmap_id": seqs["model_id"].to_numpy()[seq_idx],
            "lineage": seqs["lineage"].to_numpy()[seq_idx],
            "lfc": lfc[ok],
            "replicate_id": seqs["sequence_id"].to_numpy()[seq_idx],
        }
    )
    if "pdna_batch" in seqs.columns:
        out["pdna_batch"] = seqs["pdna_batch"].to_numpy()[seq_idx]
    out["screen"] = SCREEN_OF_LIBRARY[f.library]
    for col in ("lineage_subtype", "primary_or_metastasis", *MODEL_ANNOTATIONS, "screen_id", "screen_type"):
        if col in seqs.columns:
            out[col] = seqs[col].to_numpy()[seq_idx]
    return out
