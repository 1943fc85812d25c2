"""The screen-table door: formats, aliases and every validation rule (data.reading, data.validation, data.screen)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from speclet_core.data.reading import read_table
from speclet_core.data.screen import load_screen
from speclet_core.data.validation import validate_screen
from speclet_core.errors import DataReadError, DataValidationError

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _problems(df: pd.DataFrame) -> list[str]:
    _, report = validate_screen(df, "t.csv")
    return list(report.problems)


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet"])
def test_every_format_reads_the_same_table(tmp_path: Path, tiny_table: pd.DataFrame, suffix: str) -> None:
    path = tmp_path / f"screen{suffix}"
    if suffix == ".parquet":
        tiny_table.to_parquet(path)
    else:
        sep = "\t" if ".tsv" in suffix else ","
        tiny_table.to_csv(path, sep=sep, index=False, compression="gzip" if suffix.endswith(".gz") else None)
    screen = load_screen(path)
    assert screen.summarise()["rows"] == 6
    assert screen.genes == ("BRAF", "KRAS")
    np.testing.assert_allclose(screen.data["lfc"].to_numpy(), tiny_table["lfc"].to_numpy())


def test_bom_and_crlf_are_accepted(tmp_path: Path, tiny_table: pd.DataFrame) -> None:
    text = tiny_table.to_csv(index=False, lineterminator="\r\n")
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    screen = load_screen(path)
    assert list(screen.data.columns[:5]) == ["sgrna", "hugo_symbol", "depmap_id", "lineage", "lfc"]
    assert screen.data["lineage"].iloc[0] == "colorectal"  # no stray '\r'


def test_gzip_detected_by_content_not_name(tmp_path: Path, tiny_table: pd.DataFrame) -> None:
    path = tmp_path / "screen.csv"
    path.write_bytes(gzip.compress(tiny_table.to_csv(index=False).encode()))
    assert len(load_screen(path).data) == 6


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [("p_dna_batch", "pdna_batch"), ("copy_number", "gene_cn"), ("DepMap_ID", "depmap_id"), ("pDNA_batch", "pdna_batch")],
)
def test_column_aliases_are_mapped(tmp_path: Path, tiny_table: pd.DataFrame, alias: str, canonical: str) -> None:
    df = tiny_table.copy()
    if canonical == "depmap_id":
        df = df.rename(columns={"depmap_id": alias})
    else:
        df[alias] = ["1", "1", "2", "2", "1", "2"] if canonical == "pdna_batch" else [1.0, 1.1, 0.9, 1.0, 1.2, 0.8]
    path = tmp_path / "a.csv"
    df.to_csv(path, index=False)
    screen = load_screen(path)
    assert canonical in screen.data.columns
    assert alias not in screen.data.columns


def test_missing_file_and_folder_and_binary(tmp_path: Path) -> None:
    with pytest.raises(DataReadError, match="file not found"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataReadError, match="is a folder"):
        read_table(tmp_path)
    binary = tmp_path / "image.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(DataReadError, match="not a text table"):
        read_table(binary)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("sgrna,hugo_symbol\ng\xe9ne,A\n".encode("latin-1"))
    with pytest.raises(DataReadError, match="not UTF-8"):
        read_table(latin)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"garbage")
    with pytest.raises(DataReadError, match="Parquet"):
        read_table(broken)


# --------------------------------------------------------------------------- validation rules


def test_valid_table_has_no_problems(tiny_table: pd.DataFrame) -> None:
    assert _problems(tiny_table) == []


def test_empty_table(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataValidationError, match="empty"):
        load_screen(path)
    header_only = tmp_path / "header.csv"
    header_only.write_text("sgrna,hugo_symbol,depmap_id,lineage,lfc\n")
    with pytest.raises(DataValidationError, match="no rows"):
        load_screen(header_only)


def test_missing_required_column_names_it_and_suggests(tiny_table: pd.DataFrame) -> None:
    df = tiny_table.rename(columns={"lfc": "lfcc"}).drop(columns=["lineage"])
    problems = _problems(df)
    assert len(problems) == 1
    assert "'lfc' (did you mean 'lfcc'?)" in problems[0]
    assert "'lineage'" in problems[0]


def test_non_numeric_and_infinite_lfc_name_rows(tiny_table: pd.DataFrame) -> None:
    df = tiny_table.astype({"lfc": object})
    df.loc[1, "lfc"] = "oops"
    df.loc[4, "lfc"] = float("inf")
    problems = _problems(df)
    assert any("column 'lfc': non-numeric value (e.g. 'oops') in row 3" in p for p in problems)
    assert any("column 'lfc': infinite value in row 6" in p for p in problems)


def test_missing_lfc_is_dropped_and_counted(tmp_path: Path, tiny_table: pd.DataFrame) -> None:
    df = tiny_table.copy()
    df.loc[[0, 3], "lfc"] = np.nan
    path = tmp_path / "na.csv"
    df.to_csv(path, index=False, na_rep="NA")
    screen = load_screen(path)
    assert screen.n_missing_lfc == 2
    assert len(screen.data) == 4
    assert screen.summarise()["dropped_missing_lfc"] == 2


def test_sgrna_on_two_genes(tiny_table: pd.DataFrame) -> None:
    df = tiny_table.copy()
    df.loc[5, "sgrna"] = "g1"  # g1 now targets KRAS and BRAF
    problems = _problems(df)
    assert len(problems) == 1
    assert "sgRNA 'g1' maps to 2 genes (BRAF, KRAS)" in problems[0]
    assert "rows 2, 4, 7" in problems[0]


def test_cell_line_in_two_lineages(tiny_table: pd.DataFrame) -> None:
    df = tiny_table.copy()
    df.loc[4, "lineage"] = "skin"
    problems = _problems(df)
    assert len(problems) == 1
    assert "cell line 'ACH-000001' maps to 2 lineages (colorectal, skin)" in problems[0]


@pytest.mark.parametrize("column", ["sgrna", "hugo_symbol", "depmap_id", "lineage"])
def test_empty_names(tiny_table: pd.DataFrame, column: str) -> None:
    df = tiny_table.copy()
    df.loc[2, column] = "   "
    df.loc[3, column] = None
    problems = _problems(df)
    assert any(p.startswith(f"column '{column}': empty name in rows 4, 5") for p in problems)


def test_exact_duplicate_rows(tiny_table: pd.DataFrame) -> None:
    df = pd.concat([tiny_table, tiny_table.iloc[[2]]], ignore_index=True)
    problems = _problems(df)
    assert problems == ["1 exact duplicate row (row 8); remove the repeated rows"]


def test_every_problem_is_reported_at_once(tmp_path: Path, tiny_table: pd.DataFrame) -> None:
    df = tiny_table.astype({"lfc": object})
    df.loc[0, "lfc"] = "x"
    df.loc[1, "hugo_symbol"] = ""
    df.loc[4, "lineage"] = "skin"
    df = pd.concat([df, df.iloc[[5]]], ignore_index=True)
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataValidationError) as info:
        load_screen(path)
    assert len(info.value.problems) == 4
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------- real DepMap-derived tables


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not beside this checkout")
@pytest.mark.parametrize(
    ("name", "rows", "genes", "cell_lines", "lineages"),
    [("speclet_real_example.csv", 64, 10, 6, 2), ("depmap_crc_subsample.csv", 2598, 114, 10, 1)],
)
def test_real_tables_validate(name: str, rows: int, genes: int, cell_lines: int, lineages: int) -> None:
    screen = load_screen(SHARED_DATA / name)
    s = screen.summarise()
    assert (s["rows"], s["genes"], s["cell_lines"], s["lineages"]) == (rows, genes, cell_lines, lineages)
    assert set(screen.covariates) == {"rna_expr", "gene_cn"}  # copy_number mapped to gene_cn
    assert "pdna_batch" in screen.data.columns
    if name == "depmap_crc_subsample.csv":  # replicate ids with inner spaces survive intact
        assert "SW1463-311cas9 Rep A p5_batch2" in set(screen.data["replicate_id"])
