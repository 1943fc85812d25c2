"""DepMap release import: small release folders in both layouts, checked row for row."""

from __future__ import annotations

import gzip
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from depmap_releases import (  # tests/depmap_releases.py
    EXPRESSION,
    GENE_INDEX,
    LEGACY_REPLICATES,
    LFC_COLUMNS,
    MISSING_LFC,
    RELATIVE_CN,
    lfc_value,
    write_current_release,
    write_legacy_release,
)

from speclet_core.cli.main import main
from speclet_core.data.screen import load_screen
from speclet_core.data.selection import select_screen
from speclet_core.depmap import matrix as depmap_matrix
from speclet_core.depmap.importer import import_depmap, inspect_release
from speclet_core.depmap.omics import CopyNumberScale
from speclet_core.depmap.output import ImportResult, metadata_path_for, read_import_metadata, write_screen
from speclet_core.depmap.progress import TerminalProgress
from speclet_core.depmap.release import DepMapImportError
from speclet_core.depmap.selection import parse_gene_list
from speclet_core.errors import DataReadError, DataValidationError, SelectionError
from speclet_core.settings import Settings


@pytest.fixture
def current_release(tmp_path: Path) -> Path:
    return write_current_release(tmp_path / "release_24q2")


@pytest.fixture
def legacy_release(tmp_path: Path) -> Path:
    return write_legacy_release(tmp_path / "release_21q2")


def _import(release: Path, genes: str | list[str], lineages: str | list[str], **kwargs: Any) -> ImportResult:
    """``import_depmap`` with this test's isolated data dir as the settings."""
    return import_depmap(release, genes, lineages, settings=Settings.from_env(), **kwargs)


def _rows(df: pd.DataFrame, cols: list[str]) -> list[tuple]:
    return [tuple(r) for r in df[cols].itertuples(index=False, name=None)]


# --------------------------------------------------------------------------- current layout


def expected_current() -> list[tuple]:
    kept_guides = {"KRAS_g1": "KRAS", "KRAS_g2": "KRAS", "BRAF_g1": "BRAF", "HLA-A_g1": "HLA-A"}
    kept_seqs = {"SQ1": ("ACH-000001", "Skin", "Avana-b1"), "SQ2": ("ACH-000001", "Skin", "Avana-b2"),
                 "SQ4": ("ACH-000003", "Bowel", "Avana-b1"), "SQ6": ("ACH-000005", "Bowel", "Avana-b2")}
    rows = []
    for g, gene in kept_guides.items():
        for s, (model, lineage, batch) in kept_seqs.items():
            if (g, s) in MISSING_LFC:
                continue
            rows.append((gene, g, model, lineage, lfc_value(g, s), s, batch, "broad"))
    return sorted(rows)


@pytest.mark.parametrize("leading_ids", [True, False])
def test_current_release_imports_row_for_row(tmp_path: Path, leading_ids: bool) -> None:
    release = write_current_release(tmp_path / "rel", leading_ids=leading_ids)
    result = _import(release, "KRAS, BRAF,hla-a", "skin,BOWEL")
    df = result.data
    cols = ["hugo_symbol", "sgrna", "depmap_id", "lineage", "lfc", "replicate_id", "pdna_batch", "screen"]
    assert sorted(_rows(df, cols)) == expected_current()
    assert len(df) == 14
    # covariates joined per (cell line, gene); ACH-000005 has no expression
    for row in df.itertuples(index=False):
        expr = EXPRESSION.get(row.depmap_id)
        if expr is None:
            assert np.isnan(row.rna_expr)
        else:
            assert row.rna_expr == expr[GENE_INDEX[row.hugo_symbol]]
        assert row.gene_cn == pytest.approx(RELATIVE_CN[row.depmap_id][GENE_INDEX[row.hugo_symbol]], abs=1e-12)
    subtype = dict(zip(df["depmap_id"], df["lineage_subtype"], strict=False))
    assert subtype == {"ACH-000001": "Melanoma", "ACH-000003": "Colon Adenocarcinoma", "ACH-000005": "Rectal Adenocarcinoma"}
    assert df.loc[df["depmap_id"] == "ACH-000005", "primary_or_metastasis"].isna().all()

    m = result.metadata
    assert m["layout"] == "current" and m["library"] == "avana"
    assert m["dropped"] == {
        "guides_not_used": 1, "guides_on_several_genes": 1, "guides_aligned_several_times": 1,
        "sequences_not_in_map": 1, "sequences_without_cell_line": 0, "sequences_without_lineage": 0,
        "sequences_failing_qc": 1, "guides_not_in_lfc": 0, "readings_missing_lfc": 2,
    }
    assert m["copy_number"]["source_scale"] == "log2(relative copy number + 1)"
    assert m["copy_number"]["conversion"].startswith("gene_cn = 2**x - 1")
    assert m["expression"]["cell_lines_without_values"] == 1
    assert m["counts"] == {"rows": 14, "genes": 3, "sgrnas": 4, "cell_lines": 3, "lineages": 2, "sequences": 4}
    assert m["lineages"] == ["Bowel", "Skin"]
    assert any("SQ7" in w for w in result.warnings)
    assert any("ACH-000005" in w and "rna_expr" in w for w in result.warnings)
    json.dumps(m)  # JSON-able


def test_legacy_release_imports_row_for_row(legacy_release: Path) -> None:
    result = _import(legacy_release, ["KRAS", "BRAF"], ["Skin", "colorectal"])
    reps = [r[0] for r in LEGACY_REPLICATES]
    kept = {reps[0]: ("ACH-000001", "skin"), reps[1]: ("ACH-000001", "skin"), reps[3]: ("ACH-000003", "colorectal")}
    expected = sorted(
        (gene, g, model, lineage, lfc_value(g, LFC_COLUMNS[reps.index(r)]), r, "2" if "batch2" in r else "3")
        for g, gene in {"KRAS_g1": "KRAS", "KRAS_g2": "KRAS", "BRAF_g1": "BRAF"}.items()
        for r, (model, lineage) in kept.items()
        if (g, r) != ("KRAS_g2", reps[3])
    )
    cols = ["hugo_symbol", "sgrna", "depmap_id", "lineage", "lfc", "replicate_id", "pdna_batch"]
    assert sorted(_rows(result.data, cols)) == expected
    assert result.metadata["layout"] == "legacy"
    d = result.metadata["dropped"]
    assert (d["guides_not_used"], d["guides_on_several_genes"], d["guides_aligned_several_times"]) == (1, 1, 1)
    assert d["sequences_failing_qc"] == 1 and d["readings_missing_lfc"] == 1
    assert "Achilles_dropped_guides.csv" in result.metadata["guide_rule"]
    # only ACH-000001 has expression; every line has copy number
    by_line = result.data.groupby("depmap_id")["rna_expr"].apply(lambda s: s.notna().all())
    assert by_line.to_dict() == {"ACH-000001": True, "ACH-000003": False}
    kras3 = result.data[(result.data["depmap_id"] == "ACH-000003") & (result.data["hugo_symbol"] == "KRAS")]
    assert kras3["gene_cn"].to_numpy() == pytest.approx([3.0] * len(kras3))


def test_written_table_passes_validation_and_selection(current_release: Path, tmp_path: Path) -> None:
    result = _import(current_release, "KRAS,BRAF,HLA-A", "Skin,Bowel")
    table, meta_path = write_screen(result, tmp_path / "out" / "screen.parquet")
    screen = load_screen(table)
    assert len(screen.data) == 14 and screen.covariates == ("rna_expr", "gene_cn")
    sel = select_screen(screen, genes=["KRAS"], lineages=["Bowel"])
    assert sel.genes == ("KRAS",) and sel.cell_lines == ("ACH-000003", "ACH-000005")
    embedded = json.loads(pq.read_schema(table).metadata[b"speclet.import"])
    assert embedded == json.loads(meta_path.read_text()) == read_import_metadata(table)
    assert meta_path.name == "screen.import.json"

    csv_path, csv_meta = write_screen(result, tmp_path / "out" / "screen.csv")
    from_csv = load_screen(csv_path).data.sort_values(["sgrna", "replicate_id"]).reset_index(drop=True)
    from_parquet = screen.data.sort_values(["sgrna", "replicate_id"]).reset_index(drop=True)
    assert from_csv["lfc"].tolist() == from_parquet["lfc"].tolist()
    assert from_csv["gene_cn"].tolist() == from_parquet["gene_cn"].tolist()
    assert read_import_metadata(csv_path)["counts"]["rows"] == 14
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "screen.csv", "screen.import.json", "screen.parquet"
    ]  # the sidecars share a name: the last write wins, and no temporary files are left


def test_write_screen_refuses_unknown_suffix_and_leaves_nothing_on_failure(
    current_release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _import(current_release, "KRAS", "Skin")
    with pytest.raises(DepMapImportError, match=r"\.xlsx: unknown output format"):
        write_screen(result, tmp_path / "screen.xlsx")

    def broken(*args: object, **kwargs: object) -> None:
        Path(args[1]).write_bytes(b"PAR1 half")  # a partial file, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(DataReadError, match="No space left on device"):
        write_screen(result, tmp_path / "screen.parquet")
    assert list(tmp_path.glob("screen*")) == [] and list(tmp_path.glob(".screen*")) == []


# --------------------------------------------------------------------------- names and problems


def test_unknown_genes_and_lineages_are_reported_with_close_matches(current_release: Path) -> None:
    with pytest.raises(SelectionError) as err:
        _import(current_release, "KRSA,BRAF,XYZ1", "colorectal,Skn")
    text = str(err.value)
    assert "4 requested names not in the release" in text
    assert "\n2 genes not in AvanaGuideMap.csv: 'KRSA' (did you mean KRAS?), 'XYZ1'\n" in text
    assert "\n2 lineages not in Model.csv: 'colorectal' (did you mean Bowel?), 'Skn' (did you mean Skin?)" in text


@pytest.mark.parametrize("everything", ["all", "*", "ALL", ["all"], ["*"], None, ""])
def test_every_spelling_of_all_imports_every_lineage(current_release: Path, everything: Any) -> None:
    result = _import(current_release, "KRAS", everything)
    assert result.metadata["lineages_requested"] == "all"
    assert result.metadata["lineages"] == ["Bowel", "CNS/Brain", "Skin"]


def test_gene_with_no_usable_guide(current_release: Path) -> None:
    (current_release / "AvanaGuideMap.csv").write_text(
        (current_release / "AvanaGuideMap.csv").read_text().replace("TP53_g1,chr17_1_+,TP53 (7157),1,True", "TP53_g1,chr17_1_+,TP53 (7157),1,False")
    )
    with pytest.raises(SelectionError, match=r"no usable guide for TP53"):
        _import(current_release, "TP53", "all")
    result = _import(current_release, "TP53,KRAS", "all")
    assert set(result.data["hugo_symbol"]) == {"KRAS"}
    assert any("no usable guide for 1 gene(s) (TP53)" in w for w in result.warnings)
    # "all" lineages includes CNS/Brain (SQ5) and still drops the failing sequence
    assert set(result.data["replicate_id"]) == {"SQ1", "SQ2", "SQ4", "SQ5", "SQ6"}


def test_missing_files_and_columns_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataReadError, match="not a DepMap release folder; expected AvanaLogfoldChange.csv"):
        _import(tmp_path, "KRAS", "Skin")
    release = write_current_release(tmp_path / "rel")
    (release / "ScreenSequenceMap.csv").unlink()
    with pytest.raises(DataReadError, match="missing ScreenSequenceMap.csv"):
        _import(release, "KRAS", "Skin")
    release = write_current_release(tmp_path / "rel2")
    model = release / "Model.csv"
    model.write_text(model.read_text().replace("OncotreeLineage", "Lineage_Oncotree"))
    with pytest.raises(DataValidationError) as err:
        _import(release, "KRAS", "Skin")
    assert err.value.source.endswith("Model.csv")
    assert "missing column 'OncotreeLineage'" in err.value.problems[0]
    with pytest.raises(DepMapImportError, match="no KYLogfoldChange.csv for library 'ky'"):
        _import(write_current_release(tmp_path / "rel3"), "KRAS", "Skin", library="ky")


def test_damaged_lfc_matrix_names_file_and_column(current_release: Path) -> None:
    lfc = current_release / "AvanaLogfoldChange.csv"
    lines = lfc.read_text().splitlines()
    cells = lines[1].split(",")
    cells[1] = "oops"  # KRAS_g1 in SQ1
    lines[1] = ",".join(cells)
    lfc.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataReadError, match=r"AvanaLogfoldChange.csv: .*column 2 \('SQ1'\).*'oops'"):
        _import(current_release, "KRAS", "all")
    # a damaged column that the selection does not read is never converted, so it does not stop the import
    assert len(_import(current_release, "BRAF", "Bowel").data) == 2


def test_gzipped_matrices_import_the_same(current_release: Path, tmp_path: Path) -> None:
    plain = _import(current_release, "KRAS,BRAF", "Skin,Bowel").data
    for name in ("AvanaLogfoldChange.csv", "OmicsCNGene.csv"):
        src = current_release / name
        with open(src, "rb") as fh, gzip.open(src.with_name(name + ".gz"), "wb") as out:
            out.write(fh.read())
        src.unlink()
    result = _import(current_release, "KRAS,BRAF", "Skin,Bowel", cache=True)
    assert result.metadata["files"]["lfc"] == "AvanaLogfoldChange.csv.gz"
    pd.testing.assert_frame_equal(plain, result.data)


def test_parse_gene_list() -> None:
    assert parse_gene_list("KRAS, BRAF;TP53\nHLA-A  # a comment\n# only comment\nKRAS") == ["KRAS", "BRAF", "TP53", "HLA-A"]


# --------------------------------------------------------------------------- streaming, cache, progress


def test_streams_in_small_blocks(current_release: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _import(current_release, "KRAS,BRAF,HLA-A", "Skin,Bowel").data
    monkeypatch.setattr(depmap_matrix, "BLOCK_SIZE", 64)  # a few rows per block
    seen: list[int] = []
    real = depmap_matrix.pc.is_in

    def counting(values, **kw):  # type: ignore[no-untyped-def]
        seen.append(len(values))
        return real(values, **kw)

    monkeypatch.setattr(depmap_matrix.pc, "is_in", counting)
    chunked = _import(current_release, "KRAS,BRAF,HLA-A", "Skin,Bowel").data
    assert len([n for n in seen if n < 9]) >= 3  # the 9-row LFC matrix went through in several blocks
    pd.testing.assert_frame_equal(whole, chunked)


def test_cache_gives_identical_table_and_is_invalidated(current_release: Path) -> None:
    plain = _import(current_release, "KRAS,BRAF,HLA-A", "Skin,Bowel")
    first = _import(current_release, "KRAS,BRAF,HLA-A", "Skin,Bowel", cache=True)
    cache_dir = current_release / ".speclet-cache"
    assert first.metadata["cache"]["dir"] == str(cache_dir)
    assert first.metadata["cache"]["built"] == ["AvanaLogfoldChange.csv"]  # omics always stream
    assert sorted(p.name for p in cache_dir.iterdir()) == ["AvanaLogfoldChange.json", "AvanaLogfoldChange.parquet"]
    pd.testing.assert_frame_equal(plain.data, first.data)
    second = _import(current_release, "TP53", "all", cache=True)
    assert second.metadata["cache"]["built"] == [] and second.metadata["cache"]["used"] == ["AvanaLogfoldChange.csv"]
    assert len(second.data) == 5 and second.data["lfc"].tolist() == [
        lfc_value("TP53_g1", s) for s in ("SQ1", "SQ2", "SQ4", "SQ5", "SQ6")
    ]
    assert inspect_release(current_release, settings=Settings.from_env()).cache_ready

    lfc = current_release / "AvanaLogfoldChange.csv"
    lfc.write_text(lfc.read_text().replace(repr(lfc_value("TP53_g1", "SQ1")), "-9.5"))
    os.utime(lfc, ns=(lfc.stat().st_atime_ns, lfc.stat().st_mtime_ns + 10**9))
    third = _import(current_release, "TP53", "all", cache=True)
    assert third.metadata["cache"]["built"] == ["AvanaLogfoldChange.csv"]
    assert third.data.loc[third.data["replicate_id"] == "SQ1", "lfc"].tolist() == [-9.5]


def test_cache_falls_back_to_data_dir_when_release_is_read_only(
    current_release: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(depmap_matrix, "_dir_writable", lambda folder: False)
    result = _import(current_release, "KRAS", "Skin", cache=True)
    cache_dir = Path(result.metadata["cache"]["dir"])
    data_dir = Path(os.environ["SPECLET_DATA_DIR"])
    assert cache_dir.parent == data_dir / "depmap-cache" and len(cache_dir.name) == 16
    assert (cache_dir / "AvanaLogfoldChange.parquet").exists()
    assert not (current_release / ".speclet-cache").exists()
    assert inspect_release(current_release, settings=Settings.from_env()).cache_ready  # found there without creating anything
    assert not (current_release / ".speclet-cache").exists()


def test_progress_reports_phases_in_order(current_release: Path) -> None:
    calls: list[tuple[str, float, str]] = []
    _import(current_release, "KRAS", "Skin", progress=lambda p, f, m: calls.append((p, f, m)), cache=True)
    phases = [c[0] for c in calls]
    assert phases[0] == "maps" and phases[-1] == "done" and calls[-1][1] == 1.0
    assert {"cache", "lfc", "expression", "copy_number"} <= set(phases)
    fractions = [c[1] for c in calls]
    assert fractions == sorted(fractions) and all(0.0 <= f <= 1.0 for f in fractions)


def test_terminal_progress_draws_a_bar() -> None:
    buf = io.StringIO()
    bar = TerminalProgress(buf, width=10, force=True)
    bar("lfc", 0.5, "reading AvanaLogfoldChange.csv")
    bar.close()
    assert buf.getvalue().startswith("\r[#####.....]  50% reading AvanaLogfoldChange.csv")
    assert buf.getvalue().endswith("\n")
    silent = io.StringIO()
    TerminalProgress(silent)("lfc", 0.5, "x")  # not a terminal
    assert silent.getvalue() == ""


def test_inspect_release_lists_lineages_and_usable_genes(current_release: Path, legacy_release: Path) -> None:
    info = inspect_release(current_release, settings=Settings.from_env())
    assert info.layout == "current" and info.n_sequences == 7
    assert info.lineages == {"Bowel": 2, "CNS/Brain": 1, "Skin": 1}
    assert info.genes == ("BRAF", "HLA-A", "KRAS", "TP53")
    assert info.files["expression"] == "OmicsExpressionTPMLogp1HumanProteinCodingGenes.csv"
    assert not info.cache_ready
    legacy = inspect_release(legacy_release, settings=Settings.from_env())
    assert legacy.layout == "legacy" and legacy.lineages == {"central_nervous_system": 1, "colorectal": 1, "skin": 1}


def test_relative_copy_number_scale_is_kept(current_release: Path) -> None:
    result = _import(current_release, "KRAS", "Skin", cn_scale=CopyNumberScale.RELATIVE)
    assert result.data["gene_cn"].tolist() == pytest.approx([math.log2(2.0)] * len(result.data))
    assert result.metadata["copy_number"]["conversion"] == "none"


# --------------------------------------------------------------------------- command line


def test_cli_imports_and_writes(current_release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    genes = tmp_path / "genes.txt"
    genes.write_text("# my genes\nKRAS\nBRAF\n")
    out = tmp_path / "screen.parquet"
    code = main(["import-depmap", "--release-dir", str(current_release), "--gene-list", str(genes),
                 "--genes", "HLA-A", "--lineages", "skin,bowel", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "wrote 14 readings" in captured.out
    assert len(load_screen(out).data) == 14
    assert metadata_path_for(out).exists()
    assert "warning:" in captured.err and "SQ7" in captured.err


def test_cli_bad_input_exits_2_without_output(current_release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "screen.parquet"
    code = main(["import-depmap", "--release-dir", str(current_release), "--genes", "KRSA", "--lineages", "Skin",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "1 gene not in AvanaGuideMap.csv: 'KRSA' (did you mean KRAS?)" in err and "Traceback" not in err
    assert not out.exists() and not metadata_path_for(out).exists()
    assert main(["import-depmap", "--release-dir", str(current_release), "--lineages", "Skin", "--out", str(out)]) == 2
    assert "give genes with --genes or --gene-list" in capsys.readouterr().err


# --------------------------------------------------------------------------- fits


@pytest.mark.slow
def test_imported_table_fits(current_release: Path, tmp_path: Path) -> None:
    from speclet_core.fitting.engine import run_fit
    from speclet_core.fitting.request import prepare_request
    from speclet_core.models.spec import list_models
    from speclet_core.records import SamplerSettings

    settings = Settings.from_env()
    result: ImportResult = _import(current_release, "KRAS,BRAF,HLA-A,TP53", "all")
    table, _ = write_screen(result, tmp_path / "screen.parquet")
    n_lineages = result.metadata["counts"]["lineages"]
    spec = next(s for s in list_models() if s.min_lineages <= n_lineages)
    sampler = SamplerSettings(chains=2, tune=100, draws=100)
    request = prepare_request(str(table), spec.name, sampler=sampler, seed=3, settings=settings)
    fit = run_fit(request, settings=settings)
    gene_effect = fit.idata.posterior["gene_effect"]
    assert list(gene_effect.coords["gene"].values) == ["BRAF", "HLA-A", "KRAS", "TP53"]
    assert np.isfinite(gene_effect.values).all()
