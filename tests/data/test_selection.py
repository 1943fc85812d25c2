"""Choosing genes, lineages and cell lines (data.selection) and the content fingerprint (data.fingerprint)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from speclet_core.data.screen import load_screen, screen_from_frame
from speclet_core.data.selection import select_screen
from speclet_core.errors import SelectionError

# --------------------------------------------------------------------------- selection & fingerprint


def test_selection_categories_sorted_and_indices(tiny_screen) -> None:  # type: ignore[no-untyped-def]
    screen = screen_from_frame(tiny_screen.data, "tiny")
    sel = select_screen(screen, genes=list(reversed(screen.genes[:3])), lineages="all")
    assert sel.genes == tuple(sorted(screen.genes[:3]))
    assert list(sel.data["hugo_symbol"].cat.categories) == list(sel.genes)
    g = sel.index("hugo_symbol")
    assert g.min() == 0 and g.max() == len(sel.genes) - 1
    # every sgRNA's gene index agrees with the rows
    s = sel.index("sgrna")
    np.testing.assert_array_equal(sel.sgrna_gene[s], g)
    c = sel.index("depmap_id")
    np.testing.assert_array_equal(sel.cell_line_lineage[c], sel.index("lineage"))


def test_selection_unknown_labels_suggest_close_matches(tiny_screen) -> None:  # type: ignore[no-untyped-def]
    screen = screen_from_frame(tiny_screen.data, "tiny")
    with pytest.raises(SelectionError, match=r"'KRASS' \(did you mean KRAS"):
        select_screen(screen, genes=["KRASS"])
    sel = select_screen(screen, lineages=[screen.lineages[0].upper()])  # case-insensitive lineage
    assert sel.lineages == (screen.lineages[0],)


def test_selection_empty_intersection_is_clear(tiny_table: pd.DataFrame) -> None:
    # KRAS only screened in colorectal lines here: asking for KRAS in skin selects nothing
    df = tiny_table[~((tiny_table.hugo_symbol == "KRAS") & (tiny_table.lineage == "skin"))]
    screen = screen_from_frame(df)
    with pytest.raises(SelectionError, match="no readings"):
        select_screen(screen, genes=["KRAS"], lineages=["skin"])
    with pytest.raises(SelectionError, match="1 lineage not in the screen: 'lung'"):
        select_screen(screen, lineages=["lung"])


def test_fingerprint_ignores_row_order_and_extra_columns(tiny_screen) -> None:  # type: ignore[no-untyped-def]
    base = select_screen(screen_from_frame(tiny_screen.data)).fingerprint
    shuffled = tiny_screen.data.sample(frac=1.0, random_state=3).reset_index(drop=True)
    shuffled["note"] = "extra column"
    assert select_screen(screen_from_frame(shuffled)).fingerprint == base


def test_fingerprint_changes_with_one_reading(tiny_screen) -> None:  # type: ignore[no-untyped-def]
    base = select_screen(screen_from_frame(tiny_screen.data)).fingerprint
    changed = tiny_screen.data.copy()
    changed.loc[17, "lfc"] += 1e-9
    assert select_screen(screen_from_frame(changed)).fingerprint != base
    relabelled = tiny_screen.data.copy()
    relabelled.loc[0, "replicate_id"] = "other"
    assert select_screen(screen_from_frame(relabelled)).fingerprint != base


def test_fingerprint_same_across_file_formats(tmp_path: Path, tiny_screen) -> None:  # type: ignore[no-untyped-def]
    prints = set()
    for suffix in (".csv", ".parquet", ".tsv.gz"):
        path = tmp_path / f"s{suffix}"
        if suffix == ".parquet":
            tiny_screen.data.to_parquet(path)
        else:
            tiny_screen.data.to_csv(path, sep="\t" if "tsv" in suffix else ",", index=False)
        prints.add(select_screen(load_screen(path)).fingerprint)
    assert len(prints) == 1


def test_fingerprint_is_a_known_constant_for_the_tiny_table(tiny_table: pd.DataFrame) -> None:
    """Guards against accidental changes of the scheme (which would orphan every stored fit)."""
    fp = select_screen(screen_from_frame(tiny_table)).fingerprint
    assert fp == select_screen(screen_from_frame(tiny_table.iloc[::-1])).fingerprint
    assert len(fp) == 64 and int(fp, 16) >= 0


@pytest.mark.parametrize("everything", [None, "all", "ALL", "*", "", ["all"], ["*"]])
def test_every_spelling_of_all_selects_everything(tiny_screen, everything) -> None:  # type: ignore[no-untyped-def]
    screen = screen_from_frame(tiny_screen.data)
    sel = select_screen(screen, genes=everything, lineages=everything, cell_lines=everything)
    assert (sel.genes, sel.lineages, sel.cell_lines) == (screen.genes, screen.lineages, screen.cell_lines)
    assert sel.requested == {"genes": "all", "lineages": "all", "cell_lines": "all"}
    assert sel.fingerprint == select_screen(screen).fingerprint


@pytest.mark.parametrize(("field", "what"), [("genes", "gene"), ("lineages", "lineage"), ("cell_lines", "cell line")])
@pytest.mark.parametrize("nothing", [[], ",", ("", " ")])
def test_an_empty_choice_is_refused_not_taken_as_all(tiny_screen, field, what, nothing) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SelectionError, match=f"no {what}s selected; pick at least one {what}"):
        select_screen(screen_from_frame(tiny_screen.data), **{field: nothing})
