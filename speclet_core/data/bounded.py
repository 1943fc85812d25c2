"""Reading screen tables in a child process with a memory and a time limit, so the server never grows.

The dashboard is one process serving every user: a small upload that expands to gigabytes must not grow
it. ``load_screen_bounded`` runs ``load_screen`` (with the size, row and column limits of
``speclet_core.data.reading``) in ``python -m speclet_core.data.bounded``, a child whose address space is
limited (``RLIMIT_AS``, ``SPECLET_PARSE_MEMORY_MB``) and which is killed after ``SPECLET_PARSE_TIMEOUT_S``.
The child writes the validated table as Parquet, and its result as JSON, into a temporary folder under the
data dir; the parent reads them back, so it only ever holds a table that passed every check.

Results are cached in the parent: a server file by (path, size, modification time), an upload by the hash
of its bytes; successes in a small LRU, failures in a larger one, so a shared link to a bad file is not
parsed again on every visit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from speclet_core.data.reading import TableLimits
from speclet_core.data.screen import Screen
from speclet_core.errors import DataReadError, DataValidationError, SpecletError
from speclet_core.settings import PROJECT_ROOT, Settings

MEMORY_EXIT = 3  # the child's exit status when it ran out of memory (MemoryError)
CACHED_SCREENS = 8
CACHED_FAILURES = 256
PARALLEL_PARSES = 2  # children at once, whoever asks: each may use SPECLET_PARSE_MEMORY_MB

log = logging.getLogger(__name__)
_lock = threading.Lock()
_screens: OrderedDict[Hashable, Screen] = OrderedDict()
_failures: OrderedDict[Hashable, SpecletError] = OrderedDict()
_key_locks: dict[Hashable, threading.Lock] = {}
_parallel = threading.BoundedSemaphore(PARALLEL_PARSES)
_spawned = 0


@dataclass(frozen=True)
class ParseLimits:
    """The bounds of one parse: the table's size (``TableLimits``), the child's memory and time."""

    table: TableLimits
    memory_mb: int
    timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ParseLimits:
        return cls(TableLimits.from_settings(settings), settings.parse_memory_mb, settings.parse_timeout_s)


@dataclass(frozen=True)
class ParseOutcome:
    """What one child did: the screen or the error, its peak resident memory (MiB) and wall time (s)."""

    screen: Screen | None
    error: SpecletError | None
    peak_mib: float
    wall_s: float


def spawn_count() -> int:
    """How many parse children this process has started (a cached result starts none)."""
    return _spawned


def clear_cache() -> None:
    with _lock:
        _screens.clear()
        _failures.clear()


def load_screen_bounded(path: str | Path, settings: Settings, *, name: str | None = None) -> Screen:
    """Read and validate a server-side screen table in a bounded child process (cached by path, size, mtime).

    ``name`` is the file's name in every message (default: the file name). Raises ``DataReadError`` (too
    large, unreadable, too slow, out of memory) or ``DataValidationError``, both naming ``name``.
    """
    p = Path(path)
    shown = name or p.name
    _check_file(p, shown)
    st = p.stat()
    key = ("file", str(p.resolve()), st.st_size, st.st_mtime_ns, shown, ParseLimits.from_settings(settings))
    return _cached(key, lambda: parse_in_child(p, shown, settings))


def load_upload_bounded(content: bytes, filename: str, suffix: str, settings: Settings) -> Screen:
    """Read and validate uploaded bytes in a bounded child process (cached by their sha256).

    The bytes are written to a private temporary file under the data dir; messages name ``filename``.
    """
    digest = hashlib.sha256(content).hexdigest()
    key = ("upload", digest, filename, ParseLimits.from_settings(settings))

    def parse() -> ParseOutcome:
        folder = Path(tempfile.mkdtemp(prefix="upload-", dir=_work_root(settings)))
        try:
            raw = folder / f"raw{suffix}"
            raw.write_bytes(content)
            return parse_in_child(raw, filename, settings)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return _cached(key, parse)


def _cached(key: Hashable, parse: Any) -> Screen:
    with _lock:
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:  # a second visitor of the same file waits for the first child instead of starting another
        with _lock:
            if key in _screens:
                _screens.move_to_end(key)
                return _screens[key]
            if key in _failures:
                _failures.move_to_end(key)
                raise _failures[key].with_traceback(None)
        try:
            outcome: ParseOutcome = parse()
        finally:
            with _lock:
                _key_locks.pop(key, None)
        with _lock:
            if outcome.error is not None:
                _remember(_failures, key, outcome.error, CACHED_FAILURES)
            else:
                assert outcome.screen is not None
                _remember(_screens, key, outcome.screen, CACHED_SCREENS)
        if outcome.error is not None:
            raise outcome.error.with_traceback(None)
        assert outcome.screen is not None
        return outcome.screen


def _remember(cache: OrderedDict, key: Hashable, value: Any, size: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)


def _check_file(p: Path, shown: str) -> None:
    """The cheap checks, done here so that a missing file starts no child."""
    if not p.exists():
        raise DataReadError(f"{shown}: file not found; check the path and that the file exists")
    if p.is_dir():
        raise DataReadError(f"{shown}: is a folder, expected a CSV, TSV or Parquet file")
    if not p.is_file():
        raise DataReadError(f"{shown}: not a regular file (a pipe or device?); expected a CSV, TSV or Parquet file")
    if not os.access(p, os.R_OK):
        raise DataReadError(f"{shown}: permission denied; make the file readable")


def _work_root(settings: Settings) -> str | None:
    """``DATA_DIR/tmp/parse`` for the child's files; the system's temp folder if the data dir is read-only."""
    root = settings.data_dir / "tmp" / "parse"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return str(root) if os.access(root, os.W_OK) else None


def parse_in_child(path: Path, name: str, settings: Settings) -> ParseOutcome:
    """One bounded child reads and validates ``path``; never raises for the table's content."""
    global _spawned
    limits = ParseLimits.from_settings(settings)
    out = Path(tempfile.mkdtemp(prefix="parse-", dir=_work_root(settings)))
    request = {"path": str(path), "name": name, "out_dir": str(out), "memory_mb": limits.memory_mb,
               "limits": asdict(limits.table)}
    (out / "request.json").write_text(json.dumps(request))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    start = time.monotonic()
    try:
        with _parallel, open(out / "stderr.txt", "wb") as err:
            with _lock:
                _spawned += 1
            proc = subprocess.Popen([sys.executable, "-m", "speclet_core.data.bounded", str(out / "request.json")],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env,
                                    cwd=str(PROJECT_ROOT))
            status, peak, timed_out = _wait(proc, limits.timeout_s)
        wall = time.monotonic() - start
        result_file = out / "result.json"
        if timed_out:
            return ParseOutcome(None, DataReadError(
                f"{name}: reading it took longer than {limits.timeout_s:g} s (SPECLET_PARSE_TIMEOUT_S), so it was "
                "stopped; send a smaller table (fewer genes or cell lines), or ask the administrator to raise "
                "the limit"), peak, wall)
        if not result_file.exists():
            tail = (out / "stderr.txt").read_bytes()[-2000:].decode("utf-8", "replace")
            log.warning("parse child for %s exited with status %s without a result: %s", name, status, tail)
            return ParseOutcome(None, _died(name, status, limits), peak, wall)
        result = json.loads(result_file.read_text())
        peak = max(peak, float(result.get("peak_mib", 0)))
        if not result["ok"]:
            return ParseOutcome(None, _error_from(result), peak, wall)
        data = pd.read_parquet(out / "table.parquet")
        screen = Screen(data, name, int(result["n_rows_read"]), int(result["n_missing_lfc"]))
        return ParseOutcome(screen, None, peak, wall)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _wait(proc: subprocess.Popen, timeout_s: float) -> tuple[int, float, bool]:
    """Wait for the child (killing it after ``timeout_s``); (exit code, peak resident MiB seen, timed out).

    The peak is the child's own VmHWM, polled while it runs (``ru_maxrss`` of a child started by vfork
    counts the parent's memory too).
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    timed_out = False
    peak = 0.0
    status_file = Path(f"/proc/{proc.pid}/status")
    while True:
        peak = max(peak, _peak_mib(status_file))
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() >= deadline:
            timed_out = True
            proc.kill()
            _, status = os.waitpid(proc.pid, 0)
            break
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, peak, timed_out


def _died(name: str, status: int, limits: ParseLimits) -> SpecletError:
    """The message for a child that stopped without a result: out of memory, or a crash."""
    out_of_memory = status == MEMORY_EXIT or (
        limits.memory_mb and status in (-signal.SIGABRT, -signal.SIGSEGV, -signal.SIGBUS, -signal.SIGKILL)
    )
    if out_of_memory:
        return DataReadError(
            f"{name}: reading it needed more than {limits.memory_mb:,} MiB of memory (SPECLET_PARSE_MEMORY_MB), "
            "so it was stopped; send a smaller table (fewer genes or cell lines), or ask the administrator to "
            "raise the limit"
        )
    return DataReadError(f"{name}: the reader stopped unexpectedly (exit status {status}); check that the file is "
                         "a CSV, TSV or Parquet table, and report it if it is")


def _error_from(result: dict[str, Any]) -> SpecletError:
    if result["kind"] == "validation":
        return DataValidationError(result["source"], list(result["problems"]))
    return DataReadError(result["message"])


# --------------------------------------------------------------------------- the child


def _child_main(request_file: str) -> int:
    request = json.loads(Path(request_file).read_text())
    out = Path(request["out_dir"])
    name = request["name"]
    if request["memory_mb"]:
        limit = request["memory_mb"] * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        from speclet_core.data.screen import load_screen

        screen = load_screen(request["path"], source=name, limits=TableLimits(**request["limits"]))
        screen.data.to_parquet(out / "table.parquet", index=False)
        result: dict[str, Any] = {"ok": True, "n_rows_read": screen.n_rows_read, "n_missing_lfc": screen.n_missing_lfc}
    except MemoryError:
        os._exit(MEMORY_EXIT)  # nothing more may be allocated: the parent words the message
    except DataValidationError as exc:
        result = {"ok": False, "kind": "validation", "source": exc.source, "problems": exc.problems}
    except SpecletError as exc:
        result = {"ok": False, "kind": "read", "message": str(exc)}
    except Exception as exc:  # any other failure on untrusted input is still a clear message, not a crash
        text = str(exc).replace(request["path"], name)[:300]
        result = {"ok": False, "kind": "read",
                  "message": f"{name}: could not be read as a screen table ({type(exc).__name__}: {text}); "
                             "check that it is a CSV, TSV or Parquet table with one row per reading"}
    result["peak_mib"] = _peak_mib()
    staged = out / "result.json.tmp"
    staged.write_text(json.dumps(result))
    os.replace(staged, out / "result.json")
    return 0


def _peak_mib(status_file: Path = Path("/proc/self/status")) -> float:
    """A process's peak resident memory (VmHWM) in MiB; 0 once it is gone."""
    try:
        for line in status_file.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1]))
