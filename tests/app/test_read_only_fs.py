"""Read-only mode with the data folder on a read-only filesystem (a real read-only bind mount)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from speclet_core.queue.jobs import JobQueue
from speclet_core.settings import Settings


@pytest.fixture
def read_only_data(data_dir: Path, fake_fit: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``data_dir`` (one stored fit, a queue) remounted read-only in place, as ``-v speclet-data:/data:ro``."""
    with JobQueue.from_settings(Settings(data_dir=data_dir)):
        pass  # the queue file exists, as on a server that ran before
    bind = subprocess.run(["mount", "--bind", str(data_dir), str(data_dir)], capture_output=True, text=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount here ({bind.stderr.strip() or 'not root?'})")
    try:
        ro = subprocess.run(["mount", "-o", "remount,ro,bind", str(data_dir)], capture_output=True, text=True)
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only here ({ro.stderr.strip()})")
        with pytest.raises(OSError, match="Read-only file system"):
            (data_dir / "probe").write_text("x")
        monkeypatch.setenv("SPECLET_READ_ONLY", "true")
        yield data_dir
    finally:
        subprocess.run(["umount", "-l", str(data_dir)], check=False)


def test_home_and_results_open_stored_fits_on_a_read_only_data_folder(  # type: ignore[no-untyped-def]
    open_page, read_only_data, fake_fit
) -> None:
    at = open_page("home")
    table = at.dataframe[0].value
    assert list(table["model"]) == ["hierarchical"]  # the stored fit is listed
    assert at.caption and any("synthetic screen" in c.value for c in at.caption)  # the demo screen still opens
    [error] = [e.value for e in at.error]  # one clear message about the queue, saying what to do
    assert f"{read_only_data / 'queue' / 'cache.db'}: the job queue is on a read-only filesystem" in error
    assert "stored fits still open" in error and "without `:ro`" in error
    assert "OSError" not in error and "Errno" not in error
    forest = open_page("forest", fit=fake_fit)
    assert forest.title[0].value == "Forest plot" and forest.get("vega_lite_chart")

