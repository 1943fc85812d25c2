"""Tiny DepMap release folders (current 22Q2+ and legacy 20Q–21Q layouts) with known contents.

Shared by tests/test_depmap.py and the Data page's import-panel AppTest.
"""

from __future__ import annotations

import math
from pathlib import Path

# guide → rows of (alignment, gene, UsedByChronos, DropReason); odd cases noted
CURRENT_GUIDES = {
    "KRAS_g1": [("chr12_1_+", "KRAS (3845)", "True", "")],
    "KRAS_g2": [("chr12_2_+", "KRAS (3845)", "True", "")],
    "KRAS_g3": [("chr12_3_+", "KRAS (3845)", "True", ""), ("chr12_4_+", "KRAS (3845)", "True", "")],  # twice on KRAS
    "KRAS_g4": [("chr12_5_+", "KRAS (3845)", "False", "low efficacy")],  # not used by Chronos
    "BRAF_g1": [("chr7_1_-", "BRAF (673)", "True", "")],
    "BRAF_g2": [("chr7_2_-", "BRAF (673)", "True", ""), ("chr7_3_-", "BRAFP1 (286494)", "True", "")],  # two genes
    "HLA-A_g1": [("chr6_1_+", "HLA-A (3105)", "True", "")],
    "TP53_g1": [("chr17_1_+", "TP53 (7157)", "True", "")],
    "NT_g1": [("", "", "False", "non-targeting")],
}
GUIDE_ORDER = list(CURRENT_GUIDES)

# SequenceID, ModelID, pDNABatch, PassesQC, ExcludeFromCRISPRCombined
CURRENT_SEQUENCES = [
    ("SQ1", "ACH-000001", "Avana-b1", "True", "False"),
    ("SQ2", "ACH-000001", "Avana-b2", "True", "False"),  # second replicate of the same line
    ("SQ3", "ACH-000002", "Avana-b1", "False", "False"),  # fails QC
    ("SQ4", "ACH-000003", "Avana-b1", "True", "False"),
    ("SQ5", "ACH-000004", "Avana-b2", "True", "False"),  # CNS/Brain: not selected
    ("SQ6", "ACH-000005", "Avana-b2", "TRUE", "True"),  # no expression for this line
]
LFC_COLUMNS = ["SQ1", "SQ2", "SQ3", "SQ4", "SQ5", "SQ6", "SQ7"]  # SQ7: not in the screen map
MISSING_LFC = {("KRAS_g1", "SQ4"): "NA", ("BRAF_g1", "SQ1"): ""}

# ModelID, OncotreeLineage, OncotreeSubtype, PrimaryOrMetastasis
MODELS = [
    ("ACH-000001", "Skin", "Melanoma", "Primary"),
    ("ACH-000002", "Skin", "Melanoma", "Metastatic"),
    ("ACH-000003", "Bowel", "Colon Adenocarcinoma", "Primary"),
    ("ACH-000004", "CNS/Brain", "Glioblastoma", "Primary"),
    ("ACH-000005", "Bowel", "Rectal Adenocarcinoma", ""),
]
GENE_COLUMNS = ["KRAS (3845)", "BRAF (673)", "HLA-A (3105)", "TP53 (7157)"]
EXPRESSION = {  # ACH-000005 has none
    "ACH-000001": [5.1, 3.2, 9.0, 4.4],
    "ACH-000002": [4.9, 3.0, 8.5, 4.1],
    "ACH-000003": [6.0, 2.5, 8.0, 4.0],
    "ACH-000004": [2.0, 1.0, 7.0, 3.0],
}
RELATIVE_CN = {  # the truth; files hold log2(relative CN + 1)
    "ACH-000001": [1.0, 2.0, 0.5, 1.0],
    "ACH-000002": [1.0, 1.0, 1.0, 1.0],
    "ACH-000003": [3.0, 1.0, 0.0, 0.75],
    "ACH-000004": [1.0, 1.0, 1.0, 1.0],
    "ACH-000005": [0.25, 1.5, 1.0, 1.0],
}
GENE_INDEX = {"KRAS": 0, "BRAF": 1, "HLA-A": 2, "TP53": 3}


def lfc_value(guide: str, sequence: str) -> float:
    """The reading written for a guide in a sequence (distinct per cell, easy to recognise)."""
    return round(-0.1 * (GUIDE_ORDER.index(guide) + 1) - 0.013 * (LFC_COLUMNS.index(sequence) + 1), 6)


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def _lfc_rows(columns: list[str]) -> list[list[object]]:
    rows = []
    for g in GUIDE_ORDER:
        rows.append([g, *[MISSING_LFC.get((g, s), repr(lfc_value(g, s))) for s in columns]])
    return rows


def write_current_release(root: Path, *, leading_ids: bool = True) -> Path:
    """A 22Q2+-style release: 9 guides × 7 sequences, 5 cell lines, expression and copy number."""
    root.mkdir(parents=True, exist_ok=True)
    _csv(root / "AvanaLogfoldChange.csv", ["", *LFC_COLUMNS], _lfc_rows(LFC_COLUMNS))
    guide_rows = [
        [g, aln, gene, len(rows), used, reason] for g, rows in CURRENT_GUIDES.items() for aln, gene, used, reason in rows
    ]
    _csv(root / "AvanaGuideMap.csv", ["sgRNA", "GenomeAlignment", "Gene", "nAlignments", "UsedByChronos", "DropReason"], guide_rows)
    seq_rows: list[list[object]] = [
        [sid, f"SC-{mid[-1]}", f"MC-{mid[-1]}", mid, "2DS", "Avana", 21, batch, qc, excl]
        for sid, mid, batch, qc, excl in CURRENT_SEQUENCES
    ]
    seq_rows.append(["PDNA1", "", "", "", "", "Avana", 0, "Avana-b1", "", ""])  # pDNA: no cell line
    _csv(
        root / "ScreenSequenceMap.csv",
        ["SequenceID", "ScreenID", "ModelConditionID", "ModelID", "ScreenType", "Library", "Days", "pDNABatch",
         "PassesQC", "ExcludeFromCRISPRCombined"],
        seq_rows,
    )
    _csv(
        root / "Model.csv",
        ["ModelID", "CellLineName", "OncotreeLineage", "OncotreeSubtype", "OncotreePrimaryDisease", "PrimaryOrMetastasis"],
        [[m, f"LINE{m[-1]}", lin, sub, sub, pom] for m, lin, sub, pom in MODELS],
    )
    if leading_ids:  # 25Q-style: leading ID columns and a non-default duplicate row
        rows: list[list[object]] = []
        for n, (m, v) in enumerate(EXPRESSION.items()):
            rows.append([n, f"CDS-{n}", m, "Yes", f"MC-{m[-1]}", "Yes", *v])
        rows.append([9, "CDS-9", "ACH-000001", "No", "MC-9", "No", 0.0, 0.0, 0.0, 0.0])
        _csv(
            root / "OmicsExpressionTPMLogp1HumanProteinCodingGenes.csv",
            ["", "SequencingID", "ModelID", "IsDefaultEntryForModel", "ModelConditionID", "IsDefaultEntryForMC",
             *GENE_COLUMNS],
            rows,
        )
    else:
        _csv(
            root / "OmicsExpressionProteinCodingGenesTPMLogp1.csv",
            ["", *GENE_COLUMNS],
            [[m, *v] for m, v in EXPRESSION.items()],
        )
    _csv(
        root / "OmicsCNGene.csv",
        ["", *GENE_COLUMNS],
        [[m, *[repr(math.log2(x + 1)) for x in v]] for m, v in RELATIVE_CN.items()],
    )
    return root


LEGACY_REPLICATES = [  # replicate_ID, DepMap_ID, pDNA_batch, passes_QC
    ("LINE1-311Cas9_RepA_p6_batch2", "ACH-000001", "2", "TRUE"),
    ("LINE1-311Cas9_RepB_p6_batch2", "ACH-000001", "2", "TRUE"),
    ("LINE2-311Cas9_RepA_p5_batch3", "ACH-000002", "3", "FALSE"),  # fails QC
    ("LINE3-311Cas9_RepA_p6_batch3", "ACH-000003", "3", "TRUE"),
    ("LINE4-311Cas9_RepA_p6_batch3", "ACH-000004", "3", "TRUE"),
]
LEGACY_LINEAGES = {"ACH-000001": "skin", "ACH-000002": "skin", "ACH-000003": "colorectal", "ACH-000004": "central_nervous_system"}


def write_legacy_release(root: Path) -> Path:
    """A 20Q–21Q-style Achilles release with the same odd cases."""
    root.mkdir(parents=True, exist_ok=True)
    reps = [r[0] for r in LEGACY_REPLICATES]
    rows = [[g, *[("NA" if (g, r) == ("KRAS_g2", reps[3]) else repr(lfc_value(g, LFC_COLUMNS[i]))) for i, r in enumerate(reps)]]
            for g in GUIDE_ORDER if g != "NT_g1"]
    _csv(root / "Achilles_logfold_change.csv", ["Construct Barcode", *reps], rows)
    _csv(root / "Achilles_replicate_map.csv", ["replicate_ID", "DepMap_ID", "pDNA_batch", "passes_QC"],
         [list(r) for r in LEGACY_REPLICATES])
    guide_rows = [[g, aln, gene, len(rs)] for g, rs in CURRENT_GUIDES.items() if g != "NT_g1" for aln, gene, _, _ in rs]
    _csv(root / "Achilles_guide_map.csv", ["sgrna", "genome_alignment", "gene", "n_alignments"], guide_rows)
    _csv(root / "Achilles_dropped_guides.csv", [""], [["KRAS_g4"]])
    # late legacy files carry OncoTree names too; the CCLE words (colorectal, skin) are the ones kept
    _csv(root / "sample_info.csv",
         ["DepMap_ID", "stripped_cell_line_name", "lineage", "lineage_subtype", "primary_or_metastasis", "OncotreeLineage"],
         [[m, f"LINE{m[-1]}", lin, "sub" + m[-1], "Primary", "Oncotree" + m[-1]] for m, lin in LEGACY_LINEAGES.items()])
    _csv(root / "CCLE_expression.csv", ["", *GENE_COLUMNS], [[m, *EXPRESSION[m]] for m in ("ACH-000001", "ACH-000004")])
    _csv(root / "CCLE_gene_cn.csv", ["", *GENE_COLUMNS],
         [[m, *[repr(math.log2(x + 1)) for x in RELATIVE_CN[m]]] for m in LEGACY_LINEAGES])
    return root
