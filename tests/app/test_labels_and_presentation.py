"""AppTests for what the results pages say and how they look on a projector (issue 14, points 8–10).

Label rules (P(top-k) default, integer rank ticks, human column names, one interval width, the fit id
message, glossary coverage) and presentation mode (``?present=1``: fonts, sizes, provenance, SVG).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_results_pages import GENE_ROLES, GL_ROLES, TruthfulFits, text_of

from model_store.stats import HDI_PROB
from model_store.summaries import P_BELOW_THRESHOLD
from speclet_core import charts
from speclet_core.analysis import glossary, ranking

RESULT_PAGES = ["forest", "heatmap", "rankings", "ppc", "compare", "diagnostics"]
# jargon a biologist may not know: wherever a page shows one, the sidebar's glossary must define it
JARGON = {
    "HDI": r"\bHDI\b", "R-hat": r"\bR-hat\b", "ESS": r"\bESS\b", "divergence": r"\bdivergen", "lfsr": r"\blfsr\b",
    "P(top-k)": r"P\(top-", "P(selective)": r"P\(selective", "ELPD": r"\bELPD\b", "LOO": r"\bLOO\b",
    "Pareto k": r"Pareto k", "BFMI": r"\bBFMI\b", "shrinkage": r"shrinkage", "pooling": r"\bpool(ing|s)\b",
    "chain": r"\bchains?\b", "draw": r"\bdraws?\b", "posterior predictive": r"posterior predictive",
    "sgRNA": r"\bsgRNA", "LFC": r"\bLFC\b", "expected FDP": r"false discovery proportion",
}


@pytest.fixture
def fits(data_dir: Path) -> TruthfulFits:
    return TruthfulFits(data_dir)


@pytest.fixture
def gl_fit(fits: TruthfulFits) -> str:
    return fits.put(roles=GL_ROLES, model="gene_lineage", seed=1)


def _specs(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("vega_lite_chart")]


def _all_text(at: AppTest) -> str:
    """Everything a page says: text, headers, widget labels and table column labels."""
    parts = [text_of(at)] + [h.value for h in at.subheader] + [t.value for t in at.title]
    for kind in ("selectbox", "multiselect", "radio", "number_input", "select_slider", "toggle"):
        parts += [w.label for w in at.get(kind)]
    for df in at.dataframe:
        parts += [str(v.get("label", k)) for k, v in json.loads(df.proto.columns or "{}").items()]
        parts += [str(c) for c in df.value.columns]
    for spec in _specs(at):
        parts.append(json.dumps(spec.get("title", "")))
    return "\n".join(parts)


# --------------------------------------------------------------------------- label rules


def test_default_k_never_puts_every_gene_in_the_top_k() -> None:
    assert [ranking.default_top_k(n) for n in (1, 3, 4, 8, 12, 40, 41, 18_000)] == [1, 1, 1, 2, 3, 10, 10, 10]
    assert all(ranking.default_top_k(n) < n for n in range(2, 200))


def test_rankings_page_defaults_k_to_a_quarter_of_the_genes_and_ticks_whole_ranks(
        open_page: Callable[..., AppTest], gl_fit: str) -> None:
    at = open_page("rankings", fit=gl_fit)  # 8 genes
    assert at.number_input(key="rank_k").value == 2
    table = at.dataframe[0].value
    assert not (table["p_top_k"] == 1.0).all() and (table["p_top_k"] < 0.5).sum() >= 4
    rank_chart = next(s for s in _specs(at) if "Rank intervals" in json.dumps(s.get("title")))
    axis = rank_chart["layer"][0]["encoding"]["x"]["axis"]
    assert axis["tickMinStep"] == 1 and axis["format"] == "d"
    labels = {k: v["label"] for k, v in json.loads(at.dataframe[0].proto.columns).items() if "label" in v}
    raw = {"p_selective", "hdi_low", "hdi_high", "p_top_k", "rank_low", "rank_high", "hdi_5.5%", "hdi_94.5%"}
    assert not raw & set(labels.values()), labels
    assert labels["hdi_low"] == f"{HDI_PROB:.0%} low" and labels["p_top_k"] == "P(top-2)"


def test_ppc_page_shows_one_interval_width(open_page: Callable[..., AppTest], gl_fit: str) -> None:
    at = open_page("ppc", fit=gl_fit)
    text = _all_text(at)
    # every width the page states for an interval or band (not "5% quantile", "at least 1% of the data sets")
    widths = set(re.findall(r"(\d+(?:\.\d+)?)% (?:interval|low|high|of them|band)", text))
    widths |= set(re.findall(r"(?:predicted|simulated) (\d+(?:\.\d+)?)%", text))
    assert widths == {f"{HDI_PROB:.0%}".rstrip("%")}, widths  # one width: no 95%, 97.5% or 98% beside the 89% band
    labels = {k: v.get("label") for k, v in json.loads(at.dataframe[0].proto.columns).items()}
    assert labels["predicted_low"] == f"simulated {HDI_PROB:.0%} low"
    assert "predicted_low" not in labels.values() and "p_predicted_above" not in labels.values()


def test_compare_counts_ranks_from_one_with_human_column_names(open_page: Callable[..., AppTest], fits: TruthfulFits,
                                                               gl_fit: str) -> None:
    fits.put(roles=GENE_ROLES, model="gene", seed=8, predictive="gene_only")
    at = open_page("compare", fit=gl_fit)
    loo = at.dataframe[0]
    assert sorted(loo.value["rank"]) == [1, 2]
    labels = {k: v.get("label") for k, v in json.loads(loo.proto.columns).items() if v.get("label")}
    assert labels["elpd_diff"] == "ELPD behind the best" and labels["rank"] == "rank (1 = best)"
    assert not {"elpd_loo", "dse", "p_loo", "share_bad_k"} & set(labels.values())
    assert "elpd_diff" not in text_of(at) and "dse" not in text_of(at)


def test_heatmap_caption_and_threshold_come_from_one_rule(open_page: Callable[..., AppTest], gl_fit: str) -> None:
    at = open_page("heatmap", fit=gl_fit)
    assert "Hover a cell for gene, cell line, its lineage, the posterior mean" in text_of(at)
    at.button_group(key="heat_kind").set_value("gene_lineage").run()
    text = text_of(at)
    assert "lineage, lineage" not in text and "Hover a cell for gene, lineage, the posterior mean" in text
    assert charts.HEAT_STAT_TITLES["p_below"] == f"P(effect < {f'{P_BELOW_THRESHOLD:g}'.replace('-', '−')})"


def test_a_bad_fit_id_speaks_of_the_ids_the_ui_shows(open_page: Callable[..., AppTest], gl_fit: str) -> None:
    at = open_page("rankings", fit="not-a-fit")
    text = "\n".join(e.value for e in at.error)
    assert "12 characters" in text and "sha256" not in text and "64 hexadecimal" not in text


@pytest.mark.parametrize("page", RESULT_PAGES)
def test_every_term_a_page_shows_is_in_the_glossary(open_page: Callable[..., AppTest], fits: TruthfulFits,
                                                    gl_fit: str, page: str) -> None:
    if page == "compare":
        fits.put(roles=GENE_ROLES, model="gene", seed=8, predictive="gene_only")
    at = open_page(page, fit=gl_fit)
    text = _all_text(at)
    shown = [term for term, pattern in JARGON.items() if re.search(pattern, text)]
    assert shown, f"{page} shows none of the jargon terms: the test reads no text"
    missing = [term for term in shown if glossary.glossary_entry(term) is None]
    assert not missing, f"{page} shows {missing} without a glossary entry"
    sidebar = "\n".join(m.value for m in at.sidebar.markdown)
    assert all(f"**{key}**" in sidebar for key in glossary.GLOSSARY)


# --------------------------------------------------------------------------- presentation mode


def _fonts(spec: dict) -> tuple[int, int, int]:
    config = spec.get("config", {})
    return (config.get("axis", {}).get("labelFontSize", 0), config.get("axis", {}).get("titleFontSize", 0),
            config.get("title", {}).get("fontSize", 0))


@pytest.mark.parametrize("page", ["forest", "heatmap", "rankings", "ppc"])
def test_present_1_enlarges_every_chart_and_figures_carry_provenance(open_page: Callable[..., AppTest],
                                                                     fits: TruthfulFits, gl_fit: str,
                                                                     page: str) -> None:
    normal = open_page(page, fit=gl_fit)
    at = open_page(page, fit=gl_fit, present="1")
    assert at.sidebar.toggle(key="presentation_mode").value is True
    assert at.query_params.get("present") == ["1"] or at.query_params.get("present") == "1"
    specs, plain = _specs(at), _specs(normal)
    assert specs and len(specs) == len(plain)
    manifest = fits.store.manifest(gl_fit)
    for big, small in zip(specs, plain, strict=True):
        label, axis_title, title = _fonts(big)
        assert label >= 16 and axis_title >= 16 and title >= 20, (page, big.get("config"))
        assert _fonts(small) == (0, 0, 0)  # the normal page keeps Streamlit's theme
        subtitle = big["title"]["subtitle"]
        line = subtitle[-1] if isinstance(subtitle, list) else subtitle
        assert f"fit {gl_fit[:12]}" in line and manifest.model in line and "tiny.parquet (synthetic" in line
        assert manifest.created_utc[:10] in line
    assert len(at.get("download_button")) >= 2 * len(specs)  # CSV and SVG for each chart
    assert any(b.label == "Download figure (SVG)" for b in at.get("download_button"))


def test_presentation_mode_grows_rows_and_the_all_readings_chart(open_page: Callable[..., AppTest], gl_fit: str) -> None:
    plain = {json.dumps(s["title"]["text"]): s for s in _specs(open_page("ppc", fit=gl_fit))}
    big = {json.dumps(s["title"]["text"]): s for s in _specs(open_page("ppc", fit=gl_fit, present="1"))}
    key = next(k for k in plain if "all readings" in k)
    assert big[key]["height"] >= 360 > plain[key]["height"] >= 250
    heat_plain = _specs(open_page("heatmap", fit=gl_fit))[0]
    heat_big = _specs(open_page("heatmap", fit=gl_fit, present="1"))[0]
    assert heat_big["vconcat"][1]["height"]["step"] >= 26 > heat_plain["vconcat"][1]["height"]["step"]


def test_the_toggle_turns_presentation_mode_off_again(open_page: Callable[..., AppTest], gl_fit: str) -> None:
    at = open_page("forest", fit=gl_fit, present="1")
    at.sidebar.toggle(key="presentation_mode").set_value(False).run()
    assert "present" not in at.query_params
    assert all(_fonts(s) == (0, 0, 0) for s in _specs(at))
