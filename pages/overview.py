"""Overview: queue counts, worker liveness, media hours, throughput and stage durations, recent failures.

Everything comes from one ``stats.overview`` snapshot per poll.
"""

import pandas as pd
import streamlit as st

from pages import _common as c
from pipeline import jobs
from pipeline.jobs import backlog
from pipeline.ops import stats

settings = c.settings()
st.title("Overview")
c.exposure_warning(settings)


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


def charts(overview: dict) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Throughput")
        per_day = pd.DataFrame(overview["throughput"]).rename(
            columns={"day": "Day", "episodes": "Episodes", "media_hours": "Media hours"})
        if per_day["Episodes"].sum():
            st.bar_chart(per_day, x="Day", y=["Episodes", "Media hours"], stack=False, height=260)
            st.caption(f"Episodes finished and hours of media they hold, per day (UTC), last {len(per_day)} days.")
        else:
            st.caption(f"No episode finished in the last {len(per_day)} days.")
    with right:
        st.subheader("Stage durations")
        stages = pd.DataFrame(overview["stages"])
        if not stages.empty:
            stages = stages.rename(columns={"stage": "Stage", "mean_seconds": "Mean seconds"})
            stages["Stage"] = stages["Stage"].str.replace("_", " ")
            st.bar_chart(stages, x="Stage", y="Mean seconds", horizontal=True, height=260, sort=False)
            per_hour = [f"{s['stage'].replace('_', ' ')} {c.human_seconds(s['seconds_per_media_hour'])}"
                        for s in overview["stages"] if s["seconds_per_media_hour"]]
            if per_hour:
                st.caption("Work per hour of media: " + " · ".join(per_hour))
        else:
            st.caption("Stage timings appear after the first job runs.")


@st.fragment(run_every=settings.dashboard.poll_seconds)
@c.guarded
def live() -> None:
    overview = stats.overview(settings)
    counts = overview["counts"]

    columns = st.columns(6)
    columns[0].metric("Queued", counts["queued"] + counts["retrying"],
                      help=f"Includes {counts['retrying']} waiting to retry." if counts["retrying"] else None)
    columns[1].metric("Running", counts["running"])
    columns[2].metric("Succeeded", counts["succeeded"])
    columns[3].metric("Failed", counts["failed"])
    columns[4].metric("Cancelled", counts["cancelled"])
    hours = overview["media_hours"]
    columns[5].metric("Media hours", f"{hours:.2f}" if hours < 10 else f"{hours:.1f}",
                      help="Total length of the episodes processed successfully.")

    rate, latency = overview["success_rate"], overview["queue_latency_median"]
    kinds = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(overview["failures_by_kind"].items()))
    st.caption(" · ".join(part for part in (
        f"Success rate **{rate:.0%}**" if rate is not None else "",
        f"median wait before a job starts **{c.human_seconds(latency)}**" if latency is not None else "",
        f"failures: {kinds}" if kinds else "") if part))
    worker_status(overview)
    queue = backlog.overview(settings)   # issue 21: the backlog and when it should be through
    if queue["queue_depth"]:
        drains = queue["drains_in_seconds"]
        st.info(f"Backlog: **{queue['queue_depth']}** job{'s' if queue['queue_depth'] != 1 else ''} waiting"
                + (f", all done in ~**{c.human_seconds(drains)}**" if drains is not None else "")
                + (f". Feeds wait until fewer than {queue['max_queued_jobs']} are queued (worker.max_queued_jobs)."
                   if queue["feeds_held_back"] else "."), icon=":material/hourglass_top:")

    if not any(counts.values()):
        st.info("No jobs yet — add an episode on **New episode**.", icon=":material/info:")
        st.page_link(c.NEW_EPISODE, label="New episode", icon=":material/add_circle:")
        return

    if counts["running"]:
        st.subheader("Running")
        for job in jobs.list_jobs(settings, status="running", limit=10):
            st.progress(min(max(job["progress"], 0.0), 1.0),
                        text=f"**{c.md_escape(job['title'])}** (job #{job['job_id']}) — {c.job_progress_text(job)}")

    charts(overview)

    st.subheader("Recent failures")
    if not overview["failures"]:
        st.caption("No failed jobs.")
    for job in overview["failures"]:
        stage = f" during {job['stage'].replace('_', ' ')}" if job.get("stage") else ""
        st.error(f"**{c.md_escape(job['title'])}** (job #{job['job_id']}) failed{stage}: "
                 f"{c.md_escape(job['error'] or 'no error message recorded.')}")
    if overview["failures"]:
        st.page_link(c.JOBS, label="Retry from the Jobs page", icon=":material/list_alt:",
                     query_params={"job": str(overview["failures"][0]["job_id"])})


live()
