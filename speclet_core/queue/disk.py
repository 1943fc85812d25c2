"""The queue's storage: a diskcache (SQLite) database whose rows are JSON only.

A shared server never unpickles what another user wrote: ``JSONOnlyDisk`` refuses to read
or write anything pickled. A damaged or unreadable database file is reported as a ``JobError``
that says where it is and what to do, on opening and on every later read or write; ``serve``
moves a damaged file aside at start (``move_aside_if_damaged``), keeping the damaged copy.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import diskcache
from diskcache.core import DBNAME, MODE_BINARY, MODE_RAW, UNKNOWN

from speclet_core.errors import JobError

SQLITE_FULL = 13  # SQLite's result code for "database or disk is full"
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


def queue_file(queue_dir: Path) -> Path:
    """The queue's SQLite database file."""
    return Path(queue_dir) / DBNAME


def damaged_message(queue_dir: Path, reason: object) -> str:
    path = queue_file(queue_dir)
    return (
        f"{path}: the job queue file is damaged ({reason}). Stored fits are not affected. To fix it, restart "
        f"`python -m speclet_core serve` (or the container), which moves the damaged file aside and starts an empty "
        f"queue; without serve, stop every worker and move it aside yourself (`mv {path} {path}.damaged`). Queued "
        f"and running fits and the queue's history are lost: submit them again."
    )


def _unreadable_message(queue_dir: Path, exc: BaseException) -> str:
    return (
        f"{queue_file(queue_dir)}: cannot read or write the job queue ({exc}); check that the folder and the file "
        f"are writable by this user, that the disk is not full, and that the folder is on a local disk (not NFS)"
    )


def _disk_full_message(queue_dir: Path) -> str:
    try:
        free = f"{shutil.disk_usage(queue_dir).free / (1 << 20):,.0f} MB free"
    except OSError:
        free = "free space unknown"
    return (
        f"disk full: cannot write the job queue {queue_file(queue_dir)}: the disk holding it is full ({free}); "
        f"free space on that disk (or point SPECLET_DATA_DIR at a larger one), then submit again. Stored fits are "
        f"not affected"
    )


def _read_only_message(queue_dir: Path) -> str:
    return (
        f"{queue_file(queue_dir)}: the job queue is on a read-only filesystem, so fits cannot be queued or followed "
        f"here; stored fits still open. To run fits, mount the data folder read-write (e.g. `-v speclet-data:/data` "
        f"without `:ro`)"
    )


def on_read_only_filesystem(folder: Path) -> bool:
    """Whether ``folder`` (or its nearest existing parent) lies on a filesystem mounted read-only."""
    for candidate in (folder, *folder.parents):
        try:
            return bool(os.statvfs(candidate).f_flag & os.ST_RDONLY)
        except FileNotFoundError:
            continue
        except OSError:
            return False
    return False


def _is_disk_full(exc: BaseException) -> bool:
    return (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or (
        isinstance(exc, sqlite3.OperationalError)
        and ("disk is full" in str(exc) or "No space left" in str(exc) or getattr(exc, "sqlite_errorcode", None)
             == SQLITE_FULL)
    )


@contextmanager
def _reported(queue_dir: Path) -> Iterator[None]:
    """Turn SQLite's errors into a ``JobError`` that names the file and the fix."""
    try:
        yield
    except sqlite3.OperationalError as exc:  # locked, read-only, disk full, cannot open
        if _is_disk_full(exc):
            raise JobError(_disk_full_message(queue_dir)) from None
        if on_read_only_filesystem(queue_dir):
            raise JobError(_read_only_message(queue_dir)) from None
        raise JobError(_unreadable_message(queue_dir, exc)) from None
    except OSError as exc:  # diskcache's own files and folders
        if _is_disk_full(exc):
            raise JobError(_disk_full_message(queue_dir)) from None
        if exc.errno == errno.EROFS:
            raise JobError(_read_only_message(queue_dir)) from None
        raise
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        raise JobError(damaged_message(queue_dir, exc)) from None


class _ReportingCache(diskcache.Cache):
    """The queue's diskcache: every operation the queue uses reports SQLite errors as a ``JobError``."""

    def get(self, *args: Any, **kwargs: Any) -> Any:
        with _reported(Path(self.directory)):
            return super().get(*args, **kwargs)

    def set(self, *args: Any, **kwargs: Any) -> Any:
        with _reported(Path(self.directory)):
            return super().set(*args, **kwargs)

    def add(self, *args: Any, **kwargs: Any) -> Any:
        with _reported(Path(self.directory)):
            return super().add(*args, **kwargs)

    @contextmanager
    def transact(self, retry: bool = False) -> Iterator[None]:
        with _reported(Path(self.directory)), super().transact(retry):
            yield


def queue_damage(queue_dir: Path) -> str | None:
    """Why the queue's database file is damaged (SQLite's own check), or None if it is sound or absent.

    A file that merely cannot be opened now (locked, no permission) is not judged damaged.
    """
    path = queue_file(queue_dir)
    if not path.is_file():
        return None
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            rows = con.execute("PRAGMA quick_check").fetchall()
        finally:
            con.close()
    except sqlite3.OperationalError:
        return None
    except sqlite3.DatabaseError as exc:
        return str(exc)
    found = [line for r in rows for line in str(r[0]).splitlines() if line.strip() and not line.startswith("***")]
    if found == ["ok"]:
        return None
    return f"{len(found)} problem(s) found by SQLite's check, e.g. {found[0] if found else 'unknown'}"


def move_aside_if_damaged(queue_dir: Path) -> tuple[Path, str] | None:
    """Rename a damaged queue file (and its -wal / -shm) to ``cache.db.damaged-STAMP``; (new path, reason) or None.

    Only for a process that starts before any other opens the queue (``serve``): a worker or page
    holding the old file open would keep using it.
    """
    reason = queue_damage(queue_dir)
    if reason is None:
        return None
    path = queue_file(queue_dir)
    suffix = time.strftime(".damaged-%Y%m%d-%H%M%S")
    try:
        for extra in ("-wal", "-shm"):
            side = path.with_name(path.name + extra)
            if side.exists():
                os.replace(side, path.with_name(path.name + suffix + extra))
        target = path.with_name(path.name + suffix)
        os.replace(path, target)
    except OSError as exc:
        raise JobError(f"{damaged_message(queue_dir, reason)} (moving it aside failed: {exc})") from None
    return target, reason


def open_cache(queue_dir: Path) -> diskcache.Cache:
    """Open (creating, mode 0700) the queue's diskcache with JSON-only rows and no eviction."""
    queue_dir = Path(queue_dir)
    try:
        queue_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise JobError(_read_only_message(queue_dir)) from None
        raise JobError(f"{queue_dir}: cannot create the job queue's folder ({exc.strerror}); check that the "
                       f"data folder exists and is writable") from None
    try:
        os.chmod(queue_dir, 0o700)
    except OSError:
        pass  # someone else's folder, or a read-only filesystem: SQLite tells us if we cannot use it
    try:
        with _reported(queue_dir):
            return _ReportingCache(
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
