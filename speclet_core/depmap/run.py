"""What one import has learnt so far (warnings, dropped counts, cache use) and how it reads a big matrix."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from speclet_core.depmap.matrix import (
    MatrixSpec,
    RowRequest,
    build_cache,
    cache_file_for,
    cache_is_fresh,
    read_rows_cached,
    read_rows_csv,
)
from speclet_core.depmap.progress import ImportPhase, Progress
from speclet_core.depmap.release import ReleaseFiles
from speclet_core.errors import DataReadError


@dataclass
class ImportRun:
    """What one import has learnt so far: warnings, dropped counts, cache use, progress."""

    files: ReleaseFiles
    progress: Progress
    cache_dir: Path | None
    warnings: list[str] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    cache_built: list[str] = field(default_factory=list)
    cache_used: list[str] = field(default_factory=list)

    def read_matrix(
        self,
        spec: MatrixSpec,
        rows: RowRequest,
        phase: ImportPhase,
        span: tuple[float, float],
        *,
        cacheable: bool = True,
    ) -> pa.Table:
        """Wanted rows × columns of a big matrix: from the cache when asked for (built if stale), else the CSV."""
        start, end = span
        if self.cache_dir is not None and cacheable:
            cache_file = cache_file_for(self.cache_dir, spec.path)
            split = start + 0.85 * (end - start)  # building dominates reading
            try:
                if not cache_is_fresh(spec, cache_file):
                    build_cache(spec, cache_file, tick=self.progress.span(ImportPhase.CACHE, start, split))
                    self.cache_built.append(spec.path.name)
                table = read_rows_cached(spec, cache_file, rows, tick=self.progress.span(phase, split, end))
                self.cache_used.append(spec.path.name)
                return table
            except DataReadError:
                raise
            except OSError as exc:  # e.g. a full disk: the import still works without the cache
                self.warnings.append(
                    f"could not write the columnar cache in {self.cache_dir} ({exc.strerror or exc}); "
                    f"read {spec.path.name} directly"
                )
        return read_rows_csv(spec, rows, tick=self.progress.span(phase, start, end))

