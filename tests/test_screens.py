from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from speclet_core.data import load_screen
from speclet_core.errors import DataReadError, DataValidationError, SpecletError
from speclet_core.screens import resolve_screen_path, save_upload
from speclet_core.settings import Settings


def test_upload_validated_and_kept_as_parquet(tmp_path: Path, tiny_table: pd.DataFrame) -> None:
    settings = Settings(data_dir=tmp_path)
    key, screen = save_upload("my screen.csv", tiny_table.to_csv(index=False).encode(), settings)
    assert key.startswith("upload-") and len(screen.data) == 6
    path = resolve_screen_path(key, settings)
    assert path.suffix == ".parquet" and len(load_screen(path).data) == 6
    # the same bytes give the same key
    assert save_upload("again.csv", tiny_table.to_csv(index=False).encode(), settings)[0] == key


def test_bad_upload_leaves_nothing(tmp_path: Path, tiny_table: pd.DataFrame) -> None:
    settings = Settings(data_dir=tmp_path)
    bad = tiny_table.drop(columns=["lfc"]).to_csv(index=False).encode()
    with pytest.raises(DataValidationError, match="missing required column"):
        save_upload("bad.csv", bad, settings)
    assert list((tmp_path / "uploads").iterdir()) == []
    with pytest.raises(DataReadError, match="upload limit"):
        save_upload("big.csv", b"x" * (2 * 2**20), Settings(data_dir=tmp_path, upload_limit_mb=1))
    with pytest.raises(DataReadError, match="expected a .csv"):
        save_upload("evil.pkl", b"\x80\x04", settings)
    with pytest.raises(SpecletError, match="switched off"):
        save_upload("a.csv", b"", Settings(data_dir=tmp_path, read_only=True))


def test_keys_never_reach_outside(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    for key in ["upload-../../etc", "../x", "path:/etc/passwd", "upload-0123456789abcdef"]:
        with pytest.raises(SpecletError):
            resolve_screen_path(key, settings)
    assert resolve_screen_path("demo", settings).exists()
