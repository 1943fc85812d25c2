"""AppTests for the Data page's DepMap import panel (a tiny release folder in an allowed server folder)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from depmap_releases import write_current_release

from speclet_core.data.screen import load_screen
from speclet_core.depmap.importer import import_depmap
from speclet_core.depmap.output import read_import_metadata
from speclet_core.settings import Settings


@pytest.fixture
def allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An allowed server folder holding one current-layout release, ``release_24q2``."""
    root = tmp_path / "server"
    write_current_release(root / "release_24q2")
    monkeypatch.setenv("SPECLET_ALLOWED_DATA_DIRS", str(root))
    return root


def _caption_text(at) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(c.value for c in at.caption)


def test_import_makes_the_imported_table_the_active_screen(open_page, allowed: Path, data_dir: Path,  # type: ignore[no-untyped-def]
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from pages import widgets

    shown: list[tuple[float, str]] = []  # what the progress bar was fed
    real_progress = widgets.st.progress

    def recording_progress(value, text=None, **kw):  # type: ignore[no-untyped-def]
        bar = real_progress(value, text=text, **kw)
        real_update = bar.progress

        def update(v, text=None, **kw):  # type: ignore[no-untyped-def]
            shown.append((v, text))
            return real_update(v, text=text, **kw)

        bar.progress = update
        return bar

    monkeypatch.setattr(widgets.st, "progress", recording_progress)
    at = open_page("data")
    assert "30 genes" in _caption_text(at)  # the demo screen
    at.text_input(key="dmi-dir").set_value("release_24q2").run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Layout"] == "current (22Q2 onward)"
    assert metrics["Sequences in the LFC matrix"] == "7" and metrics["Genes with usable guides"] == "4"
    assert metrics["Cache"] == "not built"
    assert at.multiselect(key="dmi-genes-pick").options == ["BRAF", "HLA-A", "KRAS", "TP53"]
    assert at.multiselect(key="dmi-lineages").options == ["Bowel (2 cell lines)", "CNS/Brain (1 cell lines)",
                                                          "Skin (1 cell lines)"]

    at.text_area(key="dmi-genes-text").set_value("kras, BRAF\n# a comment\n")
    at.multiselect(key="dmi-genes-pick").set_value(["HLA-A"])
    at.multiselect(key="dmi-lineages").set_value(["Skin", "Bowel"])
    at.checkbox(key="dmi-cache").check()
    at.run()
    button = at.button(key="dmi-import")
    assert button.label == "Import 3 genes"
    button.click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    fractions = [v for v, _ in shown]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(shown) >= 3
    assert shown[0][1].startswith("Reading the guide, screen and cell-line maps: reading AvanaGuideMap.csv")
    assert any(text.startswith("Building the columnar cache") for _, text in shown)
    assert shown[-1][1] == "Done: imported 14 readings"

    # the new screen is active, in the URL and the session, and the page shows its numbers
    key = at.session_state["screen_key"]
    assert key.startswith("import-") and at.query_params["screen"] in (key, [key])
    path = data_dir / "imports" / f"{key}.parquet"
    expected = import_depmap(allowed / "release_24q2", "KRAS,BRAF,HLA-A", "Skin,Bowel", settings=Settings.from_env()).data
    stored = load_screen(path).data
    assert len(stored) == len(expected) == 14
    pd.testing.assert_frame_equal(stored.reset_index(drop=True), expected, check_dtype=False)
    assert read_import_metadata(path)["cache"]["used"] == ["AvanaLogfoldChange.csv"]
    assert (allowed / "release_24q2" / ".speclet-cache" / "AvanaLogfoldChange.parquet").exists()
    caption = _caption_text(at)
    assert f"Imported DepMap screen ({key}) · 14 readings · 3 genes · 3 cell lines · 2 lineages" in caption
    note = at.success[0].value
    assert "Imported 14 readings (3 genes, 4 sgRNAs, 3 cell lines, 2 lineages) from `release_24q2`" in note
    heat = {(g, lin) for el in at.get("vega_lite_chart") for g, lin in _gene_lineage_cells(el)}
    assert heat == {(g, lin) for g in ("BRAF", "HLA-A", "KRAS") for lin in ("Bowel", "Skin")}

    # the cache is now reported as ready
    at.run()
    assert {m.label: m.value for m in at.metric}["Cache"] == "ready"


def _gene_lineage_cells(el) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    out = []
    for ds in el.proto.datasets:
        df = convert_arrow_bytes_to_pandas_df(ds.data.data)
        if "mean_lfc" in df:
            out += list(zip(df["gene"], df["lineage"], strict=True))
    return out


def test_import_inside_an_allowed_folder_uses_a_path_key(open_page, allowed: Path, data_dir: Path,  # type: ignore[no-untyped-def]
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPECLET_ALLOWED_DATA_DIRS", f"{allowed}:{data_dir}")
    at = open_page("data")
    at.text_input(key="dmi-dir").set_value(str(allowed / "release_24q2")).run()
    at.text_area(key="dmi-genes-text").set_value("TP53").run()
    at.button(key="dmi-import").click().run()
    assert not at.exception and not at.error
    key = at.session_state["screen_key"]
    assert key.startswith("path:") and Path(key[5:]).parent == (data_dir / "imports").resolve()
    # all lineages: TP53_g1 in the 5 QC-passing sequences
    assert "Server file import-" in _caption_text(at) and "5 readings · 1 genes" in _caption_text(at)


def test_bad_folders_and_names_are_messages(open_page, allowed: Path, tmp_path: Path, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    at = open_page("data")
    for typed, words in [
        ("../", "outside the allowed folders"),
        (str(tmp_path), "outside the allowed folders"),
        ("nope", "no such file in the allowed folders"),
        ("release_24q2/Model.csv", "not a folder"),
    ]:
        at.text_input(key="dmi-dir").set_value(typed).run()
        assert not at.exception and words in at.error[0].value, (typed, [e.value for e in at.error])
    # a symlink out of the allowed folder is refused
    (allowed / "escape").symlink_to(tmp_path)
    at.text_input(key="dmi-dir").set_value("escape").run()
    assert "outside the allowed folders" in at.error[0].value

    at.text_input(key="dmi-dir").set_value("release_24q2").run()
    assert at.button(key="dmi-import").disabled  # no genes yet
    at.text_area(key="dmi-genes-text").set_value("KRSA").run()
    at.button(key="dmi-import").click().run()
    assert not at.exception
    assert "1 gene not in AvanaGuideMap.csv: 'KRSA' (did you mean KRAS?)" in at.error[0].value
    assert at.session_state["screen_key"] == "demo"
    assert not (data_dir / "imports").exists() or not any((data_dir / "imports").iterdir())


def test_switched_off_without_allowed_folders_or_when_read_only(open_page, allowed: Path,  # type: ignore[no-untyped-def]
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPECLET_READ_ONLY", "true")
    at = open_page("data")
    assert not any(t.value == "Import a DepMap release" for t in at.subheader)
    assert "SPECLET_ALLOWED_DATA_DIRS" in _caption_text(at)
    with pytest.raises(KeyError):
        at.text_input(key="dmi-dir")
    monkeypatch.delenv("SPECLET_READ_ONLY")
    monkeypatch.delenv("SPECLET_ALLOWED_DATA_DIRS")
    at = open_page("data")
    with pytest.raises(KeyError):
        at.text_input(key="dmi-dir")
