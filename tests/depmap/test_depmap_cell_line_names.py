"""The DepMap importer carries each cell line's name, sex and age from Model.csv / sample_info.csv."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from depmap_releases import MODELS, write_current_release, write_legacy_release  # tests/depmap_releases.py

from speclet_core.data.screen import load_screen
from speclet_core.depmap.importer import import_depmap
from speclet_core.depmap.output import write_screen
from speclet_core.settings import Settings

SEX_AGE = {"ACH-000001": ("Female", "52"), "ACH-000003": ("Male", ""), "ACH-000005": ("Unknown", "61.0")}


def _add_sex_and_age(release: Path) -> None:
    models = pd.read_csv(release / "Model.csv", dtype=str, keep_default_na=False)
    models["Sex"] = models["ModelID"].map(lambda m: SEX_AGE.get(m, ("", ""))[0])
    models["Age"] = models["ModelID"].map(lambda m: SEX_AGE.get(m, ("", ""))[1])
    models.to_csv(release / "Model.csv", index=False)


def test_current_release_names_cell_lines_from_model_csv(tmp_path: Path) -> None:
    release = write_current_release(tmp_path / "rel")
    _add_sex_and_age(release)
    result = import_depmap(release, "KRAS,BRAF", "Skin,Bowel", settings=Settings.from_env())
    per_line = result.data.drop_duplicates("depmap_id").set_index("depmap_id")
    assert per_line["cell_line_name"].to_dict() == {"ACH-000001": "LINE1", "ACH-000003": "LINE3", "ACH-000005": "LINE5"}
    assert per_line["sex"].to_dict() == {m: s for m, (s, _) in SEX_AGE.items()}

    # written and read back as a screen table: one row per cell line, names in every label
    table_path, _ = write_screen(result, tmp_path / "out" / "screen.parquet")
    table = load_screen(table_path).cell_line_table
    subtype = {m: sub for m, _lin, sub, _site in MODELS}
    assert table["cell_line_name"].to_dict() == {"ACH-000001": "LINE1", "ACH-000003": "LINE3", "ACH-000005": "LINE5"}
    assert table["lineage_subtype"].to_dict() == {m: subtype[m] for m in table.index}
    assert table["age"].to_dict() == {"ACH-000001": "52", "ACH-000003": None, "ACH-000005": "61"}
    assert table["sex"].to_dict() == {"ACH-000001": "Female", "ACH-000003": "Male", "ACH-000005": None}  # "Unknown"
    assert table.loc["ACH-000005", "primary_or_metastasis"] is None  # blank in Model.csv


def test_legacy_release_names_cell_lines_from_sample_info(tmp_path: Path) -> None:
    release = write_legacy_release(tmp_path / "rel")  # sample_info.csv has stripped_cell_line_name only
    result = import_depmap(release, "KRAS", "skin,colorectal", settings=Settings.from_env())
    names = result.data.drop_duplicates("depmap_id").set_index("depmap_id")["cell_line_name"].to_dict()
    assert names == {"ACH-000001": "LINE1", "ACH-000003": "LINE3"}


def test_a_release_without_names_imports_without_the_column(tmp_path: Path) -> None:
    release = write_current_release(tmp_path / "rel")
    models = pd.read_csv(release / "Model.csv", dtype=str, keep_default_na=False).drop(columns=["CellLineName"])
    models.to_csv(release / "Model.csv", index=False)
    result = import_depmap(release, "KRAS", "Skin", settings=Settings.from_env())
    assert "cell_line_name" not in result.data.columns and len(result.data) > 0
