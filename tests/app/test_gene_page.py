"""AppTest of the Gene page: one gene across the open fit, on a real fit and on a model without some levels.

The real fit (``tests/analysis/gene_fit_helpers.py``: ``sgrna_gene_lineage`` on a tiny screen with
planted reference genes and a guide of KRAS that barely cuts) has every level; the fake fit
(``store_helpers``) has no guide term and no reference genes, and the page says so instead of failing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))

from gene_fit_helpers import DISAGREEING_GENE, ESSENTIAL, stored_gene_fit


def _text(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
                     + [w.value for w in at.warning] + [e.value for e in at.error] + [s.value for s in at.success])


def test_gene_page_on_a_model_without_guides_or_references(open_page: Callable[..., AppTest], fake_fit: str) -> None:
    at = open_page("gene", fit=fake_fit, gene="braf")  # any case: the one label matcher
    assert at.selectbox(key="gene").value == "BRAF"
    text = _text(at)
    assert "BRAF: overall" in [s.value for s in at.subheader]
    assert "has no guide (sgRNA) term, so this fit cannot show it" in text
    assert "needs at least 3 of each" in text
    # the fake posterior's lineage and cell-line effects are shown as forest charts
    titles = [json.dumps(json.loads(c.proto.spec).get("title")) for c in at.get("vega_lite_chart")]
    assert any("BRAF in each lineage" in t for t in titles) and any("BRAF in each cell line" in t for t in titles)
    unknown = open_page("gene", fit=fake_fit, gene="KRSA")
    assert "'KRSA' (did you mean KRAS?)" in _text(unknown)
    assert unknown.selectbox(key="gene").value == "KRAS"  # the strongest dependency of the fake fit


@pytest.fixture
def gene_fit(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    data_dir, fit_id, weak = stored_gene_fit()
    monkeypatch.setenv("SPECLET_DATA_DIR", str(data_dir))
    return fit_id, weak


@pytest.mark.slow
def test_gene_page_shows_every_level_of_a_real_fit(open_page: Callable[..., AppTest], gene_fit: tuple[str, str]) -> None:
    fit_id, weak = gene_fit
    at = open_page("gene", fit=fit_id, gene=DISAGREEING_GENE)
    text = _text(at)
    assert "Knocking out KRAS lowers fitness" in text
    assert f"guide {weak} weakens the gene's effect" in text
    guides = at.dataframe[0].value
    assert guides.loc[guides["sgrna"] == weak, "disagrees"].item()
    assert not guides.loc[guides["sgrna"] != weak, "disagrees"].any()
    assert "is a weaker dependency than the median common-essential gene: it is as strong with P" in text
    assert "Reference genes behave as expected" in text
    essential = open_page("gene", fit=fit_id, gene=ESSENTIAL[0])
    assert "(itself a common-essential gene)" in _text(essential)
    assert "is a dependency in 10 of 10 cell lines" in _text(essential)


def test_gene_page_carries_the_verdict_of_a_flagged_fit(open_page: Callable[..., AppTest], divergent_fit: str) -> None:
    at = open_page("gene", fit=divergent_fit, gene="KRAS")
    banners = [b.value for b in [*at.warning, *at.error] if "divergent" in b.value]
    assert len(banners) == 1 and "Every number and chart on this page comes from this fit" in banners[0]
    for el in at.get("vega_lite_chart"):  # exported figures carry it too
        assert "do not trust" in json.dumps(json.loads(el.proto.spec).get("title")).lower()


@pytest.mark.slow
def test_diagnostics_shows_the_reference_gene_check(open_page: Callable[..., AppTest], gene_fit: tuple[str, str],
                                                    ) -> None:
    at = open_page("diagnostics", fit=gene_fit[0])
    assert any(s.value.startswith("Reference genes behave as expected: the median of 4 common-essential genes")
               for s in at.success), [s.value for s in at.success]


def test_diagnostics_says_when_a_fit_has_too_few_reference_genes(open_page: Callable[..., AppTest],
                                                                  fake_fit: str) -> None:
    at = open_page("diagnostics", fit=fake_fit)  # of its 7 genes only MYC is on a list (CEGv2)
    assert any("holds 1 common-essential and 0 non-essential reference genes" in c.value for c in at.caption)
