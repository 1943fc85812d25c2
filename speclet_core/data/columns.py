"""The columns of a screen table: which are required, which are names or numbers, and their aliases.

A screen table is tidy: one row per reading of one sgRNA in one cell line (see the README's table of
columns). Reading, validation, selection and the fingerprint all take their column lists from here.
"""

from __future__ import annotations

REQUIRED_COLUMNS: tuple[str, ...] = ("sgrna", "hugo_symbol", "depmap_id", "lineage", "lfc")
NAME_COLUMNS: tuple[str, ...] = ("sgrna", "hugo_symbol", "depmap_id", "lineage")
NUMERIC_COLUMNS: tuple[str, ...] = ("lfc", "rna_expr", "gene_cn")
# Identifiers kept as text whatever they look like (a batch "2" is a label, not a number).
TEXT_COLUMNS: tuple[str, ...] = (*NAME_COLUMNS, "replicate_id", "pdna_batch", "screen", "cell_line_name",
                                 "lineage_subtype", "primary_or_metastasis", "sex")
# Optional facts about a cell line (one value per cell line, checked by validation): shown next to its id and
# offered for colouring and grouping. They never change what a fit sees, so they are not in the fingerprint.
# canonical column -> how pages name it
CELL_LINE_ANNOTATIONS: dict[str, str] = {
    "cell_line_name": "cell line name",
    "lineage_subtype": "lineage subtype",
    "primary_or_metastasis": "primary / metastasis",
    "sex": "sex",
    "is_male": "male",
    "age": "age",
}
# Optional columns that change what a fit sees, so they are part of the fingerprint.
FINGERPRINT_OPTIONAL: tuple[str, ...] = ("replicate_id", "pdna_batch", "screen", "rna_expr", "gene_cn")

# canonical name -> other spellings seen in DepMap-derived tables (matched case-insensitively)
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "sgrna": ("sgrna", "sgrna_id", "guide", "construct_barcode"),
    "hugo_symbol": ("hugo_symbol", "gene", "gene_symbol", "symbol"),
    "depmap_id": ("depmap_id", "modelid", "model_id", "cell_line"),
    "lineage": ("lineage", "oncotreelineage", "oncotree_lineage"),
    "lfc": ("lfc", "log_fold_change", "logfoldchange", "log2fc"),
    "pdna_batch": ("pdna_batch", "p_dna_batch", "pdnabatch"),
    "gene_cn": ("gene_cn", "copy_number", "cn"),
    "rna_expr": ("rna_expr", "rna_expression", "expression"),
    "replicate_id": ("replicate_id", "replicate", "sequenceid", "sequence_id"),
    "cell_line_name": ("cell_line_name", "celllinename", "stripped_cell_line_name", "strippedcelllinename"),
    "lineage_subtype": ("lineage_subtype", "oncotreesubtype", "oncotree_subtype"),
    "primary_or_metastasis": ("primary_or_metastasis", "primaryormetastasis"),
}

# Cell texts read as missing, in screen tables and DepMap release files alike.
NA_VALUES = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A", "-"]
