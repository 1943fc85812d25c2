"""speclet core: screen data, models, fitting, jobs and posterior analysis (never Streamlit).

Kept import-light: submodules are imported where used, so ``model_store`` and the CLI
start fast and never pull in PyMC unless they fit.
"""

__version__ = "0.1.0"
