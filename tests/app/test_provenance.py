"""Provenance in view (issue 14): which screen a fit was made on, named everywhere it is shown."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from store_helpers import DIAGNOSTICS, ROLES, TIMINGS, make_idata, make_request
from streamlit.testing.v1 import AppTest

from model_store import ModelStore
from speclet_core.analysis import fitview
from speclet_core.data.sources import save_upload
from speclet_core.settings import Settings

GOOD = ("sgrna,hugo_symbol,depmap_id,lineage,lfc\n"
        "g1,KRAS,ACH-1,colorectal,-1.0\ng2,KRAS,ACH-2,colorectal,-0.8\ng3,BRAF,ACH-1,colorectal,0.1\n"
        "g4,BRAF,ACH-2,colorectal,0.05\n")


def test_an_upload_is_named_by_its_file_name_with_a_success_message(open_page: Callable[..., AppTest]) -> None:
    at = open_page("home")
    at.file_uploader(key="upload").set_value(("crc_screen_2026.csv", GOOD.encode(), "text/csv")).run()
    at.button[0].click().run()
    assert not at.exception and not at.error
    success = "\n".join(s.value for s in at.success)
    assert "Uploaded **crc_screen_2026.csv**: 4 readings, 2 genes, 2 cell lines, 1 lineage." in success
    assert "Active screen: Uploaded table crc_screen_2026.csv" in at.subheader[0].value
    assert "upload-" not in at.subheader[0].value
    # a new session (another browser) sees the same name: it is recorded beside the upload
    key = at.query_params["screen"]
    key = key[0] if isinstance(key, list) else key
    other = open_page("data", screen=key)
    assert "Uploaded table crc_screen_2026.csv" in other.caption[0].value


def test_the_sidebar_names_the_screen_of_the_open_fit(open_page: Callable[..., AppTest], data_dir: Path) -> None:
    settings = Settings.from_env()
    key, _ = save_upload("patients_crc.csv", GOOD.encode(), settings)
    table = data_dir / "uploads" / f"{key}.parquet"
    request = make_request(seed=4).model_copy(update={"data_path": str(table)})
    store = ModelStore(data_dir / "fits")
    store.put(request.fit_id, make_idata(seed=4), request=request.model_dump(mode="json"), roles=ROLES,
              diagnostics=DIAGNOSTICS, timings=TIMINGS)
    at = open_page("forest", fit=request.fit_id, screen="demo")  # the active screen is the demo, the fit is not
    sidebar = "\n".join(c.value for c in at.sidebar.caption)
    assert "screen:** upload patients_crc.csv" in sidebar
    assert "synthetic" not in sidebar.split("New fits use")[0]  # real data is never labelled as the demo
    assert "New fits use: Demo screen" in sidebar
    caption = "\n".join(c.value for c in at.main.caption)
    assert "Screen **upload patients_crc.csv**" in caption and "synthetic" not in caption


def test_fits_tables_name_lineages_never_bare_all() -> None:
    request = make_request(seed=5)
    store_manifest = fitview.recent_fits_table  # the Home and Fit pages' table
    from model_store.manifest import FitManifest

    one = FitManifest.model_validate({
        "fit_id": "a" * 64, "model": "gene_lineage", "model_version": "1", "created_utc": "2026-12-01T00:00:00Z",
        "request": {**request.model_dump(mode="json"), "selection": {"genes": "all", "lineages": ["colorectal"]}},
        "lineages": ["colorectal"], "genes": ["KRAS", "BRAF"],
        "roles": {"gene_effect": "gene_effect"}, "diagnostics": {}, "timings": {"total_s": 3.0}})
    every = one.model_copy(update={
        "request": one.request.model_copy(update={"selection": {"genes": "all", "lineages": "all"}}),
        "lineages": ("blood", "bone", "breast", "colorectal", "lung", "skin")})
    table = store_manifest([one, every])
    assert list(table["lineages"]) == ["colorectal", "all 6: blood, bone, breast … (+3)"]
    assert list(table["genes"]) == ["all 2: KRAS, BRAF", "all 2: KRAS, BRAF"]
    assert "screen" in table.columns
