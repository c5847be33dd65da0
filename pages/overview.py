"""Overview: queue counts, whether a worker is alive, running jobs, recent failures."""

import streamlit as st

from pages import _common as c
from pipeline import jobs

settings = c.settings()
st.title("Overview")


@st.fragment(run_every=settings.dashboard.poll_seconds)
def live() -> None:
    overview = jobs.queue_overview(settings)
    counts = overview["counts"]

    columns = st.columns(5)
    columns[0].metric("Queued", counts["queued"] + counts["retrying"],
                      help=f"Includes {counts['retrying']} waiting to retry." if counts["retrying"] else None)
    columns[1].metric("Running", counts["running"])
    columns[2].metric("Succeeded", counts["succeeded"])
    columns[3].metric("Failed", counts["failed"])
    columns[4].metric("Cancelled", counts["cancelled"])

    worker_status(overview)

    if not any(counts.values()):
        st.info("No jobs yet — add an episode on **New episode**.", icon=":material/info:")
        st.page_link(c.NEW_EPISODE, label="New episode", icon=":material/add_circle:")
        return

    st.subheader("Running")
    running = jobs.list_jobs(settings, status="running", limit=20)
    if not running:
        waiting = counts["queued"] + counts["retrying"]
        st.caption(f"Nothing running. {waiting} job(s) waiting." if waiting else "Nothing running.")
    for job in running:
        st.progress(min(max(job["progress"], 0.0), 1.0),
                    text=f"**{c.md_escape(job['title'])}** (job #{job['job_id']}) — {c.job_progress_text(job)}")

    st.subheader("Recent failures")
    failed = jobs.list_jobs(settings, status="failed", limit=5)
    if not failed:
        st.caption("No failed jobs.")
    for job in failed:
        stage = f" during {job['stage'].replace('_', ' ')}" if job.get("stage") else ""
        st.error(f"**{c.md_escape(job['title'])}** (job #{job['job_id']}) failed{stage}: "
                 f"{c.md_escape(job['error'] or 'no error message recorded.')}")
    if failed:
        st.page_link(c.JOBS, label="Retry from the Jobs page", icon=":material/list_alt:",
                     query_params={"job": str(failed[0]["job_id"])})


def worker_status(overview: dict) -> None:
    alive, age = overview["workers_alive"], overview["last_heartbeat_age"]
    if alive:
        st.success(f"{alive} worker{'s' if alive > 1 else ''} running · last heartbeat "
                   f"{c.human_seconds(age)} ago", icon=":material/check_circle:")
    elif age is None:
        st.warning(f"**No worker is running**, so queued jobs will wait. {c.WORKER_HINT}", icon=":material/warning:")
    else:
        st.warning(f"**No worker is running** (last heartbeat {c.human_seconds(age)} ago), so queued jobs "
                   f"will wait. {c.WORKER_HINT}", icon=":material/warning:")


live()
