"""AppTest fixtures: a data dir with stored fits, fresh Streamlit caches per test."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model_store"))

from store_helpers import DIAGNOSTICS, make_idata, put_example

from model_store import ModelStore
from speclet_core.diagnostics.verdict import judge

ROOT = Path(__file__).resolve().parents[2]


class _NavigationPagesManager(PagesManager):
    """AppTest resets Streamlit to its legacy pages/ mode before every run, in which a switched-to page runs
    alone, without app.py. The served app starts in st.navigation mode (run_app.py); make AppTest do the same."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        PagesManager.uses_pages_directory = False


@pytest.fixture(autouse=True)
def _navigation_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_test_module, "PagesManager", _NavigationPagesManager)


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def data_dir(_isolated_data_dir: Path) -> Path:
    return _isolated_data_dir


@pytest.fixture
def fake_fit(data_dir: Path) -> str:
    """A small stored posterior (no PyMC) that converged."""
    fit_id, _ = put_example(ModelStore(data_dir / "fits"), seed=1)
    return fit_id


@pytest.fixture
def divergent_fit(data_dir: Path) -> str:
    """A stored posterior whose sampler reported 25 divergences."""
    numbers = {**DIAGNOSTICS, "divergences": 25}
    judged = judge(numbers, total_draws=2 * 50)  # make_idata: 2 chains of 50 draws
    diagnostics = {**numbers, "verdict": judged.level.value, "reasons": list(judged.reasons)}
    fit_id, _ = put_example(ModelStore(data_dir / "fits"), seed=2, idata=make_idata(seed=2), diagnostics=diagnostics)
    return fit_id


@pytest.fixture
def open_page() -> Callable[..., AppTest]:
    """Run ``app.py`` on one page with the given query parameters (as a shared link would)."""

    def _open(page: str, **params: str | list[str]) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        for key, value in params.items():
            at.query_params[key] = value
        at.switch_page(f"pages/{page}.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return _open
