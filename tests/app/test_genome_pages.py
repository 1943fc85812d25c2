"""Result pages with many genes (issue #16 item 6): bounded charts and tables, search-first pickers, worst-first
diagnostics, every "top N of M" caption true.

One stored fit of 1,500 genes × 12 cell lines (model ``sgrna_gene_cell_line``, fake but well-formed draws written
through the real store, ``genome_helpers``), built once for the module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from genome_helpers import put_genome_fit
from streamlit.testing.v1 import AppTest

from model_store import ModelStore
from speclet_core.analysis import ranking, subsets
from speclet_core.diagnostics import verdict

N_GENES, N_CELLS = 1_500, 12
MAX_OPTIONS = subsets.OFFER_ALL_MAX + subsets.SEARCH_LIMIT  # what any picker may send to the browser


@pytest.fixture(scope="module")
def genome_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    data_dir = tmp_path_factory.mktemp("genome-pages")
    return data_dir, put_genome_fit(data_dir, N_GENES, N_CELLS, chains=2, draws=50, seed=3)


@pytest.fixture
def fit_id(genome_dir: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SPECLET_DATA_DIR", str(genome_dir[0]))
    yield genome_dir[1]


@pytest.fixture(scope="module")
def stored(genome_dir: tuple[Path, str]) -> Iterator[object]:
    with ModelStore(genome_dir[0] / "fits").get(genome_dir[1]) as fit:
        yield fit


def chart_rows(at: AppTest) -> dict[str, pd.DataFrame]:
    out = {}
    for el in at.get("vega_lite_chart"):
        spec = json.loads(el.proto.spec)
        title = spec.get("title", "")
        title = title.get("text", "") if isinstance(title, dict) else title
        frames = [pa.ipc.open_stream(ds.data.data).read_all().to_pandas() for ds in el.proto.datasets]
        frames += [pd.DataFrame(rows) for rows in spec.get("datasets", {}).values()]
        out[str(title)] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return out


def chart(at: AppTest, part: str) -> pd.DataFrame:
    data = chart_rows(at)
    hits = [t for t in data if part in t]
    assert hits, f"no chart titled {part!r}: {list(data)}"
    return data[hits[0]]


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def assert_bounded_pickers(at: AppTest) -> None:
    for kind in ("multiselect", "selectbox"):
        for w in at.get(kind):
            assert len(w.proto.options) <= MAX_OPTIONS, f"{kind} {w.proto.label!r} sends {len(w.proto.options)} options"


def weakest_gene(stored: object) -> str:
    summary = stored.gene_summary()  # type: ignore[attr-defined]
    return str(summary.sort_values("mean")["gene"].iloc[-1])


def test_heatmap_shows_the_top_50_and_says_so(open_page: Callable[..., AppTest], fit_id: str, stored: object) -> None:
    at = open_page("heatmap", fit=fit_id)
    cells = chart(at, "Gene × cell line")
    heat = cells[cells["gene"].notna()]
    top = stored.gene_summary().sort_values("mean")["gene"].head(50)  # type: ignore[attr-defined]
    assert set(heat["gene"]) == set(top) and len(heat) == 50 * N_CELLS  # ≤ 50k marks: 600 cells here
    assert ("Showing the top 50 of 1,500 genes by posterior mean of the gene effect, strongest dependency first."
            in captions(at))
    assert_bounded_pickers(at)
    # a fit with a look-closer verdict carries the banner on every results page
    judged = verdict.verdict_of(stored.manifest)  # type: ignore[attr-defined]
    assert judged.level != "converged" and any(judged.headline in m.value for m in [*at.warning, *at.error])


def test_heatmap_search_finds_a_gene_outside_the_default_set(open_page: Callable[..., AppTest], fit_id: str,
                                                            stored: object) -> None:
    gene = weakest_gene(stored)
    at = open_page("heatmap", fit=fit_id, heat_how="Search by name")
    picker = at.multiselect(key="heat_genes")
    assert gene not in picker.options and len(picker.options) <= MAX_OPTIONS
    at.text_input(key="heat_genes_find").input(gene[:-1].lower()).run()  # part of the name, any case
    picker = at.multiselect(key="heat_genes")
    assert gene in picker.options
    picker.select(gene).run()
    assert not at.exception
    heat = chart(at, "Gene × cell line")
    assert set(heat["gene"].dropna()) == {gene}
    assert "Showing 1 chosen of 1,500 genes." in captions(at)


def test_a_link_with_an_unknown_gene_says_so(open_page: Callable[..., AppTest], fit_id: str, stored: object) -> None:
    gene = weakest_gene(stored)
    at = open_page("heatmap", fit=fit_id, heat_how="Search by name", heat_genes=[gene, "NOT_A_GENE"])
    assert set(chart(at, "Gene × cell line")["gene"].dropna()) == {gene}
    assert any("NOT\\_A\\_GENE" in w.value or "NOT_A_GENE" in w.value for w in at.warning)


def test_rankings_rank_every_gene_and_show_a_page(open_page: Callable[..., AppTest], fit_id: str,
                                                  stored: object) -> None:
    at = open_page("rankings", fit=fit_id, rank_page="3")
    expected = ranking.rank_genes(stored.draws("gene_effect"), top_k=10)  # type: ignore[attr-defined]
    shown = at.dataframe[0].value
    assert list(shown["gene"]) == list(expected["gene"].iloc[200:300])
    assert "Rows 201–300 of 1,500 genes, by expected rank; the CSV holds all of them." in captions(at)
    assert len(chart(at, "Rank intervals")) == 40
    assert_bounded_pickers(at)
    pairs = at.multiselect(key="rank_pairs")
    assert pairs.value == list(expected["gene"].head(8))
    gene = weakest_gene(stored)
    at.text_input(key="rank_pairs_find").input(gene).run()
    at.multiselect(key="rank_pairs").select(gene).run()
    cells = chart(at, "stronger dependency")
    assert gene in set(cells["gene_a"]) and cells["gene_a"].nunique() == 9
    # where does one gene rank among all of them?
    at.text_input(key="rank_genes_find").input(gene).run()
    at.multiselect(key="rank_genes").select(gene).run()
    row = at.dataframe[0].value
    assert list(row["gene"]) == [gene]
    assert row["expected_rank"].iloc[0] == pytest.approx(expected.set_index("gene").loc[gene, "expected_rank"])
    assert "1 chosen of 1,500 genes; their ranks are among all 1,500." in captions(at)


def test_forest_one_gene_across_cell_lines_by_search(open_page: Callable[..., AppTest], fit_id: str,
                                                     stored: object) -> None:
    gene = weakest_gene(stored)
    at = open_page("forest", fit=fit_id, forest_view="One gene across cell lines")
    assert_bounded_pickers(at)
    at.text_input(key="forest_gene_find").input(gene).run()
    at.selectbox(key="forest_gene").select(gene).run()
    assert not at.exception
    rows = chart(at, f"One gene across cell lines: {gene}")
    draws = stored.draws("gene_cell_line_effect", gene=gene)  # type: ignore[attr-defined]
    mean = draws.mean(("chain", "draw")).to_series()
    assert len(rows) == N_CELLS
    assert np.allclose(rows.set_index("label")["mean"].loc[mean.index], mean.to_numpy(), atol=1e-5)


def test_diagnostics_lists_the_worst_elements_first(open_page: Callable[..., AppTest], fit_id: str,
                                                    stored: object) -> None:
    at = open_page("diagnostics", fit=fit_id)
    summary = stored.summary()  # type: ignore[attr-defined]
    worst = at.dataframe[1].value
    assert len(worst) == 50 < len(summary)
    r_hat = worst["r_hat"].to_numpy()
    assert r_hat[0] == pytest.approx(summary["r_hat"].max()) and np.all(np.diff(r_hat) <= 0)
    assert f"Showing the worst 50 of {len(summary):,} elements" in captions(at)
    overview = at.dataframe[0].value
    assert overview["elements"].sum() == len(summary)  # the counts cover every element, one row per variable
    assert_bounded_pickers(at)
