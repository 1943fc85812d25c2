"""Files in a DepMap release folder that link outside it are refused (the one path rule of data/paths.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from depmap_releases import write_current_release  # tests/depmap_releases.py

from speclet_core.cli.main import main
from speclet_core.data.paths import PathNotAllowedError
from speclet_core.depmap.release import find_release_files


def _release_with_outside_link(tmp_path: Path, name: str = "Model.csv") -> tuple[Path, Path]:
    allowed = tmp_path / "allowed"
    release = write_current_release(allowed / "release_24q2")
    secret = tmp_path / "outside" / "secret.csv"
    secret.parent.mkdir()
    shutil.move(release / name, secret)
    os.symlink(secret, release / name)
    return release, secret


def test_a_release_file_linking_outside_the_folder_is_refused(tmp_path: Path) -> None:
    release, secret = _release_with_outside_link(tmp_path)
    with pytest.raises(PathNotAllowedError) as info:
        find_release_files(release)
    message = str(info.value)
    assert f"{release / 'Model.csv'}: links to {secret}" in message
    assert "outside the release folder" in message and "copy the file into the folder" in message


def test_a_link_to_a_file_inside_the_release_folder_is_followed(tmp_path: Path) -> None:
    release = write_current_release(tmp_path / "allowed" / "release_24q2")
    (release / "originals").mkdir()
    shutil.move(release / "Model.csv", release / "originals" / "Model.csv")
    os.symlink(release / "originals" / "Model.csv", release / "Model.csv")
    files = find_release_files(release)
    assert files.models == release / "Model.csv"


def test_import_depmap_refuses_the_outside_link_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    release, secret = _release_with_outside_link(tmp_path, "AvanaGuideMap.csv")
    out = tmp_path / "screen.csv"
    code = main(["import-depmap", "--release-dir", str(release), "--genes", "KRAS", "--lineages", "all",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and f"links to {secret}" in err and "Traceback" not in err
    assert not out.exists()
