"""The queue's storage: a diskcache (SQLite) database whose rows are JSON only.

A shared server never unpickles what another user wrote: ``JSONOnlyDisk`` refuses to read
or write anything pickled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import MODE_BINARY, MODE_RAW, UNKNOWN

from speclet_core.errors import JobError

TAMPER_FIX = "Someone or something wrote to it directly; stop the workers and delete the queue folder to start afresh."


class JSONOnlyDisk(diskcache.Disk):
    """diskcache serialisation that stores and reads JSON only.

    Plain ``diskcache.JSONDisk`` still unpickles a row whose mode says "pickle"; this one
    refuses such rows (and non-string keys) with a ``JobError`` instead.
    """

    def put(self, key: Any) -> tuple[Any, bool]:
        if type(key) is not str:
            raise JobError(f"job queue keys must be text, got {type(key).__name__}")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise JobError(
                f"{self._directory}: the job queue holds a pickled key; refusing to unpickle it. {TAMPER_FIX}"
            )
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = UNKNOWN) -> tuple[Any, ...]:
        if read:
            raise JobError("the job queue stores JSON values only, not files")
        data = json.dumps(value, separators=(",", ":"), allow_nan=False).encode("utf-8")
        return super().store(data, False, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if read or mode not in (MODE_RAW, MODE_BINARY):
            raise JobError(
                f"{self._directory}: a job queue row is stored as mode {mode} (pickle or text), not JSON; "
                f"refusing to read it. {TAMPER_FIX}"
            )
        data = super().fetch(mode, filename, value, False)
        if not isinstance(data, bytes):
            raise JobError(f"{self._directory}: a job queue row is not JSON bytes; refusing to read it. {TAMPER_FIX}")
        try:
            return json.loads(data)
        except (UnicodeDecodeError, ValueError):
            raise JobError(f"{self._directory}: a job queue row is not valid JSON. {TAMPER_FIX}") from None


def open_cache(queue_dir: Path) -> diskcache.Cache:
    """Open (creating, mode 0700) the queue's diskcache with JSON-only rows and no eviction."""
    queue_dir = Path(queue_dir)
    queue_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.chmod(queue_dir, 0o700)
    except PermissionError:
        pass  # someone else's folder we may still use: SQLite tells us if we cannot
    try:
        return diskcache.Cache(
            str(queue_dir),
            disk=JSONOnlyDisk,
            timeout=30,
            eviction_policy="none",
            statistics=0,
            tag_index=0,
            cull_limit=0,
            disk_min_file_size=2**26,  # every row inside SQLite, so each transaction covers it
        )
    except OSError as exc:
        raise JobError(
            f"{queue_dir}: cannot open the job queue ({exc}); check the folder exists and is writable"
        ) from None
