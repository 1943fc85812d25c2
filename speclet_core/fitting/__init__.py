"""Fitting one request: checks, the engine that orchestrates a fit, samplers, derived quantities, cost estimates."""
