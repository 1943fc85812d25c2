"""The model catalog: specs and registry, building blocks, and the catalog entries."""
