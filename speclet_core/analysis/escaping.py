"""The two rules that keep user-derived text inert where it is interpreted: Markdown on the pages, formulas in CSV.

Gene, cell-line and lineage names, screen keys, file names and error messages that quote them come from
whoever made the table or the link. Streamlit renders Markdown in ``st.markdown``, ``st.caption``,
``st.error`` and friends (and in widget labels), so ``[x](http://e)`` would become a link and
``![t](http://host/beacon.png)`` an image the browser fetches; a spreadsheet evaluates a CSV cell that starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a formula.

- ``escape_markdown``: every user-derived string, before it joins Markdown (the pages, and ``fitview``'s
  caption); ``code_span`` for one shown as inline code. The sentences of ``sentences`` and ``compare`` are
  plain text (charts show them in tooltips too): the pages escape them whole (``pages.widgets.bullet_list``).
- ``csv_text``: every CSV export (the pages' download buttons, ``speclet rank --out``); text cells (and
  headers) that could start a formula get a leading ``'``, numbers stay numbers.

These live in ``analysis`` (not in the loose top modules, and not in ``labels``, whose one job is matching
labels a person typed): the sentences here need the Markdown rule, and the CLI and the pages above use both.
"""

from __future__ import annotations

import re

import pandas as pd

# A backslash before ASCII punctuation is a CommonMark escape that renders as the character itself. Escaped:
# - anywhere: what opens or closes inline markup: links and images ([ ]), code (`), emphasis (*), strikethrough (~),
#   LaTeX ($), tables (|), entities (&) and the backslash itself; Streamlit's ``:red[…]`` directives need a [;
# - ``_`` where it can emphasise (not inside a word: ``hugo_symbol`` stays as it is);
# - ``<`` where it could open a tag or an autolink (``<http://…>``), not in ``99 < 100``;
# - what GFM turns into links without brackets: ``://`` (``http\://``), ``www.`` (``www\.``) and ``@`` (e-mail);
# - at the start of the text (which may start a line or a list item): ``- + # > =`` and ``1.`` / ``1)``.
# Line breaks become spaces, so nothing else can start a block. What stays as typed: ( ) ! . : - and the rest.
_ANYWHERE = re.compile(r"([\\`*\[\]~$|&])")
_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
_AUTOLINK = re.compile(r":(?=//)|(?<=[Ww][Ww][Ww])\.|@")
_BLOCK_START = re.compile(r"^(\s*)([-+#>=])")
_NUMBERED = re.compile(r"^(\s*\d{1,9})([.)])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A cell that is a plain decimal number (``-1.2``, ``+3e-5``) is a number to a spreadsheet, never a formula.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def escape_markdown(text: object) -> str:
    """``text`` as Markdown that renders exactly as the characters it holds (no link, image, emphasis, …).

    Line breaks become spaces, so the text cannot start a heading, a list or a new paragraph.

    >>> print(escape_markdown("![t](http://host/beacon.png)"))
    !\\[t\\](http\\://host/beacon.png)
    >>> print(escape_markdown("HLA-A, hugo_symbol: 99 < 100"))
    HLA-A, hugo_symbol: 99 < 100
    """
    out = _ANYWHERE.sub(r"\\\1", _LINE_BREAKS.sub(" ", str(text)))
    out = _UNDERSCORE.sub(r"\\_", out)
    out = _TAG_OPEN.sub(r"\\<", out)
    out = _AUTOLINK.sub(lambda m: "\\" + m.group(0), out)
    if _NUMBERED.match(out):
        return _NUMBERED.sub(r"\1\\\2", out, count=1)
    return _BLOCK_START.sub(r"\1\\\2", out, count=1)


def code_span(text: object) -> str:
    """``text`` as inline code (nothing inside a code span is Markdown); escaped text when it holds a backtick."""
    value = _LINE_BREAKS.sub(" ", str(text))
    return f"`{value}`" if "`" not in value and value.strip() else escape_markdown(value)


def neutralise_cell(value: object) -> object:
    """A text cell that a spreadsheet would read as a formula, prefixed with ``'``; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutralise_cells(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` whose text cells and column names cannot start a formula (numeric columns untouched)."""
    columns = {}
    for i in range(table.shape[1]):  # by position: column names may repeat
        values = table.iloc[:, i]
        if not (pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)):
            if isinstance(values.dtype, pd.CategoricalDtype):
                values = values.astype(object)
            values = values.map(neutralise_cell, na_action="ignore")
        columns[i] = values
    out = pd.DataFrame(columns, index=table.index)
    out.columns = pd.Index([neutralise_cell(c) for c in table.columns])
    out.attrs = dict(table.attrs)
    return out


def csv_text(table: pd.DataFrame, *, float_format: str | None = None) -> str:
    """The CSV of ``table`` (no index) as every export writes it: formula-looking text cells neutralised."""
    return str(neutralise_cells(table).to_csv(index=False, float_format=float_format))
