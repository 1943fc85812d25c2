"""What every launcher of a fit process shares (a local worker and a Dask task): how long a fit has to stop,
the exit status meaning "not mine", and one locked PyTensor compile folder per running fit."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from speclet_core.settings import Settings

KILL_GRACE_S = 3.0  # SIGTERM → SIGKILL: a fit has this long to stop by itself
EXIT_NOT_MINE = 3  # the child found its job cancelled or taken over: it stored nothing
REMOTE_STOP_S = 15.0  # a Dask task asked to stop that has not answered after this long is given up


def compile_base(settings: Settings) -> Path:
    """The PyTensor compile cache's root: ``base_compiledir`` of ``PYTENSOR_FLAGS``, else ``DATA_DIR/cache/pytensor``."""
    return _flag_compiledir(os.environ.get("PYTENSOR_FLAGS", "")) or settings.data_dir / "cache" / "pytensor"


def lock_compile_folder(base: Path, prefix: str) -> tuple[IO[str], Path] | None:
    """Lock ``BASE/<prefix>K.lock`` for the lowest free K; returns (the held lock, ``BASE/<prefix>K``).

    The lock is held as long as the returned file stays open (the kernel frees it when its holder dies).
    """
    base.mkdir(parents=True, exist_ok=True)
    for k in range(256):
        fh = open(base / f"{prefix}{k}.lock", "a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            continue
        return fh, base / f"{prefix}{k}"
    return None


def with_compiledir(flags: str, compiledir: Path) -> str:
    """``PYTENSOR_FLAGS`` with its ``base_compiledir`` set to ``compiledir`` (other flags kept)."""
    kept = [f for f in flags.split(",") if f.strip() and f.partition("=")[0].strip() != "base_compiledir"]
    return ",".join([*kept, f"base_compiledir={compiledir}"])


def _flag_compiledir(flags: str) -> Path | None:
    for item in flags.split(","):
        key, _, value = item.partition("=")
        if key.strip() == "base_compiledir" and value.strip():
            return Path(value.strip()).expanduser()
    return None
