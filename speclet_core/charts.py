"""Altair chart specs used by the pages (pure functions: data in, chart out).

Conventions: negative LFC / effect (a dependency) is red, positive blue, centred on 0;
tooltips always name gene, cell line and lineage; charts stay under ~50k marks (callers
aggregate or page first).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import altair as alt
import pandas as pd

from model_store.stats import HDI_PROB
from model_store.summaries import P_BELOW_THRESHOLD

EFFECT_SCHEME: Final = "redblue"
MAX_MARKS = 50_000
# Lineage colours: Okabe-Ito's colour-blind-safe palette without its vermillion, and further hues without red,
# so red keeps meaning "dependency" on every page.
LINEAGE_COLOURS: Final = ("#0072B2", "#E69F00", "#009E73", "#56B4E9", "#CC79A7", "#F0E442", "#555555", "#000000",
                          "#7570B3", "#66A61E", "#A6761D", "#1B9E77")
LINEAGE_SCALE: Final = {"range": list(LINEAGE_COLOURS)}


def number(field: str, title: str | None = None, fmt: str = ".2f") -> alt.Tooltip:
    """A tooltip entry showing a number with two decimals."""
    return alt.Tooltip(f"{field}:Q", title=title or field.replace("_", " "), format=fmt)


def _check_size(df: pd.DataFrame) -> None:
    if len(df) > MAX_MARKS:
        raise ValueError(f"{len(df):,} marks is too many for the browser; aggregate or page first (max {MAX_MARKS:,})")


def bar_counts(df: pd.DataFrame, category: str, value: str, title: str, *, label: str | None = None) -> alt.Chart:
    """Horizontal bars, largest first."""
    _check_size(df)
    return (
        alt.Chart(df, title=title)
        .mark_bar(color="#4c78a8")
        .encode(
            y=alt.Y(f"{category}:N", sort="-x", title=label or category, axis=alt.Axis(labelOverlap=False)),
            x=alt.X(f"{value}:Q", title=value.replace("_", " ")),
            tooltip=[alt.Tooltip(f"{category}:N"), alt.Tooltip(f"{value}:Q")],
        )
        .properties(height=alt.Step(20))
    )


def effect_heatmap(
    df: pd.DataFrame,
    *,
    x: str,
    y: str,
    color: str,
    color_title: str,
    tooltip: Sequence[str | alt.Tooltip],
    x_sort: Sequence[str] | None = None,
    y_sort: Sequence[str] | None = None,
    opacity: str | None = None,
    diverging: bool = True,
    domain: tuple[float, float] | None = None,
    title: str = "",
    x_title: str | None = None,
    y_title: str | None = None,
) -> alt.Chart:
    """A rect heatmap; diverging red-blue centred on 0 for effects, sequential for probabilities."""
    _check_size(df)
    limits: Any = list(domain) if domain else alt.Undefined
    if diverging:
        scale = alt.Scale(scheme=EFFECT_SCHEME, domainMid=0, domain=limits)
    else:
        scale = alt.Scale(scheme="reds", domain=limits)
    enc = {
        "x": alt.X(f"{x}:N", sort=list(x_sort) if x_sort is not None else "ascending", title=x_title or x,
                   axis=alt.Axis(labelLimit=120)),
        "y": alt.Y(f"{y}:N", sort=list(y_sort) if y_sort is not None else "ascending", title=y_title or y),
        "color": alt.Color(f"{color}:Q", scale=scale, title=color_title, legend=alt.Legend(orient="right")),
        "tooltip": list(tooltip),
    }
    if opacity is not None:
        enc["opacity"] = alt.Opacity(f"{opacity}:Q", scale=alt.Scale(domain=[0, 1], range=[0.25, 1]), legend=None)
    return alt.Chart(df, title=title).mark_rect().encode(**enc)


def box_from_stats(df: pd.DataFrame, *, title: str = "LFC by lineage") -> alt.FacetChart:
    """Box plots from precomputed quantiles (q05, q25, median, q75, q95), one panel per gene."""
    _check_size(df)
    # Layers take their data from the facet (no data of their own), so each panel shows only its gene.
    base = alt.Chart().encode(
        x=alt.X("lineage:N", title=None, axis=alt.Axis(labelAngle=-40, labelOverlap=False)),
        tooltip=["gene:N", "lineage:N", number("median", "median LFC"), number("q25", "25%"), number("q75", "75%"),
                 alt.Tooltip("readings:Q")],
    )
    whisker = base.mark_rule(color="#555").encode(y=alt.Y("q05:Q", title="log2 fold change"), y2="q95:Q")
    box = base.mark_bar(size=14).encode(y="q25:Q", y2="q75:Q", color=alt.Color("lineage:N", legend=None, scale=alt.Scale(**LINEAGE_SCALE)))
    mid = base.mark_tick(color="black", size=14, thickness=2).encode(y="median:Q")
    zero = alt.Chart().mark_rule(strokeDash=[4, 4], color="#999").encode(y=alt.datum(0))
    layered = alt.layer(zero, whisker, box, mid, data=df).properties(width=180, height=160)
    return layered.facet(facet=alt.Facet("gene:N", title=None), columns=4).properties(title=title)


def scatter(df: pd.DataFrame, *, x: str, y: str, color: str, x_title: str, y_title: str,
            tooltip: Sequence[str], title: str = "") -> alt.Chart:
    _check_size(df)
    return (
        alt.Chart(df, title=title)
        .mark_circle(size=24, opacity=0.6)
        .encode(
            x=alt.X(f"{x}:Q", title=x_title),
            y=alt.Y(f"{y}:Q", title=y_title),
            color=alt.Color(f"{color}:N", title=color.replace("_", " ")),
            tooltip=list(tooltip),
        )
    )


def cell_line_strip(df: pd.DataFrame, *, group_title: str, title: str = "") -> alt.FacetChart:
    """One dot per cell line (its mean LFC), in rows by group and coloured by it, one panel per gene.

    ``df`` comes from ``speclet_core.data.cell_lines.summarise_cell_lines``.
    """
    _check_size(df)
    colour = alt.Color("group:N", title=group_title, scale=alt.Scale(**LINEAGE_SCALE), legend=alt.Legend(orient="top"))
    dots = alt.Chart().mark_circle(size=60, opacity=0.8).encode(
        x=alt.X("cell_line_lfc:Q", title="mean LFC of the cell line's readings"),
        y=alt.Y("group:N", title=None, axis=alt.Axis(labelLimit=200)),
        yOffset=alt.YOffset("jitter:Q", scale=alt.Scale(domain=[-1, 1])),
        color=colour,
        tooltip=[alt.Tooltip("label:N", title="cell line"), alt.Tooltip("group:N", title=group_title), "gene:N",
                 number("cell_line_lfc", "mean LFC"), alt.Tooltip("readings:Q", title="readings")],
    ).transform_calculate(jitter="random() * 1.4 - 0.7")  # spread dots of one row vertically
    zero = alt.Chart().mark_rule(strokeDash=[4, 4], color="#999").encode(x=alt.datum(0))
    layered = alt.layer(zero, dots, data=df).properties(width=260)
    return layered.facet(facet=alt.Facet("gene:N", title=None), columns=3).properties(title=title)


# --------------------------------------------------------------------------- result pages (forest, heatmap, rankings, …)

OBSERVED_COLOUR = "#222222"
PREDICTED_COLOUR = "#4c78a8"
PRIOR_COLOUR = "#f58518"
TRUTH_COLOUR = "#000000"
ROW_STEP = 20  # pixels per labelled row: below this Vega hides every other label
# ranks are whole numbers: ticks at integers only, never 0.5 or 1.5
RANK_AXIS: Final = alt.Axis(tickMinStep=1, format="d")


def _zero_rule(axis: str = "x") -> alt.Chart:
    enc = {axis: alt.datum(0)}
    return alt.Chart().mark_rule(strokeDash=[4, 4], color="#999").encode(**enc)


def forest_chart(rows: pd.DataFrame, *, label_title: str, value_title: str = "effect on LFC (posterior)",
                 title: str = "", compare: bool = False) -> alt.TopLevelMixin:
    """Forest plot: thin line = outer interval, thick line = inner interval, dot = posterior mean.

    ``rows`` come from ``forest.forest_rows`` (or ``combine_forests`` with ``compare=True``, one
    row offset per fit); a ``truth`` column adds black diamonds at the true values.
    """
    _check_size(rows)
    inner, outer = rows.attrs.get("inner", 0.5), rows.attrs.get("outer", HDI_PROB)
    y = alt.Y("label:N", sort=alt.EncodingSortField("order", op="min"), title=label_title,
              axis=alt.Axis(labelLimit=180, labelOverlap=False))
    colour: Any
    if compare:
        colour = alt.Color("fit:N", title="fit", scale=alt.Scale(**LINEAGE_SCALE),
                           legend=alt.Legend(orient="top", labelLimit=400))
    elif rows["lineage"].nunique() > 1:
        colour = alt.Color("lineage:N", scale=alt.Scale(**LINEAGE_SCALE), legend=alt.Legend(orient="right"))
    else:
        colour = alt.value(PREDICTED_COLOUR)
    tooltip: list[Any] = [alt.Tooltip("label:N", title=label_title), "lineage:N", number("mean", "posterior mean"),
               number("sd"), number("inner_low", f"{inner:.0%} low"), number("inner_high", f"{inner:.0%} high"),
               number("outer_low", f"{outer:.0%} low"), number("outer_high", f"{outer:.0%} high")]
    if compare:
        tooltip.insert(1, "fit:N")
    has_truth = "truth" in rows.columns and rows["truth"].notna().any()
    if has_truth:
        tooltip.append(number("truth", "true value"))
    enc: dict = {"y": y, "color": colour, "tooltip": tooltip}
    if compare:
        enc["yOffset"] = alt.YOffset("fit:N")
    base = alt.Chart().encode(**enc)
    layers = [
        _zero_rule("x"),
        base.mark_rule(strokeWidth=1.5).encode(x=alt.X("outer_low:Q", title=value_title), x2="outer_high:Q"),
        base.mark_rule(strokeWidth=5).encode(x="inner_low:Q", x2="inner_high:Q"),
        base.mark_point(filled=True, size=50, opacity=1).encode(x="mean:Q"),
    ]
    if has_truth:
        layers.append(alt.Chart().mark_point(shape="diamond", filled=False, size=90, strokeWidth=2, color=TRUTH_COLOUR)
                      .encode(x="truth:Q", y=y, tooltip=tooltip, **({"yOffset": alt.YOffset("fit:N")} if compare else {})))
    step = 28 if compare else ROW_STEP
    return alt.layer(*layers, data=rows).properties(title=title, height=alt.Step(step))


def rank_interval_chart(table: pd.DataFrame, *, top_k: int, title: str = "") -> alt.TopLevelMixin:
    """Expected rank (dot) and rank interval (line) per gene; colour = P(top-k)."""
    _check_size(table)
    y = alt.Y("gene:N", sort=alt.EncodingSortField("expected_rank", op="min"), title="gene (strongest first)",
              axis=alt.Axis(labelOverlap=False))
    colour = alt.Color("p_top_k:Q", title=f"P(top-{top_k})", scale=alt.Scale(scheme="reds", domain=[0, 1]))
    tooltip: list[Any] = ["gene:N", number("expected_rank", "expected rank", ".1f"), number("rank_low", "rank low", ".0f"),
               number("rank_high", "rank high", ".0f"), number("p_top_k", f"P(top-{top_k})"),
               number("mean", "posterior mean")]
    base = alt.Chart().encode(y=y, tooltip=tooltip)
    return alt.layer(
        base.mark_rule(strokeWidth=2, color="#888").encode(x=alt.X("rank_low:Q", title="rank (1 = strongest)",
                                                                   axis=RANK_AXIS, scale=alt.Scale(zero=False)),
                                                           x2="rank_high:Q"),
        base.mark_point(filled=True, size=60, opacity=1).encode(x="expected_rank:Q", color=colour),
        data=table,
    ).properties(title=title, height=alt.Step(ROW_STEP))


def pairwise_chart(cells: pd.DataFrame, genes: Sequence[str], *, title: str = "") -> alt.TopLevelMixin:
    """P(row gene is a stronger dependency than column gene): red = row stronger, blue = column stronger."""
    _check_size(cells)
    order = list(genes)
    enc = {
        "x": alt.X("gene_b:N", sort=order, title="compared with", axis=alt.Axis(labelAngle=-45)),
        "y": alt.Y("gene_a:N", sort=order, title="gene"),
    }
    tooltip: list[Any] = ["gene_a:N", "gene_b:N", number("p_a_stronger", "P(gene stronger)"),
               number("mean_diff", "mean difference"), number("hdi_low", "difference low"),
               number("hdi_high", "difference high"), alt.Tooltip("sentence:N", title="in words")]
    rect = alt.Chart().mark_rect().encode(
        color=alt.Color("p_a_stronger:Q", title="P(row stronger)",
                        scale=alt.Scale(scheme="redblue", reverse=True, domain=[0, 1], domainMid=0.5)),
        tooltip=tooltip, **enc)
    layers = [rect]
    if len(order) <= 15:
        layers.append(alt.Chart().mark_text(fontSize=10).encode(
            text=alt.Text("p_a_stronger:Q", format=".0%"),
            color=alt.condition("abs(datum.p_a_stronger - 0.5) > 0.3", alt.value("white"), alt.value("black")),
            **enc))
    return alt.layer(*layers, data=cells).properties(title=title, width=alt.Step(34), height=alt.Step(24))


def threshold_text(threshold: float = P_BELOW_THRESHOLD) -> str:
    """A threshold as shown to people: ``−0.5`` with a typeset minus."""
    return f"{threshold:g}".replace("-", "−")


HEAT_STAT_TITLES = {"mean": "posterior mean", "sd": "posterior sd", "p_below": f"P(effect < {threshold_text()})"}


def lineage_heatmap(view, *, column_title: str, title: str = "") -> alt.VConcatChart:  # view: analysis.heatmap.HeatmapView
    """Gene × cell-line heatmap from ``heatmap.heatmap_view``, with a lineage colour band on top.

    Mean: red = dependency, blue = positive, centred on 0, uncertain cells faded; sd: darker =
    more uncertain; P(effect < threshold): darker red = more certainly a dependency.
    """
    stat = str(view.stat)
    # ship only what is drawn or hovered, as float32: the rows go to the browser as they are
    keep = ["gene", "column", "lineage", "value", "mean", "hdi_low", "hdi_high", "certainty"]
    if view.per_column > 1:
        keep += ["n_cell_lines", "cell_lines"]
    cells = view.cells[keep].astype({c: "float32" for c in ("value", "mean", "hdi_low", "hdi_high", "certainty")})
    _check_size(cells)
    columns = list(view.columns)
    many = len(columns) > 60
    width = 900 if many else alt.Step(16)
    x = alt.X("column:N", sort=columns, title=column_title,
              axis=alt.Axis(labels=not many, ticks=not many, labelAngle=-60, labelLimit=140))
    band = alt.Chart(view.bands).mark_rect().encode(
        x=alt.X("column:N", sort=columns, axis=None),
        color=alt.Color("lineage:N", scale=alt.Scale(**LINEAGE_SCALE), legend=alt.Legend(orient="top")),
        tooltip=["lineage:N", alt.Tooltip("n_cell_lines:Q", title="cell lines")],
    ).properties(height=12, width=width)
    if stat == "mean":
        scale = alt.Scale(scheme="redblue", domainMid=0)  # EFFECT_SCHEME
    elif stat == "sd":
        scale = alt.Scale(scheme="greys", zero=True)
    else:
        scale = alt.Scale(scheme="reds", domain=[0, 1])
    enc = {
        "x": x,
        "y": alt.Y("gene:N", sort=list(view.genes), title="gene", axis=alt.Axis(labelOverlap=False)),
        "color": alt.Color("value:Q", scale=scale, title=HEAT_STAT_TITLES.get(stat, stat),
                           legend=alt.Legend(orient="right")),
        "tooltip": ["gene:N", alt.Tooltip("column:N", title=column_title), "lineage:N", number("mean", "posterior mean"),
                    number("hdi_low", f"{HDI_PROB:.0%} low"),
                    number("hdi_high", f"{HDI_PROB:.0%} high")]
        + ([number("value", HEAT_STAT_TITLES.get(stat, stat))] if stat != "mean" else [])
        + ([alt.Tooltip("n_cell_lines:Q", title="cell lines averaged"), alt.Tooltip("cell_lines:N", title="cell lines")]
           if view.per_column > 1 else []),
    }
    if stat == "mean":
        enc["opacity"] = alt.Opacity("certainty:Q", scale=alt.Scale(domain=[0, 1], range=[0.2, 1]), legend=None)
    heat = alt.Chart(cells).mark_rect().encode(**enc).properties(width=width, height=alt.Step(ROW_STEP - 2))
    return alt.vconcat(band, heat, spacing=2).resolve_scale(color="independent").properties(title=title)


def _series(name: str) -> dict:
    return {"series": f"'{name}'"}


def ppc_chart(hist: pd.DataFrame, *, title: str = "", facet: str | None = None,
              columns: int = 3) -> alt.TopLevelMixin:
    """Observed LFC histogram (black steps) over the posterior predictive band (blue) and, when recorded,
    the prior predictive band (orange); ``facet`` splits it into panels (e.g. ``group``)."""
    _check_size(hist)
    names = ["observed", "posterior predictive"] + (["prior predictive"] if "prior_mean" in hist.columns else [])
    colour = alt.Color("series:N", title=None, legend=alt.Legend(orient="top"),
                       scale=alt.Scale(domain=names, range=[OBSERVED_COLOUR, PREDICTED_COLOUR, PRIOR_COLOUR][: len(names)]))
    x = alt.X("bin_mid:Q", title="log2 fold change")
    tip: list[Any] = [number("bin_low", "from"), number("bin_high", "to"), number("observed", "observed density"),
           number("predicted_mean", "predicted density"), number("predicted_low", "predicted low"),
           number("predicted_high", "predicted high")]
    layers = []
    if "prior_mean" in hist.columns:
        layers.append(alt.Chart().mark_area(opacity=0.18).encode(x=x, y="prior_low:Q", y2="prior_high:Q", color=colour)
                      .transform_calculate(**_series("prior predictive")))
    layers += [
        alt.Chart().mark_area(opacity=0.3).encode(x=x, y=alt.Y("predicted_low:Q", title="density"),
                                                   y2="predicted_high:Q", color=colour)
        .transform_calculate(**_series("posterior predictive")),
        alt.Chart().mark_line(strokeWidth=1.5).encode(x=x, y="predicted_mean:Q", color=colour)
        .transform_calculate(**_series("posterior predictive")),
        alt.Chart().mark_line(interpolate="step", strokeWidth=2).encode(x=x, y="observed:Q", color=colour, tooltip=tip)
        .transform_calculate(**_series("observed")),
    ]
    chart = alt.layer(*layers, data=hist)
    if facet is None:
        return chart.properties(title=title, height=260)
    chart = chart.properties(width=240, height=150)
    return chart.facet(facet=alt.Facet(f"{facet}:N", title=None), columns=columns).resolve_scale(y="independent") \
        .properties(title=title)


def covariate_chart(points: pd.DataFrame, band: pd.DataFrame, lines: pd.DataFrame, *, x_title: str,
                    genes: Sequence[str], columns: int = 3, title: str = "") -> alt.ConcatChart:
    """Per gene: observed LFC against a covariate (dots by lineage) with posterior regression lines
    (thin grey: single draws; blue: mean with its HDI band)."""
    _check_size(points)
    panels = []
    for gene in genes:
        p, b, li = points[points["gene"] == gene], band[band["gene"] == gene], lines[lines["gene"] == gene]
        x = alt.X("x:Q", title=x_title, scale=alt.Scale(zero=False))
        dots = alt.Chart(p).mark_circle(size=18, opacity=0.45).encode(
            x=x, y=alt.Y("lfc:Q", title="log2 fold change"),
            color=alt.Color("lineage:N", scale=alt.Scale(**LINEAGE_SCALE)),
            tooltip=["gene:N", "cell_line:N", "lineage:N", *(["sgrna:N"] if "sgrna" in p.columns else []),
                     number("x", x_title), number("lfc", "LFC")])
        spaghetti = alt.Chart(li).mark_line(strokeWidth=0.6, opacity=0.35, color="#777").encode(
            x=x, y="lfc:Q", detail="draw:N")
        area = alt.Chart(b).mark_area(opacity=0.25, color=PREDICTED_COLOUR).encode(x=x, y="low:Q", y2="high:Q")
        mean = alt.Chart(b).mark_line(strokeWidth=2.5, color=PREDICTED_COLOUR).encode(
            x=x, y="mean:Q", tooltip=[number("x", x_title), number("mean", "line"),
                                      number("low", f"{HDI_PROB:.0%} low"), number("high", f"{HDI_PROB:.0%} high")])
        panels.append(alt.layer(dots, spaghetti, area, mean).properties(title=gene, width=220, height=200))
    return alt.concat(*panels, columns=columns).properties(title=title).configure_legend(orient="top")


def rank_change_chart(long: pd.DataFrame, fits: Sequence[str], *, title: str = "") -> alt.TopLevelMixin:
    """One row per gene: its expected rank in each fit (dots, coloured by fit) joined by a line; long lines
    are genes whose place depends on the model. Rows follow the first fit's ranking."""
    _check_size(long)
    first = long[long["fit"] == fits[0]].sort_values("expected_rank")["gene"].tolist()
    y = alt.Y("gene:N", sort=first, title="gene (in the first fit's order)", axis=alt.Axis(labelOverlap=False))
    x = alt.X("expected_rank:Q", title="rank among shared genes (1 = strongest)", scale=alt.Scale(zero=False),
              axis=RANK_AXIS)
    tip: list[Any] = ["gene:N", "fit:N", number("expected_rank", "rank", ".1f"), number("mean", "posterior mean")]
    colour = alt.Color("fit:N", sort=list(fits), title="fit", scale=alt.Scale(**LINEAGE_SCALE),
                       legend=alt.Legend(orient="top", labelLimit=400))
    return alt.layer(
        alt.Chart().mark_line(color="#999", strokeWidth=1.5).encode(x=x, y=y, detail="gene:N"),
        alt.Chart().mark_point(filled=True, size=70, opacity=1).encode(x=x, y=y, color=colour, tooltip=tip),
        data=long,
    ).properties(title=title, height=alt.Step(ROW_STEP))


def loo_chart(table: pd.DataFrame, *, title: str = "") -> alt.TopLevelMixin:
    """ELPD (LOO) per fit with ±1 standard error; higher is better."""
    _check_size(table)
    y = alt.Y("fit:N", sort=alt.EncodingSortField("rank", op="min"), title=None, axis=alt.Axis(labelLimit=320))
    data = table.assign(low=table["elpd_loo"] - table["se"], high=table["elpd_loo"] + table["se"])
    tip: list[Any] = ["fit:N", number("elpd_loo", "ELPD", ".1f"), number("se", "SE", ".1f"), number("elpd_diff", "difference", ".1f"),
           number("dse", "SE of difference", ".1f"), number("weight", "stacking weight")]
    base = alt.Chart().encode(y=y, tooltip=tip)
    return alt.layer(
        base.mark_rule(strokeWidth=2).encode(x=alt.X("low:Q", title="ELPD (LOO), higher is better",
                                                     scale=alt.Scale(zero=False)), x2="high:Q"),
        base.mark_point(filled=True, size=80, opacity=1).encode(x="elpd_loo:Q"),
        data=data,
    ).properties(title=title, height=alt.Step(28))


# --------------------------------------------------------------------------- diagnostics (trace, rank, energy)


def trace_chart(trace: pd.DataFrame, divergent: pd.DataFrame, *, label: str) -> alt.TopLevelMixin:
    """Each chain's draws in order (lines), red ticks at divergent draws; ``trace`` has chain, draw, value.

    One line mark per chain, so the draws are not counted against ``MAX_MARKS``.
    """
    lines = alt.Chart(trace, title=f"{label}: trace").mark_line(opacity=0.7, strokeWidth=1).encode(
        x=alt.X("draw:Q"), y=alt.Y("value:Q", title=label, scale=alt.Scale(zero=False)),
        color=alt.Color("chain:N", scale=alt.Scale(**LINEAGE_SCALE)))  # red is kept for the divergence ticks
    if not len(divergent):
        return lines
    ticks = alt.Chart(divergent).mark_tick(color="red", thickness=2, size=12).encode(x="draw:Q", y=alt.value(0))
    return lines + ticks


def rank_plot_chart(ranks: pd.DataFrame, *, label: str) -> alt.Chart:
    """One histogram of pooled ranks per chain (rows); flat bars mean the chains agree."""
    _check_size(ranks)
    return alt.Chart(ranks, title=f"{label}: rank plot").mark_bar().encode(
        x=alt.X("bin:O", title="rank bin", axis=None), y=alt.Y("count:Q"),
        color=alt.Color("chain:N", legend=None, scale=alt.Scale(**LINEAGE_SCALE)), row=alt.Row("chain:N", title="chain")
    ).properties(height=36, width=300)


def energy_chart(energy: pd.DataFrame) -> alt.Chart:
    """Overlaid histograms of the centred energy and of its transitions (``kind``, ``value``), binned in Vega."""
    return alt.Chart(energy, title="Energy").mark_bar(opacity=0.5, binSpacing=0).encode(
        x=alt.X("value:Q", bin=alt.Bin(maxbins=50), title="energy (centred)"),
        y=alt.Y("count():Q", stack=None), color=alt.Color("kind:N", title=None))


# --------------------------------------------------------------------------- figures for slides (presentation mode, exports)

# A projector at 1280 × 720 seen from the back of a room: axis labels ≥ 16 px, titles ≥ 20 px.
PROJECTOR_FONTS: Final = {"axis_label": 16, "axis_title": 18, "title": 22, "subtitle": 16, "legend": 16}
PROJECTOR_GROWTH: Final = 1.5  # row steps and fixed heights grow with the fonts, so labels are not squashed
_MAX_GROWN_WIDTH = 600  # a fixed width beyond this (a wide heatmap) stays as it is: the screen is only 1280 wide


def _grow(value: Any, factor: float, *, limit: float | None = None) -> Any:
    if isinstance(value, alt.Step):
        return alt.Step(round(value.step * factor))
    if isinstance(value, (int, float)) and not isinstance(value, bool) and (limit is None or value <= limit):
        return round(value * factor)
    return value


def _grow_sizes(chart: Any, factor: float) -> None:
    """Scale, in place, the row steps and fixed sizes of a chart and of every chart inside it."""
    for attr, limit in (("height", None), ("width", _MAX_GROWN_WIDTH)):
        value = getattr(chart, attr, alt.Undefined)
        if value is not alt.Undefined:
            setattr(chart, attr, _grow(value, factor, limit=limit))
    mark = getattr(chart, "mark", alt.Undefined)
    if isinstance(mark, alt.MarkDef) and isinstance(mark.fontSize, (int, float)):
        mark.fontSize = round(mark.fontSize * factor)
    for attr in ("layer", "vconcat", "hconcat", "concat"):
        for part in getattr(chart, attr, None) or []:
            _grow_sizes(part, factor)
    spec = getattr(chart, "spec", alt.Undefined)
    if spec is not alt.Undefined:
        _grow_sizes(spec, factor)


def _merge_config(chart: Any, key: str, **values: Any) -> None:
    """Set ``config.<key>`` entries on a top-level chart, keeping what its builder configured (e.g. legend orient)."""
    if chart.config is alt.Undefined:
        chart.config = alt.Config()
    current = chart.config[key] if key in chart.config._kwds and chart.config[key] is not alt.Undefined else None
    merged = {**(current.to_dict() if current is not None else {}), **values}
    chart.config[key] = merged


def for_projector(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """A copy of ``chart`` for a projector: larger fonts (``PROJECTOR_FONTS``), taller rows and panels."""
    out = chart.copy(deep=True)
    _grow_sizes(out, PROJECTOR_GROWTH)
    f = PROJECTOR_FONTS
    _merge_config(out, "axis", labelFontSize=f["axis_label"], titleFontSize=f["axis_title"], labelLimit=260)
    _merge_config(out, "title", fontSize=f["title"], subtitleFontSize=f["subtitle"])
    _merge_config(out, "legend", labelFontSize=f["legend"], titleFontSize=f["legend"], labelLimit=400,
                  symbolSize=160)
    _merge_config(out, "header", labelFontSize=f["title"] - 2, titleFontSize=f["title"] - 2)  # panel titles
    return out


def provenance_text(*, model: str, fit_id: str, screen: str, date: str) -> str:
    """The line every exported figure carries: which model, which fit, which screen, when."""
    return f"{model} · fit {fit_id[:12]} · screen: {screen} · fitted {date}"


def with_provenance(chart: alt.TopLevelMixin, line: str) -> alt.TopLevelMixin:
    """``chart`` with ``line`` as the last line of its subtitle (kept with its title and any verdict line), so a
    PNG or SVG exported from the chart's menu says where it came from."""
    title = chart.title
    params = title if isinstance(title, alt.TitleParams) else alt.TitleParams(
        text=title if isinstance(title, (str, list)) else "")
    subtitle = params.subtitle
    lines = [] if subtitle is alt.Undefined else [subtitle] if isinstance(subtitle, str) else list(subtitle)
    kept = {k: v for k, v in params.to_dict().items() if k not in {"text", "subtitle"}}
    text = params.text if params.text is not alt.Undefined and params.text != "" else " "
    return chart.properties(title=alt.TitleParams(text=text, subtitle=[*lines, line], **kept))


def figure_svg(chart: alt.TopLevelMixin) -> bytes:
    """The chart rendered to SVG by Vega itself (``vl-convert``), text kept as text so a slide can edit it.

    Charts are capped at ``MAX_MARKS`` marks by their builders, which bounds the time this takes
    (about 2 s for the largest heatmap).
    """
    import vl_convert

    return vl_convert.vegalite_to_svg(chart.to_dict()).encode()
