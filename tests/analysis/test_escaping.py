"""The two inertness rules: Markdown escaping of user-derived text, and CSV cells that cannot start a formula."""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from markdown_it import MarkdownIt

from speclet_core.analysis.escaping import code_span, csv_text, escape_markdown, neutralise_cell, neutralise_cells

HOSTILE = [
    "![t](http://host/beacon.png)",
    "[x](http://e)",
    "[Session expired - log in again](http://evil.example/login)",
    "<http://evil.example>",
    "<img src=x onerror=alert(1)>",
    "**bold** _it_ ~~gone~~ `code`",
    "# heading",
    "- item",
    "1. item",
    "> quote",
    "a | b\n--|--\n1 | 2",
    "line one\n\n[ref]: http://evil",
    "[ref]",
    "&lt;b&gt; &#91;x&#93;",
    "\\[already\\] escaped",
    "$x^2$",
    ":red[coloured] :material/home: :smile:",
    "=cmd|' /C calc'!A0",
    "HLA-A",
    "C18orf54",
    "_it_ and *it* and __b__",
    "99 < 100 > 98, a_b_c, (x)! 1.5: ok",
    "  3) item",
    "+ item",
    "= setext",
    "<!-- c --> <?x?> </a>",
]
# Every tag CommonMark (with GFM tables and strikethrough) could make out of text, except the one paragraph.
MARKUP = re.compile(r"<(?!/?p>)[a-z]")


def _render(text: str) -> str:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(text)


@pytest.mark.parametrize("text", HOSTILE)
def test_escaped_text_renders_as_the_characters_it_holds(text: str) -> None:
    rendered = _render(escape_markdown(text))
    assert not MARKUP.search(rendered), rendered
    shown = html.unescape(re.sub(r"</?p>", "", rendered)).strip()
    assert shown == re.sub(r"\n+", " ", text).strip()


def test_escaping_inside_a_sentence_keeps_the_sentence_markup() -> None:
    rendered = _render(f"Model **{escape_markdown('[x](http://e)')}** is open")
    assert rendered == "<p>Model <strong>[x](http://e)</strong> is open</p>\n"


def test_links_images_and_autolinks_are_broken_in_the_source() -> None:
    """Streamlit's renderer also turns bare URLs (GFM autolink literals) and ``:directives[…]`` into markup;
    escaped, no ``http://``, ``www.``, ``@``, ``![``, unescaped ``](`` or ``:red[`` is left in the source."""
    for text in ("see http://evil.example", "WWW.evil.example", "mail me@evil.example", "![t](http://host/b.png)",
                 ":red[x]", "mailto:me@evil.example"):
        escaped = escape_markdown(text)
        for fragment in ("http://", "www.", "WWW.", "me@", "![", ":red["):
            assert fragment not in escaped
        assert not re.search(r"(?<!\\)\]\(", escaped)
    plain = "KRAS, TP53; why? 50% a/b 'q' \"d\" (HLA-A) hugo_symbol 1.5: 99 < 100 > 98!"
    assert escape_markdown(plain) == plain  # prose and names without markup stay as they are


@pytest.mark.parametrize("text", HOSTILE)
def test_code_spans_show_the_characters_and_never_break_out(text: str) -> None:
    rendered = _render(f"from {code_span(text)} in")
    assert not re.search(r"<(?!/?p>|/?code>)[a-z]", rendered), rendered
    assert html.unescape(re.sub(r"</?(p|code)>", "", rendered)).strip() == f"from {re.sub(chr(10) + '+', ' ', text)} in"


@pytest.mark.parametrize(
    ("cell", "exported"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+HYPERLINK(\"http://e\")", "'+HYPERLINK(\"http://e\")"),
        ("-foo", "'-foo"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("KRAS", "KRAS"),
        ("HLA-A", "HLA-A"),
        ("-1.2", "-1.2"),  # a number written as text is a number to a spreadsheet, not a formula
        ("+3e-5", "+3e-5"),
        ("-1+cmd", "'-1+cmd"),
        (-1.2, -1.2),
        (None, None),
    ],
)
def test_cells_that_could_start_a_formula_get_a_quote(cell: object, exported: object) -> None:
    assert neutralise_cell(cell) == exported


def test_csv_text_neutralises_text_cells_and_headers_and_keeps_numbers() -> None:
    table = pd.DataFrame({
        "gene": pd.Categorical(["=cmd|' /C calc'!A0", "-foo", "KRAS"]),
        "lineage": pd.array(["@skin", "blood", None], dtype="string"),
        "mean": [-1.2, 0.5, -0.25],
        "rank": [1, 2, 3],
        "clear": [True, False, True],
        "=sum(1)": ["a", "b", "c"],
    })
    back = pd.read_csv(io.StringIO(csv_text(table)), keep_default_na=False)
    assert back.columns.tolist() == ["gene", "lineage", "mean", "rank", "clear", "'=sum(1)"]
    assert back["gene"].tolist() == ["'=cmd|' /C calc'!A0", "'-foo", "KRAS"]
    assert back["lineage"].tolist() == ["'@skin", "blood", ""]
    np.testing.assert_array_equal(back["mean"], table["mean"])
    assert back["rank"].tolist() == [1, 2, 3] and back["clear"].tolist() == [True, False, True]
    first_cells = [line.split(",")[0] for line in csv_text(table).splitlines()[1:]]
    assert not [c for c in first_cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    # the input is left as it was, attrs travel with the copy
    table.attrs["versus"] = "lung"
    assert neutralise_cells(table).attrs == {"versus": "lung"}
    assert table["gene"].iloc[0] == "=cmd|' /C calc'!A0"


def test_csv_text_floats_and_repeated_columns() -> None:
    table = pd.DataFrame([[-0.123456789, "-x"]], columns=["v", "v"])
    assert csv_text(table, float_format="%.3g").splitlines() == ["v,v", "-0.123,'-x"]


def test_every_csv_export_goes_through_the_one_rule() -> None:
    """The pages' downloads and ``rank --out`` write CSV only through ``csv_text`` (one rule for each fact)."""
    root = Path(__file__).resolve().parents[2]
    exporters = [*(root / "pages").glob("*.py"), *(root / "speclet_core" / "cli").glob("*.py"), root / "app.py"]
    for path in exporters:
        source = path.read_text()
        assert ".to_csv(" not in source, f"{path.name}: write CSV with speclet_core.analysis.escaping.csv_text"
        if path.name != "widgets.py":  # other downloads are figures (SVG), never tables
            for call in source.split("st.download_button(")[1:]:
                args = call[: call.find("\n\n")]
                assert 'mime="image/svg+xml"' in args and ".csv" not in args, \
                    f"{path.name}: a table download must use pages.widgets.csv_download"
    assert "csv_text(" in (root / "pages" / "widgets.py").read_text()
    assert "csv_text(" in (root / "speclet_core" / "cli" / "rank.py").read_text()
