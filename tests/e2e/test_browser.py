"""Headless Chromium against the served app: every page loads, draws its charts, shows no error.

Saves one PNG per page in tests/e2e/screenshots/ (look at them: would a biologist understand the page?).
Needs Debian's ``chromium`` (``.ci/run`` installs it); skips with a reason when it is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import SHOTS, launch, needs_chromium, served

pytestmark = [pytest.mark.e2e, needs_chromium]

# page url path → does it draw at least one chart for the stored fit?
PAGES = {
    "home": False,
    "data": True,
    "fit": False,
    "diagnostics": True,
    "ppc": True,
    "forest": True,
    "heatmap": True,
    "rankings": True,
    "covariates": False,  # the e2e fit (gene_lineage) has no covariate slope: the page explains that instead
    "compare": False,
}


@pytest.fixture(scope="module")
def served_app(stored_demo_fit: tuple[Path, str]) -> Iterator[tuple[str, str]]:
    data_dir, fit_id = stored_demo_fit
    with served(data_dir, log_name="serve-e2e.log") as url:
        yield url, fit_id


def test_every_page_renders(served_app: tuple[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    url, fit_id = served_app
    SHOTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 3200})
        for path, has_chart in PAGES.items():
            url_path = "" if path == "home" else path  # the default page lives at the root URL
            page.goto(f"{url}/{url_path}?fit={fit_id}", wait_until="domcontentloaded")
            page.wait_for_selector("[data-testid=stAppViewContainer]", timeout=60_000)
            page.wait_for_selector("[data-testid=stMain] h1", timeout=60_000)
            if has_chart:
                try:
                    page.wait_for_selector(
                        "[data-testid=stVegaLiteChart] svg, [data-testid=stVegaLiteChart] canvas", timeout=60_000
                    )
                except Exception:  # recorded below, with the screenshot
                    problems.append(f"{path}: no chart drawn within 60 s")
            # let the script finish running (no spinner) before the screenshot
            page.wait_for_function(
                "() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=60_000
            )
            page.wait_for_timeout(800)
            page.screenshot(path=str(SHOTS / f"{path}.png"), full_page=True)
            if page.get_by_text("Page not found").count():
                problems.append(f"{path}: Streamlit says 'Page not found'")
            if page.locator("[data-testid=stException]").count():
                problems.append(f"{path}: shows an exception: {page.locator('[data-testid=stException]').first.inner_text()[:300]}")
        browser.close()
    assert not problems, "\n".join(problems)
