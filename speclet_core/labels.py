"""The one rule for matching labels a person typed (genes, cell lines, lineages) against known ones.

- "everything" is written ``all``, ``*`` or left empty, in any case, alone or as the only item of a list;
- a label matches exactly, else ignoring case (and, with ``fold``, ignoring ``_``, ``-`` and spaces);
- an unknown label is reported with up to three close spellings ("did you mean …?").
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence

ALL = "all"
ALL_WORDS = frozenset({"", "all", "*"})
MAX_SHOWN = 8


def means_all(value: object) -> bool:
    """Whether a value asks for every label: None, ``all``, ``*`` or an empty string (also as a one-item list).

    An empty list is not "all": it means nothing was chosen, which callers refuse with a clear message.
    """
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() in ALL_WORDS
    if isinstance(value, Sequence):
        items = [str(v).strip() for v in value if str(v).strip()]
        return len(items) == 1 and items[0].lower() in ALL_WORDS
    return False


def parse_labels(value: str | Sequence[str] | None) -> list[str] | None:
    """Requested labels in the order given, without repeats; ``None`` means all of them.

    A string is split on commas (``"KRAS, NRAS"``); labels keep inner spaces (``Head and Neck``).
    """
    if means_all(value):
        return None
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value or ()]
    return list(dict.fromkeys(s for s in (i.strip() for i in items) if s))


def fold_label(text: str) -> str:
    """A label without case, spaces, ``_`` or ``-`` (``head_and-Neck`` → ``headandneck``)."""
    return re.sub(r"[\s_\-]+", "", text).casefold()


def join_labels(values: Sequence[object], n: int = MAX_SHOWN) -> str:
    """``A, B, C and 4 more``: the first ``n`` labels of a list for a message."""
    items = list(values)
    shown = ", ".join(str(v) for v in items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def count_noun(n: int, noun: str, plural: str | None = None) -> str:
    """``1 lineage``, ``3 lineages``, ``1,200 cell lines``: a count with its noun in the right number.

    ``plural`` for nouns that do not take an ``s`` (``count_noun(2, "copy", "copies")``).
    """
    word = noun if int(n) == 1 else (plural or f"{noun}s")
    return f"{int(n):,} {word}"


def interval_text(low: float, high: float, digits: int = 2) -> str:
    """An interval for a table cell, signed so effects read at a glance: ``-0.52 to -0.11``."""
    return f"{low:+.{digits}f} to {high:+.{digits}f}"


def close_matches(label: str, known: Sequence[str], n: int = 3) -> list[str]:
    """Up to ``n`` known labels spelled like ``label`` (case-insensitive)."""
    by_upper: dict[str, str] = {}
    for k in known:
        by_upper.setdefault(str(k).upper(), str(k))
    return [by_upper[c] for c in difflib.get_close_matches(str(label).upper(), list(by_upper), n=n, cutoff=0.6)]


def describe_unknown(
    unknown: Sequence[str],
    known: Sequence[str],
    what: str,
    where: str,
    *,
    hints: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """``2 genes not in the screen: 'KRSA' (did you mean KRAS?), 'XYZ'``, capped at ``MAX_SHOWN`` labels.

    ``hints`` adds known labels to suggest first for an unknown one (e.g. a lineage's newer name).
    """
    parts = []
    for u in list(unknown)[:MAX_SHOWN]:
        close = list(dict.fromkeys([*(hints or {}).get(u, ()), *close_matches(u, known)]))[:3]
        parts.append(repr(str(u)) + (f" (did you mean {', '.join(close)}?)" if close else ""))
    more = f" and {len(unknown) - MAX_SHOWN} more" if len(unknown) > MAX_SHOWN else ""
    plural = "s" if len(unknown) != 1 else ""
    return f"{len(unknown)} {what}{plural} not in {where}: {', '.join(parts)}{more}"


def match_labels(
    requested: Sequence[str], known: Sequence[str], *, fold: bool = False
) -> tuple[list[str], list[str]]:
    """``(matched, unknown)``: requested labels matched exactly, else ignoring case (and separators with ``fold``).

    Matched labels are spelled as in ``known``, in the order requested, without repeats.
    """
    exact = {str(k) for k in known}
    by_case: dict[str, str] = {}
    by_fold: dict[str, str] = {}
    for k in sorted(exact):
        by_case.setdefault(k.casefold(), k)
        if fold:
            by_fold.setdefault(fold_label(k), k)
    matched: list[str] = []
    unknown: list[str] = []
    for r in requested:
        r = str(r).strip()
        if not r:
            continue
        hit = r if r in exact else by_case.get(r.casefold()) or (by_fold.get(fold_label(r)) if fold else None)
        (matched if hit is not None else unknown).append(hit if hit is not None else r)
    return list(dict.fromkeys(matched)), list(dict.fromkeys(unknown))
