"""One real fit for the gene page's tests: a tiny screen with planted reference genes and a disagreeing guide.

9 genes × 10 cell lines × 2 lineages × 3 guides, model ``sgrna_gene_lineage`` (gene, lineage, cell-line and
guide levels), NUTS on PyMC. Four genes carry common-essential names (Hart et al. CEGv2) and lose 1.5 LFC,
three carry non-essential names (NEGv1) and are set to no effect, KRAS loses 1.0 except on one guide that
barely cuts. The fit is made once per test process (``stored_gene_fit``) and shared by the analysis test
and the page's AppTest.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np

ESSENTIAL = ("RPL11", "RPS6", "POLR2A", "PCNA")
NONESSENTIAL = ("ABCG8", "ACTL7A", "AICDA")
DISAGREEING_GENE = "KRAS"
MODEL = "sgrna_gene_lineage"


def planted_screen() -> tuple[object, str]:
    """(screen table, the guide of KRAS that barely cuts)."""
    from speclet_core.data.synthetic import simulate_screen

    sim = simulate_screen(9, 10, 2, seed=11, covariates=False, sgrnas_per_gene=(3, 3), n_pan_essential=0,
                          n_lineage_selective=0)
    data = sim.data.copy()
    truth = sim.truth_values("gene_effect").set_index("gene")["value"]
    names = dict(zip(sorted(data["hugo_symbol"].unique(), key=list(truth.index).index),
                     ("KRAS", "BRAF", *ESSENTIAL, *NONESSENTIAL), strict=True))
    gene_effect = data["hugo_symbol"].map(truth).to_numpy()
    data["hugo_symbol"] = data["hugo_symbol"].map(names)
    gene = data["hugo_symbol"]
    data.loc[gene.isin(ESSENTIAL), "lfc"] += -1.5 - gene_effect[gene.isin(ESSENTIAL)]
    data.loc[gene.isin(NONESSENTIAL), "lfc"] -= gene_effect[gene.isin(NONESSENTIAL)]
    kras = gene == DISAGREEING_GENE
    data.loc[kras, "lfc"] += -1.0 - gene_effect[kras]
    weak = sorted(data.loc[kras, "sgrna"].unique())[0]
    data.loc[data["sgrna"] == weak, "lfc"] += 0.9
    return data, weak


@functools.cache
def stored_gene_fit() -> tuple[Path, str, str]:
    """(data dir, fit id, the weak guide): the planted screen fitted and stored once per process."""
    from model_store import ModelStore
    from speclet_core.fitting.engine import run_fit
    from speclet_core.fitting.request import prepare_request
    from speclet_core.records import SamplerSettings
    from speclet_core.settings import Settings

    data_dir = Path(tempfile.mkdtemp(prefix="speclet-gene-fit-"))
    data, weak = planted_screen()
    path = data_dir / "reference_genes.csv"
    data.to_csv(path, index=False)
    settings = Settings(data_dir=data_dir)
    sampler = SamplerSettings(chains=2, tune=300, draws=300, target_accept=0.9)
    request = prepare_request(path, MODEL, sampler=sampler, seed=3, settings=settings)
    result = run_fit(request, settings=settings)
    ModelStore(settings.fits_dir).put(request.fit_id, result.idata, request=request.model_dump(mode="json"),
                                      roles=result.spec.roles(), diagnostics=result.diagnostics,
                                      timings=result.timings, provenance=result.provenance)
    assert np.isfinite(result.timings.get("total_s", 0.0))
    return data_dir, request.fit_id, weak
