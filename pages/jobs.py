"""Jobs: a live table of every job, and one job's timeline with Retry / Cancel / Open episode."""

import pandas as pd
import streamlit as st

from pages import _common as c
from pipeline import jobs
from pipeline.errors import PipelineError

RETRYABLE = ("failed", "cancelled")
CANCELLABLE = ("queued", "running", "retrying")

settings = c.settings()
st.title("Jobs")

status = st.segmented_control("Status", ["all", *jobs.JOB_STATUSES], default="all", key="jobs_status")
status_filter = None if status in (None, "all") else status


def table_rows(job_list: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{
        "ID": job["job_id"],
        "Episode": job["title"],
        "Status": job["status"],
        "Stage": (job["stage"] or "").replace("_", " "),
        "Progress": job["progress"],
        "ETA": c.human_seconds(job["eta_seconds"]) if job["status"] == "running" else "",
        "Attempts": job["attempts"],
        "Created": pd.Timestamp(job["created_at"]),
        "Error": job["error"] or "",
    } for job in job_list])


@st.fragment(run_every=settings.dashboard.poll_seconds)
def live_table() -> None:
    job_list = jobs.list_jobs(settings, status=status_filter, limit=200)
    if not job_list:
        if status_filter:
            st.info(f"No {status_filter} jobs.", icon=":material/info:")
        else:
            st.info("No jobs yet — add an episode on **New episode**.", icon=":material/info:")
            st.page_link(c.NEW_EPISODE, label="New episode", icon=":material/add_circle:")
        return
    st.dataframe(table_rows(job_list), hide_index=True, column_config={
        "ID": st.column_config.NumberColumn(width="small", format="%d"),
        "Episode": st.column_config.TextColumn(width="medium"),
        "Progress": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent"),
        "Attempts": st.column_config.NumberColumn(width="small"),
        "Created": st.column_config.DatetimeColumn(format="distance"),
        "Error": st.column_config.TextColumn(width="large"),
    })


live_table()

# --- one job -------------------------------------------------------------------------------

choices = jobs.list_jobs(settings, status=status_filter, limit=200)
if not choices:
    st.stop()

st.subheader("Job details")
by_id = {job["job_id"]: job for job in choices}
wanted = st.query_params.get("job")
if wanted and wanted.isdigit() and int(wanted) in by_id:
    st.session_state["job_pick"] = int(wanted)
elif st.session_state.get("job_pick") not in by_id:
    st.session_state.pop("job_pick", None)


def remember_job() -> None:
    st.query_params["job"] = str(st.session_state["job_pick"])


job_id = st.selectbox("Job", list(by_id), key="job_pick", on_change=remember_job,
                      format_func=lambda i: c.job_label(by_id[i]))


def act(action: str, job_id: int) -> None:
    """Button callbacks run before the page, so the table already shows the new state."""
    try:
        if action == "retry":
            jobs.retry(settings, job_id, c.dispatch)
            st.session_state["job_notice"] = ("success", f"Job #{job_id} is queued again; "
                                              "stages it already finished are kept.")
        else:
            job = jobs.cancel(settings, job_id)
            message = (f"Job #{job_id} is cancelled." if job["status"] == "cancelled" else
                       f"Job #{job_id} will stop at its next checkpoint.")
            st.session_state["job_notice"] = ("success", message)
    except PipelineError as exc:
        st.session_state["job_notice"] = ("error", str(exc))


job = jobs.get(settings, job_id)
buttons = st.columns([1, 1, 1.4, 4])
buttons[0].button("Retry", icon=":material/replay:", disabled=job["status"] not in RETRYABLE,
                  on_click=act, args=("retry", job_id), help="Run it again; completed stages are kept.")
buttons[1].button("Cancel", icon=":material/stop:", disabled=job["status"] not in CANCELLABLE,
                  on_click=act, args=("cancel", job_id),
                  help="A queued job stops at once; a running one at its next checkpoint.")
if buttons[2].button("Open episode", icon=":material/movie:"):
    st.switch_page(c.EPISODE, query_params={"episode": job["episode_id"]})

notice = st.session_state.pop("job_notice", None)
if notice:
    (st.success if notice[0] == "success" else st.error)(notice[1])


@st.fragment(run_every=settings.dashboard.poll_seconds if job["status"] in CANCELLABLE else None)
def details(job_id: int, status_at_page_run: str) -> None:
    job = jobs.get(settings, job_id)
    if job["status"] != status_at_page_run:
        st.rerun()   # the whole page: table, buttons and this block follow the new status
    if job["status"] in CANCELLABLE:
        st.progress(job["progress"], text=c.job_progress_text(job))
    if job["error"]:
        st.error(job["error"])
    if job["cancel_requested"] and job["status"] == "running":
        st.caption("Cancel requested; the job stops at its next checkpoint.")
    timeline = jobs.events(settings, job_id)
    st.dataframe(pd.DataFrame([{
        "At (UTC)": pd.Timestamp(e["at"]),
        "Stage": (e["stage"] or "").replace("_", " "),
        "Event": e["kind"],
        "Took": c.human_seconds(e["seconds"]) if e["seconds"] is not None else "",
        "Message": e["message"] or "",
    } for e in timeline]), hide_index=True, column_config={
        "At (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
        "Message": st.column_config.TextColumn(width="large"),
    })


details(job_id, job["status"])
