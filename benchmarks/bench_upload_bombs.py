"""Upload bombs (issue 15 item 2): time to refusal, the parse child's peak memory, the parent's growth.

    .venv/bin/python benchmarks/bench_upload_bombs.py [--repeat N]

Each bomb (generated as in tests/data/test_bounded.py) is read through ``parse_in_child``, the bounded child the
dashboard, uploads and ``validate`` use, with the default settings. Targets: refused in < 5 s, < 300 MiB peak
in the child, no growth of the parent. Also: a cached second visit, and valid tables through the child against
reading them in-process. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "data"))

from test_bounded import (  # noqa: E402
    rss_mib,
    write_gzip_csv_bomb,
    write_gzip_nul_bomb,
    write_header_only,
    write_parquet_row_bomb,
    write_valid_csv,
    write_wide_csv,
)

from speclet_core.data import bounded  # noqa: E402
from speclet_core.data.bounded import load_screen_bounded, parse_in_child  # noqa: E402
from speclet_core.data.screen import load_screen  # noqa: E402
from speclet_core.settings import Settings  # noqa: E402

BOMBS = [
    ("650 KB gzip → 256 MiB CSV", "big.csv.gz", write_gzip_csv_bomb),
    ("1 MB gzip → 1 GiB of NULs", "nul.csv.gz", write_gzip_nul_bomb),
    ("Parquet, 60 M rows", "rows.parquet", write_parquet_row_bomb),
    ("CSV, 40,000 columns", "wide.csv", lambda p: write_wide_csv(p, 40_000)),
    ("CSV, 1 M columns (header)", "header.csv", write_header_only),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = Settings(data_dir=folder / "data")
        print("| input | file | refused in (s, median) | child peak (MiB, max) | parent RSS growth (MiB) | message |")
        print("|---|---:|---:|---:|---:|---|")
        for label, name, write in BOMBS:
            path = write(folder / name)
            before = rss_mib()
            walls, peaks, message = [], [], ""
            for _ in range(args.repeat):
                outcome = parse_in_child(path, name, settings)
                walls.append(outcome.wall_s)
                peaks.append(outcome.peak_mib)
                message = str(outcome.error)
            growth = rss_mib() - before
            size = path.stat().st_size
            print(f"| {label} | {size / 1e3:,.0f} KB | {statistics.median(walls):.2f} | {max(peaks):.0f} | "
                  f"{growth:+.1f} | {message.split(';')[0]} |")
        bomb = folder / "big.csv.gz"
        print("\nThe gzip bomb again, with the row limit raised (so another bound must stop it):\n")
        print("| settings | refused in (s) | child peak (MiB) | parent RSS growth (MiB) | message |")
        print("|---|---:|---:|---:|---|")
        for label, raised in [("SPECLET_MAX_ROWS=100000000, SPECLET_MAX_TABLE_MB=64",
                               Settings(data_dir=settings.data_dir, max_rows=100_000_000, max_table_mb=64)),
                              ("SPECLET_MAX_ROWS=100000000 (table cap 512 MiB: parsed, until the memory limit)",
                               Settings(data_dir=settings.data_dir, max_rows=100_000_000))]:
            before = rss_mib()
            outcome = parse_in_child(bomb, bomb.name, raised)
            print(f"| {label} | {outcome.wall_s:.2f} | {outcome.peak_mib:.0f} | {rss_mib() - before:+.1f} | "
                  f"{str(outcome.error).split(';')[0].replace(chr(10), ' ')} |")
        bounded.clear_cache()
        for visit in (1, 2):
            start = time.monotonic()
            try:
                load_screen_bounded(bomb, settings)
            except Exception:  # the refusal is what is timed
                pass
            print(f"\nlink to big.csv.gz, visit {visit}: {time.monotonic() - start:.3f} s, "
                  f"children started so far {bounded.spawn_count()}")
        print("\n| valid table | rows | in-process (s) | bounded child (s) | child peak (MiB) | same table |")
        print("|---|---:|---:|---:|---:|---|")
        valid = [p for p in sorted((ROOT.parent / "shared" / "data").glob("*.csv"))]
        valid.append(write_valid_csv(folder / "synthetic_300k.csv", 300_000))
        for path in valid:
            start = time.monotonic()
            expected = load_screen(path, source=path.name)
            in_process = time.monotonic() - start
            outcome = parse_in_child(path, path.name, settings)
            same = outcome.screen is not None and outcome.screen.data.equals(expected.data)
            print(f"| {path.name} | {len(expected.data):,} | {in_process:.2f} | {outcome.wall_s:.2f} | "
                  f"{outcome.peak_mib:.0f} | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
