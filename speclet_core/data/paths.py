"""Confine user-given server paths to the allowed data folders (no `..`, no symlink escape)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from speclet_core.errors import SpecletError


class PathNotAllowedError(SpecletError, PermissionError):
    """A path outside the folders the server's administrator allowed."""


def resolve_allowed_path(user_path: str, allowed_dirs: Sequence[Path], *, must_exist: bool = True) -> Path:
    """Resolve ``user_path`` (absolute, or relative to the first allowed folder) inside ``allowed_dirs``.

    Symlinks are resolved before the check, so a link pointing outside is refused.
    """
    if not allowed_dirs:
        raise PathNotAllowedError(
            "opening files by server path is switched off; the administrator can allow folders with "
            "SPECLET_ALLOWED_DATA_DIRS"
        )
    text = (user_path or "").strip()
    if not text or "\x00" in text:
        raise PathNotAllowedError("empty or invalid path; give a file path inside an allowed folder")
    roots = [Path(d).resolve() for d in allowed_dirs]
    candidate = Path(text).expanduser()
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    resolved = candidate.resolve()
    if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
        shown = ", ".join(str(r) for r in roots)
        raise PathNotAllowedError(f"{text}: outside the allowed folders ({shown}); choose a file inside one of them")
    if must_exist and not resolved.exists():
        raise PathNotAllowedError(f"{text}: no such file in the allowed folders")
    return resolved
