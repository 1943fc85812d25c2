"""Which screen table the app works on: the demo, the configured one, an upload, or a server path.

A screen is named by a short key that can live in the URL (``?screen=…``) without ever
exposing or accepting an arbitrary path:

- ``demo``: the built-in synthetic screen (regenerated deterministically in the data dir);
- ``config``: the file named by ``SPECLET_SCREEN``;
- ``upload-<16 hex>``: a validated upload, stored as Parquet under ``<data dir>/uploads``;
- ``import-<16 hex>``: a DepMap release import made in the app, Parquet under ``<data dir>/imports``
  (written by ``speclet_core.depmap.output.save_import``);
- ``path:<path>``: a file inside ``SPECLET_ALLOWED_DATA_DIRS`` (checked on every use).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from speclet_core.data.bounded import load_upload_bounded
from speclet_core.data.demo import ensure_demo_screen
from speclet_core.data.paths import resolve_allowed_path
from speclet_core.data.screen import Screen
from speclet_core.errors import DataReadError, SpecletError
from speclet_core.settings import Settings

UPLOAD_RE = re.compile(r"^upload-[0-9a-f]{16}$")
IMPORT_RE = re.compile(r"^import-[0-9a-f]{16}$")
UPLOAD_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".parquet")


def default_screen_key(settings: Settings) -> str:
    return "config" if settings.screen else "demo"


def resolve_screen_path(key: str, settings: Settings) -> Path:
    """The file behind a screen key; raises ``SpecletError`` for unknown or disallowed keys."""
    key = (key or "").strip()
    if key == "demo":
        return ensure_demo_screen(settings.data_dir)
    if key == "config":
        if not settings.screen:
            raise SpecletError("no screen configured: set SPECLET_SCREEN to a screen table file")
        return Path(settings.screen).expanduser()
    if UPLOAD_RE.fullmatch(key):
        path = settings.data_dir / "uploads" / f"{key}.parquet"
        if not path.exists():
            raise SpecletError(f"uploaded screen '{key}' is no longer on the server; upload it again")
        return path
    if IMPORT_RE.fullmatch(key):
        path = settings.data_dir / "imports" / f"{key}.parquet"
        if not path.exists():
            raise SpecletError(f"imported screen '{key}' is no longer on the server; import it again on the Data page")
        return path
    if key.startswith("path:"):
        return resolve_allowed_path(key[5:], settings.allowed_data_dirs)
    raise SpecletError(f"unknown screen '{key[:60]}'; choose the demo, an upload or an allowed server file")


UPLOAD_NAME_SUFFIX = ".name"  # beside ``upload-<hash>.parquet``: the uploaded file's original name, one line
UPLOAD_NAME_MAX = 120


def upload_name_for(table: Path | str) -> str | None:
    """The original file name recorded beside an uploaded table (``…/uploads/upload-<hash>.parquet``), or None."""
    table = Path(table)
    if not UPLOAD_RE.fullmatch(table.name.split(".")[0]):
        return None
    try:
        text = table.with_name(table.name.split(".")[0] + UPLOAD_NAME_SUFFIX).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return _clean_name(text) or None


def _clean_name(name: str) -> str:
    """A file name fit for a label: no folders, no control characters, one line, bounded length."""
    base = Path(str(name).replace("\\", "/")).name
    return "".join(ch for ch in base if ch.isprintable()).strip()[:UPLOAD_NAME_MAX]


def describe_screen_key(key: str, settings: Settings | None = None) -> str:
    """The screen's display name; an upload by its original file name when ``settings`` locate the uploads."""
    if key == "demo":
        return "Demo screen (synthetic, with known truth)"
    if key == "config":
        return "Configured screen (SPECLET_SCREEN)"
    if UPLOAD_RE.fullmatch(key) and settings is not None:
        name = upload_name_for(settings.data_dir / "uploads" / f"{key}.parquet")
        if name:
            return f"Uploaded table {name}"
    if key.startswith("upload-"):
        return f"Uploaded table ({key})"
    if key.startswith("import-"):
        return f"Imported DepMap screen ({key})"
    if key.startswith("path:"):
        return f"Server file {Path(key[5:]).name}"
    return key


def save_upload(filename: str, content: bytes, settings: Settings) -> tuple[str, Screen]:
    """Validate an uploaded table and keep it as Parquet; returns its screen key and the screen.

    Nothing is executed or unpickled: the bytes are parsed as CSV/TSV text or Parquet only, in a child process
    with memory and time limits (``speclet_core.data.bounded``). A table that fails validation raises
    ``DataValidationError`` naming ``filename`` and leaves nothing behind.
    """
    if settings.read_only or not settings.allow_uploads:
        raise SpecletError("uploads are switched off on this server (SPECLET_ALLOW_UPLOADS / SPECLET_READ_ONLY)")
    limit = settings.upload_limit_mb * 1024 * 1024
    if len(content) > limit:
        raise DataReadError(
            f"{filename}: {len(content) / 2**20:.1f} MiB is over the upload limit of {settings.upload_limit_mb} MiB"
        )
    name = Path(filename or "upload.csv").name.lower()
    if not name.endswith(UPLOAD_SUFFIXES):
        raise DataReadError(f"{filename}: expected a .csv, .tsv, .csv.gz, .tsv.gz or .parquet file")
    uploads = settings.data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    suffix = next(s for s in sorted(UPLOAD_SUFFIXES, key=len, reverse=True) if name.endswith(s))
    screen = load_upload_bounded(content, filename, suffix, settings)  # a child process, bounded in memory and time
    key = "upload-" + hashlib.sha256(content).hexdigest()[:16]
    target = uploads / f"{key}.parquet"
    if not target.exists():
        with tempfile.TemporaryDirectory(dir=uploads) as tmp:
            staged = Path(tmp) / "clean.parquet"
            screen.data.to_parquet(staged, index=False)
            with open(staged, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(staged, target)
    _record_upload_name(uploads / f"{key}{UPLOAD_NAME_SUFFIX}", filename)
    return key, screen


def _record_upload_name(path: Path, filename: str) -> None:
    """Write the upload's original name beside it (atomically), for every session's labels; the latest name of
    identical bytes wins. A name that cannot be written leaves the hash-based label (never fails the upload)."""
    name = _clean_name(filename)
    if not name:
        return
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        staged.write_text(name + "\n", encoding="utf-8")
        os.replace(staged, path)
    except OSError:
        staged.unlink(missing_ok=True)
