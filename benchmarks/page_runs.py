"""Timed AppTest runs of one dashboard page, shared by the page benchmarks (bench_pages, bench_start_pages)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def use_navigation_mode() -> None:
    """Route every AppTest run through app.py's ``st.navigation``, as the server does (as tests/app/conftest.py)."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import app_test as app_test_module

    class NavigationPagesManager(PagesManager):
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            PagesManager.uses_pages_directory = False

    app_test_module.PagesManager = NavigationPagesManager  # type: ignore[misc]


def time_page(page: str, fit_id: str, params: dict[str, Any] | None = None, *, timeout: int = 300) -> tuple[float, Any]:
    """Seconds one server-side run of ``pages/<page>.py`` takes with ``?fit=fit_id`` (and ``params``), and the AppTest.

    Exits with the page's error when it raised one.
    """
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.query_params["fit"] = fit_id
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.switch_page(f"pages/{page}.py")
    t = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - t
    if at.exception:
        raise SystemExit(f"{page} {params or ''}: {at.exception[0].value}")
    return seconds, at
