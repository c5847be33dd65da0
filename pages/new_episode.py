"""New episode: upload files or name a file on the server, then queue them for processing."""

import streamlit as st

from pages import _common as c
from pipeline import jobs
from pipeline.errors import PipelineError

MEDIA_TYPES = ["mp4", "mov", "mkv", "webm", "mp3", "wav", "m4a", "ogg", "opus", "flac"]

settings = c.settings()
# What this session already queued (source key -> job id): pressing Process again while the
# files are still in the uploader, or double-clicking it, must not queue the same work twice.
already_queued: dict[str, int] = st.session_state.setdefault("already_queued", {})


def process(uploads: list, path: str, title: str, max_clips: int) -> None:
    options = {"max_clips": max_clips}
    sources = [(f"upload:{f.file_id}", f.name, f) for f in uploads]
    if path:
        sources.append((f"path:{path}:{max_clips}", path, None))
    new = [source for source in sources if source[0] not in already_queued]
    if not sources:
        st.warning("Choose a file to upload or enter a file path first.")
        return
    if not new:
        st.info("These are already queued (" + ", ".join(f"job #{already_queued[key]}" for key, _, _ in sources)
                + "). Add another file, or use Retry on the Jobs page to process one again.")
        return

    common = {"title": title if len(new) == 1 else "", "options": options}
    queued = []
    for key, name, upload in new:
        try:
            if upload is not None:
                saved = jobs.save_upload(settings, name, upload)
                episode_id, job_id = jobs.enqueue(settings, str(saved), c.dispatch, source_kind="upload", **common)
            else:
                episode_id, job_id = jobs.enqueue(settings, path, c.dispatch, **common)
        except PipelineError as exc:
            c.show_error(f"{name}: {exc}" if upload is not None else exc)
            continue
        except OSError as exc:   # e.g. the disk filled up while saving an upload
            c.show_error(f"{name}: could not be saved ({exc.strerror or exc}).")
            continue
        already_queued[key] = job_id
        queued.append((name, episode_id, job_id))
    if not queued:
        return

    lines = "\n".join(f"- job **#{job_id}** · {c.md_escape(name)} (episode `{episode_id}`)"
                      for name, episode_id, job_id in queued)
    st.success(f"Queued {len(queued)} episode{'s' if len(queued) > 1 else ''}:\n{lines}",
               icon=":material/check_circle:")
    if len(new) > 1 and title:
        st.caption("The title was not used because several episodes were added.")
    if not jobs.queue_overview(settings)["workers_alive"]:
        st.warning(f"No worker is running, so the job will wait in the queue. {c.WORKER_HINT}",
                   icon=":material/warning:")
    st.page_link(c.JOBS, label="Follow progress on the Jobs page", icon=":material/list_alt:",
                 query_params={"job": str(queued[-1][2])})


st.title("New episode")
st.caption("Clipdesk transcribes the episode, picks the best moments and renders each one as "
           "vertical and horizontal clips, with and without captions.")

uploads = st.file_uploader("Upload episodes", type=MEDIA_TYPES, accept_multiple_files=True,
                           max_upload_size=settings.dashboard.max_upload_mb,
                           help=f"Video or audio, up to {settings.dashboard.max_upload_mb} MB per file.")
local_path = st.text_input("…or a file path on the server",
                           placeholder="/srv/media/episode-42.mp4",
                           help="A file the Clipdesk server can read. It is copied; the original stays untouched.")
left, right = st.columns([3, 1])
title = left.text_input("Title (optional)",
                        help="Used when you add a single episode. Without one, the title comes from the transcript.")
max_clips = right.number_input("Max clips", min_value=1, max_value=50, value=settings.enrich.max_clips, step=1)

if st.button("Process", type="primary", icon=":material/play_arrow:"):
    process(uploads or [], local_path.strip().strip("'\""), title.strip(), int(max_clips))
