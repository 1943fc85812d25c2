"""Headless Chromium: every results page at 1400 × 1000, and at 1280 × 720 in presentation mode (``?present=1``).

Saves ``tests/e2e/screenshots/<page>.png`` and ``<page>-present.png`` (gitignored: look at them) and
measures what a projector audience needs: axis labels ≥ 16 px and titles ≥ 20 px in the rendered SVG,
body text ≥ 18 px, tables that need no horizontal scrolling, every figure carrying its fit id, and
``/home`` opening Home rather than "Page not found".
"""

from __future__ import annotations

from pathlib import Path

import pytest
from serving import SHOTS, launch, needs_chromium
from test_browser import served_app  # noqa: F401  # the served app fixture, shared with the page tour

RESULT_PAGES = ["diagnostics", "ppc", "forest", "heatmap", "rankings", "covariates", "compare"]
CHART_PAGES = {"diagnostics", "ppc", "forest", "heatmap", "rankings"}  # the e2e fit draws charts on these

pytestmark = [pytest.mark.e2e, needs_chromium]

MEASURE = """() => {
  const px = (el) => parseFloat(getComputedStyle(el).fontSize || el.getAttribute('font-size') || '0');
  const svgs = [...document.querySelectorAll('[data-testid=stVegaLiteChart] svg.marks')];
  const texts = (sel) => svgs.flatMap(s => [...s.querySelectorAll(sel)]);
  const sizes = (sel) => texts(sel).map(t => parseFloat(t.getAttribute('font-size') || px(t)));
  // tables in an expander ("every gene's numbers") are the full dump, scrolled on purpose: the CSV holds the same
  const tables = [...document.querySelectorAll('[data-testid=stDataFrame]')]
    .filter(t => !t.closest('[data-testid=stExpander]')).map(t => {
    const scroller = t.querySelector('.dvn-scroller') || t;
    return {scroll: scroller.scrollWidth, client: scroller.clientWidth};
  });
  const body = [...document.querySelectorAll('[data-testid=stMain] [data-testid=stMarkdownContainer] p')]
    .map(px);
  return {
    svgs: svgs.length,
    canvases: document.querySelectorAll('[data-testid=stVegaLiteChart] canvas').length,
    axisLabels: sizes('.role-axis-label text'),
    axisTitles: sizes('.role-axis-title text'),
    titles: sizes('.role-title-text text'),
    subtitles: texts('.role-title-subtitle text').map(t => t.textContent),
    tables: tables,
    body: body,
  };
}"""


def _open(page, url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("[data-testid=stMain] h1", timeout=60_000)


def _settle(page, has_chart: bool) -> None:  # type: ignore[no-untyped-def]
    if has_chart:
        page.wait_for_selector("[data-testid=stVegaLiteChart] svg, [data-testid=stVegaLiteChart] canvas",
                               timeout=60_000)
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=60_000)
    page.wait_for_timeout(1200)


def _shoot_whole(page, el, path: Path, viewport: dict) -> None:  # type: ignore[no-untyped-def]
    """One element's screenshot, whole: the main area scrolls inside the window, so an element taller than the
    window would come out cut; the window grows to hold it for the shot and returns to its size afterwards."""
    box = el.bounding_box() or {"height": 0}
    if box["height"] + 120 > viewport["height"]:
        page.set_viewport_size({"width": viewport["width"], "height": int(box["height"]) + 240})
        page.wait_for_timeout(600)  # the chart redraws at the new size
    el.scroll_into_view_if_needed(timeout=10_000)
    el.screenshot(path=str(path), timeout=10_000)
    page.set_viewport_size(viewport)


def test_results_pages_on_a_projector(served_app: tuple[str, str]) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    url, fit_id = served_app
    SHOTS.mkdir(exist_ok=True)
    problems: list[str] = []
    measured: dict[str, dict] = {}
    with sync_playwright() as pw:
        browser = launch(pw)
        for mode, viewport, query in (("normal", {"width": 1400, "height": 1000}, ""),
                                      ("present", {"width": 1280, "height": 720}, "&present=1")):
            page = browser.new_page(viewport=viewport)
            for name in RESULT_PAGES:
                _open(page, f"{url}/{name}?fit={fit_id}{query}")
                _settle(page, name in CHART_PAGES)
                suffix = "" if mode == "normal" else "-present"
                page.screenshot(path=str(SHOTS / f"{name}{suffix}.png"), full_page=True)
                # the main area scrolls inside the window: each chart and table is shot on its own as well
                for i, el in enumerate(page.locator("[data-testid=stVegaLiteChart]:visible, "
                                                    "[data-testid=stDataFrame]:visible").all()[:8]):
                    _shoot_whole(page, el, SHOTS / f"{name}{suffix}-{i}.png", viewport)
                m = page.evaluate(MEASURE)
                measured[f"{name}{suffix}"] = m
                where = f"{name} ({mode})"
                if page.locator("[data-testid=stException]").count():
                    problems.append(f"{where}: shows an exception")
                for t in m["tables"]:
                    if t["scroll"] > t["client"] + 2:
                        problems.append(f"{where}: a table is cut ({t['scroll']} px of columns in {t['client']} px)")
                if name in CHART_PAGES:
                    if not m["svgs"] and not m["canvases"]:
                        problems.append(f"{where}: no chart drawn")
                    # charts of more than ~2,000 marks are drawn on a canvas, whose text cannot be read back
                    if m["svgs"] and not any(f"fit {fit_id[:12]}" in s for s in m["subtitles"]):
                        problems.append(f"{where}: no figure names its fit ({m['subtitles'][:2]})")
                if mode == "present":
                    if m["axisLabels"] and min(m["axisLabels"]) < 16:
                        problems.append(f"{where}: axis labels of {min(m['axisLabels'])} px (< 16)")
                    if m["titles"] and min(m["titles"]) < 20:
                        problems.append(f"{where}: chart titles of {min(m['titles'])} px (< 20)")
                    if m["body"] and min(m["body"]) < 18:
                        problems.append(f"{where}: page text of {min(m['body'])} px (< 18)")
                    if name in CHART_PAGES and m["svgs"] and not m["axisLabels"]:
                        problems.append(f"{where}: no axis labels found to measure")
            page.close()
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        _open(page, f"{url}/fit?fit={fit_id}&present=1&model=sgrna_gene_lineage")  # the flagship's equation, graph
        _settle(page, False)
        for i, el in enumerate(page.locator(".katex-display:visible, [data-testid=stGraphVizChart]:visible").all()[:3]):
            _shoot_whole(page, el, SHOTS / f"fit-present-{i}.png", page.viewport_size)
        cut = page.evaluate("() => [...document.querySelectorAll('.katex-display')].filter(k => "
                            "getComputedStyle(k).overflowX !== 'auto' && k.scrollWidth > k.clientWidth + 2).length")
        if cut:
            problems.append(f"fit (present): {cut} equation(s) cut off")
        _open(page, f"{url}/home?fit={fit_id}")
        _settle(page, False)
        page.screenshot(path=str(SHOTS / "home-alias.png"), full_page=True)
        if page.get_by_text("Page not found").count():
            problems.append("/home: Streamlit says 'Page not found'")
        browser.close()
    (SHOTS / "measured.txt").write_text("\n".join(f"{k}: {v}" for k, v in measured.items()))
    assert not problems, "\n".join(problems)
