"""Predictive checks: do data simulated from the fitted model look like the observed LFCs?"""

import streamlit as st

from model_store.stats import HDI_PROB
from pages import adapter, presentation, widgets
from speclet_core import charts
from speclet_core.analysis import cell_lines, glossary, sentences
from speclet_core.analysis.escaping import escape_markdown

fit = widgets.open_results_page("Predictive checks")
st.caption(
    "If the model describes the screen well, readings simulated from the fitted model (the posterior predictive) "
    "look like the observed ones. Black steps: the observed LFC histogram. Blue: the range of histograms of "
    "simulated screens (" f"{HDI_PROB:.0%} of them fall inside the band; the line is their average). Observed bars outside the "
    "band show a feature of the data the model does not reproduce (e.g. heavier tails)."
)
if fit.manifest.shape_of("posterior_predictive", "lfc") is None or fit.manifest.shape_of("observed_data", "lfc") is None:
    adapter.stop_with("This fit stored no posterior predictive draws of the LFC, so there is nothing to compare. Refit it "
                 "(fits made by speclet store them).")

hist, stats = adapter.guarded(adapter.ppc_overall, fit.fit_id, fit)
st.subheader("All readings")
presentation.show_chart(charts.ppc_chart(hist, title="Observed vs predicted LFC, all readings"), hist, "ppc_all",
                       key="ppc-all", fit=fit)
note = (f"Based on {hist.attrs['n_draws']:,} simulated screens and {hist.attrs['n_readings']:,} readings"
        + (f" (every {hist.attrs['stride']}th reading)" if hist.attrs.get("stride", 1) > 1 else "") + ".")
if "prior_mean" in hist.columns:
    note += (" Orange: the prior predictive, what the model expected before seeing the data; it should be wider "
             "than the data and cover them.")
else:
    note += " No prior predictive draws were recorded for this fit."
st.caption(note)
st.markdown(escape_markdown(sentences.describe_ppc(stats)))
labels = glossary.ppc_labels(HDI_PROB)
st.dataframe(
    stats, hide_index=True, width="stretch",
    column_config={
        "statistic": labels["statistic"],
        "predicted_low": st.column_config.NumberColumn(labels["predicted_low"], format="%.3f"),
        "predicted_high": st.column_config.NumberColumn(labels["predicted_high"], format="%.3f"),
        "p_predicted_above": st.column_config.NumberColumn(labels["p_predicted_above"], format="%.2f",
                                                           help="Below 0.01 or above 0.99: the model misses this "
                                                                "statistic."),
        "observed": st.column_config.NumberColumn(labels["observed"], format="%.3f"),
        "predicted_mean": st.column_config.NumberColumn(labels["predicted_mean"], format="%.3f"),
        "surprising": st.column_config.CheckboxColumn(labels["surprising"]),
    },
)

st.subheader("Per gene or lineage")
if not widgets.readings_wanted(fit, "Check per gene or lineage", key="ppc_split"):
    st.stop()
readings, why = adapter.try_readings(fit)
if readings is None:
    st.info(f"Per-gene and per-lineage checks are not available: {escape_markdown(why)}.")
    st.stop()
splits = {"gene": "gene", "lineage": "lineage", "cell_line": "cell line"}
by = st.segmented_control("Split by", list(splits), format_func=splits.get, default="gene", key="ppc_by",
                          bind="query-params") or "gene"
names = cell_lines.cell_line_labels(fit) if by == "cell_line" else {}
if by == "gene":
    summary = adapter.gene_summary(fit.fit_id, fit)
    options = summary.sort_values("mean")["gene"].tolist()
else:
    options = sorted(str(x) for x in readings[by].unique())
default = options[:6]
chosen = st.multiselect(f"{splits[by].capitalize()}s (up to 12; genes are listed strongest dependency first)", options,
                        default=default, key=f"ppc_{by}s", bind="query-params", max_selections=12,
                        format_func=lambda c: names.get(c, c))
if not chosen:
    adapter.stop_with(f"Pick at least one {by}.")
per_group = adapter.guarded(adapter.ppc_groups, fit.fit_id, fit, by, tuple(chosen))
if names:  # panels titled by cell-line name where the screen named them
    per_group = cell_lines.relabel_rows(per_group, names, column="group")
presentation.show_chart(charts.ppc_chart(per_group, facet="group", title=f"Observed vs predicted LFC per {splits[by]}"),
                       per_group, f"ppc_by_{by}", key="ppc-groups", fit=fit)
st.caption("Each panel has its own density scale. A gene whose observed histogram sits outside its band is "
           "described poorly: e.g. its guides disagree more than the model allows, or it matters in one lineage only.")
