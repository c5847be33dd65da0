"""Jobs: a live table (status filter, search), bulk retry / cancel, and one job's timeline.

The table and the job details refresh in fragments (``run_every``), so typing in the
search box or picking jobs for a bulk action is never interrupted by a full-page rerun.
"""

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from pages import _common as c
from pipeline import jobs
from pipeline.automation import webhooks
from pipeline.errors import PipelineError
from pipeline.jobs import states
from pipeline.ops import retention, stats

RETRYABLE = states.RETRY_NOW.sources   # what the job core allows: one owner of job state
CANCELLABLE = states.CANCEL.sources

settings = c.settings()
st.title("Jobs")
c.show_notices()

left, right = st.columns([3, 2])
with left:
    status = st.segmented_control("Status", ["all", *jobs.JOB_STATUSES], default="all", key="jobs_status")
with right:
    search = st.text_input("Search", key="jobs_search", placeholder="Title, source, episode id or #job")
status_filter = None if status in (None, "all") else status
needle = search.strip()


def matching_jobs() -> list[dict]:
    """The jobs shown: "#12" means job 12 exactly; other text matches title, source or episode id."""
    if needle.startswith("#") and needle[1:].isdigit():
        try:
            job = jobs.get(settings, int(needle[1:]))
        except PipelineError:
            return []
        return [job] if status_filter in (None, job["status"]) else []
    return jobs.list_jobs(settings, status=status_filter, limit=200, search=needle)


def wait_text(job: dict) -> str:
    if job["status"] == "running":
        return c.human_seconds(job["eta_seconds"]) if job["eta_seconds"] is not None else "…"
    if job["status"] == "retrying" and job.get("next_attempt_at"):
        left = datetime.fromisoformat(job["next_attempt_at"]).timestamp() - datetime.now(UTC).timestamp()
        return f"retry in {c.human_seconds(max(left, 0))}" + (f"; done in ~{c.human_seconds(job['eta_seconds'])}"
                                                              if job.get("eta_seconds") is not None else "")
    return c.forecast_text(job)


def table_rows(job_list: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{
        "ID": job["job_id"],
        "Episode": job["title"],
        "Status": job["status"],
        "Stage": (job["stage"] or "").replace("_", " "),
        "Progress": job["progress"],
        "ETA": wait_text(job),
        "Attempts": f"{job['attempts']}/{job['max_attempts']}" if job.get("max_attempts") else str(job["attempts"]),
        "Created": pd.Timestamp(job["created_at"]),
        "Error": job["error"] or "",
    } for job in job_list])


def empty_state() -> None:
    if needle:
        st.info(f"No {status_filter or ''} jobs match “{c.md_escape(needle)}”.".replace("  ", " "),
                icon=":material/search_off:")
    elif status_filter:
        st.info(f"No {status_filter} jobs.", icon=":material/info:")
    else:
        st.info("No jobs yet — add an episode on **New episode**.", icon=":material/info:")
        st.page_link(c.NEW_EPISODE, label="New episode", icon=":material/add_circle:")


@st.fragment(run_every=settings.dashboard.poll_seconds)
@c.guarded
def live_table() -> None:
    job_list = matching_jobs()
    if not job_list:
        empty_state()
        return
    st.dataframe(table_rows(job_list), hide_index=True, column_config={
        "ID": st.column_config.NumberColumn(width="small", format="%d"),
        "Episode": st.column_config.TextColumn(width="medium"),
        "Progress": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent"),
        "Attempts": st.column_config.TextColumn(width="small"),
        "Created": st.column_config.DatetimeColumn("Age", format="distance"),
        "Error": st.column_config.TextColumn(width="large"),
    })
    st.caption(f"{len(job_list)} job{'s' if len(job_list) != 1 else ''} shown, newest first · refreshes every "
               f"{c.human_seconds(settings.dashboard.poll_seconds)}")


live_table()

choices = matching_jobs()
if not choices:
    st.stop()
by_id = {job["job_id"]: job for job in choices}


# --- bulk actions ------------------------------------------------------------------------------

def bulk(action: str, job_ids: list[int]) -> None:
    done, problems = [], []
    for job_id in sorted(job_ids):
        try:
            jobs.retry(settings, job_id, c.dispatch) if action == "retry" else jobs.cancel(settings, job_id)
            done.append(f"#{job_id}")
        except PipelineError as exc:
            problems.append(str(exc))
    verb = "queued again" if action == "retry" else "cancelled (running ones stop at their next checkpoint)"
    if done:
        c.notify("success", f"{len(done)} job{'s' if len(done) > 1 else ''} {verb}: {', '.join(done)}.")
    if problems:
        c.notify("error", " ".join(problems))
    st.session_state["bulk_pick"] = []


with st.expander("Bulk actions"):
    failed_here = [j["job_id"] for j in choices if j["status"] in RETRYABLE]
    active_here = [j["job_id"] for j in choices if j["status"] in CANCELLABLE]
    picked = st.multiselect("Jobs", list(by_id), key="bulk_pick", format_func=lambda i: c.job_label(by_id[i]),
                            placeholder="Pick jobs, or use the buttons for every job shown")
    with st.container(horizontal=True, gap="small"):
        st.button("Retry picked", icon=":material/replay:", on_click=bulk, args=("retry", picked),
                  disabled=not any(i in failed_here for i in picked), key="bulk_retry")
        st.button("Cancel picked", icon=":material/stop:", on_click=bulk, args=("cancel", picked),
                  disabled=not any(i in active_here for i in picked), key="bulk_cancel")
        st.button(f"Retry all failed shown ({len(failed_here)})", icon=":material/replay:",
                  on_click=bulk, args=("retry", failed_here), disabled=not failed_here, key="bulk_retry_all")
        st.button(f"Cancel all active shown ({len(active_here)})", icon=":material/stop_circle:",
                  on_click=bulk, args=("cancel", active_here), disabled=not active_here, key="bulk_cancel_all")


# --- one job -------------------------------------------------------------------------------

st.subheader("Job details")
wanted = st.query_params.get("job")
if wanted and wanted.isdigit() and int(wanted) in by_id:
    st.session_state["job_pick"] = int(wanted)
elif st.session_state.get("job_pick") not in by_id:
    st.session_state.pop("job_pick", None)


def remember_job() -> None:
    st.query_params["job"] = str(st.session_state["job_pick"])


job_id = st.selectbox("Job", list(by_id), key="job_pick", on_change=remember_job,
                      format_func=lambda i: c.job_label(by_id[i]))


def cancelled_text(job: dict) -> str:
    return (f"Job #{job['job_id']} is cancelled." if job["status"] == "cancelled" else
            f"Job #{job['job_id']} will stop at its next checkpoint.")


job = jobs.get(settings, job_id)
with st.container(horizontal=True, gap="small"):
    st.button("Retry", icon=":material/replay:", disabled=job["status"] not in RETRYABLE,
              on_click=c.attempt, args=(jobs.retry, f"Job #{job_id} is queued again; stages it already "
                                        "finished are kept.", settings, job_id, c.dispatch),
              help="Run it again; completed stages are kept.")
    st.button("Cancel", icon=":material/stop:", disabled=job["status"] not in CANCELLABLE,
              on_click=c.attempt, args=(jobs.cancel, cancelled_text, settings, job_id),
              help="A queued job stops at once; a running one at its next checkpoint.")
    if st.button("Open episode", icon=":material/movie:"):
        st.switch_page(c.REVIEW, query_params={"episode": job["episode_id"]})

@st.fragment(run_every=settings.dashboard.poll_seconds if job["status"] in CANCELLABLE else None)
@c.guarded
def details(job_id: int, status_at_page_run: str) -> None:
    job = jobs.get(settings, job_id)
    if job["status"] != status_at_page_run:
        st.rerun()   # the whole page: table, buttons and this block follow the new status
    if job["status"] in CANCELLABLE:
        st.progress(job["progress"], text=c.job_progress_text(job))
    if job["error"]:
        st.error(f"**{(job.get('error_kind') or 'error').replace('_', ' ').capitalize()}** — "
                 f"{c.md_escape(job['error'])}", icon=":material/error:")
    if job["cancel_requested"] and job["status"] == "running":
        st.caption("Cancel requested; the job stops at its next checkpoint.")
    facts = [f"Job #{job_id} {job['status']}", f"created {job['created_at']}", f"started {job['started_at'] or '—'}",
             f"finished {job['finished_at'] or '—'}", f"attempts {job['attempts']}", f"priority {job['priority']}"]
    st.caption(" · ".join(facts) + " (UTC)")
    timeline = jobs.events(settings, job_id)
    durations = stats.stage_timeline(timeline)
    if compacted := retention.event_summary(settings, job_id):   # issue 21: retention.events_days
        st.caption(f"{compacted['events']} events of this job were compacted on {compacted['compacted_at']} (UTC)"
                   " by the retention policy; its stage times are kept" + (f"; last message: "
                   f"{c.md_escape(compacted['last_message'])}" if compacted["last_message"] else "."))
        durations = durations or [{"stage": stage, "seconds": round(seconds, 2)}
                                  for stage, seconds in compacted["stages"].items()]
    if durations:
        chart = pd.DataFrame(durations).rename(columns={"stage": "Stage", "seconds": "Seconds"})
        chart["Stage"] = chart["Stage"].str.replace("_", " ")
        st.bar_chart(chart, x="Stage", y="Seconds", horizontal=True, sort=False, height=200)
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
    units = jobs.units(settings, job_id)
    if units:
        st.caption(f"Rendering runs one task per clip: {sum(u['status'] == 'done' for u in units)} of"
                   f" {len(units)} done")
        st.dataframe(pd.DataFrame([{
            "Clip": u["clip_title"], "Status": u["status"], "Progress": u["progress"],
            "Length": c.human_seconds(u["clip_seconds"]), "Took": c.human_seconds(u["seconds"]) if u["seconds"] else "",
            "Worker": u["worker_id"] or "", "Error": u["error"] or "",
        } for u in units]), hide_index=True, column_config={
            "Progress": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent"),
        })
    webhook_deliveries(job_id)


def signed_text(signed: bool | None) -> str:
    return {True: "signed", False: "UNSIGNED", None: "not sent yet"}[signed]


def webhook_deliveries(job_id: int) -> None:
    """Each webhook delivery of the job; one sent without a secret is flagged: anyone could forge it."""
    sent = webhooks.deliveries(settings, job_id)
    if not sent:
        return
    if any(d["signed"] is False for d in sent):
        st.warning(f"Webhooks of this job went out unsigned: receivers cannot tell them from forgeries. Put a "
                   f"secret in the environment variable {settings.webhooks.secret_env} (webhooks.secret_env).",
                   icon=":material/gpp_maybe:")
    st.dataframe(pd.DataFrame([{
        "Webhook": d["url"], "Event": d["event"], "Status": d["status"], "Signature": signed_text(d["signed"]),
        "Attempts": d["attempts"], "Error": d["last_error"] or "",
    } for d in sent]), hide_index=True)


details(job_id, job["status"])
