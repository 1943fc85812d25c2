"""Convergence diagnostics and the one verdict every page, badge, the store and the CLI show."""
