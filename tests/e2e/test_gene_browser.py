"""Headless Chromium on the Gene page of a real stored fit (``gene_fit_helpers``: every level, planted reference
genes and a weak guide): it draws its charts, says in plain words that the weak guide disagrees and that the
reference genes separate, and shows no error. Saves tests/e2e/screenshots/gene.png at 1400 × 1000 (look at it)."""

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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))

from gene_fit_helpers import DISAGREEING_GENE, stored_gene_fit

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


def test_gene_page_in_a_browser() -> None:
    from playwright.sync_api import sync_playwright

    data_dir, fit_id, weak = stored_gene_fit()
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
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
