from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from speclet_core.data.screen import load_screen
from speclet_core.data.sources import resolve_screen_path, save_upload
from speclet_core.errors import DataReadError, DataValidationError, SpecletError
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


def test_import_kept_under_an_import_key_or_a_path_key(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from depmap_releases import write_current_release

    from speclet_core.data.sources import describe_screen_key
    from speclet_core.depmap.importer import import_depmap
    from speclet_core.depmap.output import read_import_metadata, save_import

    settings = Settings(data_dir=tmp_path / "data")
    result = import_depmap(write_current_release(tmp_path / "rel"), "KRAS,BRAF", "Skin,Bowel", settings=settings)
    key, path = save_import(result, settings)
    assert re.fullmatch(r"import-[0-9a-f]{16}", key) and path == tmp_path / "data" / "imports" / f"{key}.parquet"
    assert resolve_screen_path(key, settings) == path
    pd.testing.assert_frame_equal(load_screen(path).data.reset_index(drop=True), result.data, check_dtype=False)
    assert read_import_metadata(path)["counts"]["rows"] == len(result.data) == 10
    assert describe_screen_key(key) == f"Imported DepMap screen ({key})"
    assert save_import(result, settings)[0] == key  # same readings, same key
    other = import_depmap(tmp_path / "rel", "KRAS", "Skin", settings=settings)
    assert save_import(other, settings)[0] != key

    # the imports folder inside an allowed folder: a plain server-path key
    inside = Settings(data_dir=tmp_path / "data", allowed_data_dirs=(tmp_path,))
    path_key, same = save_import(result, inside)
    assert path_key == f"path:{path.resolve()}" and same == path
    assert resolve_screen_path(path_key, inside) == path.resolve()

    path.unlink()
    with pytest.raises(SpecletError, match="no longer on the server; import it again"):
        resolve_screen_path(key, settings)
    for bad in ["import-../../x", "import-0123456789ABCDEF", "import-0123"]:
        with pytest.raises(SpecletError, match="unknown screen"):
            resolve_screen_path(bad, settings)
    with pytest.raises(SpecletError, match="read-only"):
        save_import(result, Settings(data_dir=tmp_path / "data", read_only=True))
