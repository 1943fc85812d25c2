"""The first fit of an empty installation: queue the demo screen's default fit.

It lives apart from the queue because it needs the demo screen, the fitting engine and the
model catalog, which the queue itself does not.
"""

from __future__ import annotations

from model_store import ModelStore
from speclet_core.errors import JobError
from speclet_core.queue.access import SERVER_SUBMITTER, Submitter
from speclet_core.queue.jobs import JobQueue
from speclet_core.queue.records import JobRecord
from speclet_core.records import SamplerSettings
from speclet_core.settings import Settings

# The first fit offered on an empty installation: the demo screen, the fastest model
# that shows lineage structure, a short NUTS run (minutes on a laptop, not hours).
FIRST_FIT_MODELS = ("gene_lineage", "sgrna_gene_lineage")  # first registered one wins
FIRST_FIT_SAMPLER = SamplerSettings(chains=4, tune=1000, draws=1000)  # R-hat ≤ 1.01 needs more than 500 here
FIRST_FIT_LABEL = "first start (demo screen)"


def ensure_first_fit(settings: Settings) -> JobRecord | None:
    """On an empty installation, queue the demo screen's default fit; else do nothing.

    Returns the submitted job, or None when the store already has fits, the queue has
    jobs, or the server is read-only.
    """
    if settings.read_only:
        return None
    with JobQueue.from_settings(settings) as queue:
        if queue.has_jobs() or ModelStore(settings.fits_dir).list():
            return None
        # the fitting engine pulls in PyMC: import it only when a first fit is really queued
        from speclet_core.data.demo import ensure_demo_screen
        from speclet_core.fitting.request import prepare_fit
        from speclet_core.models.spec import list_models

        known = [m.name for m in list_models()]
        model = next((m for m in FIRST_FIT_MODELS if m in known), None)
        if model is None:
            raise JobError(
                f"no model for the first fit: expected one of {', '.join(FIRST_FIT_MODELS)}; found {', '.join(known)}"
            )
        demo = ensure_demo_screen(settings.data_dir)
        request, estimate = prepare_fit(demo, model, sampler=FIRST_FIT_SAMPLER, seed=1, settings=settings)
        # owned by the server: only an administrator may cancel the demo fit everyone's first visit shows
        outcome = queue.submit_request(request, FIRST_FIT_LABEL, submitter=Submitter(name=SERVER_SUBMITTER, admin=True),
                                       estimate=estimate)  # the pages' ETA while compiling
        return outcome.job
