"""Clipdesk dashboard: ``streamlit run dashboard.py`` (or ``make run`` with the worker).

A thin shell over ``pipeline``: the pages read jobs and episodes through
``pipeline.jobs`` / ``pipeline.episodes`` and put work on the queue through
``queue_worker.dispatch``. Nothing here talks SQL.
"""

import streamlit as st

from pages import _common

_common.use_navigation()   # before anything renders: leave Streamlit's pages-folder mode
st.set_page_config(page_title="Clipdesk", page_icon=":material/movie:", layout="wide")
_common.settings()         # fail early, on every page, with a readable message if the config is invalid

page = st.navigation([
    st.Page(_common.OVERVIEW, title="Overview", icon=":material/dashboard:", default=True),
    st.Page(_common.NEW_EPISODE, title="New episode", icon=":material/add_circle:"),
    st.Page(_common.JOBS, title="Jobs", icon=":material/list_alt:"),
    st.Page(_common.EPISODE, title="Episode", icon=":material/movie:"),
])
page.run()
