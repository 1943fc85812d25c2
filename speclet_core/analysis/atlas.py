"""A pan-cancer atlas compared across lineages: which genes are dependencies where, and where selectively stronger.

An atlas (``python -m speclet_core atlas``) is one fit per lineage, recorded in
``DATA_DIR/atlases/<atlas id>.json`` (lineage → fit id). The fits saw disjoint readings (each its own
lineage's cell lines), so their posteriors are independent and pairing their draws by index is a draw of
the joint posterior: each fit's draws are thinned to the smallest common count (evenly over its chains)
and stacked into one gene × lineage effect, which ``contrasts.contrast_lineage`` then reads exactly as it
reads the flagship's gene × lineage effect. So "lineage-selective dependency" means the same on every
page: a dependency in L (effect below the one threshold) **and** stronger there than the unweighted mean
of the other lineages, in the same draw; ``p_strongest`` is P(stronger in L than in every other lineage).

Only genes present in every fit are compared (the others are named in ``missing_genes``). A member fit
that is not stored yet, failed or was cancelled stops the comparison with a message saying which and
what to do; a member fit that is approximate or not converged is refused unless ``allow_flagged``, and
then every row carries the verdicts (``fit_verdict`` of the lineage's own fit, ``atlas_verdict`` the
worst over all member fits).

Why the alignment: each per-lineage model centres its cell-line shifts within the lineage, so a shift
shared by every gene of a lineage (screen quality, growth rate) enters that lineage's gene effects, and
every gene would look "stronger" in a lineage whose guides all deplete more; the flagship
(``sgrna_gene_lineage``) separates that shift as its lineage effect, the atlas takes out the median gene.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from model_store.stats import HDI_PROB
from speclet_core.analysis.contrasts import contrast_lineage
from speclet_core.analysis.draws import SAMPLE_DIMS, show_labels
from speclet_core.analysis.ranking import DEFAULT_THRESHOLD, default_top_k
from speclet_core.diagnostics.verdict import VERDICT_BADGES, FitVerdict, verdict_of
from speclet_core.errors import AnalysisError, FitNotFoundError
from speclet_core.records import Verdict

ATLAS_DIR = "atlases"  # under the data directory: one <atlas id>.json per atlas
ATLAS_ID_RE = re.compile(r"^[0-9a-f]{4,64}$")
APPROXIMATE = "approximate"  # the verdict column's word for a quick (ADVI) member fit
ATLAS_COLUMNS = (
    "gene", "lineage", "mean_in_lineage", "hdi_low_in_lineage", "hdi_high_in_lineage", "p_dependency",
    "p_stronger", "p_strongest", "p_selective", "p_not_selective", "lfsr", "mean_versus", "mean_diff", "sd_diff",
    "hdi_low", "hdi_high", "expected_rank", "rank_low", "rank_high", "p_top_k", "fit_id", "fit_verdict",
    "atlas_verdict",
)
_SEVERITY = {Verdict.CONVERGED.value: 0, APPROXIMATE: 1, Verdict.LOOK_CLOSER.value: 2, Verdict.DO_NOT_TRUST.value: 3}


@dataclass(frozen=True)
class AtlasRecord:
    """What ``atlas`` wrote: the model, the screen, the sampler settings and lineage → fit id."""

    atlas_id: str
    model: str
    fits: dict[str, str]
    data_path: str = ""
    sampler: dict[str, Any] = field(default_factory=dict)
    seed: int = 1

    @property
    def lineages(self) -> list[str]:
        return list(self.fits)


class MemberState(StrEnum):
    """Where one lineage's fit stands."""

    STORED = "stored"
    QUEUED = "queued"
    RUNNING = "running"
    FAILED = "failed"
    CANCELLED = "cancelled"
    MISSING = "missing"  # neither in the store nor in the queue (deleted, or submitted to another data dir)


@dataclass(frozen=True)
class MemberStatus:
    """One lineage of an atlas: its fit, where it stands and (when stored) its stored verdict."""

    lineage: str
    fit_id: str
    state: MemberState
    verdict: FitVerdict | None = None
    error: str = ""

    @property
    def verdict_word(self) -> str:
        """``converged``, ``look_closer``, ``do_not_trust`` or ``approximate`` (a quick fit); '' when not stored."""
        if self.verdict is None:
            return ""
        return APPROXIMATE if self.verdict.approximate else self.verdict.level.value

    @property
    def badge(self) -> str:
        return VERDICT_BADGES.get(self.verdict_word, "") if self.verdict else ""

    @property
    def flagged(self) -> bool:
        return self.verdict is not None and self.verdict_word != Verdict.CONVERGED.value

    def describe(self) -> str:
        """One line: ``blood: fit 1a2b3c4d5e6f stored, ⚠️ look closer``."""
        text = f"{self.lineage}: fit {self.fit_id[:12]} {self.state.value}"
        if self.badge:
            text += f", {self.badge}"
        if self.error:
            text += f": {self.error}"
        return text


@dataclass(frozen=True)
class AtlasComparison:
    """The cross-lineage comparison of an atlas: one row per (gene, lineage), and what it rests on."""

    atlas: AtlasRecord
    table: pd.DataFrame
    members: tuple[MemberStatus, ...]
    missing_genes: dict[str, list[str]]  # gene → the lineages whose fit lacks it (left out of the comparison)
    n_samples: int

    @property
    def flagged(self) -> list[MemberStatus]:
        return [m for m in self.members if m.flagged]

    @property
    def atlas_verdict(self) -> str:
        return worst_verdict([m.verdict_word for m in self.members])


def worst_verdict(words: Sequence[str]) -> str:
    """The worst of member verdict words (``do_not_trust`` > ``look_closer`` > ``approximate`` > ``converged``)."""
    known = [w for w in words if w in _SEVERITY]
    return max(known, key=_SEVERITY.__getitem__) if known else ""


# --------------------------------------------------------------------------- atlas records


def atlas_folder(data_dir: Path) -> Path:
    return Path(data_dir) / ATLAS_DIR


def _record_from(raw: Any, path: Path) -> AtlasRecord:
    try:
        fits = {str(k): str(v) for k, v in dict(raw["fits"]).items()}
        return AtlasRecord(atlas_id=str(raw["atlas_id"]), model=str(raw["model"]), fits=fits,
                           data_path=str(raw.get("data_path") or ""), sampler=dict(raw.get("sampler") or {}),
                           seed=int(raw.get("seed", 1)))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise AnalysisError(f"atlas record {path} is damaged (expected atlas_id, model and fits); "
                            "submit the atlas again with `atlas --data … --model …` to rewrite it") from None


def list_atlases(data_dir: Path) -> list[AtlasRecord]:
    """Every readable atlas record under ``DATA_DIR/atlases``, newest first (damaged ones are skipped)."""
    folder = atlas_folder(data_dir)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            out.append(_record_from(json.loads(path.read_text(encoding="utf-8")), path))
        except (OSError, ValueError, AnalysisError):
            continue
    return out


def read_atlas(data_dir: Path, atlas_id: str) -> AtlasRecord:
    """The atlas with this id (or its first characters, at least 4)."""
    text = str(atlas_id).strip().lower()
    folder = atlas_folder(data_dir)
    if not ATLAS_ID_RE.match(text):
        raise AnalysisError(f"atlas id {atlas_id!r} is not an atlas id (hex characters, at least 4); "
                            "`atlas --data … --model …` prints it as its last line")
    matches = sorted(folder.glob(f"{text}*.json")) if folder.is_dir() else []
    if not matches:
        known = [p.stem[:12] for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
        raise AnalysisError(f"no atlas {text} in {folder}; "
                            + (f"the atlases there are {show_labels(known)}" if known else
                               "there is none yet (check SPECLET_DATA_DIR, or submit one with `atlas`)"))
    if len(matches) > 1:
        raise AnalysisError(f"atlas id {text} is ambiguous: {show_labels([p.stem[:16] for p in matches])}; "
                            "give more characters")
    path = matches[0]
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AnalysisError(f"atlas record {path} cannot be read ({exc}); submit the atlas again to rewrite it") from None
    return _record_from(raw, path)


# --------------------------------------------------------------------------- member fits


def atlas_status(record: AtlasRecord, store: Any, find_job: Callable[[str], Any] | None = None) -> list[MemberStatus]:
    """Where each lineage's fit stands: stored (with its stored verdict), in the queue, failed, or missing.

    ``store`` is a ``model_store.ModelStore``; ``find_job(fit_id)`` returns the job record or None
    (``JobQueue.find``), or leave it out to look in the store only.
    """
    out = []
    for lineage, fit_id in record.fits.items():
        if store.exists(fit_id):
            try:
                manifest = store.manifest(fit_id)
            except (FitNotFoundError, OSError) as exc:
                out.append(MemberStatus(lineage, fit_id, MemberState.MISSING, error=str(exc).splitlines()[0]))
                continue
            out.append(MemberStatus(lineage, fit_id, MemberState.STORED, verdict=verdict_of(manifest)))
            continue
        job = find_job(fit_id) if find_job is not None else None
        if job is None:
            out.append(MemberStatus(lineage, fit_id, MemberState.MISSING))
            continue
        state = MemberState(str(job.status)) if str(job.status) in MemberState._value2member_map_ else MemberState.MISSING
        if state is MemberState.STORED:  # a done job whose fit is not in the store: deleted since
            state = MemberState.MISSING
        error = (job.error or "").splitlines()[0] if getattr(job, "error", None) else ""
        out.append(MemberStatus(lineage, fit_id, state, error=error))
    return out


def check_members(atlas_id: str, members: Sequence[MemberStatus], *, allow_flagged: bool = False) -> None:
    """Refuse an atlas that cannot be compared (yet), naming each lineage and what to do."""
    if len(members) < 2:
        raise AnalysisError(f"atlas {atlas_id[:12]} has {len(members)} lineage; a cross-lineage comparison needs "
                            "two or more: submit the atlas with more --lineages")
    waiting = [m for m in members if m.state in (MemberState.QUEUED, MemberState.RUNNING)]
    broken = [m for m in members if m.state in (MemberState.FAILED, MemberState.CANCELLED, MemberState.MISSING)]
    if broken:
        raise AnalysisError(
            f"atlas {atlas_id[:12]}: {len(broken)} of {len(members)} lineage fits cannot be compared: "
            + "; ".join(m.describe() for m in broken)
            + ". Submit the atlas again (`atlas --data … --model …` with the same settings) to rerun them"
        )
    if waiting:
        raise AnalysisError(
            f"atlas {atlas_id[:12]}: {len(waiting)} of {len(members)} lineage fits are not stored yet: "
            + "; ".join(m.describe() for m in waiting)
            + ". Wait for them (`atlas … --wait`, or `jobs list`) and compare again"
        )
    flagged = [m for m in members if m.flagged]
    if flagged and not allow_flagged:
        raise AnalysisError(
            f"atlas {atlas_id[:12]}: {len(flagged)} of {len(members)} lineage fits did not pass their diagnostics: "
            + "; ".join(m.describe() for m in flagged)
            + ". Refit them with --method nuts and more --tune/--draws, or compare anyway with --allow-flagged "
            "(every row then carries the verdicts)"
        )


def _sample_count(da: xr.DataArray) -> int:
    return int(np.prod([da.sizes[d] for d in SAMPLE_DIMS if d in da.sizes]))


def thin_indices(n_have: int, n_keep: int) -> np.ndarray:
    """``n_keep`` indices spread evenly over ``0 … n_have − 1`` (draws of every chain, not the first chain only)."""
    if n_keep > n_have:
        raise AnalysisError(f"cannot keep {n_keep} of {n_have} draws")
    return np.floor(np.arange(n_keep) * (n_have / n_keep)).astype(np.int64)


def stack_lineage_draws(
    draws: Mapping[str, xr.DataArray], *, max_samples: int | None = None,
) -> tuple[xr.DataArray, dict[str, list[str]]]:
    """Per-lineage gene-effect draws (independent fits) → one (sample, gene, lineage) float32 DataArray.

    Each fit's draws are flattened over chain and draw and thinned evenly to the smallest count (or
    ``max_samples``); sample i of every lineage is then one draw of the joint posterior. Only genes in
    every fit are kept, in the first fit's order; the second value maps each left-out gene to the
    lineages whose fit lacks it.
    """
    if len(draws) < 2:
        raise AnalysisError(f"a cross-lineage comparison needs two or more lineages; got {show_labels(list(draws))}")
    gene_sets: dict[str, list[str]] = {}
    for lineage, da in draws.items():
        if "gene" not in da.dims or "gene" not in da.coords:
            raise AnalysisError(f"the {lineage} fit's draws have no 'gene' dim ({tuple(da.dims)}); pass its gene effect")
        extra = [d for d in da.dims if d not in (*SAMPLE_DIMS, "gene")]
        if extra:
            raise AnalysisError(f"the {lineage} fit's gene effect has extra dims {tuple(map(str, extra))}; "
                                "an atlas member must be fitted to one lineage")
        gene_sets[lineage] = [str(g) for g in da["gene"].to_numpy()]
    first = next(iter(gene_sets.values()))
    common_set = set.intersection(*(set(g) for g in gene_sets.values()))
    genes = [g for g in first if g in common_set]
    every = dict.fromkeys(g for gs in gene_sets.values() for g in gs)
    missing = {g: [lin for lin, gs in gene_sets.items() if g not in set(gs)] for g in every if g not in common_set}
    if not genes:
        raise AnalysisError("no gene is in every lineage's fit, so nothing can be compared; fit the same genes "
                            "in every lineage (`atlas --genes …`)")
    n = min(_sample_count(da) for da in draws.values())
    if max_samples is not None:
        n = min(n, int(max_samples))
    lineages = list(draws)
    out = np.empty((n, len(genes), len(lineages)), dtype=np.float32)
    for li, (lineage, da) in enumerate(draws.items()):
        sample_dims = [d for d in SAMPLE_DIMS if d in da.dims]
        da = da.transpose(*sample_dims, "gene")
        keep = thin_indices(_sample_count(da), n)
        where = {g: i for i, g in enumerate(gene_sets[lineage])}
        cols = np.array([where[g] for g in genes])
        values = np.asarray(da.to_numpy(), dtype=np.float32).reshape(-1, da.sizes["gene"])
        out[:, :, li] = values[keep][:, cols]
    stacked = xr.DataArray(out, dims=("sample", "gene", "lineage"),
                           coords={"gene": genes, "lineage": lineages}, name="gene_lineage_effect")
    return stacked, missing


def align_lineages(stacked: xr.DataArray) -> xr.DataArray:
    """Remove each lineage's screen-wide shift, draw by draw: effect − the lineage's median gene + the mean of those.

    A per-lineage fit cannot tell a shift shared by every gene of its lineage (stronger depletion in
    every guide, say) from gene effects; the flagship separates it as the lineage effect. Here it is
    taken out as the median over genes of the lineage's gene effects in each draw (robust to the few
    genes that really are selective), and the mean of those medians over lineages is added back, so
    effects keep their overall level and the one dependency threshold keeps its meaning. Needs the
    same genes in every lineage (``stack_lineage_draws`` keeps only those).
    """
    values = stacked.to_numpy()
    # one lineage at a time: np.median copies what it partitions, so the peak stays one copy of the draws
    shift = np.stack([np.median(values[:, :, li], axis=1) for li in range(values.shape[2])], axis=1)[:, None, :]
    aligned = values - shift
    aligned += shift.mean(axis=2, keepdims=True)
    out = stacked.copy(data=aligned.astype(np.float32, copy=False))
    out.attrs["lineage_shift_mean"] = dict(zip(map(str, stacked["lineage"].to_numpy()),
                                               map(float, shift.mean(axis=0)[0] - shift.mean()), strict=True))
    return out


def compare_atlas(
    record: AtlasRecord,
    store: Any,
    *,
    find_job: Callable[[str], Any] | None = None,
    lineage: str | None = None,
    allow_flagged: bool = False,
    align: bool = True,
    top_k: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    hdi_prob: float = HDI_PROB,
    max_samples: int | None = None,
) -> AtlasComparison:
    """The cross-lineage comparison of an atlas: for each gene and lineage, its effect there and the selectivity.

    Parameters
    ----------
    record, store, find_job
        The atlas (``read_atlas``), the ``ModelStore`` and the queue's ``find`` (see ``atlas_status``).
    lineage
        Only this lineage's rows (the others still enter as "elsewhere").
    allow_flagged
        Compare even when member fits are approximate or not converged (the rows carry the verdicts).
    align
        Take each lineage's screen-wide shift out first (``align_lineages``); ``False`` compares the
        fits' gene effects as they are.
    top_k, threshold, hdi_prob
        As for ``contrasts.contrast_lineage``; ``top_k`` None: ``ranking.default_top_k`` of the genes compared.

    Returns
    -------
    AtlasComparison
        ``table`` has ``ATLAS_COLUMNS``, one row per gene and lineage, sorted by lineage (the atlas's
        order) then P(selective dependency); ``attrs`` hold the atlas id, the verdicts and the genes left out.
    """
    members = atlas_status(record, store, find_job)
    check_members(record.atlas_id, members, allow_flagged=allow_flagged)
    if lineage is not None and lineage not in record.fits:
        raise AnalysisError(f"lineage {lineage!r} is not in atlas {record.atlas_id[:12]}; "
                            f"it has {show_labels(record.lineages)}")
    fits = {m.lineage: store.get(m.fit_id) for m in members}
    try:
        draws = {}
        for lin, fit in fits.items():
            var = fit.manifest.roles.gene_effect
            if not var:
                raise AnalysisError(f"the {lin} fit ({fit.fit_id[:12]}, model {fit.manifest.model}) declares no "
                                    "gene-level effect; it cannot be compared")
            draws[lin] = fit.draws(var, load=False)
        stacked, missing = stack_lineage_draws(draws, max_samples=max_samples)
    finally:
        for fit in fits.values():
            fit.close()
    shifts: dict[str, float] = {}
    if align:
        stacked = align_lineages(stacked)
        shifts = stacked.attrs["lineage_shift_mean"]
    if top_k is None:
        top_k = default_top_k(int(stacked.sizes["gene"]))
    by_lineage = {m.lineage: m for m in members}
    atlas_verdict = worst_verdict([m.verdict_word for m in members])
    parts = []
    for lin in [lineage] if lineage is not None else record.lineages:
        part = contrast_lineage(stacked, lin, top_k=top_k, threshold=threshold, hdi_prob=hdi_prob)
        part["fit_id"] = by_lineage[lin].fit_id
        part["fit_verdict"] = by_lineage[lin].verdict_word
        part["atlas_verdict"] = atlas_verdict
        parts.append(part[list(ATLAS_COLUMNS)])
    table = pd.concat(parts, ignore_index=True)
    table.attrs.update(
        atlas_id=record.atlas_id, model=record.model, threshold=float(threshold), hdi_prob=float(hdi_prob),
        top_k=int(top_k), n_samples=int(stacked.sizes["sample"]), atlas_verdict=atlas_verdict,
        flagged={m.lineage: m.verdict_word for m in members if m.flagged}, missing_genes=missing,
        versus=None, aligned=bool(align), lineage_shift=shifts,
    )
    return AtlasComparison(atlas=record, table=table, members=tuple(members), missing_genes=missing,
                           n_samples=int(stacked.sizes["sample"]))


def lineage_rows(table: pd.DataFrame, lineage: str) -> pd.DataFrame:
    """One lineage's rows of an atlas table, in their order, ``attrs`` kept (for ``contrasts.selective_list``)."""
    out = table[table["lineage"] == lineage].reset_index(drop=True)
    out.attrs.update(table.attrs, lineage=lineage)
    return out


def dependency_matrix(table: pd.DataFrame, *, stat: str = "p_dependency", max_genes: int | None = None) -> pd.DataFrame:
    """Long (gene, lineage, value) cells of one statistic for a gene × lineage chart.

    With ``max_genes``, the genes with the highest value in any lineage are kept (a chart stays under
    the mark budget); genes keep the order of their best lineage's value, strongest first.
    """
    if stat not in table.columns:
        raise AnalysisError(f"no column {stat!r} in the atlas table; expected one of {show_labels(list(table.columns))}")
    best = table.groupby("gene", sort=False)[stat].max().sort_values(ascending=False, kind="stable")
    genes = list(best.index if max_genes is None else best.index[: int(max_genes)])
    cells = table[table["gene"].isin(set(genes))][["gene", "lineage", stat, "mean_in_lineage"]]
    cells = cells.rename(columns={stat: "value"})
    cells["gene"] = pd.Categorical(cells["gene"], categories=genes, ordered=True)
    cells = cells.sort_values(["gene", "lineage"], kind="stable").reset_index(drop=True)
    cells["gene"] = cells["gene"].astype(str)
    cells.attrs["genes"] = genes
    return cells
