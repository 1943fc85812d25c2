"""analysis.fitview: fit labels, the approximate flag, the recent-fits table."""

from __future__ import annotations

from analysis_helpers import GENES

from model_store.manifest import FitManifest, StoredRequest
from speclet_core.analysis import fitview


def test_is_approximate_and_fit_label() -> None:
    request = {"data_fingerprint": "f" * 64, "model": "gene", "model_version": "1", "sampler": {"method": "quick"}}
    manifest = FitManifest.model_validate({"fit_id": "ab" * 32, "model": "gene", "genes": GENES,
                                           "diagnostics": {"approximate": False}, "request": request,
                                           "roles": {"gene_effect": "gene_effect"}})
    assert fitview.is_approximate(manifest)
    nuts = manifest.model_copy(update={"request": StoredRequest(**{**request, "sampler": {"method": "nuts"}})})
    assert not fitview.is_approximate(nuts)
    assert fitview.fit_label(manifest) == "gene · 5 genes · quick · abababab"


def test_recent_fits_table_falls_back_to_the_selection() -> None:
    from model_store.manifest import FitManifest
    from speclet_core.analysis.fitview import recent_fits_table

    manifest = FitManifest.model_validate({
        "fit_id": "a" * 64, "model": "gene", "genes": ["KRAS", "MYC"], "lineages": [],
        "request": {"data_fingerprint": "f" * 64, "model": "gene", "model_version": "1",
                    "selection": {"genes": ["KRAS", "MYC"], "lineages": "all"}, "sampler": {"method": "quick"}},
        "roles": {"gene_effect": "gene_effect"}, "diagnostics": {"approximate": True}, "timings": {"total_s": 3.21}})
    row = recent_fits_table([manifest]).iloc[0]
    assert row["genes"] == "2: KRAS, MYC" and row["lineages"] == "all in the screen"
    assert row["method"] == "quick (approximate)" and row["diagnostics"].startswith("≈ approximate")
