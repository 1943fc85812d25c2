from __future__ import annotations

from pathlib import Path

import pytest

from speclet_core.data.paths import PathNotAllowedError, resolve_allowed_path


def test_confined_to_allowed_folders(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "screen.csv").write_text("x")
    secret = tmp_path / "secret.csv"
    secret.write_text("x")
    (allowed / "link.csv").symlink_to(secret)
    assert resolve_allowed_path("screen.csv", [allowed]) == (allowed / "screen.csv").resolve()
    assert resolve_allowed_path(str(allowed / "screen.csv"), [allowed]).name == "screen.csv"
    for bad in ["../secret.csv", str(secret), "link.csv", "/etc/passwd", "a\x00b", ""]:
        with pytest.raises(PathNotAllowedError):
            resolve_allowed_path(bad, [allowed])
    with pytest.raises(PathNotAllowedError, match="switched off"):
        resolve_allowed_path("screen.csv", [])
    with pytest.raises(PathNotAllowedError, match="no such file"):
        resolve_allowed_path("missing.csv", [allowed])
