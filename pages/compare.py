"""Model comparison: fits of the same readings, their LOO predictive accuracy and how the gene ranking changes."""

import streamlit as st

from model_store.stats import HDI_PROB
from pages import adapter, presentation, widgets
from speclet_core import charts
from speclet_core.analysis import compare, fitview, glossary, ranking, sentences
from speclet_core.analysis.escaping import escape_markdown
from speclet_core.diagnostics import verdict

fit = widgets.open_results_page("Compare models")
st.caption(
    "Compare fits of the same readings (e.g. different models of one selection). LOO estimates how well each fit "
    "predicts a reading it did not see (expected log predictive density, ELPD: higher is better); the ranking "
    "table shows whether the conclusions, which genes are the strongest dependencies, change."
)
same = compare.fits_of_same_data(fit.manifest, adapter.get_store().list())
if len(same) < 2:
    adapter.stop_with("Only this fit was made on these readings. Fit another model to the same screen, genes and lineages "
                 "on the Fit page, then compare them here.")
default = [fit.fit_id] + [m.fit_id for m in same if m.fit_id != fit.fit_id][:1]
chosen = widgets.fit_picker("Fits to compare (same readings)", same, key="compare_fits", multi=True, default=default)
if len(chosen) < 2:
    adapter.stop_with("Pick at least two fits.")
fits = [adapter.get_fit(fid, fit) for fid in chosen]
names = [fitview.fit_label(f.manifest) for f in fits]
verdicts = {n: verdict.verdict_of(f.manifest) for f, n in zip(fits, names, strict=True)}
others_flagged = [f"{n} ({verdict.badge_of(f.manifest)})" for f, n in zip(fits, names, strict=True)
                  if f.fit_id != fit.fit_id and verdicts[n].level != "converged"]
if others_flagged:
    st.warning(f"**Not every compared fit passed its diagnostics**: {escape_markdown(', '.join(others_flagged))}. "
               "Their LOO scores and rankings are not reliable; open each on the Diagnostics page.",
               icon=":material/warning:")
approx = [n for f, n in zip(fits, names, strict=True) if fitview.is_approximate(f.manifest)]
if approx:
    st.warning(f"{escape_markdown(', '.join(approx))}: approximate posterior (ADVI) — first look only; its LOO and ranks are rough.",
               icon=":material/warning:")

st.subheader("Predictive accuracy (PSIS-LOO)")
with_ll = [f for f in fits if f.manifest.has_group("log_likelihood")]
missing = [fitview.fit_label(f.manifest) for f in fits if f not in with_ll]
if missing:
    st.info(f"No pointwise log-likelihood was stored for {escape_markdown(', '.join(missing))} (it is left out of very large fits), "
            "so LOO leaves them out.")
if len(with_ll) >= 2:
    table = adapter.guarded(adapter.loo, tuple(f.fit_id for f in with_ll), tuple(with_ll))
    presentation.show_chart(charts.loo_chart(table, title="ELPD (LOO) ± 1 standard error"), table, "loo", key="loo", fit=fit)
    widgets.bullet_list(sentences.describe_loo(table, verdicts))
    shown = table.assign(diagnostics=[verdict.VERDICT_BADGES["approximate"] if verdicts[n].approximate
                                      else verdict.VERDICT_BADGES[verdicts[n].level.value] for n in table["fit"]])
    labels = glossary.LOO_LABELS
    st.dataframe(shown, hide_index=True, width="stretch",
                 column_config={"fit": st.column_config.TextColumn(labels["fit"], width="large"),
                                "rank": st.column_config.NumberColumn(labels["rank"], format="%d"),
                                "diagnostics": labels["diagnostics"],
                                **{c: st.column_config.NumberColumn(labels[c], format="%.2f")
                                   for c in ("elpd_loo", "se", "p_loo", "elpd_diff", "dse", "weight", "share_bad_k")}})
    st.caption(f"{labels['elpd_diff']} and {labels['dse']}: how far each fit is behind the best one and the standard "
               "error of that difference; a difference within about 2 standard errors is not a clear difference. "
               f"{labels['p_loo'].capitalize()}: how many parameters the fit behaves as if it had. "
               f"{labels['weight'].capitalize()}: how much each fit would contribute to the best combined prediction.")

st.subheader("How the gene ranking changes")
top_n = int(st.number_input("Genes to follow (the top of each fit's ranking)", 3, 50, 15, key="compare_top"))
tables = {n: adapter.guarded(adapter.ranking_table, f.fit_id, f, None, ranking.DEFAULT_TOP_K,
                                   ranking.DEFAULT_THRESHOLD, HDI_PROB) for f, n in zip(fits, names, strict=True)}
wide, long = adapter.guarded(compare.ranking_changes, tables, top_n=top_n)
presentation.show_chart(charts.rank_change_chart(long, names, title="Expected rank of each gene in each fit"),
                       wide, "ranking_changes", key="rank-changes", fit=fit)
widgets.bullet_list(compare.rank_agreement(wide, names, top_n=top_n))
st.caption("Ranks are re-computed among the genes all fits share (1 = strongest dependency). Lines that cross are "
           "genes whose order depends on the model.")
st.dataframe(wide.reindex(wide["rank change"].abs().sort_values(ascending=False).index), hide_index=True,
             width="stretch", column_config={c: st.column_config.NumberColumn(format="%.2f") for c in wide.columns
                                             if c != "gene"})
