"""Which guides, sequences and lineages of a release an import keeps, and which names were asked for.

Guides kept: used by Chronos (current layout; legacy: not in ``Achilles_dropped_guides.csv``), aligned
to exactly one gene, and only once to it. Sequences / replicates kept: passing QC, with a cell line
whose lineage is known. Requested names match by the one rule of ``speclet_core.labels``; lineages
also ignore ``_``, ``-`` and spaces, and a legacy (CCLE) lineage word is hinted at its OncoTree name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from speclet_core.depmap.release import ReleaseTables
from speclet_core.depmap.run import ImportRun
from speclet_core.errors import SelectionError
from speclet_core.labels import describe_unknown, fold_label, join_labels, match_labels, means_all, parse_labels

# Legacy (CCLE) lineage words and their OncoTree lineage names: hints only, never applied silently.
LINEAGE_HINTS: dict[str, tuple[str, ...]] = {
    "colorectal": ("Bowel",),
    "central_nervous_system": ("CNS/Brain",),
    "blood": ("Myeloid", "Lymphoid"),
    "lymphocyte": ("Lymphoid",),
    "plasma_cell": ("Lymphoid",),
    "esophagus": ("Esophagus/Stomach",),
    "gastric": ("Esophagus/Stomach",),
    "stomach": ("Esophagus/Stomach",),
    "urinary_tract": ("Bladder/Urinary Tract",),
    "bladder": ("Bladder/Urinary Tract",),
    "upper_aerodigestive": ("Head and Neck",),
    "bile_duct": ("Biliary Tract",),
    "ovary": ("Ovary/Fallopian Tube",),
    "peripheral_nervous_system": ("Peripheral Nervous System",),
    "soft_tissue": ("Soft Tissue",),
    "skin": ("Skin",),
    "lung": ("Lung",),
    "breast": ("Breast",),
    "pancreas": ("Pancreas",),
    "liver": ("Liver",),
    "kidney": ("Kidney",),
    "bone": ("Bone",),
    "uterus": ("Uterus",),
    "prostate": ("Prostate",),
    "thyroid": ("Thyroid",),
    "cervix": ("Cervix",),
    "eye": ("Eye",),
}


# --------------------------------------------------------------------------- requested names


def parse_gene_list(text: str) -> list[str]:
    """Gene symbols from text: separated by commas, semicolons or whitespace; ``#`` starts a comment."""
    out: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        out.extend(t for t in re.split(r"[,;\s]+", line) if t)
    return list(dict.fromkeys(out))


def parse_genes(value: str | Sequence[str] | None) -> list[str] | None:
    """Requested gene symbols, ``None`` for all: text as ``parse_gene_list`` reads it, a list item by item."""
    if means_all(value):
        return None
    return parse_gene_list(value) if isinstance(value, str) else parse_labels(value)


def lineage_hints(word: str, available: Sequence[str]) -> list[str]:
    """Available lineages that a legacy (CCLE) word names in OncoTree, or the other way round."""
    folded = {fold_label(a): a for a in available}
    hints: list[str] = []
    for legacy, oncotree in LINEAGE_HINTS.items():
        if fold_label(word) == fold_label(legacy):
            hints.extend(folded[fold_label(o)] for o in oncotree if fold_label(o) in folded)
        elif fold_label(word) in {fold_label(o) for o in oncotree} and fold_label(legacy) in folded:
            hints.append(folded[fold_label(legacy)])
    return list(dict.fromkeys(hints))


def match_request(
    t: ReleaseTables, gene_list: list[str], lineage_list: list[str] | None, seqs: pd.DataFrame
) -> tuple[list[str], list[str]]:
    """Requested genes and lineages as the release spells them; every unknown name reported at once."""
    symbols = sorted(t.guides["symbol"].dropna().unique())
    genes, unknown_genes = match_labels(gene_list, symbols)
    problems = [describe_unknown(unknown_genes, symbols, "gene", t.files.guide_map.name)] if unknown_genes else []
    unknown_lineages: list[str] = []
    if lineage_list is None:
        lineages = sorted(seqs["lineage"].dropna().unique())
    else:
        available = sorted(t.models["lineage"].dropna().unique())
        lineages, unknown_lineages = match_labels(lineage_list, available, fold=True)
        if unknown_lineages:
            hints = {u: lineage_hints(u, available) for u in unknown_lineages}
            problems.append(describe_unknown(unknown_lineages, available, "lineage", t.files.models.name, hints=hints))
    if problems:
        n = len(unknown_genes) + len(unknown_lineages)
        raise SelectionError(
            f"{t.files.root}: {n} requested name{'s' if n > 1 else ''} not in the release; "
            "check the spelling (lineages as written in the release)\n" + "\n".join(problems)
        )
    return genes, lineages


# --------------------------------------------------------------------------- guides and sequences


def guide_status(guides: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per guide: why it is dropped (or ``"kept"``), and its one gene."""
    used = guides.groupby("sgrna", sort=True)["used"].all()
    with_gene = guides.dropna(subset=["symbol"])
    n_genes = with_gene.groupby("sgrna")["symbol"].nunique().reindex(used.index, fill_value=0)
    most = with_gene.groupby(["sgrna", "symbol"]).size().groupby(level=0).max().reindex(used.index, fill_value=0)
    status = np.select(
        [~used.to_numpy(dtype=bool), n_genes.to_numpy() == 0, n_genes.to_numpy() > 1, most.to_numpy() > 1],
        ["not_used", "no_gene", "several_genes", "several_alignments"],
        default="kept",
    )
    gene = with_gene.drop_duplicates("sgrna").set_index("sgrna")["symbol"].reindex(used.index)
    return pd.Series(status, index=used.index), gene


def select_guides(run: ImportRun, t: ReleaseTables, genes: list[str]) -> pd.Series:
    """Kept guides of the requested genes → their gene; counts the dropped ones."""
    status, guide_gene = guide_status(t.guides)
    relevant = status.reindex(t.guides.loc[t.guides["symbol"].isin(genes), "sgrna"].unique())
    run.dropped.update(
        guides_not_used=int(relevant.eq("not_used").sum()),
        guides_on_several_genes=int(relevant.eq("several_genes").sum()),
        guides_aligned_several_times=int(relevant.eq("several_alignments").sum()),
    )
    kept = guide_gene.reindex(relevant.index[relevant.eq("kept")])
    without = [g for g in genes if g not in set(kept)]
    if len(without) == len(genes):
        raise SelectionError(
            f"{t.files.guide_map.name}: no usable guide for {join_labels(without)} "
            f"(guides must be {t.guides.attrs.get('used_rule', 'used')}, on one gene, aligned once); "
            f"choose other genes"
        )
    if without:
        run.warnings.append(
            f"no usable guide for {len(without)} gene(s) ({join_labels(without)}); they are not in the table"
        )
    return kept


def select_sequences(run: ImportRun, seqs: pd.DataFrame, lineages: list[str], all_lineages: bool) -> pd.DataFrame:
    """QC-passing sequences of the chosen lineages (LFC column position, cell line, batch, …)."""
    f = run.files
    in_map = seqs["in_map"].eq("both").to_numpy()
    has_model = seqs["in_models"].eq("both").to_numpy()
    has_lineage = seqs["lineage"].notna().to_numpy()
    chosen = seqs["lineage"].isin(lineages).to_numpy()
    if "passes_qc" in seqs.columns:
        passes = seqs["passes_qc"].eq(True).to_numpy()
    else:
        passes = np.ones(len(seqs), dtype=bool)
        run.warnings.append(f"{f.sequence_map.name}: no QC column; every sequence was kept")
    run.dropped.update(
        sequences_not_in_map=int((~in_map).sum()),
        sequences_without_cell_line=int((in_map & ~has_model).sum()),
        sequences_without_lineage=int((in_map & has_model & ~has_lineage).sum()) if all_lineages else 0,
        sequences_failing_qc=int((in_map & has_model & chosen & ~passes).sum()),
    )
    if not in_map.all():
        run.warnings.append(
            f"{int((~in_map).sum())} column(s) of {f.lfc.name} are not in {f.sequence_map.name} "
            f"({join_labels(seqs.loc[~in_map, 'sequence_id'].tolist())}); skipped"
        )
    if run.dropped["sequences_without_cell_line"]:
        run.warnings.append(
            f"{run.dropped['sequences_without_cell_line']} sequence(s) name a cell line not in {f.models.name}; skipped"
        )
    kept = seqs.loc[in_map & has_model & has_lineage & chosen & passes].reset_index(drop=True)
    if kept.empty:
        screened = sorted(seqs.loc[in_map & has_model & has_lineage, "lineage"].unique())
        raise SelectionError(
            f"{f.lfc.name}: no QC-passing screen of lineage(s) {join_labels(lineages)}; "
            f"lineages screened in this release include {join_labels(screened, 12)}"
        )
    empty = [lin for lin in lineages if lin not in set(kept["lineage"])]
    if empty:
        run.warnings.append(f"no QC-passing screen of {join_labels(empty)}; not in the table")
    return kept

