"""Headless Chromium against the served app: every page loads, draws its charts, shows no error.

Saves one PNG per page in tests/e2e/screenshots/ (look at them: would a biologist understand the page?).
Needs Debian's ``chromium`` (``.ci/run`` installs it); skips with a reason when it is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"),
]

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served_app(stored_demo_fit: tuple[Path, str]) -> Iterator[tuple[str, str]]:
    data_dir, fit_id = stored_demo_fit
    port = _free_port()
    env = {**os.environ, "SPECLET_DATA_DIR": str(data_dir), "SPECLET_PORT": str(port)}
    log = open(data_dir / "serve-e2e.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "speclet_core", "serve"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"the app did not answer /_stcore/health within 90 s; see {data_dir / 'serve-e2e.log'}")
        yield url, fit_id
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_every_page_renders(served_app: tuple[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    url, fit_id = served_app
    SHOTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
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
