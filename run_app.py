"""Start Streamlit on ``app.py`` with ``st.navigation`` routing from the very first request.

Why this exists: Streamlit 1.67 sees the ``pages/`` folder beside ``app.py`` and starts in its
legacy multipage mode, in which a first visit to a deep link (``/heatmap?fit=…``) runs the page
file alone and never runs ``app.py`` (no navigation, no shared sidebar) until someone opens the
root URL once. Marking the app as an ``st.navigation`` app before the server starts fixes that.
Usage: ``python run_app.py [streamlit run options]`` (``python -m speclet_core serve`` uses it).
"""

import sys
from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web import cli

if __name__ == "__main__":
    PagesManager.uses_pages_directory = False
    sys.argv = ["streamlit", "run", str(Path(__file__).with_name("app.py")), *sys.argv[1:]]
    sys.exit(cli.main())
