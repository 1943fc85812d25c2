"""Hostile names and links render as text on every page, and leave the browser downloads as inert CSV cells.

A stored fit's genes are named like Markdown links and images (and a spreadsheet formula); a shared link carries a
fake "session expired" link as its screen. Every Markdown-rendering element of each page (text, captions, alerts,
headings, widget and expander labels) is rendered with a CommonMark renderer: it must hold no link and no image,
and the names must show as the characters they are.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from markdown_it import MarkdownIt
from store_helpers import DIAGNOSTICS, ROLES, TIMINGS, make_idata
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import AlertBase, Expander, HeadingBase, Markdown, Tab, Widget

from model_store import ModelStore
from speclet_core.analysis.escaping import escape_markdown
from speclet_core.diagnostics.verdict import judge
from speclet_core.records import FitRequest, SamplerSettings, Selection

BEACON = "![t](http://host/beacon.png)"
LINK = "[x](http://e)"
FORMULA = "=cmd|' /C calc'!A0"
GENES = [BEACON, LINK, FORMULA, "-foo", "KRAS", "HLA-A", "BRAF"]
FAKE_LINK = "[Session expired](http://evil)"
PAGES = ["home", "data", "fit", "diagnostics", "forest", "heatmap", "rankings", "covariates", "ppc", "compare"]
RENDER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


@pytest.fixture
def hostile_fit(data_dir: Path) -> str:
    """A stored fit whose gene names are Markdown and a formula; its verdict quotes one of them."""
    numbers = {**DIAGNOSTICS, "max_rhat": 1.02, "max_rhat_at": f"gene_effect[{BEACON}]"}
    judged = judge(numbers, total_draws=100)
    diagnostics = {**numbers, "verdict": judged.level.value, "reasons": list(judged.reasons)}
    request = FitRequest(data_path=f"/data/{LINK}.csv", data_fingerprint="d" * 64,
                         selection=Selection(genes=GENES, lineages="all"), model="hierarchical", model_version="1.0",
                         sampler=SamplerSettings(chains=2, tune=100, draws=50), seed=5)
    ModelStore(data_dir / "fits").put(request.fit_id, make_idata(seed=5, genes=GENES),
                                      request=request.model_dump(mode="json"), roles=ROLES, diagnostics=diagnostics,
                                      timings=TIMINGS)
    return request.fit_id


def _markdown_sources(at: AppTest) -> Iterator[str]:
    """The Markdown source of every element that Streamlit renders as Markdown (main area and sidebar)."""
    for node in at._tree:
        if isinstance(node, Markdown | AlertBase | HeadingBase):
            yield str(node.value)
        elif isinstance(node, Expander | Tab):
            yield str(node.label)
        elif isinstance(node, Widget) and getattr(node, "label", None):
            yield str(node.label)


def _assert_inert(at: AppTest) -> str:
    """No Markdown source renders a link or an image; returns every source joined (for the caller's checks)."""
    sources = list(_markdown_sources(at))
    for source in sources:
        rendered = RENDER.render(source)
        assert "<a " not in rendered and "<img" not in rendered, source
        for raw in ("http://", "!["):  # GFM autolinks too: an escaped name leaves none of these
            assert raw not in source, source
        assert not re.search(r"(?<!\\)\]\(", source), source
    return "\n".join(sources)


def test_hostile_gene_names_render_as_text_on_every_page(hostile_fit: str,
                                                          open_page: Callable[..., AppTest]) -> None:
    seen = []
    for page in PAGES:
        at = open_page(page, fit=hostile_fit)
        seen.append(_assert_inert(at))
    text = "\n".join(seen)
    # the names are shown, escaped (they render as the characters they are)
    assert escape_markdown(BEACON) in text and escape_markdown(LINK) in text
    shown = html.unescape(re.sub(r"<[^>]+>", "", RENDER.render(escape_markdown(BEACON))))
    assert shown.strip() == BEACON
    # the result pages' caption names the genes; the Diagnostics verdict quotes the parameter element
    captions = [line for line in text.splitlines() if "model **hierarchical** (v1\\.0) · genes" in line]
    assert len(captions) >= 7  # Diagnostics and every result page
    assert all(f"genes {escape_markdown(f'7: {BEACON}, {LINK}')}" in c for c in captions), captions
    assert f"gene_effect\\[{escape_markdown(BEACON)}\\]" in text


def test_a_fake_link_in_the_screen_parameter_shows_as_text(open_page: Callable[..., AppTest]) -> None:
    at = open_page("home", screen=FAKE_LINK)
    text = _assert_inert(at)
    sidebar = [c.value for c in at.sidebar.caption]
    assert f"**Screen:** {escape_markdown(FAKE_LINK)}" in sidebar
    assert [e.value for e in at.error] and escape_markdown(FAKE_LINK) in at.error[0].value
    assert "http\\://evil" in text


def test_a_fake_link_in_the_fit_parameter_shows_as_text(open_page: Callable[..., AppTest]) -> None:
    at = open_page("rankings", fit=FAKE_LINK)
    _assert_inert(at)
    assert [e.value for e in at.error]  # the store's "invalid id" message, escaped


def test_browser_downloads_are_inert_csv(hostile_fit: str, open_page: Callable[..., AppTest],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The bytes each download button serves: formula-looking names start with ', numbers are unchanged."""
    served: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def capture(self: MemoryMediaFileStorage, path_or_data: str | bytes, *args: object, **kwargs: object) -> str:
        file_id = original(self, path_or_data, *args, **kwargs)  # type: ignore[arg-type]
        if isinstance(path_or_data, bytes):
            served[self.get_url(file_id)] = path_or_data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", capture)
    at = open_page("rankings", fit=hostile_fit)
    buttons = {b.key: b for b in at.get("download_button")}
    assert {"csv-rank-chart", "csv-contrast"} <= set(buttons)
    for key in ("csv-rank-chart", "csv-contrast"):
        data = served[buttons[key].proto.url].decode()
        table = pd.read_csv(io.StringIO(data), dtype={"gene": str})
        assert sorted(table["gene"]) == sorted(["'" + FORMULA, "'-foo", BEACON, LINK, "KRAS", "HLA-A", "BRAF"])
        assert not [ln for ln in data.splitlines() if ln.startswith(("=", "+", "@", "-f"))]
        numbers = table.select_dtypes("number")
        assert numbers.shape[1] >= 5 and (numbers.to_numpy() < 0).any()  # negative effects stay numbers
    ranking = pd.read_csv(io.StringIO(served[buttons["csv-rank-chart"].proto.url].decode()))
    assert ranking["expected_rank"].between(1, len(GENES)).all()
