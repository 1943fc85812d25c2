"""The content fingerprint of screen readings: the same readings give the same sha256 on any machine."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd

from speclet_core.data.columns import FINGERPRINT_OPTIONAL, NUMERIC_COLUMNS, REQUIRED_COLUMNS

FINGERPRINT_SCHEME = "speclet-screen-v2"


def _fingerprint_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in (*REQUIRED_COLUMNS, *FINGERPRINT_OPTIONAL) if c in df.columns]


def _canonical_keys(df: pd.DataFrame) -> tuple[list[str], dict[str, Any], np.ndarray]:
    """Fingerprint columns, their sort keys (text as sorted factor codes, numbers as floats), and the row order."""
    cols = _fingerprint_columns(df)
    keys: dict[str, Any] = {}
    for col in cols:
        if col in NUMERIC_COLUMNS:
            arr = df[col].to_numpy(dtype="<f8", na_value=np.nan)
            arr = np.where(arr == 0.0, 0.0, arr)  # -0.0 == 0.0
            keys[col] = arr
        else:
            codes, uniques = pd.factorize(df[col].astype("string"), sort=True, use_na_sentinel=True)
            keys[col] = (codes.astype("<i8"), [str(u) for u in uniques])
    sort_keys = [keys[c] if c in NUMERIC_COLUMNS else keys[c][0] for c in cols]
    order = np.lexsort(sort_keys[::-1]) if len(df) else np.arange(0)
    return cols, keys, order


def sort_canonical(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in a canonical order that does not depend on the input order."""
    _, _, order = _canonical_keys(df)
    return df.iloc[order]


def fingerprint_frame(df: pd.DataFrame) -> str:
    """sha256 over the fit-relevant columns of the rows in canonical order.

    The same readings give the same fingerprint on any machine, whatever the row
    order or extra columns; any changed reading changes it. Text columns are hashed as
    their sorted distinct values plus one integer code per row (fast for millions of rows).
    """
    cols, keys, order = _canonical_keys(df)
    h = hashlib.sha256(FINGERPRINT_SCHEME.encode())
    h.update(str(len(df)).encode())
    for col in cols:
        h.update(b"\x1e" + col.encode())
        if col in NUMERIC_COLUMNS:
            arr = keys[col][order]
            arr = np.where(np.isnan(arr), np.nan, arr)  # one NaN bit pattern
            h.update(arr.astype("<f8").tobytes())
        else:
            codes, uniques = keys[col]
            h.update(json.dumps(uniques, ensure_ascii=False).encode("utf-8"))
            h.update(codes[order].tobytes())
    return h.hexdigest()
