"""The dashboard's process does not grow on upload bombs or links to them (issue 15 item 2), in AppTest.

AppTest runs the page in this test process, so this process's resident memory is the Streamlit process's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))

from test_bounded import rss_mib, write_gzip_csv_bomb, write_parquet_row_bomb

from speclet_core.data import bounded


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    bounded.clear_cache()


@pytest.fixture
def server_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "screens"
    root.mkdir()
    monkeypatch.setenv("SPECLET_ALLOWED_DATA_DIRS", str(root))
    return root


def _errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


def test_link_to_a_bomb_shows_a_clear_error_once_parsed_and_the_process_does_not_grow(
        open_page: Callable[..., AppTest], server_dir: Path) -> None:
    write_gzip_csv_bomb(server_dir / "big.csv.gz")
    open_page("home")  # warm: the page's own imports and caches
    before, spawned = rss_mib(), bounded.spawn_count()
    for _ in range(3):  # a shared link visited again and again
        at = open_page("home", screen="path:big.csv.gz")
        assert "big.csv.gz: more than 2,000,000 lines below the header" in _errors(at)
        assert str(server_dir) not in _errors(at)
        assert any(b.label == "Go back to the demo screen" for b in at.button)
    assert bounded.spawn_count() == spawned + 1  # read once; the failure is cached by (path, size, mtime)
    assert rss_mib() - before < 40  # the 256 MB of CSV never entered this process


def test_upload_of_bombs_names_the_upload_and_the_process_does_not_grow(open_page: Callable[..., AppTest],
                                                                        tmp_path: Path) -> None:
    bombs = [(write_gzip_csv_bomb(tmp_path / "a.csv.gz"), "Screen (final).csv.gz", "SPECLET_MAX_ROWS"),
             (write_parquet_row_bomb(tmp_path / "b.parquet", rows=10_000_000), "rows.parquet", "more than 2,000,000 rows")]
    at = open_page("home")
    before = rss_mib()
    for path, name, says in bombs:
        at.file_uploader(key="upload").set_value((name, path.read_bytes(), "application/octet-stream")).run()
        next(b for b in at.button if b.label == "Validate and use this table").click().run()
        assert not at.exception
        assert f"{name}: " in _errors(at) and says in _errors(at)
        assert "raw" not in _errors(at) and "tmp" not in _errors(at)
        assert at.query_params.get("screen") in (None, [], "demo", ["demo"])  # the active screen did not change
    assert rss_mib() - before < 40
