"""The script Streamlit runs: the sidebar, then the page chosen in the navigation.

Run it with ``bidscape dashboard [DIR]``, or ``streamlit run app.py -- --root DIR``
(``$BIDSCAPE_DASHBOARD_ROOT`` also names the folder).
"""

import streamlit as st

from bidscape.dashboards import ui

st.set_page_config(page_title="bidscape", page_icon=ui.page_icon(), layout="wide")
navigation = st.navigation([st.Page(path, title=title, icon=icon, url_path=url, default=i == 0)
                            for i, (path, title, icon, url) in enumerate(ui.PAGES)])
ui.sidebar()
navigation.run()
