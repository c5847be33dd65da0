"""Review one episode: player, searchable transcript that seeks the player, chapters, editable
title / summary / keywords, clip cards (approve / reject, trim, reframe, caption style,
re-render, downloads) and the zip of approved clips.

The episode comes from the ``episode`` query parameter when present (the Jobs and Episodes
pages link here with it), otherwise from the picker; picking one updates the URL.

Memory: ``st.video(path)`` reads the whole file into Streamlit's media store on every run,
so each clip card plays one render (subtitled 9x16 unless the operator picks another, or
all four on demand) and the episode player is only offered for files up to
``PLAYER_MAX_BYTES``. Downloads are generated when clicked, not on every run.
"""

import functools
from pathlib import Path

import streamlit as st

from pages import _common as c
from pipeline import jobs, storage, transcript
from pipeline.errors import PipelineError
from pipeline.jobs import options
from pipeline.library import bundle, episodes, review, transcript_changes
from pipeline.ops import retention

VARIANTS = ("subtitled_9x16", "clean_9x16", "subtitled_16x9", "clean_16x9")
ALL_FOUR = "all four"
EXPORTS = {"srt": "application/x-subrip", "vtt": "text/vtt", "txt": "text/plain", "json": "application/json"}
PLAYER_MAX_BYTES = 300 * 1000 * 1000
TRANSCRIPT_LINES_SHOWN = 300
JUMP_CUTS = {"Job default": "", "Cut pauses": True, "Keep pauses": False}   # label -> remove_silences
CHANGES_SHOWN = 200
STATUS_BADGE = {"approved": ("approved", "green"), "rejected": ("rejected", "red"), "suggested": ("suggested", "gray")}

settings = c.settings()
st.title("Review")
c.show_notices()

listed = episodes.list_episodes(settings)
if not listed:
    st.info("No episodes yet — add one on **New episode**.", icon=":material/info:")
    st.page_link(c.NEW_EPISODE, label="New episode", icon=":material/add_circle:")
    st.stop()

by_id = {e["episode_id"]: e for e in listed}
wanted = st.query_params.get("episode")
if wanted and wanted not in by_id:   # older than the newest 200: look it up by id
    by_id.update({e["episode_id"]: e for e in episodes.list_episodes(settings, search=wanted, limit=20)
                  if e["episode_id"] == wanted})
if wanted in by_id:
    st.session_state["episode_pick"] = wanted
elif wanted:
    st.warning(f"There is no episode {wanted}; showing the latest one instead.")
if st.session_state.get("episode_pick") not in by_id:
    st.session_state["episode_pick"] = listed[0]["episode_id"]


def remember_episode() -> None:
    st.query_params["episode"] = st.session_state["episode_pick"]
    st.session_state.pop("seek", None)


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
editable = not (latest_job and latest_job["status"] in c.ACTIVE_STATUSES)


@st.fragment(run_every=settings.dashboard.poll_seconds)
@c.guarded
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

with st.container(horizontal=True, gap="small", vertical_alignment="center"):
    st.button("Unpin episode" if episode["pinned"] else "Pin episode", icon=":material/keep:", key="pin_episode",
              on_click=c.attempt, args=(retention.pin_episode, "Episode unpinned." if episode["pinned"] else
                                        "Episode pinned: the retention policy never deletes any of its files.",
                                        settings, episode_id, not episode["pinned"]),
              help="Pinned: its source, audio and every render are kept whatever the retention policy says.")
    if episode["source_deleted_at"]:
        st.caption(f"Source and audio deleted by the retention policy ({episode['source_deleted_at']}); clips, "
                   "renders and the transcript are kept. Reprocessing downloads a URL source again.")

if enrichment.get("summary"):
    st.markdown(c.md_escape(enrichment["summary"]))
if enrichment.get("keywords"):
    with st.container(horizontal=True, gap="small"):
        for keyword in enrichment["keywords"]:
            st.badge(keyword, color="gray")

approved = [clip for clip in episode["clips"] if clip["status"] == "approved"]
# Only the open tab runs (``on_change="rerun"``), so the clip players load only on the Clips tab
# and the episode player only on the transcript tab.
tab_clips, tab_transcript, tab_details, tab_downloads = st.tabs(
    ["Clips", "Transcript & chapters", "Title & summary", "Downloads"], key="review_tab", on_change="rerun")


# --- helpers ------------------------------------------------------------------------------------

def file_reader(path: str):
    """Deferred download data: the file is read when the button is clicked, not on every run."""
    return lambda: Path(path).read_bytes()


def zip_reader():
    return lambda: bundle.approved_zip(settings, episode_id).read_bytes()


def rendered_length(clip: dict) -> str:
    """' · rendered 0:42' when jump cuts made the render shorter than the clip's span."""
    seconds = clip.get("rendered_seconds")
    if not seconds or seconds >= clip["end"] - clip["start"] - 0.25:
        return ""
    return f" · **rendered {c.human_seconds(seconds)}** after jump cuts"


def ordered_variants(renders: dict) -> list[str]:
    return [v for v in VARIANTS if v in renders] + sorted(v for v in renders if v not in VARIANTS)


def play(path: str | None, label: str) -> None:
    st.caption(label.replace("_", " "))
    if path and Path(path).is_file():
        st.video(path)
    else:
        st.caption("Not rendered yet." if not path else "File missing on disk.")


# --- clips -------------------------------------------------------------------------------------

def set_status(clip_id: str, status: str) -> None:
    c.attempt(review.set_clip_status, f"Clip marked {status}.", settings, clip_id, status)


def trim(clip: dict) -> None:
    start, end = st.session_state[f"start_{clip['clip_id']}"], st.session_state[f"end_{clip['clip_id']}"]
    c.attempt(review.trim_clip, lambda new: f"Trimmed to {c.timestamp(new['start'])}–{c.timestamp(new['end'])} "
              "(snapped to word boundaries); a render job is queued.", settings, clip["clip_id"], start, end, c.dispatch)


def restyle(clip: dict) -> None:
    c.attempt(review.set_clip_render_options, "Render options saved; a render job is queued.", settings,
              clip["clip_id"], reframe=st.session_state[f"reframe_{clip['clip_id']}"] or None,
              caption_style=st.session_state.get(f"style_{clip['clip_id']}") or None,
              remove_silences=JUMP_CUTS[st.session_state.get(f"cuts_{clip['clip_id']}") or "Job default"],
              dispatch=c.dispatch)


def clip_actions(clip: dict) -> None:
    clip_id = clip["clip_id"]
    with st.container(horizontal=True, gap="small"):
        st.button("Approve", icon=":material/check:", key=f"approve_{clip_id}", type="primary",
                  disabled=clip["status"] == "approved", on_click=set_status, args=(clip_id, "approved"))
        st.button("Reject", icon=":material/close:", key=f"reject_{clip_id}",
                  disabled=clip["status"] == "rejected", on_click=set_status, args=(clip_id, "rejected"))
        st.button("Undo", icon=":material/undo:", key=f"reset_{clip_id}", disabled=clip["status"] == "suggested",
                  on_click=set_status, args=(clip_id, "suggested"), help="Back to suggested.")
        st.button("Unpin" if clip["pinned"] else "Pin", icon=":material/keep:", key=f"pin_{clip_id}",
                  on_click=c.attempt, args=(retention.pin_clip, "Clip unpinned." if clip["pinned"] else
                                            "Clip pinned: the retention policy never deletes its renders.",
                                            settings, clip_id, not clip["pinned"]),
                  help="A pinned clip keeps its renders even when rejected (retention.rejected_renders_days).")
    with st.expander("Trim & style"):
        choices = review.get_clip(settings, clip_id)   # the per-clip reframe / caption style, not in the summary
        limit = max(float(episode["duration"] or 0), float(clip["end"]))   # a clip may end a hair past it
        left, right = st.columns(2)
        left.number_input("Start (s)", 0.0, limit, float(clip["start"]), 0.5, key=f"start_{clip_id}", format="%.2f")
        right.number_input("End (s)", 0.0, limit, float(clip["end"]), 0.5, key=f"end_{clip_id}", format="%.2f")
        st.button("Trim & re-render", icon=":material/content_cut:", key=f"trim_{clip_id}", on_click=trim,
                  args=(clip,), help="Start and end snap to the nearest word boundaries.")
        left, right = st.columns(2)
        modes = options.REFRAME_MODES
        left.selectbox("Reframe", modes, index=modes.index(choices["reframe"]) if choices["reframe"] in modes else None,
                       key=f"reframe_{clip_id}", placeholder="Job default")
        styles = options.caption_styles(settings)
        if styles:
            right.selectbox("Caption style", styles, index=styles.index(choices["caption_style"])
                            if choices["caption_style"] in styles else None, key=f"style_{clip_id}",
                            placeholder="Job default")
        current = next(label for label, value in JUMP_CUTS.items() if value == (
            "" if choices["remove_silences"] is None else choices["remove_silences"]))
        st.segmented_control("Jump cuts", list(JUMP_CUTS), default=current, key=f"cuts_{clip_id}",
                             help="Cut pauses longer than render.max_pause_seconds inside this clip.")
        st.button("Apply & re-render", icon=":material/autorenew:", key=f"restyle_{clip_id}", on_click=restyle,
                  args=(clip,))


def clip_downloads(clip: dict) -> None:
    clip_id = clip["clip_id"]
    with st.container(horizontal=True, gap="small"):
        for variant in ordered_variants(clip["renders"]):
            path = clip["renders"][variant]
            if Path(path).is_file():
                st.download_button(variant.replace("_", " "), file_reader(path), file_name=f"{clip_id}-{variant}.mp4",
                                   mime="video/mp4", icon=":material/download:", on_click="ignore",
                                   key=f"dl_{clip_id}_{variant}")
        captions = storage.clip_dir(settings.data_dir, episode_id, clip_id) / "captions.srt"
        if captions.is_file():
            st.download_button("captions", file_reader(str(captions)), file_name=f"{clip_id}.srt",
                               mime="application/x-subrip", icon=":material/subtitles:", on_click="ignore",
                               key=f"dl_{clip_id}_srt")


def clip_card(clip: dict) -> None:
    """Player on the left, what the clip is and what to do with it on the right; "all four" goes below."""
    clip_id = clip["clip_id"]
    variants = ordered_variants(clip["renders"])
    with st.container(border=True):
        media, info = st.columns([1, 2], gap="medium")
        with info:
            head, badge = st.columns([5, 1])
            head.subheader(c.md_escape(clip["title"]))
            label, colour = STATUS_BADGE.get(clip["status"], (clip["status"], "gray"))
            with badge:
                st.badge(label, color=colour)
            st.caption(f"Score **{clip['score']:.0f}** · {c.timestamp(clip['start'])}–{c.timestamp(clip['end'])} "
                       f"({c.human_seconds(clip['end'] - clip['start'])}){rendered_length(clip)}")
            st.markdown(c.md_escape(clip["reason"]))
            choice = None
            if variants:
                choice = st.segmented_control("Show", [*variants, ALL_FOUR] if len(variants) > 1 else variants,
                                              default=variants[0], key=f"show_{clip_id}",
                                              format_func=lambda v: v.replace("_", " ")) or variants[0]
            if editable:
                clip_actions(clip)
            clip_downloads(clip)
        with media:
            if not variants and clip["status"] == "rejected":
                st.caption("Rejected: its renders were removed. Undo, then render it again to bring them back.")
            elif not variants:
                st.caption("Renders appear here once the render stage has run.")
                if editable:
                    st.button("Render again", icon=":material/autorenew:", key=f"rerender_{clip_id}",
                              on_click=c.attempt, args=(jobs.rework, lambda job_id: f"Job #{job_id} renders the "
                                                        "missing clips.", settings, episode_id, "render", c.dispatch))
            elif choice != ALL_FOUR:
                play(clip["renders"].get(choice), choice)
            elif (thumb := storage.clip_dir(settings.data_dir, episode_id, clip_id) / "thumb.jpg").is_file():
                st.caption("thumbnail")
                st.image(str(thumb))
        if choice == ALL_FOUR:
            # Two portrait players side by side, the landscape ones stacked beside them.
            portrait_a, portrait_b, landscape = st.columns([1, 1, 1.7])
            for column, variant in zip((portrait_a, portrait_b, landscape, landscape), VARIANTS, strict=True):
                with column:
                    play(clip["renders"].get(variant), variant)


def clips_tab() -> None:
    if episode["clips"]:
        if not editable:
            st.caption("Clips can be edited once the running job finishes.")
        for clip in episode["clips"]:
            clip_card(clip)
    elif latest_job and latest_job["status"] in c.ACTIVE_STATUSES:
        st.caption("Clips appear here once the episode is processed.")
    else:
        st.caption("No clips were found in this episode.")


# --- transcript, player and chapters -----------------------------------------------------------------

def seek(seconds: float) -> None:
    st.session_state["seek"] = float(seconds)


def episode_player() -> None:
    full = episode.get("full_episode_render")
    candidates = [full["path"] if full else None, episode.get("source_path")]
    path = next((Path(p) for p in candidates if p and Path(p).is_file()), None)
    if path is None:
        st.caption("The episode's media is not available yet.")
        return
    if path.stat().st_size > PLAYER_MAX_BYTES:
        st.caption(f"The episode file is {c.human_bytes(path.stat().st_size)}, too large to stream from here; "
                   "the timestamps still show where each line is.")
        return
    start = int(st.session_state.get("seek", 0))
    media = episode.get("media") or {}
    if media.get("has_video", True):
        st.video(str(path), start_time=start)
    else:
        st.audio(str(path), start_time=start)
    if start:
        st.caption(f"Playing from {c.timestamp(start)}.")


def transcript_tab() -> None:
    doc = episodes.load_transcript(settings, episode_id)
    player_column, lines_column = st.columns([1.2, 1])
    with player_column:
        episode_player()
        chapters = enrichment.get("chapters") or []
        st.markdown("**Chapters**")
        if chapters:
            for number, chapter in enumerate(chapters):
                st.button(f"{c.timestamp(chapter['start'])} · {c.md_escape(chapter['title'])}", key=f"chapter_{number}",
                          type="tertiary", on_click=seek, args=(chapter["start"],))
        else:
            st.caption("Chapters appear here once the episode is enriched.")
    with lines_column:
        if doc is None:
            st.caption("The transcript appears here once transcription finishes.")
        else:
            needle = st.text_input("Search the transcript", placeholder="Words to find…", key="transcript_filter")
            segments = doc.get("segments", [])
            shown = [s for s in segments if needle.strip().lower() in s["text"].lower()]
            if needle.strip():
                st.caption(f"{len(shown)} of {len(segments)} lines contain “{c.md_escape(needle.strip())}”. "
                           "Click a line to play from there.")
            elif segments:
                st.caption("Click a line to play from there.")
            if not segments:
                st.caption("No speech was found.")
            with st.container(height=520 if len(shown) > 12 else "content"):
                for number, segment in enumerate(shown[:TRANSCRIPT_LINES_SHOWN]):
                    st.button(f"{c.timestamp(segment['start'])}  {c.md_escape(segment['text'].strip())}", key=f"line_{number}",
                              type="tertiary", on_click=seek, args=(segment["start"],))
                if len(shown) > TRANSCRIPT_LINES_SHOWN:
                    st.caption(f"{len(shown) - TRANSCRIPT_LINES_SHOWN} more lines; search to narrow them down.")
            transcript_changes_section()
    if enrichment.get("source"):
        note = f" — {enrichment['note']}" if enrichment.get("note") else ""
        st.caption(f"Title, summary, chapters and clips picked by the {enrichment['source']} enricher{note}.")


def _setup(about: dict) -> str:
    vocabulary = ", ".join(about.get("vocabulary") or []) or "none"
    return f"{about.get('model')} on {about.get('engine')}, language {about.get('language') or '?'}, vocabulary {vocabulary}"


def transcript_changes_section() -> None:
    """What the last re-transcription changed, word by word (the replaced transcript is kept)."""
    diff = transcript_changes.for_episode(settings, episode_id)
    if diff is None:
        return
    with st.expander(f"Changes since the previous transcript: {diff['words_changed']} of {diff['words']} words",
                     icon=":material/difference:"):
        st.caption(f"Before: {c.md_escape(_setup(diff['old']))}. Now: {c.md_escape(_setup(diff['new']))}.")
        if not diff["changes"]:
            st.caption("The words are the same.")
        for number, change in enumerate(diff["changes"][:CHANGES_SHOWN]):
            old = f"~~{c.md_escape(change['old'])}~~" if change["old"] else "*(nothing)*"
            new = f"**{c.md_escape(change['new'])}**" if change["new"] else "*(nothing)*"
            st.button(f"{c.timestamp(change['start'])}  {old} → {new}", key=f"change_{number}", type="tertiary",
                      on_click=seek, args=(change["start"],))
        if len(diff["changes"]) > CHANGES_SHOWN:
            st.caption(f"{len(diff['changes']) - CHANGES_SHOWN} more changes.")


# --- title, summary, keywords --------------------------------------------------------------------

def save_details() -> None:
    keywords = [k.strip() for k in st.session_state["edit_keywords"].split(",") if k.strip()]
    c.attempt(review.update_enrichment, "Saved.", settings, episode_id, title=st.session_state["edit_title"].strip(),
              summary=st.session_state["edit_summary"].strip(), keywords=keywords)


def details_tab() -> None:
    with st.form("details"):
        st.text_input("Title", value=episode["title"] or enrichment.get("title", ""), key="edit_title")
        st.text_area("Summary", value=enrichment.get("summary", ""), key="edit_summary", height=140)
        st.text_input("Keywords (comma separated)", value=", ".join(enrichment.get("keywords") or []),
                      key="edit_keywords")
        st.form_submit_button("Save", type="primary", icon=":material/save:", on_click=save_details)


# --- downloads -----------------------------------------------------------------------------------

def downloads_tab() -> None:
    st.markdown(f"**Approved clips** ({len(approved)} of {len(episode['clips'])})")
    st.download_button("Download approved clips (.zip)", zip_reader(), file_name=f"{episode_id}-approved-clips.zip",
                       mime="application/zip", icon=":material/folder_zip:", on_click="ignore",
                       disabled=not approved, key="download_zip", type="primary")
    st.caption("Every render of each approved clip, its captions and the transcript." if approved else
               "Approve clips on the Clips tab to bundle them here.")
    st.markdown("**Transcript**")
    if not episode["transcript"]:
        st.caption("Transcript downloads appear once transcription finishes.")
    else:
        with st.container(horizontal=True, gap="small"):
            formats = [f for f in EXPORTS if f in transcript.FORMATS] + [f for f in transcript.FORMATS if f not in EXPORTS]
            for fmt in formats:   # rendered when clicked, not on every run
                st.download_button(f"Download .{fmt}", functools.partial(episodes.export, settings, episode_id, fmt),
                                   file_name=f"{episode_id}.{fmt}", mime=EXPORTS.get(fmt, "text/plain"),
                                   icon=":material/download:", key=f"export_{fmt}", on_click="ignore")
    full = episode.get("full_episode_render")
    st.markdown("**Full episode**")
    if full:
        st.download_button(f"Download the subtitled episode ({c.human_bytes(full['size_bytes'])})",
                           file_reader(full["path"]), file_name=f"{episode_id}-full_16x9.mp4", mime="video/mp4",
                           icon=":material/download:", on_click="ignore", key="download_full")
    else:
        st.button("Render the full episode with subtitles", icon=":material/movie:", key="full_episode",
                  disabled=bool(latest_job and latest_job["status"] in c.ACTIVE_STATUSES),
                  on_click=c.attempt, args=(jobs.rework, lambda job_id: f"Job #{job_id} renders the full episode.",
                                            settings, episode_id, "episode_render", c.dispatch),
                  kwargs={"options": {"full_episode": True}})


for tab, draw in ((tab_clips, clips_tab), (tab_transcript, transcript_tab), (tab_details, details_tab),
                  (tab_downloads, downloads_tab)):
    if tab.open:
        with tab:
            draw()
