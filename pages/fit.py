"""Fit models: choose a model in words, set the sampler, submit, watch the queue, open stored fits."""

import streamlit as st

from pages import adapter, widgets
from speclet_core.analysis import fitview
from speclet_core.analysis.escaping import escape_markdown
from speclet_core.fitting.cost import BIG_FIT_PARAMETERS, BIG_FIT_SAMPLER
from speclet_core.fitting.request import admission_problem, prepare_fit, sampler_words
from speclet_core.labels import count_noun
from speclet_core.models.spec import get_model, list_models
from speclet_core.records import FitMethod, SamplerSettings

settings = adapter.get_settings()
st.title("Fit models")
key, path, screen = adapter.active_screen()
genes, lineages, cells = widgets.selection_widgets(screen)

names = [s.name for s in list_models()]
wanted = st.query_params.get("model")  # the model's name in the URL (not its display title)
name = st.selectbox("Model", names, index=names.index(wanted) if wanted in names else 0, key="model",
                    format_func=lambda n: f"{get_model(n).title}  ·  {n}")
st.query_params["model"] = name
spec = get_model(name)
options = widgets.model_option_inputs(spec, screen) if spec.options else None
missing = [o for o in spec.required_options if options is None or getattr(options, o) is None]
selection = adapter.guarded(adapter.selection_for, key, path, genes, lineages, cells)
st.markdown(spec.description)
st.latex(spec.equation)
left, right = st.columns([2, 3])
with left:
    st.markdown("**Which term answers which question**")
    st.dataframe(fitview.terms_table(spec), hide_index=True, width="stretch")
with right:
    st.markdown("**Model graph** (boxes: one value per gene, cell line, … ; ellipses: random variables)")
    if missing:
        st.info(f"Choose the {' and '.join(missing)} above to draw this model.")
    else:
        graph = adapter.guarded(adapter.model_graph, spec.name, key, selection.fingerprint, genes, lineages, cells,
                                options)
        st.graphviz_chart(graph, width="stretch")

st.subheader("Sampler")
c1, c2, c3 = st.columns(3)
method = c1.radio(
    "Method", [FitMethod.NUTS, FitMethod.QUICK], key="method", horizontal=True, bind="query-params",
    format_func=lambda m: "Full NUTS (trustworthy)" if m == FitMethod.NUTS else "Quick approximate (first look)",
    help=SamplerSettings.model_fields["method"].description,
)
seed = c2.number_input("Seed", 0, 2**31 - 1, 1, key="seed", bind="query-params", help="The same seed and settings give the same draws.")
with c3.expander("Advanced settings"):
    fields = SamplerSettings.model_fields
    chains = st.number_input("Chains", 1, 16, 4, key="chains", bind="query-params", help=fields["chains"].description)
    tune = st.number_input("Warm-up draws per chain", 50, 20_000, 1000, step=100, key="tune", bind="query-params", help=fields["tune"].description)
    draws = st.number_input("Kept draws per chain", 50, 20_000, 1000, step=100, key="draws", bind="query-params", help=fields["draws"].description)
    target = st.slider("Target acceptance", 0.6, 0.99, 0.9, key="target_accept", bind="query-params", help=fields["target_accept"].description)
sampler = SamplerSettings(method=method, chains=chains, tune=tune, draws=draws, target_accept=target)
if missing:
    st.warning(f"Model **{spec.name}** needs the {' and '.join(missing)}: choose it above before starting the fit.")
    cost = None
else:
    cost = adapter.guarded(adapter.fit_cost, spec.name, key, selection.fingerprint, genes, lineages, cells, sampler,
                           options)
st.caption(f"Selection: {selection.n_rows:,} readings · {count_noun(len(selection.genes), 'gene')} · "
           f"{count_noun(len(selection.cell_lines), 'cell line')} · {count_noun(len(selection.lineages), 'lineage')}."
           + (f" Estimated cost: {cost.describe()}." if cost is not None else ""))
refusal = None if cost is None else admission_problem(cost, settings, model=spec.name, genes=len(selection.genes))
if refusal is not None:
    st.error(escape_markdown(refusal), icon=":material/block:")


def _use_draws_budget() -> None:
    for name, value in BIG_FIT_SAMPLER.items():
        st.session_state[name] = value


if cost is not None and not cost.approximate and cost.parameters > BIG_FIT_PARAMETERS:
    budget = cost.with_sampler(sampler.model_copy(update=BIG_FIT_SAMPLER))
    st.info(f"**A big fit** ({cost.parameters:,} parameters): the draws budget for big fits is "
            f"{sampler_words(BIG_FIT_SAMPLER)}, enough for means and 89% intervals of every gene; it takes "
            f"≈ {budget.cost_words()}.", icon=":material/speed:")
    st.button("Use the draws budget", key="draws-budget", on_click=_use_draws_budget,
              disabled=all(st.session_state.get(k) == v for k, v in BIG_FIT_SAMPLER.items()))

if settings.read_only:
    st.info("This server is in read-only demo mode: browse the stored fits below; new fits are switched off.")
elif st.button("Start fit", type="primary", icon=":material/play_arrow:", disabled=bool(missing or refusal)):
    request, estimate = adapter.guarded(prepare_fit, path, name, genes=genes or "all", lineages=lineages or "all",
                                        cell_lines=cells or "all", sampler=sampler, seed=int(seed),
                                        settings=settings, options=options)
    job, already, created = adapter.guarded(adapter.get_queue().submit_request, request, "dashboard",
                                            submitter=adapter.submitter(), estimate=estimate)
    if already:
        adapter.set_open_fit(request.fit_id)
        st.success("This exact fit is already stored, so nothing new was started: it is now open on every page.")
    elif not created:
        st.info("The same fit is already in the queue; follow it below.")
    else:
        st.success("Fit queued; follow it below. Pages will show it once it is done.")
widgets.queue_panel()

st.subheader("Stored fits")
store = adapter.get_store()
manifests = store.list()
f1, f2, f3 = st.columns(3)
model_filter = f1.selectbox("Model", ["(any)", *names], key="filter_model", bind="query-params")
gene_filter = f2.selectbox("Contains gene", ["(any)", *screen.genes], key="filter_gene", bind="query-params")
lineage_filter = f3.selectbox("Contains lineage", ["(any)", *screen.lineages], key="filter_lineage", bind="query-params")
chosen = fitview.filter_manifests(manifests, None if model_filter == "(any)" else model_filter,
                                  None if gene_filter == "(any)" else gene_filter,
                                  None if lineage_filter == "(any)" else lineage_filter)
table = fitview.recent_fits_table(chosen)
if table.empty:
    st.caption("No stored fit matches.")
else:
    event = st.dataframe(table.drop(columns=["fit_id"]), hide_index=True, on_select="rerun",
                         selection_mode="single-row", key="stored-fits", width="stretch",
                         column_config=widgets.FITS_COLUMNS)
    if event and event.selection.rows:
        fit_id = table.iloc[event.selection.rows[0]]["fit_id"]
        adapter.set_open_fit(fit_id)
        st.success(f"Opened fit `{fit_id[:12]}`. Check **Diagnostics** before reading the results.")
