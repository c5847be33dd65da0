"""Episode: summary, clips (four renders each), transcript with filter and downloads.

The episode comes from the ``episode`` query parameter when present (the Jobs page and
shared links use it), otherwise from the picker; picking one updates the URL.
"""

from pathlib import Path

import streamlit as st

from pages import _common as c
from pipeline import episodes, jobs
from pipeline.errors import PipelineError

VARIANTS = ("clean_9x16", "subtitled_9x16", "clean_16x9", "subtitled_16x9")
EXPORTS = {"srt": "application/x-subrip", "vtt": "text/vtt", "txt": "text/plain"}

settings = c.settings()
st.title("Episode")

listed = episodes.list_episodes(settings)
if not listed:
    st.info("No episodes yet — add one on **New episode**.", icon=":material/info:")
    st.page_link(c.NEW_EPISODE, label="New episode", icon=":material/add_circle:")
    st.stop()

by_id = {e["episode_id"]: e for e in listed}
wanted = st.query_params.get("episode")
if wanted in by_id:
    st.session_state["episode_pick"] = wanted
elif wanted:
    st.warning(f"There is no episode {wanted}; showing the latest one instead.")
if st.session_state.get("episode_pick") not in by_id:
    st.session_state["episode_pick"] = listed[0]["episode_id"]


def remember_episode() -> None:
    st.query_params["episode"] = st.session_state["episode_pick"]


episode_id = st.selectbox("Episode", list(by_id), key="episode_pick", on_change=remember_episode,
                          format_func=lambda i: f"{by_id[i]['title']} · {by_id[i]['status']} · {i}")
try:
    episode = episodes.summary(settings, episode_id)
except PipelineError as exc:
    c.show_error(exc)
    st.stop()

enrichment = episode["enrichment"] or {}
st.header(c.md_escape(episode["title"] or by_id[episode_id]["title"]))
facts = [f"Status: **{episode['status']}**", f"Duration: **{c.human_seconds(episode['duration'])}**",
         f"Clips: **{len(episode['clips'])}**"]
if episode["language"]:
    facts.append(f"Language: **{episode['language']}**")
st.markdown(" · ".join(facts) + f"  \nSource: `{episode['source']}`")


# --- the episode's latest job ------------------------------------------------------------------

latest_job = jobs.get(settings, episode["job_ids"][-1]) if episode["job_ids"] else None


@st.fragment(run_every=settings.dashboard.poll_seconds)
def job_progress(job_id: int) -> None:
    job = jobs.get(settings, job_id)
    if job["status"] not in c.ACTIVE_STATUSES:
        st.rerun()   # finished: redraw the whole page with the results
    if job["status"] == "running":
        st.progress(job["progress"], text=f"Processing (job #{job_id}) — {c.job_progress_text(job)}")
    else:
        st.info(f"Job #{job_id} is {job['status']}, waiting for a worker. Results appear here as soon as it "
                "finishes.", icon=":material/hourglass_top:")


if latest_job and latest_job["status"] in c.ACTIVE_STATUSES:
    job_progress(latest_job["job_id"])
elif latest_job and latest_job["status"] == "failed":
    st.error(f"Processing failed (job #{latest_job['job_id']}): {c.md_escape(latest_job['error'] or '')}",
             icon=":material/error:")
    st.page_link(c.JOBS, label="Retry on the Jobs page", icon=":material/replay:",
                 query_params={"job": str(latest_job["job_id"])})
elif latest_job and latest_job["status"] == "cancelled":
    st.info(f"Processing was cancelled (job #{latest_job['job_id']}).", icon=":material/stop_circle:")
    st.page_link(c.JOBS, label="Retry on the Jobs page", icon=":material/replay:",
                 query_params={"job": str(latest_job["job_id"])})

if enrichment.get("summary"):
    st.markdown(c.md_escape(enrichment["summary"]))
if enrichment.get("keywords"):
    with st.container(horizontal=True, gap="small"):
        for keyword in enrichment["keywords"]:
            st.badge(keyword, color="gray")

tab_clips, tab_transcript, tab_chapters = st.tabs([f"Clips ({len(episode['clips'])})", "Transcript", "Chapters"])


# --- clips -----------------------------------------------------------------------------------

def render_player(variant: str, path: str | None) -> None:
    st.markdown(f"**{variant}**")
    if path and Path(path).is_file():
        st.video(path)
    else:
        st.caption("Not rendered yet." if not path else "File missing on disk.")


def clip_card(clip: dict) -> None:
    with st.container(border=True):
        st.subheader(c.md_escape(clip["title"]))
        length = clip["end"] - clip["start"]
        st.caption(f"Score **{clip['score']:.0f}** · {c.timestamp(clip['start'])}–{c.timestamp(clip['end'])} "
                   f"({c.human_seconds(length)}) · {clip['status']}")
        st.markdown(c.md_escape(clip["reason"]))
        # Two portrait players side by side, the two landscape ones stacked beside them:
        # with these widths the three columns come out about equally tall.
        portrait_a, portrait_b, landscape = st.columns([1, 1, 1.7])
        for column, variant in zip((portrait_a, portrait_b, landscape, landscape), VARIANTS, strict=True):
            with column:
                render_player(variant, clip["renders"].get(variant))


with tab_clips:
    if episode["clips"]:
        for clip in episode["clips"]:
            clip_card(clip)
    elif latest_job and latest_job["status"] in c.ACTIVE_STATUSES:
        st.caption("Clips appear here once the episode is processed.")
    else:
        st.caption("No clips were found in this episode.")


# --- transcript ------------------------------------------------------------------------------

with tab_transcript:
    doc = episodes.load_transcript(settings, episode_id)
    if doc is None:
        st.caption("The transcript appears here once transcription finishes.")
    else:
        with st.container(horizontal=True, gap="small"):
            for fmt, mime in EXPORTS.items():
                try:
                    data = episodes.export(settings, episode_id, fmt)
                except PipelineError as exc:
                    c.show_error(exc)
                    continue
                st.download_button(f"Download .{fmt}", data, file_name=f"{episode_id}.{fmt}", mime=mime,
                                   icon=":material/download:", key=f"export_{fmt}")
        needle = st.text_input("Filter", placeholder="Show only lines containing…", key="transcript_filter")
        segments = doc.get("segments", [])
        shown = [s for s in segments if needle.strip().lower() in s["text"].lower()]
        if needle.strip():
            st.caption(f"{len(shown)} of {len(segments)} lines contain “{c.md_escape(needle.strip())}”.")
        if shown:
            with st.container(height=480 if len(shown) > 18 else "content"):
                st.markdown("  \n".join(f"`{c.timestamp(s['start'])}` {c.md_escape(s['text'].strip())}"
                                        for s in shown))
        elif not segments:
            st.caption("No speech was found.")


# --- chapters --------------------------------------------------------------------------------

with tab_chapters:
    chapters = enrichment.get("chapters") or []
    if chapters:
        st.markdown("\n".join(f"- `{c.timestamp(ch['start'])}` {c.md_escape(ch['title'])}" for ch in chapters))
    else:
        st.caption("Chapters appear here once the episode is enriched.")
    if enrichment.get("source"):
        note = f" — {enrichment['note']}" if enrichment.get("note") else ""
        st.caption(f"Title, summary, chapters and clips picked by the {enrichment['source']} enricher{note}.")
