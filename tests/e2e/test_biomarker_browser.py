"""Headless Chromium on the Biomarker page of a real stored gene_biomarker fit: it draws its chart, names the
planted gene in plain words and shows no error. Saves tests/e2e/screenshots/biomarker.png (look at it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from serving import SHOTS, launch, needs_chromium, served

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))

from test_biomarker_page import PLANTED, store_biomarker_fit

pytestmark = [pytest.mark.e2e, pytest.mark.slow, needs_chromium]


def test_biomarker_page_in_a_browser(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    fit_id = store_biomarker_fit(data_dir)
    with served(data_dir) as url, sync_playwright() as pw:
        SHOTS.mkdir(exist_ok=True)
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        page.goto(f"{url}/biomarker?fit={fit_id}", wait_until="domcontentloaded")
        page.wait_for_selector("[data-testid=stMain] h1", timeout=60_000)
        page.wait_for_selector("[data-testid=stVegaLiteChart] svg, [data-testid=stVegaLiteChart] canvas",
                               timeout=60_000)
        page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=60_000)
        page.wait_for_timeout(800)
        page.screenshot(path=str(SHOTS / "biomarker.png"), full_page=True)
        body = page.inner_text("[data-testid=stMain]")
        assert not page.locator("[data-testid=stException]").count(), body[:500]
        browser.close()
    assert f"{PLANTED} is a stronger dependency in cell lines with is_mutated" in body
    assert "Biomarker-dependent dependencies" in body
