"""The bidscape dashboard: a Streamlit app over the runs, groups and sweeps under a folder.

``bidscape dashboard runs/`` starts it (``bidscape.dashboards.cli``); ``app.py`` is the
script Streamlit runs, ``data.py`` the cached data layer, ``ui.py`` the sidebar and the
shared widgets, ``views/`` one script per page (not ``pages/``, which Streamlit would
take for an old-style multipage folder). Needs the ``dashboard`` extra
(``pip install 'bidscape[dashboard]'``).
"""

from pathlib import Path

APP = Path(__file__).with_name("app.py")
