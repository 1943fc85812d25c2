"""Cell-line names and annotations of a screen table: one value per cell line, one label rule, grouping."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from speclet_core.cli.main import main
from speclet_core.data.cell_lines import (
    MUTATED,
    NOT_MUTATED,
    UNKNOWN,
    annotation_dataset,
    cell_line_labels,
    cell_line_table,
    format_cell_line,
    grouping_choices,
    summarise_cell_lines,
    summarise_groups,
    table_from_dataset,
)
from speclet_core.data.screen import load_screen, screen_from_frame
from speclet_core.errors import DataValidationError

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _named(tiny_table: pd.DataFrame) -> pd.DataFrame:
    df = tiny_table.copy()
    df["CellLineName"] = df["depmap_id"].map({"ACH-000001": "HT-29", "ACH-000002": "786"})
    df["OncotreeSubtype"] = df["depmap_id"].map({"ACH-000001": "Colon Adenocarcinoma", "ACH-000002": None})
    df["is_male"] = df["depmap_id"].map({"ACH-000001": "TRUE", "ACH-000002": "FALSE"})
    df["is_mutated"] = [True, True, False, False, False, True]  # per gene × cell line (KRAS in ACH-1, BRAF in ACH-2)
    return df


def test_names_and_annotations_become_one_row_per_cell_line(tiny_table: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "named.csv"
    _named(tiny_table).to_csv(path, index=False)
    screen = load_screen(path)  # aliases: CellLineName → cell_line_name, OncotreeSubtype → lineage_subtype
    table = screen.cell_line_table
    assert list(table.index) == ["ACH-000001", "ACH-000002"]
    assert table.loc["ACH-000001"].to_dict() == {
        "lineage": "colorectal", "cell_line_name": "HT-29", "lineage_subtype": "Colon Adenocarcinoma", "sex": "Male"}
    # a name that looks like a number stays the name, never 786.0; a missing subtype stays missing
    assert table.loc["ACH-000002", "cell_line_name"] == "786"
    assert table.loc["ACH-000002", "lineage_subtype"] is None and table.loc["ACH-000002", "sex"] == "Female"
    assert cell_line_labels(table) == {"ACH-000001": "HT-29 (ACH-000001)", "ACH-000002": "786 (ACH-000002)"}
    # the stored form reads back the same (missing stays missing)
    assert table_from_dataset(annotation_dataset(table)).equals(table)


def test_the_label_falls_back_to_the_bare_id(tiny_table: pd.DataFrame) -> None:
    table = cell_line_table(tiny_table)
    assert list(table.columns) == ["lineage"]
    assert cell_line_labels(table) == {"ACH-000001": "ACH-000001", "ACH-000002": "ACH-000002"}
    assert format_cell_line("ACH-000003", None) == "ACH-000003"
    assert format_cell_line("ACH-000003", float("nan")) == "ACH-000003"
    assert format_cell_line("ACH-000003", "  ") == "ACH-000003"
    assert format_cell_line("ACH-000003", "ACH-000003") == "ACH-000003"
    assert format_cell_line("ACH-000003", " SW480 ") == "SW480 (ACH-000003)"


def test_two_names_for_one_cell_line_is_a_clear_validation_error(tiny_table: pd.DataFrame,
                                                                 tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    df = _named(tiny_table)
    df.loc[2, "CellLineName"] = "CAKI-2"  # ACH-000002 is "786" in its other rows
    with pytest.raises(DataValidationError) as err:
        screen_from_frame(df, "named.csv")
    text = str(err.value)
    assert "column 'cell_line_name': cell line 'ACH-000002' maps to 2 values (786, CAKI-2)" in text
    assert "rows 4, 5, 7" in text and "each cell line must map to one value" in text
    # the command line says the same, exit status 2, no traceback
    path = tmp_path / "conflict.csv"
    df.to_csv(path, index=False)
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr()
    assert "cell line 'ACH-000002' maps to 2 values (786, CAKI-2)" in out.err + out.out
    assert "Traceback" not in out.err


def test_a_missing_value_beside_a_given_one_is_no_conflict(tiny_table: pd.DataFrame) -> None:
    df = _named(tiny_table)
    df.loc[0, "CellLineName"] = None
    assert screen_from_frame(df).cell_line_table.loc["ACH-000001", "cell_line_name"] == "HT-29"


def test_cell_lines_group_by_annotation_and_by_the_gene_s_mutation(tiny_table: pd.DataFrame) -> None:
    screen = screen_from_frame(_named(tiny_table))
    table = screen.cell_line_table
    choices = grouping_choices(table, screen.data)
    assert choices == {"lineage": "lineage", "lineage_subtype": "lineage subtype", "sex": "sex",
                       "is_mutated": "mutated in the gene (is_mutated)"}
    per = summarise_cell_lines(screen.data, table, ["KRAS", "BRAF"], "sex")
    kras = per[per["gene"] == "KRAS"].set_index("cell_line")
    assert kras.loc["ACH-000001", "cell_line_lfc"] == pytest.approx(-1.1)  # mean of -1.0 and -1.2
    assert kras.loc["ACH-000002", "readings"] == 2
    assert kras["label"].to_dict() == {"ACH-000001": "HT-29 (ACH-000001)", "ACH-000002": "786 (ACH-000002)"}
    assert kras["group"].to_dict() == {"ACH-000001": "Male", "ACH-000002": "Female"}
    subtype = summarise_cell_lines(screen.data, table, ["KRAS"], "lineage_subtype").set_index("cell_line")["group"]
    assert subtype["ACH-000002"] == UNKNOWN
    mutated = summarise_cell_lines(screen.data, table, ["KRAS", "BRAF"], "is_mutated")
    flags = {(r.gene, r.cell_line): r.group for r in mutated.itertuples()}
    assert flags == {("KRAS", "ACH-000001"): MUTATED, ("KRAS", "ACH-000002"): NOT_MUTATED,
                     ("BRAF", "ACH-000001"): NOT_MUTATED, ("BRAF", "ACH-000002"): MUTATED}
    groups = summarise_groups(mutated).set_index(["gene", "group"])
    assert groups.loc[("KRAS", MUTATED), "cell_lines"] == 1
    assert groups.loc[("KRAS", MUTATED), "mean_lfc"] == pytest.approx(-1.1)


@pytest.mark.skipif(not (SHARED_DATA / "depmap_crc_subsample.csv").exists(), reason="shared real tables not present")
def test_real_table_annotations() -> None:
    screen = load_screen(SHARED_DATA / "depmap_crc_subsample.csv")
    table = screen.cell_line_table
    assert len(table) == screen.data["depmap_id"].nunique() == 10
    raw = pd.read_csv(SHARED_DATA / "depmap_crc_subsample.csv").drop_duplicates("depmap_id").set_index("depmap_id")
    for cell in table.index:
        site = raw.loc[cell, "primary_or_metastasis"]
        assert table.loc[cell, "primary_or_metastasis"] == (None if pd.isna(site) else site)
        male = raw.loc[cell, "is_male"]
        assert table.loc[cell, "sex"] == (None if pd.isna(male) else "Male" if male else "Female")
    assert table["sex"].isna().sum() == 2 and table["primary_or_metastasis"].isna().sum() == 1
    assert set(grouping_choices(table, screen.data)) == {"lineage", "primary_or_metastasis", "sex", "is_mutated"}
    # no names in this table: every label is the DepMap id
    assert all(label == cell for cell, label in cell_line_labels(table).items())
