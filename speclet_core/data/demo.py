"""The built-in demo screen: a synthetic screen with known truth, made on first use.

It is regenerated deterministically (same seed → same readings → same fingerprint on
any machine) into the data directory, so nothing binary is kept in the repository.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from speclet_core.data.synthetic import SyntheticScreen, simulate_screen
from speclet_core.errors import DataReadError

DEMO_PARAMS = {"n_genes": 30, "n_cell_lines": 120, "n_lineages": 6, "seed": 2024}
DEMO_NAME = "demo_screen"


def make_demo_screen() -> SyntheticScreen:
    """The demo screen in memory (about 30 genes × 120 cell lines × 6 lineages)."""
    return simulate_screen(**DEMO_PARAMS)  # type: ignore[arg-type]


def truth_path_for(table: Path) -> Path:
    """Where the truth table of a synthetic screen file lives: ``NAME.truth.csv`` beside it."""
    name = table.name
    for suffix in (".csv.gz", ".tsv.gz", ".parquet", ".csv", ".tsv"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return table.with_name(f"{name}.truth.csv")


def write_synthetic(screen: SyntheticScreen, out: Path) -> tuple[Path, Path]:
    """Write a synthetic table (format from the suffix) and its truth beside it, atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    truth = truth_path_for(out)
    _atomic_write(out, lambda p: _write_table(screen, p, out.name.lower()))
    _atomic_write(truth, lambda p: screen.truth.to_csv(p, index=False))
    return out, truth


def _write_table(screen: SyntheticScreen, tmp: Path, name: str) -> None:
    if name.endswith(".parquet"):
        screen.data.to_parquet(tmp, index=False)
    elif name.endswith((".tsv", ".tsv.gz")):
        screen.data.to_csv(tmp, sep="\t", index=False, compression="gzip" if name.endswith(".gz") else None)
    else:
        screen.data.to_csv(tmp, index=False, compression="gzip" if name.endswith(".gz") else None)


def _atomic_write(target: Path, write) -> None:  # type: ignore[no-untyped-def]
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def ensure_demo_screen(data_dir: Path) -> Path:
    """Path of the demo screen in ``data_dir``, writing it first if it is missing.

    When ``data_dir`` cannot be written (a read-only filesystem, e.g. Docker's ``-v …:/data:ro``), the
    same screen (it is deterministic) is written once to this user's temp folder instead.
    """
    path = Path(data_dir) / "demo" / f"{DEMO_NAME}.parquet"
    if path.exists() and truth_path_for(path).exists():
        return path
    try:
        write_synthetic(make_demo_screen(), path)
    except OSError:
        fallback = Path(tempfile.gettempdir()) / f"speclet-demo-{os.getuid()}" / f"{DEMO_NAME}.parquet"
        if not (fallback.exists() and truth_path_for(fallback).exists()):
            try:
                write_synthetic(make_demo_screen(), fallback)
            except OSError as exc:
                raise DataReadError(
                    f"cannot write the demo screen to {path.parent} or {fallback.parent} ({exc.strerror}); make "
                    f"SPECLET_DATA_DIR writable, or set SPECLET_SCREEN to a screen table to open instead"
                ) from None
        return fallback
    return path
