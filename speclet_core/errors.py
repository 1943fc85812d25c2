"""One root error for everything speclet reports to a person.

Subclasses also inherit the builtin they resemble, so callers that only know
``ValueError`` or ``OSError`` still catch them. A message says what failed,
where, what was expected and how to fix it.
"""

from __future__ import annotations


class SpecletError(Exception):
    """Root of every error speclet shows to a user (never a traceback)."""


class DataReadError(SpecletError, OSError):
    """A file could not be read as a screen table."""


class DataValidationError(SpecletError, ValueError):
    """A screen table broke one or more rules; ``problems`` lists every one."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"{source}: {n} problem{'s' if n != 1 else ''} found\n{lines}")


class SelectionError(SpecletError, ValueError):
    """Requested genes, lineages or cell lines are not in the screen."""


class ModelError(SpecletError, ValueError):
    """Unknown model, or a model that cannot be fitted to this selection."""


class FitError(SpecletError, RuntimeError):
    """Sampling failed or was stopped."""


class StoreError(SpecletError, OSError):
    """The model store could not read or write a fit."""


class FitNotFoundError(StoreError, KeyError):
    """No stored fit has this id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "fit not found"


class CorruptFitError(StoreError):
    """A stored fit's files are damaged (checksum mismatch, truncated file)."""


class AnalysisError(SpecletError, ValueError):
    """Posterior draws cannot be analysed as asked (missing dimension, unknown gene or lineage, bad option)."""


class JobError(SpecletError, RuntimeError):
    """A job could not be submitted, found or changed."""


class SettingsError(SpecletError, ValueError):
    """A ``SPECLET_*`` environment variable has an invalid value."""
