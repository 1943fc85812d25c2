"""AppTests for the Fit page: model in words, cost estimate, submitting, dedup against the store."""

from __future__ import annotations

from speclet_core.queue.jobs import JobQueue
from speclet_core.settings import Settings


def test_model_is_explained_in_words_equation_and_graph(open_page) -> None:  # type: ignore[no-untyped-def]
    at = open_page("fit", model="gene_lineage")
    assert at.selectbox(key="model").value == "gene_lineage"
    assert any("lineage" in m.value.lower() for m in at.markdown)
    assert at.latex and "\\sim" in at.latex[0].value
    assert at.get("graphviz_chart")
    caption = " ".join(c.value for c in at.caption)
    assert "Estimated cost" in caption and "parameters" in caption


def test_submit_creates_a_job_and_a_second_submit_finds_it(open_page, data_dir) -> None:  # type: ignore[no-untyped-def]
    at = open_page("fit", model="gene", genes=["KRAS", "MYC"])
    start = next(b for b in at.button if b.label == "Start fit")
    start.click().run()
    assert not at.exception
    assert any("Fit queued" in s.value for s in at.success)
    jobs = JobQueue.from_settings(Settings(data_dir=data_dir)).list()
    assert len(jobs) == 1 and jobs[0].request.model == "gene"
    assert jobs[0].request.selection.genes == ("KRAS", "MYC")
    assert str(jobs[0].status) == "queued"
    # the queue table shows it
    queue_table = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert list(queue_table["status"]) == ["queued"] and list(queue_table["model"]) == ["gene"]
    # submitting the identical request again does not queue a second job
    next(b for b in at.button if b.label == "Start fit").click().run()
    assert any("already in the queue" in i.value for i in at.info)
    assert len(JobQueue.from_settings(Settings(data_dir=data_dir)).list()) == 1


def test_identical_request_opens_the_stored_fit(open_page, real_fit_env) -> None:  # type: ignore[no-untyped-def]
    at = open_page("fit", model="gene_lineage")
    at.number_input(key="chains").set_value(2)
    at.number_input(key="tune").set_value(400)
    at.number_input(key="draws").set_value(400)
    at.number_input(key="seed").set_value(5)
    at.run()
    next(b for b in at.button if b.label == "Start fit").click().run()
    assert any("already stored" in s.value for s in at.success), [s.value for s in at.success]
    assert at.query_params["fit"] == [real_fit_env] or at.query_params["fit"] == real_fit_env


def test_a_model_with_options_asks_for_them_before_it_can_be_fitted(open_page, data_dir) -> None:  # type: ignore[no-untyped-def]
    at = open_page("fit", model="gene_biomarker", genes=["KRAS", "MYC"])
    assert not at.exception
    # no marker chosen yet: said so, nothing drawn or estimated, and the fit cannot be started
    assert any("needs the biomarker" in w.value for w in at.warning), [w.value for w in at.warning]
    assert not at.get("graphviz_chart")
    assert next(b for b in at.button if b.label == "Start fit").disabled
    # a column the screen does not have: a clear message naming it (no traceback)
    at.text_input(key="biomarker").set_value("no_such_column").run()
    assert not at.exception
    assert any("no_such_column" in e.value for e in at.error), [e.value for e in at.error]


def test_batch_shifts_are_chosen_on_the_page_and_travel_with_the_request(open_page, data_dir) -> None:  # type: ignore[no-untyped-def]
    at = open_page("fit", model="gene_batch", genes=["KRAS", "MYC"])
    at.selectbox(key="batch").set_value("pdna_batch").run()
    assert not at.exception and at.get("graphviz_chart")
    assert "Estimated cost" in " ".join(c.value for c in at.caption)
    next(b for b in at.button if b.label == "Start fit").click().run()
    assert not at.exception
    [job] = JobQueue.from_settings(Settings(data_dir=data_dir)).list()
    assert job.request.model == "gene_batch" and job.request.options.batch == "pdna_batch"


def test_a_selection_carried_by_a_link_becomes_the_pickers_value(open_page) -> None:  # type: ignore[no-untyped-def]
    # "Fit a model to this selection" carries the pickers' values as carried_genes=… (a page's own bound genes= is
    # dropped by Streamlit when the next page opens); the Fit page's pickers take them, names not in the screen left out
    at = open_page("fit", model="gene", carried_genes=["KRAS", "MYC", "NOT_A_GENE"], carried_lineages=["blood"])
    assert not at.exception
    assert at.multiselect(key="genes").value == ["KRAS", "MYC"]
    assert at.multiselect(key="lineages").value == ["blood"]
    assert "carried_genes" not in at.query_params  # (the pickers write genes= themselves: the browser test sees it)
    assert "2 genes" in " ".join(c.value for c in at.caption)
