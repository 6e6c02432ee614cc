"""The dashboard's pages: scripts that Streamlit runs through ``st.navigation`` (see ``ui.PAGES``)."""
