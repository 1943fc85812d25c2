"""What a DepMap release folder holds: layout detection, tolerant column matching, the small tables.

Two layouts are understood:

- current (22Q2 onward): ``AvanaLogfoldChange.csv`` / ``KYLogfoldChange.csv``, ``AvanaGuideMap.csv`` /
  ``KYGuideMap.csv``, ``ScreenSequenceMap.csv``, ``Model.csv``, optional ``OmicsExpression…`` and
  ``OmicsCNGene…`` matrices;
- legacy (20Q–21Q): ``Achilles_logfold_change.csv``, ``Achilles_replicate_map.csv``,
  ``Achilles_guide_map.csv``, ``Achilles_dropped_guides.csv``, ``sample_info.csv``, ``CCLE_expression.csv``,
  ``CCLE_gene_cn.csv``.

File names match case-insensitively (optionally gzip'd, ``.csv.gz``); column names match ignoring case and
punctuation, so ``passes_QC``, ``PassesQC`` and ``passes qc`` are one column. The big matrices are read by
``speclet_core.depmap.matrix``; this module reads only the small tables (maps, cell-line metadata).
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd

from speclet_core.data.columns import NA_VALUES
from speclet_core.data.paths import PathNotAllowedError, resolve_allowed_path
from speclet_core.errors import DataReadError, DataValidationError, SpecletError
from speclet_core.labels import close_matches, join_labels


class DepMapImportError(SpecletError, ValueError):
    """A DepMap release folder cannot be imported as asked (layout, library, output name)."""


class ReleaseLayout(StrEnum):
    CURRENT = "current"  # 22Q2 onward: SequenceID / ModelID
    LEGACY = "legacy"  # 20Q–21Q: Achilles_* / sample_info


class Library(StrEnum):
    AVANA = "avana"  # Broad Achilles
    KY = "ky"  # Sanger Project Score


# The value of the screen table's `screen` column, as in speclet's real example tables.
SCREEN_OF_LIBRARY: dict[Library, str] = {Library.AVANA: "broad", Library.KY: "sanger"}
LIBRARY_FILE_PREFIX: dict[Library, str] = {Library.AVANA: "Avana", Library.KY: "KY"}

CURRENT_EXPRESSION_FILES = (
    "OmicsExpressionProteinCodingGenesTPMLogp1.csv",
    "OmicsExpressionTPMLogp1HumanProteinCodingGenes.csv",
)
CURRENT_CN_FILES = ("OmicsCNGene.csv", "OmicsCNGeneWGS.csv")
LEGACY_FILES = {
    "lfc": "Achilles_logfold_change.csv",
    "guide_map": "Achilles_guide_map.csv",
    "sequence_map": "Achilles_replicate_map.csv",
    "models": "sample_info.csv",
}
LEGACY_OPTIONAL = {
    "dropped_guides": ("Achilles_dropped_guides.csv",),
    "expression": ("CCLE_expression.csv",),
    "copy_number": ("CCLE_gene_cn.csv",),
}

# logical column -> accepted spellings (compared after _norm); the first is shown in messages
GUIDE_COLUMNS: dict[str, tuple[str, ...]] = {
    "sgrna": ("sgRNA", "Construct Barcode", "guide", "sgrna_id"),
    "gene": ("Gene", "hugo_symbol", "gene_symbol"),
}
GUIDE_OPTIONAL: dict[str, tuple[str, ...]] = {
    "used_by_chronos": ("UsedByChronos",),
    "drop_reason": ("DropReason",),
    "n_alignments": ("nAlignments", "n_alignments"),
    "genome_alignment": ("GenomeAlignment", "genome_alignment"),
}
SEQUENCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "sequence_id": ("SequenceID", "replicate_ID"),
    "model_id": ("ModelID", "DepMap_ID"),
}
SEQUENCE_OPTIONAL: dict[str, tuple[str, ...]] = {
    "passes_qc": ("PassesQC", "passes_QC"),
    "pdna_batch": ("pDNABatch", "pDNA_batch"),
    "screen_id": ("ScreenID",),
    "screen_type": ("ScreenType",),
    "library": ("Library",),
    "exclude_combined": ("ExcludeFromCRISPRCombined",),
}
MODEL_COLUMNS: dict[str, tuple[str, ...]] = {
    "model_id": ("ModelID", "DepMap_ID"),
    "lineage": ("OncotreeLineage", "lineage"),
}
MODEL_OPTIONAL: dict[str, tuple[str, ...]] = {
    "lineage_subtype": ("OncotreeSubtype", "lineage_subtype"),
    "primary_or_metastasis": ("PrimaryOrMetastasis", "primary_or_metastasis"),
}
# Cell-line facts read in the same order in both layouts (the display name first, the stripped one if alone).
MODEL_ANNOTATIONS: dict[str, tuple[str, ...]] = {
    "cell_line_name": ("CellLineName", "cell_line_name", "StrippedCellLineName", "stripped_cell_line_name"),
    "sex": ("Sex",),
    "age": ("Age",),
}
DROPPED_GUIDE_COLUMNS = ("sgRNA", "guide", "Construct Barcode")
# columns of an omics matrix that identify the row rather than name a gene
OMICS_ID_COLUMNS = ("ModelID", "DepMap_ID")
OMICS_DEFAULT_ENTRY = "IsDefaultEntryForModel"

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0"})
SYMBOL_RE = re.compile(r"^\s*(.*?)\s*\(\s*[^()]*\)\s*$")
NAME_SHOWN = 30


def normalise_name(name: object) -> str:
    """A column name without case or punctuation: ``passes_QC``, ``PassesQC`` and ``passes qc`` are one."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def split_symbol(text: object) -> str:
    """``"KRAS (3845)"`` → ``"KRAS"``; a bare symbol is returned stripped."""
    s = str(text).strip()
    m = SYMBOL_RE.match(s)
    return m.group(1) if m and m.group(1) else s


def parse_bool(values: pd.Series) -> pd.Series:
    """``True``/``False``/``NaN`` (unknown) from DepMap's TRUE/True/1/yes spellings."""
    low = values.astype("string").str.strip().str.lower()
    out = pd.Series(np.nan, index=values.index, dtype="object")
    out[low.isin(TRUE_WORDS).fillna(False).to_numpy(dtype=bool)] = True
    out[low.isin(FALSE_WORDS).fillna(False).to_numpy(dtype=bool)] = False
    return out


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class ReleaseFiles:
    """The files of one release folder that an import reads."""

    root: Path
    layout: ReleaseLayout
    library: Library
    lfc: Path
    guide_map: Path
    sequence_map: Path
    models: Path
    dropped_guides: Path | None = None
    expression: Path | None = None
    copy_number: Path | None = None

    def as_dict(self) -> dict[str, str | None]:
        """Role → file name (JSON-able, for metadata)."""
        roles = ("lfc", "guide_map", "sequence_map", "models", "dropped_guides", "expression", "copy_number")
        return {r: (p.name if (p := getattr(self, r)) is not None else None) for r in roles}

    @property
    def matrices(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.lfc, self.expression, self.copy_number) if p is not None)


def _index_dir(root: Path) -> dict[str, Path]:
    try:
        return {p.name.lower(): p for p in root.iterdir() if p.is_file()}
    except PermissionError:
        raise DataReadError(f"{root}: permission denied; make the release folder readable") from None


def _find(index: Mapping[str, Path], *names: str) -> Path | None:
    for name in names:
        for candidate in (name.lower(), f"{name.lower()}.gz"):
            if candidate in index:
                return index[candidate]
    return None


def find_release_files(release_dir: str | Path, library: Library | str = Library.AVANA) -> ReleaseFiles:
    """Detect the layout from the files present; say which file is missing otherwise."""
    root = Path(release_dir).expanduser()
    if not root.exists():
        raise DataReadError(f"{root}: release folder not found; check the path")
    if not root.is_dir():
        raise DataReadError(f"{root}: is a file; give the folder that holds the DepMap release CSV files")
    try:
        lib = Library(str(library).strip().lower())
    except ValueError:
        raise DepMapImportError(
            f"unknown library {library!r}; expected one of {', '.join(m.value for m in Library)}"
        ) from None
    index = _index_dir(root)
    prefix = LIBRARY_FILE_PREFIX[lib]
    current = {
        "lfc": f"{prefix}LogfoldChange.csv",
        "guide_map": f"{prefix}GuideMap.csv",
        "sequence_map": "ScreenSequenceMap.csv",
        "models": "Model.csv",
    }
    current_found = {role: _find(index, name) for role, name in current.items()}
    legacy_found = {role: _find(index, name) for role, name in LEGACY_FILES.items()}

    if current_found["lfc"] is not None:
        layout, expected, found = ReleaseLayout.CURRENT, current, current_found
    elif legacy_found["lfc"] is not None:
        if lib is not Library.AVANA:
            raise DepMapImportError(
                f"{root}: a legacy (Achilles) release has only the Avana library; use library 'avana' "
                f"(no {current['lfc']} found)"
            )
        layout, expected, found = ReleaseLayout.LEGACY, LEGACY_FILES, legacy_found
    else:
        other = [
            f"{LIBRARY_FILE_PREFIX[o]}LogfoldChange.csv"
            for o in Library
            if o is not lib and _find(index, f"{LIBRARY_FILE_PREFIX[o]}LogfoldChange.csv")
        ]
        if other:
            raise DepMapImportError(
                f"{root}: no {current['lfc']} for library '{lib.value}', but {other[0]} is there; "
                f"choose the matching library"
            )
        shown = ", ".join(sorted(p.name for p in index.values())[:NAME_SHOWN]) or "(no files)"
        raise DataReadError(
            f"{root}: not a DepMap release folder; expected {current['lfc']} (releases 22Q2 onward) or "
            f"{LEGACY_FILES['lfc']} (20Q–21Q); found: {shown}"
        )
    missing = [expected[role] for role, path in found.items() if path is None]
    if missing:
        raise DataReadError(
            f"{root}: {layout.value} DepMap layout (found {found['lfc'].name}) but "  # type: ignore[union-attr]
            f"missing {', '.join(missing)}; download {'it' if len(missing) == 1 else 'them'} from the same release"
        )
    if layout is ReleaseLayout.CURRENT:
        extras = {
            "dropped_guides": None,
            "expression": _find(index, *CURRENT_EXPRESSION_FILES),
            "copy_number": _find(index, *CURRENT_CN_FILES),
        }
    else:
        extras = {role: _find(index, *names) for role, names in LEGACY_OPTIONAL.items()}
    chosen = {role: _confined(path, root) for role, path in {**found, **extras}.items()}
    return ReleaseFiles(root=root, layout=layout, library=lib, **chosen)  # type: ignore[arg-type]


def _confined(path: Path | None, root: Path) -> Path | None:
    """A release file, refused when it is (or links to) a file outside the release folder.

    The same rule as every other server path (``resolve_allowed_path``) with the release folder as the
    one allowed folder, so a link inside an allowed folder cannot reach anything outside it.
    """
    if path is None:
        return None
    try:
        resolve_allowed_path(path.name, [root])
    except PathNotAllowedError:
        raise PathNotAllowedError(
            f"{path}: links to {path.resolve()}, outside the release folder {root.resolve()}; speclet does not "
            f"follow links out of a release folder: copy the file into the folder instead of linking it"
        ) from None
    return path


# --------------------------------------------------------------------------- reading small tables


def read_small_csv(path: Path) -> pd.DataFrame:
    """A small CSV (maps, cell-line metadata) as text columns; missing cells are NaN."""
    try:
        return pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=NA_VALUES, encoding="utf-8-sig", low_memory=False
        )
    except FileNotFoundError:
        raise DataReadError(f"{path}: file not found") from None
    except PermissionError:
        raise DataReadError(f"{path}: permission denied; make the file readable") from None
    except UnicodeDecodeError as exc:
        raise DataReadError(f"{path}: not UTF-8 text (byte {exc.start}); is this the DepMap CSV file?") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataReadError(f"{path}: not a readable CSV file ({str(exc).strip()}); download it again") from None


def resolve_columns(
    df: pd.DataFrame,
    source: Path,
    required: Mapping[str, Sequence[str]],
    optional: Mapping[str, Sequence[str]] = {},
) -> dict[str, str]:
    """Logical name → the table's actual column; every missing required column is reported at once."""
    by_norm: dict[str, str] = {}
    for col in df.columns:
        by_norm.setdefault(normalise_name(col), str(col))
    out: dict[str, str] = {}
    problems = []
    for logical, spellings in {**required, **optional}.items():
        hit = next((by_norm[normalise_name(s)] for s in spellings if normalise_name(s) in by_norm), None)
        if hit is not None:
            out[logical] = hit
        elif logical in required:
            found = ", ".join(str(c) for c in df.columns[:NAME_SHOWN]) or "(no columns)"
            close = close_matches(spellings[0], [str(c) for c in df.columns], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            also = f" (also accepted: {', '.join(spellings[1:])})" if len(spellings) > 1 else ""
            problems.append(
                f"missing column '{spellings[0]}'{also}{hint}; found: {found}; "
                f"check that this is the DepMap file of that name"
            )
    if problems:
        raise DataValidationError(str(source), problems)
    return out


def _text(series: pd.Series) -> pd.Series:
    return series.astype("string").str.strip().replace("", pd.NA)


def read_guide_map(files: ReleaseFiles) -> pd.DataFrame:
    """Guide map rows: ``sgrna``, ``symbol`` (Entrez id stripped) and ``used`` (True/False)."""
    raw = read_small_csv(files.guide_map)
    cols = resolve_columns(raw, files.guide_map, GUIDE_COLUMNS, GUIDE_OPTIONAL)
    out = pd.DataFrame({"sgrna": _text(raw[cols["sgrna"]])})
    gene = _text(raw[cols["gene"]])
    out["symbol"] = gene.map(split_symbol, na_action="ignore").astype("string")
    if "used_by_chronos" in cols:
        out["used"] = parse_bool(raw[cols["used_by_chronos"]]).eq(True).to_numpy()
        out.attrs["used_rule"] = f"{cols['used_by_chronos']} is true"
    elif "drop_reason" in cols:
        out["used"] = _text(raw[cols["drop_reason"]]).isna().to_numpy()
        out.attrs["used_rule"] = f"{cols['drop_reason']} is empty"
    elif files.dropped_guides is not None:
        dropped = read_dropped_guides(files.dropped_guides)
        out["used"] = ~out["sgrna"].isin(dropped).to_numpy()
        out.attrs["used_rule"] = f"not listed in {files.dropped_guides.name}"
    else:
        out["used"] = True
        out.attrs["used_rule"] = "all guides (no UsedByChronos, DropReason or dropped-guides list found)"
    return out.loc[out["sgrna"].notna()].reset_index(drop=True)


def read_dropped_guides(path: Path) -> set[str]:
    """The legacy dropped-guides list: a named guide column, else the first column."""
    raw = read_small_csv(path)
    if raw.shape[1] == 0:
        return set()
    by_norm = {normalise_name(c): c for c in raw.columns}
    col = next((by_norm[normalise_name(s)] for s in DROPPED_GUIDE_COLUMNS if normalise_name(s) in by_norm), raw.columns[0])
    values = _text(raw[col]).dropna()
    named = any(normalise_name(col) == normalise_name(s) for s in DROPPED_GUIDE_COLUMNS) or str(col).startswith("Unnamed")
    # a header-less one-column list: its first guide was read as the column name
    extra = {str(col).strip()} if raw.shape[1] == 1 and not named else set()
    return set(values.tolist()) | extra


def read_sequence_map(files: ReleaseFiles) -> pd.DataFrame:
    """One row per sequence / replicate: ``sequence_id``, ``model_id``, ``passes_qc`` and optional extras."""
    raw = read_small_csv(files.sequence_map)
    cols = resolve_columns(raw, files.sequence_map, SEQUENCE_COLUMNS, SEQUENCE_OPTIONAL)
    out = pd.DataFrame({name: _text(raw[col]) for name, col in cols.items()})
    if "passes_qc" in cols:
        out["passes_qc"] = parse_bool(raw[cols["passes_qc"]]).to_numpy()
    if "exclude_combined" in cols:
        out["exclude_combined"] = parse_bool(raw[cols["exclude_combined"]]).to_numpy()
    out = out.loc[out["sequence_id"].notna()]
    return out.drop_duplicates("sequence_id", keep="first").reset_index(drop=True)


def read_models(files: ReleaseFiles) -> pd.DataFrame:
    """One row per cell line: ``model_id``, ``lineage`` (as written) and optional subtype, site, name, sex, age."""
    raw = read_small_csv(files.models)
    required, optional = MODEL_COLUMNS, MODEL_OPTIONAL
    if files.layout is ReleaseLayout.LEGACY:  # keep CCLE's own words (colorectal, skin) if OncoTree is there too
        required = {k: tuple(reversed(v)) for k, v in MODEL_COLUMNS.items()}
        optional = {k: tuple(reversed(v)) for k, v in MODEL_OPTIONAL.items()}
    cols = resolve_columns(raw, files.models, required, {**optional, **MODEL_ANNOTATIONS})
    out = pd.DataFrame({name: _text(raw[col]) for name, col in cols.items()})
    out = out.loc[out["model_id"].notna()]
    return out.drop_duplicates("model_id", keep="first").reset_index(drop=True)


def read_header(path: Path) -> list[str]:
    """The first line of a CSV (optionally gzip'd) as column names."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            line = fh.readline()
    except FileNotFoundError:
        raise DataReadError(f"{path}: file not found") from None
    except PermissionError:
        raise DataReadError(f"{path}: permission denied; make the file readable") from None
    except (OSError, EOFError) as exc:
        raise DataReadError(f"{path}: could not be read ({exc}); download it again") from None
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataReadError(f"{path}: header is not UTF-8 text (byte {exc.start}); is this a CSV file?") from None
    if not text.strip():
        raise DataReadError(f"{path}: empty file; download it again")
    return next(csv.reader(io.StringIO(text)))


# --------------------------------------------------------------------------- the small tables together


@dataclass(frozen=True)
class ReleaseTables:
    """The small tables of a release and the log-fold-change matrix's header."""

    files: ReleaseFiles
    guides: pd.DataFrame
    sequences: pd.DataFrame
    models: pd.DataFrame
    lfc_header: list[str]


def read_tables(files: ReleaseFiles) -> ReleaseTables:
    """Guide map, sequence map and cell lines, after checking the matrix's header names each sequence once."""
    header = read_header(files.lfc)
    seq_ids = [h.strip() for h in header[1:]]
    dups = sorted(s for s, n in Counter(seq_ids).items() if n > 1)
    if dups:
        raise DataValidationError(
            str(files.lfc), [f"repeated column name{'s' if len(dups) > 1 else ''} {join_labels(dups)} in the header"]
        )
    if not seq_ids:
        raise DataValidationError(str(files.lfc), ["no sequence columns after the guide column; download it again"])
    return ReleaseTables(files, read_guide_map(files), read_sequence_map(files), read_models(files), header)


def sequence_table(t: ReleaseTables) -> pd.DataFrame:
    """The LFC matrix's columns joined to their screen map row and cell line."""
    cols = pd.DataFrame({"position": np.arange(1, len(t.lfc_header)), "sequence_id": [h.strip() for h in t.lfc_header[1:]]})
    cols = cols.merge(t.sequences, on="sequence_id", how="left", indicator="in_map")
    return cols.merge(t.models, on="model_id", how="left", indicator="in_models")
