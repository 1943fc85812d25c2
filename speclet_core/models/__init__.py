"""The models: specs and the registry (``spec``), building blocks (``blocks``), the catalog entries (``catalog``).

Importing any of them imports this package first, which registers every catalog entry, so
``speclet_core.models.spec.get_model`` always sees the whole catalog.
"""

from speclet_core.models import catalog as catalog  # noqa: I001  (catalog first: its order is the menu order)
from speclet_core.models import biomarker as biomarker  # registers gene_biomarker, gene_batch
