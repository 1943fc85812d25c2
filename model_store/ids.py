"""Fit ids: sha256 of canonical JSON of what determines a fit; validated before any path is built."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from speclet_core.errors import StoreError

FIT_ID_RE = re.compile(r"^[0-9a-f]{64}$")


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the same object gives the same text on any machine."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def compute_fit_id(identity: dict[str, Any]) -> str:
    """sha256 hex of the canonical JSON of a fit's identity."""
    return hashlib.sha256(canonical_json(identity).encode("ascii")).hexdigest()


def check_fit_id(fit_id: str) -> str:
    """Return ``fit_id`` if it is 64 lowercase hex digits, else raise (no paths from user text)."""
    if not isinstance(fit_id, str) or not FIT_ID_RE.fullmatch(fit_id):
        shown = repr(fit_id)[:80]
        raise StoreError(f"invalid fit id {shown}: a fit id is the 12 characters shown beside each fit (0-9, a-f), "
                         "or more of the same id; copy it from the Home page's fits or `python -m speclet_core store list`")
    return fit_id


# What names a fit (FitRequest.identity()); where the data file lives is deliberately not part of it.
IDENTITY_KEYS: tuple[str, ...] = ("data_fingerprint", "selection", "model", "model_version", "sampler", "seed")


def fit_id_from_request(request: dict[str, Any]) -> str:
    """Fit id of a request in its JSON form (``FitRequest.model_dump(mode="json")``).

    Raises
    ------
    StoreError
        If the request lacks one of the identity fields.
    """
    missing = [k for k in IDENTITY_KEYS if k not in request]
    if missing:
        raise StoreError(
            f"fit request is missing {', '.join(missing)}: expected the JSON form of a FitRequest "
            "(request.model_dump(mode='json'))"
        )
    return compute_fit_id(request_identity(request))


def request_identity(request: dict[str, Any]) -> dict[str, Any]:
    """What names a fit: the ``IDENTITY_KEYS`` plus the model options that are set (none: as before options)."""
    identity = {k: request[k] for k in IDENTITY_KEYS}
    options = {k: v for k, v in (request.get("options") or {}).items() if v is not None}
    if options:
        identity["options"] = options
    return identity
