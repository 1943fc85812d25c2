"""Headless Chromium on the Biomarker page of a real stored gene_biomarker fit: it draws its chart, names the
planted gene in plain words and shows no error. Saves tests/e2e/screenshots/biomarker.png (look at it)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))

from test_biomarker_page import PLANTED, store_biomarker_fit

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_biomarker_page_in_a_browser(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    fit_id = store_biomarker_fit(data_dir)
    port = _free_port()
    env = {**os.environ, "SPECLET_DATA_DIR": str(data_dir), "SPECLET_PORT": str(port)}
    log = open(data_dir / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "speclet_core", "serve"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
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
            pytest.fail(f"the app did not answer within 90 s; see {data_dir / 'serve.log'}")
        SHOTS.mkdir(exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                      "--disable-background-networking", "--disable-component-update", "--no-first-run"],
            )
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
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
