"""AppTests for Home, Data explorer and Diagnostics (the Fit page's tests are in test_fit_page.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _all_rows(at) -> list[dict]:  # type: ignore[no-untyped-def]
    """Every data row shipped with the page's charts (Streamlit sends them as Arrow, beside the spec)."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    out: list[dict] = []
    for el in at.get("vega_lite_chart"):
        for ds in el.proto.datasets:
            out.extend(convert_arrow_bytes_to_pandas_df(ds.data.data).to_dict("records"))
    return out


def test_home_summarises_the_demo_screen_and_lists_fits(open_page, fake_fit) -> None:  # type: ignore[no-untyped-def]
    at = open_page("home")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Genes"] == "30" and metrics["Cell lines"] == "120" and metrics["Lineages"] == "6"
    assert "No fitting worker is running" in at.warning[0].value
    table = at.dataframe[0].value
    assert list(table["model"]) == ["hierarchical"] and table["diagnostics"].iloc[0] == "✅ converged"


def test_invalid_upload_shows_the_validation_report(open_page) -> None:  # type: ignore[no-untyped-def]
    at = open_page("home")
    bad = "sgrna,hugo_symbol,depmap_id,lineage,lfc\ng1,KRAS,ACH-1,skin,x\ng1,BRAF,ACH-1,skin,0.1\n"
    at.file_uploader(key="upload").set_value(("bad.csv", bad.encode(), "text/csv")).run()
    at.button[0].click().run()
    text = "\n".join(e.value for e in at.error)
    assert "cannot be used yet" in text
    assert "non-numeric value (e.g. 'x') in row 2" in text
    assert "sgRNA 'g1' maps to 2 genes" in text
    assert not at.exception


def test_selecting_genes_updates_the_heatmap(open_page) -> None:  # type: ignore[no-untyped-def]
    at = open_page("data")
    heat = [r for r in _all_rows(at) if "mean_lfc" in r]
    assert len({r["gene"] for r in heat}) == 30
    at.multiselect(key="genes").set_value(["KRAS", "MYC"]).run()
    heat = [r for r in _all_rows(at) if "mean_lfc" in r]
    assert {r["gene"] for r in heat} == {"KRAS", "MYC"}
    assert len(heat) == 2 * 6  # one cell per lineage


def test_url_restores_the_selection(open_page) -> None:  # type: ignore[no-untyped-def]
    at = open_page("data", genes=["KRAS", "BRAF"], lineages=["skin"])
    assert at.multiselect(key="genes").value == ["KRAS", "BRAF"]
    assert at.multiselect(key="lineages").value == ["skin"]
    heat = [r for r in _all_rows(at) if "mean_lfc" in r]
    assert {(r["gene"], r["lineage"]) for r in heat} == {("KRAS", "skin"), ("BRAF", "skin")}


def test_diagnostics_triage_and_the_stored_verdict(open_page, fake_fit) -> None:  # type: ignore[no-untyped-def]
    at = open_page("diagnostics", fit=fake_fit)
    overview = at.dataframe[0].value
    assert set(overview["variable"]) == {"mu_gene", "sigma_gene", "gene_effect", "gene_lineage_effect",
                                         "gene_cell_line_effect"}
    assert overview["max_r_hat"].is_monotonic_decreasing
    table = at.dataframe[1].value
    rhat = table["r_hat"].to_numpy()
    # the headline is the verdict stored with the fit (as the store's status and the badges), not a recomputation
    assert not at.error and "Converged: the diagnostics give no reason for doubt" in at.success[0].value
    assert (rhat[:-1] >= rhat[1:]).all()  # worst first
    assert at.get("vega_lite_chart")  # trace / rank plots drawn


def test_diagnostics_verdict_reflects_divergences(open_page, divergent_fit) -> None:  # type: ignore[no-untyped-def]
    at = open_page("diagnostics", fit=divergent_fit)
    assert "Do not trust this fit yet" in at.error[0].value
    assert "25 divergent transitions" in at.error[0].value


def test_pages_without_an_open_fit_point_to_the_fit_page(open_page) -> None:  # type: ignore[no-untyped-def]
    at = open_page("diagnostics")
    assert "No fit is open" in at.info[0].value


def test_unknown_fit_in_the_url_is_a_message_not_a_traceback(open_page) -> None:  # type: ignore[no-untyped-def]
    at = open_page("diagnostics", fit="../../etc/passwd")
    assert "invalid fit id" in at.error[0].value
    at = open_page("diagnostics", fit="0" * 64)
    assert at.error and "0000000000" in at.error[0].value


def test_home_with_a_bad_configured_screen_explains(open_page, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "broken.csv"
    pd.DataFrame({"sgrna": ["a"], "gene": ["K"]}).to_csv(bad, index=False)
    monkeypatch.setenv("SPECLET_SCREEN", str(bad))
    at = open_page("home")
    assert "missing required column" in at.error[0].value


def test_the_12_character_id_the_pages_show_opens_the_fit(open_page, fake_fit) -> None:  # type: ignore[no-untyped-def]
    at = open_page("diagnostics", fit=fake_fit[:12])
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.query_params["fit"] in (fake_fit, [fake_fit])  # the URL now holds the full id
    at = open_page("diagnostics", fit="abcdef123456")  # no fit starts so: the store's message, no traceback
    assert not at.exception and at.error and "abcdef123456" in at.error[0].value
