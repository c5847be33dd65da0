"""What every dashboard page shares: settings, the queue dispatcher, page links, formatting.

Pages read and write only through ``pipeline`` functions; each call opens its own short
SQLite connection, so nothing here caches a connection.
"""

from __future__ import annotations

import functools
import hmac
import math
import os
import re
import traceback
from collections.abc import Callable

import streamlit as st

from pipeline import db
from pipeline.config import Settings, load_settings
from pipeline.errors import PipelineError
from pipeline.jobs import states
from pipeline.security.throttle import Throttle

LOCAL_ADDRESSES = ("127.0.0.1", "localhost", "::1")

# Page files, as registered by dashboard.py (st.switch_page / st.page_link take these paths).
OVERVIEW = "pages/overview.py"
NEW_EPISODE = "pages/new_episode.py"
JOBS = "pages/jobs.py"
EPISODES = "pages/episodes.py"
REVIEW = "pages/review.py"
SETTINGS = "pages/settings.py"

ACTIVE_STATUSES = states.UNFINISHED
WORKER_HINT = ("Start one with `huey_consumer queue_worker.huey` in the project folder, "
               "or run worker and dashboard together with `make run` (`python -m pipeline serve`).")


@st.cache_resource(show_spinner=False)
def _settings_for(config: str | None, data_dir: str | None) -> Settings:
    # The arguments are only the cache key: load_settings reads the same two variables.
    return load_settings()


def use_navigation() -> None:
    """Make sure the app runs through ``dashboard.py``'s ``st.navigation``.

    Streamlit treats a folder named ``pages/`` next to the entry point as an old-style
    multipage app until some session calls ``st.navigation``. So if the first request
    after a server start is a deep link (``/jobs``), it runs ``pages/jobs.py`` on its own:
    file names in the sidebar, no page config, and every session stays that way. Leaving
    that mode and rerunning sends the run through ``dashboard.py`` to the same page (the
    URL paths are the same in both modes).

    ``AppTest`` puts the flag back before every run, so there a rerun would swallow
    each button click; under ``AppTest`` the flag is only cleared.
    """
    try:
        from streamlit import config  # noqa: PLC0415
        from streamlit.runtime.pages_manager import PagesManager  # noqa: PLC0415
    except ImportError:   # a Streamlit without the old pages mode
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        if not config.get_option("global.appTest"):   # AppTest patches config.get_option
            st.rerun()


def settings() -> Settings:
    """The validated settings, loaded once per (config file, data dir) pair.

    Every page calls this first, so it also takes the app out of the old pages-folder
    mode (see ``use_navigation``). The environment is part of the cache key, so a test
    (or anything else) that points ``CLIPDESK_DATA_DIR`` somewhere new gets settings for
    that directory. On invalid config the page shows the key and the reason and stops.
    """
    use_navigation()
    try:
        return _settings_for(os.environ.get("CLIPDESK_CONFIG"), os.environ.get("CLIPDESK_DATA_DIR"))
    except PipelineError as exc:
        st.error(f"Clipdesk cannot start: {exc}")
        st.stop()


def dispatch(job_id: int, priority: int) -> str:
    """Put a job on the Huey queue. ``queue_worker`` is imported on first use only:
    importing it opens the queue DB, which pages that only read never need."""
    import queue_worker  # noqa: PLC0415

    return queue_worker.dispatch(job_id, priority)


def show_error(exc: Exception | str) -> None:
    """A pipeline error as the sentence it carries, never a traceback."""
    st.error(str(exc), icon=":material/warning:")


UNEXPECTED = "Something went wrong on this page"


def unexpected_error(exc: Exception) -> None:
    """The last line of defence (``dashboard.py`` wraps every page): a sentence, the details folded away."""
    if db.is_transient(exc):
        st.warning("The database is busy or unreachable right now. Reload the page in a moment.",
                   icon=":material/hourglass_top:")
        return
    st.error(f"{UNEXPECTED}: {type(exc).__name__}: {exc}. Reload to try again; if it keeps happening, the "
             "details below help a bug report.", icon=":material/error:")
    with st.expander("Details"):
        st.code("".join(traceback.format_exception(exc)), language="text")


def guarded(function: Callable) -> Callable:
    """For fragment bodies: Streamlit runs a fragment on its own and would show a raw traceback."""
    @functools.wraps(function)
    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            unexpected_error(exc)
    return run


def password_gate(settings: Settings) -> None:
    """Ask for the dashboard password when the config names an env var holding one.

    Without ``dashboard.password_env`` there is no gate (the default address, 127.0.0.1,
    keeps the dashboard to this machine). A configured but unset variable stops the app:
    failing open would expose it.
    """
    env = settings.dashboard.password_env
    if not env or st.session_state.get("signed_in"):
        return
    expected = os.environ.get(env, "")
    if not expected:
        st.error(f"The dashboard is configured to need a password, but the environment variable `{env}` "
                 "is not set. Set it (or clear `dashboard.password_env`) and restart.", icon=":material/lock:")
        st.stop()
    st.title("Clipdesk")
    with st.form("sign_in"):
        given = st.text_input("Password", type="password", key="password_input")
        submitted = st.form_submit_button("Sign in", type="primary", icon=":material/login:")
    if submitted:
        client, throttle = _client(), _password_throttle()
        wait = throttle.wait(client)
        if wait > 0:   # not even checked: guessing gets slower and slower
            st.error(f"Too many wrong passwords; try again in {math.ceil(wait)} s.", icon=":material/lock_clock:")
            st.stop()
        if hmac.compare_digest(given.encode(), expected.encode()):   # constant time: no timing hints
            throttle.succeeded(client)
            st.session_state["signed_in"] = True
            st.session_state.pop("password_input", None)
            st.rerun()
        delay = throttle.failed(client)
        st.error("Wrong password." + (f" Try again in {math.ceil(delay)} s." if delay else ""), icon=":material/lock:")
    st.stop()


@st.cache_resource
def _password_throttle() -> Throttle:
    """One per dashboard process, shared by every browser session (a new tab must not reset it)."""
    return Throttle("dashboard password")


def _client() -> str:
    """The connecting address (behind a reverse proxy, the proxy's: then every client shares one delay)."""
    address = st.context.ip_address
    return address if isinstance(address, str) and address else "unknown"   # None without a browser connection


def exposure_warning(settings: Settings) -> None:
    """Warn when the dashboard is reachable from other machines and nothing asks who they are."""
    if settings.dashboard.address not in LOCAL_ADDRESSES and not settings.dashboard.password_env:
        st.warning(f"The dashboard listens on `{settings.dashboard.address}` without a password: anyone who can "
                   "reach this machine can use it. Set `dashboard.password_env` or bind to 127.0.0.1 "
                   "(see Security in the README).", icon=":material/lock_open:")


def notify(kind: str, message: str) -> None:
    """Keep a message for the next run (button callbacks run before the page draws)."""
    st.session_state.setdefault("notices", []).append((kind, message))


def show_notices() -> None:
    for kind, message in st.session_state.pop("notices", []):
        {"success": st.success, "error": st.error, "info": st.info, "warning": st.warning}[kind](message)


def attempt(action: Callable, success: str | Callable[[object], str], *args, **kwargs) -> None:
    """Run a pipeline action from a button callback; the outcome becomes a notice, never a traceback."""
    try:
        result = action(*args, **kwargs)
    except PipelineError as exc:
        notify("error", str(exc))
    except OSError as exc:
        notify("error", f"That did not work: {exc.strerror or exc}.")
    else:
        notify("success", success(result) if callable(success) else success)


# --- formatting ------------------------------------------------------------------------

def human_seconds(seconds: float | None) -> str:
    """1m 20s, 2h 5m, 45s; an em dash when unknown."""
    if seconds is None:
        return "—"
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs:02d}s" if secs else f"{minutes}m"
    return f"{secs}s"


def timestamp(seconds: float | None) -> str:
    """A media position: 0:06, 12:34, 1:02:03."""
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def human_bytes(size: float | None) -> str:
    """1.2 GB, 340 MB, 12 kB."""
    if size is None:
        return "—"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit in ("B", "kB") else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def percent(fraction: float | None) -> str:
    return f"{round((fraction or 0) * 100)}%"


def job_label(job: dict) -> str:
    """One line naming a job: '#3 · My episode · running'."""
    title = job.get("title") or job["episode_id"]
    return f"#{job['job_id']} · {title} · {job['status']}"


def job_progress_text(job: dict) -> str:
    stage = (job.get("stage") or "waiting").replace("_", " ")
    text = f"{stage} · {percent(job['progress'])}"
    if job.get("starts_in_seconds") is not None:
        return f"{text} · {forecast_text(job)}"
    if job.get("eta_seconds") is not None:
        text += f" · about {human_seconds(job['eta_seconds'])} left"
    return text


def forecast_text(job: dict) -> str:
    """"starts in ~X, done in ~Y" for a queued job (from the learned rates and the queue ahead of it)."""
    if job.get("starts_in_seconds") is None or job.get("eta_seconds") is None:
        return ""
    start = "starts now" if job["starts_in_seconds"] < 1 else f"starts in ~{human_seconds(job['starts_in_seconds'])}"
    return f"{start}, done in ~{human_seconds(job['eta_seconds'])}"


_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]{}<>#|~$])")


def md_escape(text: str) -> str:
    """Plain text made safe for st.markdown (no accidental bold, links or LaTeX from '$')."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)

