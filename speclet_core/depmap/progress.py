"""How far an import has got: its phases, one overall 0–1 scale, and a terminal progress bar."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from enum import StrEnum
from typing import IO

from speclet_core.depmap.matrix import Tick

ProgressCallback = Callable[[str, float, str], None]  # (phase, overall fraction 0–1, message)


class ImportPhase(StrEnum):
    MAPS = "maps"  # guide map, screen map, cell lines
    CACHE = "cache"  # building the columnar cache (first cached import only)
    LFC = "lfc"  # streaming the log-fold-change matrix
    EXPRESSION = "expression"
    COPY_NUMBER = "copy_number"
    DONE = "done"


class Progress:
    """Maps step fractions onto one overall 0–1 scale; at most ~5 calls a second, never backwards."""

    def __init__(self, callback: ProgressCallback | None, min_interval_s: float = 0.2) -> None:
        self.callback = callback
        self.min_interval_s = min_interval_s
        self.last_emit = 0.0
        self.fraction = 0.0

    def emit(self, phase: ImportPhase, fraction: float, message: str, *, force: bool = False) -> None:
        if self.callback is None:
            return
        self.fraction = max(self.fraction, min(max(fraction, 0.0), 1.0))
        now = time.monotonic()
        if force or now - self.last_emit >= self.min_interval_s:
            self.last_emit = now
            self.callback(phase.value, self.fraction, message)

    def span(self, phase: ImportPhase, start: float, end: float) -> Tick:
        def tick(done: float, message: str) -> None:
            self.emit(phase, start + (end - start) * done, message, force=done >= 1.0)

        return tick


class TerminalProgress:
    """A one-line progress bar on a terminal (stderr); silent when the stream is not a terminal."""

    def __init__(self, stream: IO[str] | None = None, *, width: int = 28, force: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.enabled = force or bool(getattr(self.stream, "isatty", lambda: False)())
        self.drawn = False

    def __call__(self, phase: str, fraction: float, message: str) -> None:
        if not self.enabled:
            return
        filled = int(round(fraction * self.width))
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {fraction * 100:3.0f}% {message}"
        self.stream.write("\r" + line[:110].ljust(110))
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False

