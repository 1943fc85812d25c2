"""Headless Chromium on the Gene page of a real stored fit (``gene_fit_helpers``: every level, planted reference
genes and a weak guide): it draws its charts, says in plain words that the weak guide disagrees and that the
reference genes separate, and shows no error. Saves tests/e2e/screenshots/gene.png at 1400 × 1000 (look at it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from serving import SHOTS, launch, needs_chromium, served

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))

from gene_fit_helpers import DISAGREEING_GENE, stored_gene_fit

pytestmark = [pytest.mark.e2e, pytest.mark.slow, needs_chromium]


def test_gene_page_in_a_browser() -> None:
    from playwright.sync_api import sync_playwright

    data_dir, fit_id, weak = stored_gene_fit()
    with served(data_dir) as url, sync_playwright() as pw:
        SHOTS.mkdir(exist_ok=True)
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/gene?fit={fit_id}&gene={DISAGREEING_GENE.lower()}", wait_until="domcontentloaded")
        page.wait_for_selector("[data-testid=stMain] h1", timeout=60_000)
        page.wait_for_selector("[data-testid=stVegaLiteChart] svg, [data-testid=stVegaLiteChart] canvas",
                               timeout=60_000)
        page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=60_000)
        page.wait_for_timeout(800)
        page.screenshot(path=str(SHOTS / "gene.png"))
        page.screenshot(path=str(SHOTS / "gene_full.png"), full_page=True)
        body = page.inner_text("[data-testid=stMain]")
        assert not page.locator("[data-testid=stException]").count(), body[:500]
        browser.close()
    assert f"Knocking out {DISAGREEING_GENE} lowers fitness" in body
    assert f"guide {weak} weakens the gene's effect" in body
    assert "Reference genes behave as expected" in body
