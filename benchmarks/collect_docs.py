"""Merge the per-part benchmark write-ups (docs/benchmarks/*.md) into docs/benchmarks.md.

    .venv/bin/python benchmarks/collect_docs.py
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ["fitting", "store", "queue", "ranking", "pages", "start_pages", "import", "load"]
HEADER = """# speclet benchmarks

Measured on the development machine: 2 CPU cores, 24 GiB memory, Debian 12, Python 3.11.7, with the pinned
requirements. Each section names its script (`benchmarks/`), the date, and whether other work was running at the
same time (several sections were measured while the team's tests and fits shared the two cores: their wall times are
pessimistic; CPU times and memory are not affected). Benchmarks are never part of the test suite.

"""


def main() -> None:
    parts_dir = ROOT / "docs" / "benchmarks"
    found = {p.stem: p for p in parts_dir.glob("*.md")}
    order = [n for n in PARTS if n in found] + sorted(set(found) - set(PARTS))
    toc = "\n".join(f"- [{n.replace('_', ' ')}](benchmarks/{n}.md)" for n in order)
    body = "\n\n".join(found[n].read_text().strip() for n in order)
    (ROOT / "docs" / "benchmarks.md").write_text(HEADER + "Sections:\n\n" + toc + "\n\n" + body + "\n")


if __name__ == "__main__":
    main()
