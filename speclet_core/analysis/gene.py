"""Everything about one gene in a fit: its effect overall, per lineage, per cell line, its guides, its rank.

Pure functions on draws (``xarray.DataArray``) except ``sgrnas_of_gene``, which reads the guide → gene
labels stored with a fit. Which levels a model has comes from its roles (``gene_levels``); a level the
model lacks is reported with a sentence saying so (``missing_level_note``), never an error.

Guides: ``sgrna_effect`` is each guide's deviation from its gene's effect (the deviations of one gene's
guides sum to zero). A guide *disagrees* when its deviation's HDI excludes 0 on the side that weakens
its gene's effect (for a dependency: a guide that cuts less than the others), and its deviation is
*large* when it exceeds ``LARGE_GUIDE_DEVIATION`` in size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from model_store import StoredFit
from model_store.stats import HDI_PROB
from speclet_core.analysis.draws import SAMPLE_DIMS, hdi_columns, sample_matrix
from speclet_core.analysis.forest import INNER_PROB, forest_rows
from speclet_core.analysis.ranking import DEFAULT_THRESHOLD, local_false_sign_rate
from speclet_core.analysis.reference import (
    MIN_REFERENCE_GENES,
    ReferenceCheck,
    ReferenceInFit,
    check_reference_separation,
    compare_with_essentials,
    describe_essential_comparison,
    describe_missing_reference,
    describe_reference_check,
    reference_in_fit,
)
from speclet_core.analysis.sentences import CLEAR, _p
from speclet_core.errors import AnalysisError
from speclet_core.labels import count_noun, join_labels

SGRNA_VARIABLE = "sgrna_effect"
LARGE_GUIDE_DEVIATION = 0.5  # LFC: a guide this far from its gene's effect changes what the gene looks like
LEVELS = ("lineage", "cell_line", "sgrna")
_LEVEL_WORDS = {"lineage": "per-lineage effect", "cell_line": "per-cell-line effect", "sgrna": "guide (sgRNA) term"}
_LEVEL_FIX = {
    "lineage": "fit gene_lineage or sgrna_gene_lineage (two or more lineages)",
    "cell_line": "fit gene_lineage, sgrna_gene_lineage or sgrna_gene_cell_line",
    "sgrna": "fit sgrna_gene_lineage (several lineages) or sgrna_gene_cell_line (one lineage)",
}


def gene_levels(roles: Mapping[str, Any], posterior_variables: Sequence[str]) -> dict[str, str | None]:
    """The variable of each level the gene page shows (``lineage``, ``cell_line``, ``sgrna``), None where absent."""
    present = set(posterior_variables)
    pick = lambda v: v if v and v in present else None  # noqa: E731
    return {"lineage": pick(roles.get("gene_lineage_effect")), "cell_line": pick(roles.get("gene_cell_line_effect")),
            "sgrna": pick(SGRNA_VARIABLE)}


def missing_level_note(model: str, level: str) -> str:
    """Why a level is not shown: the model has no such term, and which model has one."""
    if level not in LEVELS:
        raise AnalysisError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    return f"Model {model} has no {_LEVEL_WORDS[level]}, so this fit cannot show it; to see it, {_LEVEL_FIX[level]}."


def _one_gene(draws: xr.DataArray, gene: str) -> xr.DataArray:
    if "gene" in draws.dims:
        labels = [str(g) for g in draws["gene"].values]
        if gene not in labels:
            raise AnalysisError(f"gene {gene!r} is not in this fit; it has {join_labels(labels, 5)}")
        draws = draws.isel(gene=labels.index(gene))
    return draws


def _samples(draws: xr.DataArray) -> np.ndarray:
    dims = [d for d in SAMPLE_DIMS if d in draws.dims]
    extra = [d for d in draws.dims if d not in dims]
    if not dims or extra:
        raise AnalysisError(f"expected the draws of one gene (dims chain, draw), got dims {tuple(draws.dims)}")
    values = np.asarray(draws.transpose(*dims).values, dtype=np.float64).ravel()
    if values.size == 0 or not np.isfinite(values).all():
        raise AnalysisError(f"{draws.name or 'draws'} are empty or not finite; the fit is damaged, refit it")
    return values


def gene_effect_summary(draws: xr.DataArray, gene: str, *, threshold: float = DEFAULT_THRESHOLD,
                        hdi_prob: float = HDI_PROB) -> dict[str, float]:
    """The gene-level effect of ``gene``: mean, sd, HDI, P(effect < threshold) and lfsr."""
    values = _samples(_one_gene(draws, gene))
    low, high = hdi_columns(values[:, None], hdi_prob)
    return {"mean": float(values.mean()), "sd": float(values.std(ddof=1 if values.size > 1 else 0)),
            "hdi_low": float(low[0]), "hdi_high": float(high[0]), "p_dependency": float(np.mean(values < threshold)),
            "lfsr": float(local_false_sign_rate(values[None, :])[0]), "threshold": float(threshold),
            "hdi_prob": float(hdi_prob)}


def describe_gene_effect(gene: str, s: Mapping[str, float]) -> str:
    """The overall effect in words; a gene is called a dependency only with a negative mean and P ≥ ``CLEAR``."""
    pct = f"{s['hdi_prob']:.0%} HDI {s['hdi_low']:+.2f} to {s['hdi_high']:+.2f}"
    dep = f"P(effect < {s['threshold']:g}) {_p(s['p_dependency'])[2:]}"
    if s["mean"] < 0 and s["p_dependency"] >= CLEAR:
        return f"Knocking out {gene} lowers fitness: mean effect {s['mean']:+.2f} LFC ({pct}); it is a dependency with {dep}."
    if s["mean"] < 0:
        return (f"Knocking out {gene} lowers fitness a little, if at all: mean effect {s['mean']:+.2f} LFC ({pct}); "
                f"not clearly a dependency ({dep}).")
    return f"{gene} is not a dependency: mean effect {s['mean']:+.2f} LFC ({pct}), not negative ({dep})."


def gene_effects_along(draws: xr.DataArray, gene: str, along: str, *, threshold: float = DEFAULT_THRESHOLD,
                       hdi_prob: float = HDI_PROB, lineage_of: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``gene``'s effect in each lineage or cell line: forest rows (strongest first) plus ``p_dependency``."""
    one = _one_gene(draws, gene)
    inner = INNER_PROB if hdi_prob > INNER_PROB else hdi_prob / 2  # the forest plot's 50% unless that is wider
    rows = forest_rows(one, along, inner=inner, outer=hdi_prob, lineage_of=lineage_of)
    values, labels = sample_matrix(one, along)
    p = dict(zip(labels, np.mean(values < threshold, axis=0), strict=True))
    rows["p_dependency"] = rows["label"].map(p).astype(np.float64)
    rows.attrs.update(threshold=float(threshold), gene=gene)
    return rows


def describe_effects_along(rows: pd.DataFrame, gene: str, what: str) -> str:
    """'KRAS is a dependency in 7 of 10 cell lines (P(effect < -0.5) ≥ 0.75); strongest in …, weakest in …'."""
    n = len(rows)
    if n == 0:
        raise AnalysisError(f"no {what} to describe for {gene}")
    threshold = rows.attrs.get("threshold", DEFAULT_THRESHOLD)
    dep = rows[(rows["mean"] < 0) & (rows["p_dependency"] >= CLEAR)]
    first, last = rows.iloc[0], rows.iloc[-1]
    head = (f"{gene} is a dependency in {len(dep)} of {count_noun(n, what[:-1] if what.endswith('s') else what, what)}"
            f" (P(effect < {threshold:g}) ≥ {CLEAR:g})")
    if n == 1:
        return f"{head}: effect {first['mean']:+.2f} in {first['label']}."
    return (f"{head}; strongest in {first['label']} ({first['mean']:+.2f}), weakest in {last['label']} "
            f"({last['mean']:+.2f}).")


def describe_rank(row: Mapping[str, Any], n_genes: int, hdi_prob: float, *, where: str = "") -> str:
    """'KRAS ranks 3rd of 8 genes on average (expected rank 3.2; 89% rank interval 2 to 4)'."""
    low, high = int(row["rank_low"]), int(row["rank_high"])
    interval = f"rank {low}" if low == high else f"ranks {low} to {high}"
    sure = ("its place is pinned down" if high - low <= max(1, n_genes // 10)
            else "the data cannot pin down its place")
    return (f"Among the {n_genes:,} genes of this fit{where}, {row['gene']} has expected rank {row['expected_rank']:.1f} "
            f"(1 = strongest dependency; {hdi_prob:.0%} interval: {interval}): {sure}.")


def guides_by_gene(fit: StoredFit) -> dict[str, tuple[str, ...]]:
    """Each gene's guides in a fit, from the guide and gene labels stored with its readings.

    Falls back to the fit's screen table when the fit stores no labels; raises ``AnalysisError`` when
    neither says (the page then reports it).
    """
    frame: pd.DataFrame | None = None
    if fit.manifest.has_group("constant_data"):
        const = fit.dataset("constant_data")
        if "sgrna" in const.data_vars and "gene" in const.data_vars:
            frame = pd.DataFrame({"sgrna": np.asarray(const["sgrna"].values).astype(str),
                                  "gene": np.asarray(const["gene"].values).astype(str)})
    if frame is None:
        from speclet_core.analysis.readings import load_readings

        n = int(np.prod(fit.manifest.shape_of("observed_data", "lfc") or (0,)))
        table = load_readings(fit.manifest.request.model_dump(), n_readings=n)
        frame = pd.DataFrame({"sgrna": table["sgrna"].astype(str), "gene": table["gene"].astype(str)})
    frame = frame.drop_duplicates()
    return {str(g): tuple(sorted(part["sgrna"])) for g, part in frame.groupby("gene", sort=True)}


def guide_table(sgrna_draws: xr.DataArray, gene_draws: xr.DataArray, *, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
    """One row per guide of a gene: its deviation from the gene's effect, and whether it disagrees.

    ``sgrna_draws``: ``sgrna_effect`` of the gene's guides (chain, draw, sgrna); ``gene_draws``: the
    gene's effect (chain, draw). Columns: sgrna, mean_deviation, hdi_low, hdi_high, p_weaker
    (P(the guide weakens the gene's effect)), p_large (P(|deviation| > LARGE_GUIDE_DEVIATION)),
    guide_effect (mean of gene effect + deviation), disagrees.
    """
    dev, labels = sample_matrix(sgrna_draws, "sgrna")
    effect = _samples(gene_draws)
    if effect.size != dev.shape[0]:
        raise AnalysisError(f"the guide draws ({dev.shape[0]}) and the gene draws ({effect.size}) do not match; "
                            "pass draws of the same fit")
    low, high = hdi_columns(dev, hdi_prob)
    negative = effect.mean() < 0  # a dependency: a guide weakens it by a positive deviation
    weaker = dev > 0 if negative else dev < 0
    out = pd.DataFrame({
        "sgrna": labels, "mean_deviation": dev.mean(axis=0), "hdi_low": low, "hdi_high": high,
        "p_weaker": weaker.mean(axis=0), "p_large": (np.abs(dev) > LARGE_GUIDE_DEVIATION).mean(axis=0),
        "guide_effect": (effect[:, None] + dev).mean(axis=0),
    })
    out["disagrees"] = (out["hdi_low"] > 0) if negative else (out["hdi_high"] < 0)
    out = out.sort_values("mean_deviation", ascending=not negative, kind="stable", ignore_index=True)
    out.attrs.update(hdi_prob=float(hdi_prob), gene_mean=float(effect.mean()))
    return out


def describe_guides(table: pd.DataFrame, gene: str) -> list[str]:
    """Whether ``gene``'s guides agree, in words: every disagreeing guide named with its numbers."""
    n = len(table)
    pct = f"{table.attrs.get('hdi_prob', HDI_PROB):.0%} HDI"
    if n < 2:
        return [f"{gene} has {count_noun(n, 'guide')} in this fit, so there is nothing to compare it with."]
    direction = "weakens" if table.attrs.get("gene_mean", -1.0) < 0 else "strengthens"
    bad = table[table["disagrees"]]
    if bad.empty:
        large = table[table["p_large"] >= CLEAR]
        note = (f" ({join_labels(large['sgrna'], 3)} may still differ by more than {LARGE_GUIDE_DEVIATION:g})"
                if not large.empty else "")
        return [f"The {n} guides of {gene} agree: no guide's deviation from the gene's effect is clearly away from 0 "
                f"on the side that {direction} it{note}."]
    lines = [f"{len(bad)} of the {n} guides of {gene} disagree{'s' if len(bad) == 1 else ''} with the others:"]
    for r in bad.itertuples():
        lines.append(f"guide {r.sgrna} {direction} the gene's effect by {abs(r.mean_deviation):.2f} LFC ({pct} of its "
                     f"deviation {r.hdi_low:+.2f} to {r.hdi_high:+.2f}, excluding 0; P(deviation larger than "
                     f"{LARGE_GUIDE_DEVIATION:g}) {_p(r.p_large)[2:]}): its own effect is {r.guide_effect:+.2f}. "
                     "It may cut poorly or hit a region the gene does without.")
    return lines


@dataclass(frozen=True)
class GeneView:
    """Everything the gene page shows about one gene; a level the model lacks has ``None`` and a note."""

    gene: str
    overall: dict[str, float]
    overall_sentence: str
    rank: dict[str, Any] | None
    rank_sentence: str
    lineages: pd.DataFrame | None
    lineage_sentence: str  # or the note saying the model has no such level
    cell_lines: pd.DataFrame | None
    cell_line_sentence: str
    guides: pd.DataFrame | None
    guide_sentences: tuple[str, ...]
    reference: ReferenceInFit
    reference_sentence: str  # the comparison with the median common-essential gene, or why there is none
    reference_check: ReferenceCheck | None
    reference_check_sentence: str


def gene_view(fit: StoredFit, gene: str, *, threshold: float = DEFAULT_THRESHOLD, hdi_prob: float = HDI_PROB,
              ranking: pd.DataFrame | None = None, lineage_of: Mapping[str, str] | None = None,
              guides: Mapping[str, Sequence[str]] | None = None) -> GeneView:
    """Read what the gene page needs about ``gene`` from a stored fit, level by level.

    ``ranking``: the fit's gene ranking (``ranking.rank_genes`` of the gene effect; None: no rank shown);
    ``lineage_of``: cell line → lineage (colours); ``guides``: gene → its guides (``guides_by_gene``),
    needed when the model has a guide term.
    """
    manifest = fit.manifest
    genes = list(manifest.genes)
    if gene not in genes:
        from speclet_core.labels import describe_unknown

        raise AnalysisError(describe_unknown([gene], genes, "gene", f"fit {fit.fit_id[:12]}") + "; pick one of its genes")
    roles = manifest.roles.to_dict()
    levels = gene_levels(roles, list(manifest.groups.get("posterior", {})))
    effect_var = roles["gene_effect"]
    found = reference_in_fit(genes)
    wanted = list(dict.fromkeys([gene, *found.essential, *found.nonessential])) if found.enough else [gene]
    effect = fit.draws(effect_var, gene=wanted)
    overall = gene_effect_summary(effect, gene, threshold=threshold, hdi_prob=hdi_prob)

    rank_row: dict[str, Any] | None = None
    rank_sentence = "No ranking was computed for this fit."
    if ranking is not None and gene in set(ranking["gene"]):
        rank_row = ranking.loc[ranking["gene"] == gene].iloc[0].to_dict()
        rank_sentence = describe_rank(rank_row, len(ranking), hdi_prob)

    lineages = cells = guide_rows = None
    if levels["lineage"]:
        lineages = gene_effects_along(fit.draws(levels["lineage"], gene=gene), gene, "lineage", threshold=threshold,
                                      hdi_prob=hdi_prob)
        lineage_sentence = describe_effects_along(lineages, gene, "lineages")
    else:
        lineage_sentence = missing_level_note(manifest.model, "lineage")
    if levels["cell_line"]:
        cells = gene_effects_along(fit.draws(levels["cell_line"], gene=gene), gene, "cell_line", threshold=threshold,
                                   hdi_prob=hdi_prob, lineage_of=lineage_of)
        cell_line_sentence = describe_effects_along(cells, gene, "cell lines")
    else:
        cell_line_sentence = missing_level_note(manifest.model, "cell_line")
    if levels["sgrna"]:
        own = list((guides or {}).get(gene, ()))
        if not own:
            raise AnalysisError(f"the fit stores no guides of {gene}; its guide labels are missing, refit it")
        guide_rows = guide_table(fit.draws(levels["sgrna"], sgrna=own), _one_gene(effect, gene), hdi_prob=hdi_prob)
        guide_lines = tuple(describe_guides(guide_rows, gene))
    else:
        guide_lines = (missing_level_note(manifest.model, "sgrna"),)

    check = None
    if found.enough:
        check = check_reference_separation(effect.sel(gene=[*found.essential, *found.nonessential]), found,
                                           hdi_prob=hdi_prob)
        check_sentence = describe_reference_check(check)
        others = [g for g in found.essential if g != gene]
        reference_sentence = (describe_essential_comparison(compare_with_essentials(effect, gene, found))
                              if len(others) >= MIN_REFERENCE_GENES else
                              f"{gene} is itself one of the fit's {len(found.essential)} common-essential genes; "
                              f"comparing it with the others needs at least {MIN_REFERENCE_GENES} besides it.")
    else:
        check_sentence = reference_sentence = describe_missing_reference(found)
    return GeneView(gene=gene, overall=overall, overall_sentence=describe_gene_effect(gene, overall), rank=rank_row,
                    rank_sentence=rank_sentence, lineages=lineages, lineage_sentence=lineage_sentence,
                    cell_lines=cells, cell_line_sentence=cell_line_sentence, guides=guide_rows,
                    guide_sentences=guide_lines, reference=found, reference_sentence=reference_sentence,
                    reference_check=check, reference_check_sentence=check_sentence)
