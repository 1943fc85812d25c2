"""Bounded reading (issue 15 item 2): bombs generated here are refused quickly, by a child, naming the file.

Each bomb is a small file that expands to far more than the limits allow. The child that reads it is a real
process with a real memory limit; the parent's memory is measured around it.
"""

from __future__ import annotations

import gzip
import io
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from speclet_core.data import bounded
from speclet_core.data.bounded import load_screen_bounded, parse_in_child
from speclet_core.data.reading import TableLimits, read_table
from speclet_core.data.screen import load_screen
from speclet_core.data.sources import save_upload
from speclet_core.errors import DataReadError, DataValidationError, SpecletError
from speclet_core.settings import Settings

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
HEADER = "sgrna,hugo_symbol,depmap_id,lineage,lfc\n"
ROW = "AAACCCGGGTTTAAACCCGG,KRAS,ACH-000001,colorectal,-1.25\n"
REFUSAL_S = 5.0  # the target: each bomb refused within this, child start included


# --------------------------------------------------------------------------- the bombs


def write_gzip_csv_bomb(path: Path, mib: int = 256) -> Path:
    """A gzip of ``mib`` MiB of CSV (one valid row repeated): about 650 KB on disk.

    Built from repeated gzip members (a gzip file may hold several), so writing it takes a fraction of a second.
    """
    block = (ROW * (2**20 // len(ROW) + 1))[: 2**20].rsplit("\n", 1)[0] + "\n"
    member = gzip.compress(block.encode(), compresslevel=9)
    with open(path, "wb") as fh:
        fh.write(gzip.compress(HEADER.encode()))
        for _ in range(mib):
            fh.write(member)
    return path


def write_gzip_nul_bomb(path: Path, mib: int = 1024) -> Path:
    """A gzip of ``mib`` MiB of NUL bytes (about 1 MB on disk)."""
    member = gzip.compress(b"\x00" * 2**24, compresslevel=9)
    with open(path, "wb") as fh:
        for _ in range(mib // 16):
            fh.write(member)
    return path


def write_parquet_row_bomb(path: Path, rows: int = 60_000_000) -> Path:
    """A valid screen table of ``rows`` identical readings in Parquet: dictionary/RLE encoding keeps it tiny."""
    chunk = 1_000_000
    indices = pa.array(np.zeros(chunk, dtype=np.int8))
    columns = {c: pa.DictionaryArray.from_arrays(indices, pa.array([v]))
               for c, v in zip(HEADER.strip().split(",")[:4], ROW.split(",")[:4], strict=True)}
    columns["lfc"] = pa.DictionaryArray.from_arrays(indices, pa.array([-1.25]))
    table = pa.table(columns)
    with pq.ParquetWriter(path, table.schema, compression="zstd") as writer:
        for _ in range(rows // chunk):
            writer.write_table(table, row_group_size=chunk)
    return path


def write_wide_csv(path: Path, columns: int, rows: int = 1) -> Path:
    """A CSV with the five required columns and ``columns`` numeric extras (``rows`` rows)."""
    names = HEADER.strip().split(",") + [f"x{i}" for i in range(columns - 5)]
    line = ROW.strip().split(",") + ["1"] * (columns - 5)
    with open(path, "w") as fh:
        fh.write(",".join(names) + "\n")
        for r in range(rows):
            fh.write(",".join([f"g{r}", *line[1:]]) + "\n")
    return path


def write_header_only(path: Path, columns: int = 1_000_000) -> Path:
    path.write_text(",".join(f"c{i}" for i in range(columns)) + "\n")
    return path


def write_valid_csv(path: Path, rows: int) -> Path:
    rng = np.random.default_rng(0)
    genes = rng.integers(0, 500, rows)
    cells = rng.integers(0, 200, rows)
    pd.DataFrame({
        "sgrna": [f"sg{g}_{i % 4}" for i, g in enumerate(genes)],
        "hugo_symbol": [f"GENE{g}" for g in genes],
        "depmap_id": [f"ACH-{c:06d}" for c in cells],
        "lineage": [f"lineage{c % 5}" for c in cells],
        "lfc": rng.normal(size=rows),
        "replicate_id": [f"rep{i}" for i in range(rows)],
    }).to_csv(path, index=False)
    return path


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    bounded.clear_cache()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bombs")
    return {
        "gzip": write_gzip_csv_bomb(d / "big.csv.gz"),
        "nul": write_gzip_nul_bomb(d / "nul.csv.gz"),
        "parquet": write_parquet_row_bomb(d / "rows.parquet"),
        "wide": write_wide_csv(d / "wide.csv", 40_000),
        "header": write_header_only(d / "header.csv"),
    }


# --------------------------------------------------------------------------- each bomb refused


@pytest.mark.parametrize(("bomb", "size_kb", "says"), [
    ("gzip", (300, 1_000), "more than 2,000,000 lines below the header, over the limit (SPECLET_MAX_ROWS)"),
    ("nul", (500, 1_500), "not a text table (NUL bytes at byte 0 once decompressed)"),
    ("parquet", (200, 2_000), "more than 2,000,000 rows, over the limit (SPECLET_MAX_ROWS)"),
    ("wide", (300, 400), "40,000 columns, over the limit of 1,000 (SPECLET_MAX_COLUMNS)"),
    ("header", (5_000, 9_000), "the first line is longer than 1 MiB"),
])
def test_bomb_refused_quickly_by_a_small_child_naming_the_file(bombs: dict[str, Path], settings: Settings,
                                                               bomb: str, size_kb: tuple[int, int],
                                                               says: str) -> None:
    path = bombs[bomb]
    assert size_kb[0] < path.stat().st_size / 1e3 < size_kb[1]  # the bombs are small files
    before = rss_mib()
    outcome = parse_in_child(path, f"lab {path.name}", settings)
    assert outcome.screen is None and isinstance(outcome.error, DataReadError)
    message = str(outcome.error)
    assert message.startswith(f"lab {path.name}: ") and says in message
    assert str(path.parent) not in message
    assert outcome.wall_s < REFUSAL_S
    assert 30 < outcome.peak_mib < 300  # the child's own peak (VmHWM), imports included
    assert rss_mib() - before < 20  # the parent read nothing of it
    assert list((settings.data_dir / "tmp" / "parse").iterdir()) == []  # the child's folder is removed


def test_gzip_bomb_within_the_row_limit_is_refused_on_its_decompressed_size(bombs: dict[str, Path]) -> None:
    limits = TableLimits(max_table_mb=64, max_rows=0)  # no row limit: the size cap must stop it
    start = time.monotonic()
    with pytest.raises(DataReadError, match=r"big.csv.gz: more than 64 MiB of text once decompressed"):
        read_table(bombs["gzip"], name="big.csv.gz", limits=limits)
    assert time.monotonic() - start < 2


def test_parquet_refused_on_its_uncompressed_size_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "dense.parquet"
    rng = np.random.default_rng(1)
    pd.DataFrame({"sgrna": [f"g{i}" for i in range(200_000)], "lfc": rng.normal(size=200_000)}).to_parquet(path)
    with pytest.raises(DataReadError, match=r"dense.parquet: \d+ MiB once uncompressed, over the limit of 1 MiB"):
        read_table(path, limits=TableLimits(max_table_mb=1))


def test_wide_table_within_raised_limits_is_read_fast(bombs: dict[str, Path]) -> None:
    """_numeric_extras converts 40,000 numeric columns at once (a per-column loop took 115 s)."""
    start = time.monotonic()
    df = read_table(bombs["wide"], limits=TableLimits(max_columns=50_000))
    assert time.monotonic() - start < 30
    assert df.shape == (1, 40_000)
    assert (df.dtypes == np.int64).sum() == 39_995 and df["x0"].iloc[0] == 1


def test_numeric_extras_convert_as_pd_to_numeric_does() -> None:
    from speclet_core.data.reading import _numeric_extras

    df = pd.DataFrame({"a": ["1", "2", None], "b": ["1", "2", "3"], "c": ["1.5", "2", "3"], "d": ["x", "1", "2"],
                       "f": ["1e3", "2", "-3"], "lfc": ["1", "2", "3"], "lineage": ["1", "2", "3"]})
    out = _numeric_extras(df.copy())
    for col in "abcf":
        pd.testing.assert_series_equal(out[col], pd.to_numeric(df[col]))
    for col in ("d", "lfc", "lineage"):  # not numeric, or a contract column: left as text
        pd.testing.assert_series_equal(out[col], df[col])
    assert list(out.columns) == list(df.columns)


# --------------------------------------------------------------------------- damaged and odd files


def _valid_parquet(path: Path, tiny_table: pd.DataFrame) -> Path:
    tiny_table.to_parquet(path)
    return path


def test_truncated_garbage_and_nested_parquet_give_clear_errors(tmp_path: Path, tiny_table: pd.DataFrame,
                                                                settings: Settings) -> None:
    whole = _valid_parquet(tmp_path / "whole.parquet", tiny_table).read_bytes()
    (tmp_path / "truncated.parquet").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "garbage.parquet").write_bytes(b"PAR1" + os.urandom(200) + (100).to_bytes(4, "little") + b"PAR1")
    (tmp_path / "tiny.parquet").write_bytes(b"PAR1PAR1")
    nested = tiny_table.assign(lfc=[[1.0, 2.0]] * 6)
    pq.write_table(pa.Table.from_pandas(nested), tmp_path / "nested.parquet")
    expected = {
        "truncated.parquet": "damaged Parquet file (its end marker is missing",
        "garbage.parquet": "damaged Parquet file (",
        "tiny.parquet": "damaged Parquet file (only 8 bytes",
        "nested.parquet": "column 'lfc' (list<element: double>) hold nested values",
    }
    for name, says in expected.items():
        with pytest.raises(DataReadError) as info:
            load_screen_bounded(tmp_path / name, settings, name=f"my {name}")
        assert str(info.value).startswith(f"my {name}: ") and says in str(info.value)
        assert str(tmp_path) not in str(info.value)


def test_cli_validate_exits_2_on_bombs_and_damaged_parquet(bombs: dict[str, Path], tmp_path: Path,
                                                           tiny_table: pd.DataFrame) -> None:
    import subprocess
    import sys

    whole = _valid_parquet(tmp_path / "whole.parquet", tiny_table).read_bytes()
    (tmp_path / "cut.parquet").write_bytes(whole[:-30])
    for path, says in [(bombs["nul"], "NUL bytes"), (tmp_path / "cut.parquet", "damaged Parquet file"),
                       (bombs["parquet"], "SPECLET_MAX_ROWS")]:
        r = subprocess.run([sys.executable, "-m", "speclet_core", "validate", str(path)], capture_output=True,
                           text=True, timeout=60, env={**os.environ, "SPECLET_DATA_DIR": str(tmp_path / "d")})
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith(f"error: {path}: ") and says in r.stderr
        assert "Traceback" not in r.stderr and "unexpected failure" not in r.stderr


# --------------------------------------------------------------------------- time and memory limits


def test_timeout_kills_the_child_and_names_the_file(tmp_path: Path) -> None:
    path = write_valid_csv(tmp_path / "slow.csv", 300_000)
    settings = Settings(data_dir=tmp_path / "data", parse_timeout_s=0.5)
    start = time.monotonic()
    with pytest.raises(DataReadError, match=r"^slow.csv: reading it took longer than 0.5 s \(SPECLET_PARSE_TIMEOUT_S\)"):
        load_screen_bounded(path, settings)
    assert time.monotonic() - start < 0.5 + 2
    assert list((tmp_path / "data" / "tmp" / "parse").iterdir()) == []
    # the same file within the default limit loads
    assert len(load_screen_bounded(path, Settings(data_dir=tmp_path / "data")).data) == 300_000


def test_memory_limit_stops_the_child_with_a_clear_message(tmp_path: Path) -> None:
    path = write_valid_csv(tmp_path / "hungry.csv", 300_000)
    settings = Settings(data_dir=tmp_path / "data", parse_memory_mb=450)
    start = time.monotonic()
    with pytest.raises(DataReadError, match=r"^hungry.csv: reading it needed more than 450 MiB of memory "
                                            r"\(SPECLET_PARSE_MEMORY_MB\)"):
        load_screen_bounded(path, settings)
    assert time.monotonic() - start < REFUSAL_S


# --------------------------------------------------------------------------- caching


def test_failures_and_successes_are_cached_by_path_size_and_mtime(bombs: dict[str, Path], tmp_path: Path,
                                                                  settings: Settings,
                                                                  tiny_table: pd.DataFrame) -> None:
    spawned = bounded.spawn_count()
    for _ in range(3):
        with pytest.raises(DataReadError, match="SPECLET_MAX_ROWS"):
            load_screen_bounded(bombs["gzip"], settings)
    assert bounded.spawn_count() == spawned + 1  # a link visited again is not read again
    good = tmp_path / "good.csv"
    tiny_table.to_csv(good, index=False)
    first = load_screen_bounded(good, settings)
    assert load_screen_bounded(good, settings) is first
    assert bounded.spawn_count() == spawned + 2
    tiny_table.iloc[:4].to_csv(good, index=False)  # changed: size and mtime differ
    assert len(load_screen_bounded(good, settings).data) == 4
    assert bounded.spawn_count() == spawned + 3


def test_missing_file_starts_no_child(tmp_path: Path, settings: Settings) -> None:
    spawned = bounded.spawn_count()
    with pytest.raises(DataReadError, match="^nope.csv: file not found"):
        load_screen_bounded(tmp_path / "nope.csv", settings)
    with pytest.raises(DataReadError, match="is a folder"):
        load_screen_bounded(tmp_path, settings)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataReadError, match="not a regular file"):
        load_screen_bounded(fifo, settings)
    assert bounded.spawn_count() == spawned


# --------------------------------------------------------------------------- uploads


def test_upload_bomb_is_refused_naming_the_upload_and_cached_by_content(bombs: dict[str, Path],
                                                                        settings: Settings) -> None:
    content = bombs["gzip"].read_bytes()
    spawned = bounded.spawn_count()
    before = rss_mib()
    for _ in range(2):
        with pytest.raises(DataReadError) as info:
            save_upload("Lab screen (final).csv.gz", content, settings)
        assert str(info.value).startswith("Lab screen (final).csv.gz: more than 2,000,000 lines")
        assert "raw" not in str(info.value) and str(settings.data_dir) not in str(info.value)
    assert bounded.spawn_count() == spawned + 1
    assert rss_mib() - before < 20
    assert list((settings.data_dir / "uploads").iterdir()) == []
    assert list((settings.data_dir / "tmp" / "parse").iterdir()) == []


def test_upload_validation_problems_name_the_upload(tiny_table: pd.DataFrame, settings: Settings) -> None:
    bad = tiny_table.drop(columns=["lfc"]).to_csv(index=False).encode()
    with pytest.raises(DataValidationError) as info:
        save_upload("my screen.csv", bad, settings)
    assert info.value.source == "my screen.csv" and "missing required column 'lfc'" in info.value.problems[0]


# --------------------------------------------------------------------------- valid tables unchanged


def _real_tables() -> list[Path]:
    return sorted(SHARED_DATA.glob("*.csv")) if SHARED_DATA.exists() else []


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "parquet"])
def test_valid_tables_load_as_in_process(tmp_path: Path, settings: Settings, fmt: str) -> None:
    from speclet_core.data.demo import ensure_demo_screen

    sources = [ensure_demo_screen(settings.data_dir), *_real_tables()]
    assert len(sources) >= (3 if SHARED_DATA.exists() else 1)
    for source in sources:
        table = (pd.read_parquet(source) if source.suffix == ".parquet"
                 else pd.read_csv(source, dtype=str, keep_default_na=False))
        path = tmp_path / f"{source.stem}.{fmt}"
        if fmt == "parquet":
            load_screen(source).data.to_parquet(path, index=False)
        else:
            table.to_csv(path, index=False, compression="gzip" if fmt.endswith("gz") else None)
        expected = load_screen(path, source=path.name)
        got = load_screen_bounded(path, settings)
        pd.testing.assert_frame_equal(got.data, expected.data)
        assert (got.source, got.n_rows_read, got.n_missing_lfc) == (path.name, expected.n_rows_read,
                                                                     expected.n_missing_lfc)


def test_upload_of_a_valid_table_matches_in_process(tiny_table: pd.DataFrame, settings: Settings) -> None:
    buffer = io.BytesIO()
    tiny_table.to_csv(buffer, index=False)
    key, screen = save_upload("mine.csv", buffer.getvalue(), settings)
    assert screen.source == "mine.csv"
    pd.testing.assert_frame_equal(screen.data, load_screen(settings.data_dir / "uploads" / f"{key}.parquet").data)


def test_errors_are_speclet_errors() -> None:
    assert issubclass(DataReadError, SpecletError)
