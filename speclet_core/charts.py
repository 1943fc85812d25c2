"""Altair chart specs used by the pages (pure functions: data in, chart out).

Conventions: negative LFC / effect (a dependency) is red, positive blue, centred on 0;
tooltips always name gene, cell line and lineage; charts stay under ~50k marks (callers
aggregate or page first).
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

EFFECT_SCHEME = "redblue"
MAX_MARKS = 50_000


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
    if diverging:
        scale = alt.Scale(scheme=EFFECT_SCHEME, domainMid=0, **({"domain": list(domain)} if domain else {}))
    else:
        scale = alt.Scale(scheme="reds", **({"domain": list(domain)} if domain else {}))
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
    box = base.mark_bar(size=14).encode(y="q25:Q", y2="q75:Q", color=alt.Color("lineage:N", legend=None))
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
