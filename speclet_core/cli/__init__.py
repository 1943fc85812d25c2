"""Command line ``python -m speclet_core <command>``: one module per command group, registered in ``main``."""
