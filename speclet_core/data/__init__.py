"""Screen tables: reading and validation, selection and fingerprint, covariates, where screens come from, synthetic and demo screens."""
