"""Diagnostics: can this fit be trusted? Verdict first, then worst-first triage, then the plots."""

import streamlit as st

from pages import adapter, presentation, widgets
from speclet_core import charts
from speclet_core.analysis.escaping import escape_markdown
from speclet_core.diagnostics import checks as fitcheck
from speclet_core.diagnostics import verdict

fit = widgets.open_results_page("Diagnostics", diagnostics=True)  # the verdict first, whatever it is
manifest = fit.manifest
summary = adapter.fit_summary(fit.fit_id)

st.subheader("Parameters, worst first")
overview = fitcheck.summarise_variables(summary)
st.caption(f"One row per variable: how many of its elements break a threshold ({verdict.BREAK_RULE}).")
st.dataframe(overview, hide_index=True, width="stretch", column_config={
    "max_r_hat": st.column_config.NumberColumn("max R-hat", format="%.3f"),
    "min_ess_bulk": st.column_config.NumberColumn("min bulk ESS", format="%.0f"),
    "min_ess_tail": st.column_config.NumberColumn("min tail ESS", format="%.0f")})
c1, c2 = st.columns([2, 1])
var_filter = c1.multiselect("Elements of", list(overview["variable"]), key="diag_vars", placeholder="All variables")
only_bad = c2.toggle("Only elements that break a threshold", key="diag_bad")
shown_rows = st.session_state.setdefault("diag_rows", 50)
worst = fitcheck.rank_worst(summary, k=shown_rows, variables=var_filter, only_breaking=only_bad)
st.dataframe(fitcheck.style_table(worst), hide_index=True, width="stretch")
total = int(overview.loc[overview["variable"].isin(var_filter) if var_filter else slice(None),
                         "breaking" if only_bad else "elements"].sum())
st.caption(f"Showing the worst {len(worst):,} of {total:,} elements (sorted by R-hat, then bulk ESS).")
if total > shown_rows and st.button(f"Show {min(200, total - shown_rows):,} more"):
    st.session_state["diag_rows"] = shown_rows + 200
    st.rerun()

st.subheader("Trace and rank plots")
st.caption("Trace: chains should overlap like fuzzy caterpillars; red ticks mark divergent draws. "
           "Rank: each chain's histogram should be flat.")
hyper = list(manifest.roles.hyperparameters)
choices = adapter.element_choices(fit.fit_id, hyper)
picked = st.multiselect("Parameters to plot (hyper-parameters, then the worst elements)", list(choices),
                        default=list(choices)[: min(3, len(choices))], key="diag_plot")
for label in picked:
    variable, sel = choices[label]
    draws = adapter.guarded(fit.draws, variable, **sel)
    trace = fitcheck.draws_to_frame(draws)
    div = fitcheck.divergent_draws(fitcheck.read_sample_stat(fit, "diverging"))
    cols = st.columns([3, 2])
    with cols[0]:
        presentation.show_chart(charts.trace_chart(trace, div, label=label), trace, f"trace_{label}",
                                key=f"trace-{label}", fit=fit)
    with cols[1]:
        st.altair_chart(presentation.figure(charts.rank_plot_chart(fitcheck.rank_histogram(draws), label=label), fit),
                        width="stretch")

energy = fitcheck.read_sample_stat(fit, "energy")
if energy is not None:
    st.subheader("Sampler: energy, step size, tree depth")
    st.caption(f"Energy: the two histograms should look alike (BFMI ≥ {verdict.BFMI_FLAG}); if the transitions are much narrower, "
               "the sampler explores the posterior slowly.")
    e = fitcheck.energy_frame(energy)
    presentation.show_chart(charts.energy_chart(e), e, "energy", key="energy", fit=fit)
    # below the chart, full width: beside it the sampler's columns were cut
    st.dataframe(fitcheck.sampler_table(fitcheck.read_sample_stats(fit)), hide_index=True, width="stretch")

st.subheader("Reference genes")
ref_check, ref_text = adapter.guarded(adapter.reference_check, fit.fit_id, fit)  # speclet_core.analysis.reference
(st.caption if ref_check is None else st.success if ref_check.passed else st.warning)(escape_markdown(ref_text))
