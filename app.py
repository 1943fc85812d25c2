"""speclet dashboard: page config, navigation and the shared sidebar (run with `make run`)."""

import streamlit as st

from pages import presentation, widgets

st.set_page_config(page_title="speclet", page_icon=":material/biotech:", layout="wide")

PAGES = {
    "Start": [
        st.Page("pages/home.py", title="Home", icon=":material/home:", url_path="start", default=True),
        presentation.home_alias(),  # /home opens Home (a hidden page at /home; Home itself lives at the root)
        st.Page("pages/data.py", title="Data explorer", icon=":material/table_view:", url_path="data"),
        st.Page("pages/fit.py", title="Fit models", icon=":material/play_arrow:", url_path="fit"),
    ],
    "Can I trust the fit?": [
        st.Page("pages/diagnostics.py", title="Diagnostics", icon=":material/troubleshoot:", url_path="diagnostics"),
        st.Page("pages/ppc.py", title="Predictive checks", icon=":material/compare_arrows:", url_path="ppc"),
    ],
    "Results": [
        st.Page("pages/forest.py", title="Forest plot", icon=":material/align_horizontal_left:", url_path="forest"),
        st.Page("pages/heatmap.py", title="Heatmap", icon=":material/grid_on:", url_path="heatmap"),
        st.Page("pages/gene.py", title="Gene", icon=":material/search:", url_path="gene"),
        st.Page("pages/rankings.py", title="Rankings", icon=":material/leaderboard:", url_path="rankings"),
        st.Page("pages/biomarker.py", title="Biomarker", icon=":material/genetics:", url_path="biomarker"),
        st.Page("pages/covariates.py", title="Covariates", icon=":material/scatter_plot:", url_path="covariates"),
        st.Page("pages/compare.py", title="Compare models", icon=":material/difference:", url_path="compare"),
        st.Page("pages/atlas.py", title="Pan-cancer atlas", icon=":material/public:", url_path="atlas"),
    ],
}

navigation = st.navigation(PAGES)
widgets.sidebar()
presentation.setup()  # the presentation-mode toggle and ?present=1
widgets.worker_banner()
navigation.run()
