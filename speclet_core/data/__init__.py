"""Screen tables: columns, reading, validation, the Screen, selection, fingerprint, covariates, sources, synthetic and demo screens."""
