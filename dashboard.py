"""Clipdesk dashboard: ``streamlit run dashboard.py`` (or ``make run`` with the worker).

A thin shell over ``pipeline``: the pages read jobs and episodes through ``pipeline``
modules and put work on the queue through ``queue_worker.dispatch``. Nothing here talks SQL.
"""

import streamlit as st

from pages import _common

_common.use_navigation()   # before anything renders: leave Streamlit's pages-folder mode
st.set_page_config(page_title="Clipdesk", page_icon="🎬", layout="wide")
settings = _common.settings()   # fail early, on every page, with a readable message if the config is invalid
_common.password_gate(settings)

page = st.navigation({
    "Work": [
        st.Page(_common.OVERVIEW, title="Overview", icon=":material/dashboard:", default=True),
        st.Page(_common.NEW_EPISODE, title="New episode", icon=":material/add_circle:"),
        st.Page(_common.JOBS, title="Jobs", icon=":material/list_alt:"),
    ],
    "Library": [
        st.Page(_common.EPISODES, title="Episodes", icon=":material/video_library:"),
        st.Page(_common.REVIEW, title="Review", icon=":material/movie_edit:"),
    ],
    "System": [
        st.Page(_common.SETTINGS, title="Settings & health", icon=":material/monitor_heart:"),
    ],
})
try:
    page.run()
except Exception as exc:   # st.stop / st.rerun / switch_page are BaseExceptions and pass through
    _common.unexpected_error(exc)
