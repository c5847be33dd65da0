"""New episode: upload files, paste URLs or pick files on the server, choose options, queue them.

Options are checked by ``pipeline.jobs.options.validate`` before anything is saved or queued,
so a bad value is a message here, never a failed job later. Only options that differ from
the config are stored on the job: a config change later still applies to the rest.
"""

from pathlib import Path

import streamlit as st

from pages import _common as c
from pipeline import jobs
from pipeline.automation import inbox
from pipeline.errors import BadInput, PipelineError
from pipeline.jobs import backlog, options

MEDIA_TYPES = ["mp4", "mov", "mkv", "webm", "mp3", "wav", "m4a", "ogg", "opus", "flac"]
PRIORITIES = {"Low": jobs.PRIORITY_FEED, "Normal": jobs.PRIORITY_INTERACTIVE, "High": jobs.PRIORITY_RETRY}
REFRAME_HELP = {"center": "center crop", "face": "follow the speaker's face", "fit": "whole frame, padded",
                "split": "two people stacked", "auto": "split, face or fit, per clip"}

settings = c.settings()
# What this session already queued (source key -> job id): pressing Process again while the
# files are still in the uploader, or double-clicking it, must not queue the same work twice.
already_queued: dict[str, int] = st.session_state.setdefault("already_queued", {})


def inbox_files() -> list[Path]:
    folder = inbox.inbox_dir(settings)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_file() and not p.is_symlink()   # a link could point anywhere
                   and not p.name.startswith((".", "~"))
                   and p.suffix.lower().lstrip(".") in inbox.MEDIA_EXTENSIONS), key=lambda p: p.name.lower())


def take_from_inbox(path: str) -> Path:
    """Move a picked inbox file into the uploads folder, so the inbox watcher does not take it a second time."""
    with open(path, "rb") as data:
        saved = jobs.save_upload(settings, Path(path).name, data)
    Path(path).unlink()
    return saved


def parse_urls(text: str) -> list[str]:
    """One URL per line; blank lines and surrounding spaces ignored. BadInput names the bad lines."""
    urls, bad = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line.lower().startswith(("http://", "https://")):
            urls.append(line)
        elif line:
            bad.append(f"line {number} ({line[:60]})")
    if bad:
        raise BadInput("Each line must be one http:// or https:// address; check " + ", ".join(bad) + ".")
    return list(dict.fromkeys(urls))


def chosen_options() -> dict:
    """The option widgets' values that differ from the config, checked by ``options.validate``."""
    s = st.session_state
    low, high = s["opt_duration"]
    picked = {
        "engine": s["opt_engine"] if s["opt_engine"] != settings.transcribe.engine else None,
        "model": s["opt_model"].strip() if s["opt_model"].strip() != settings.transcribe.model else None,
        "language": s["opt_language"].strip() or None,
        "max_clips": int(s["opt_max_clips"]) if int(s["opt_max_clips"]) != settings.enrich.max_clips else None,
        "min_clip_seconds": float(low) if low != settings.enrich.min_clip_seconds else None,
        "max_clip_seconds": float(high) if high != settings.enrich.max_clip_seconds else None,
        "aspects": list(s["opt_aspects"]) if set(s["opt_aspects"]) != {"9x16", "16x9"} else None,
        "caption_style": s.get("opt_caption_style") or None,
        "reframe": s["opt_reframe"] if s["opt_reframe"] != settings.render.reframe else None,
        "full_episode": True if s["opt_full_episode"] else None,
        "remove_silences": (s["opt_remove_silences"] if s["opt_remove_silences"] != settings.render.remove_silences
                            else None),
        "title_overlay_seconds": (float(s["opt_title_seconds"])
                                  if s["opt_title_seconds"] != settings.render.title_overlay_seconds else None),
        "vocabulary": s["opt_vocabulary"].strip() or None,
    }
    if not s["opt_aspects"]:
        raise BadInput("Pick at least one aspect ratio.")
    return options.validate(settings, picked)


def process(uploads: list, urls_text: str, path: str, inbox_picks: list[str], title: str) -> None:
    try:
        job_options = chosen_options()
        urls = parse_urls(urls_text)
    except BadInput as exc:
        c.show_error(exc)
        return
    priority = PRIORITIES[st.session_state["opt_priority"] or "Normal"]
    signature = repr(sorted(job_options.items()))
    # (dedup key, what to enqueue, how, name shown): how is "upload" (an UploadedFile), "inbox" or "source".
    sources = [(f"upload:{f.file_id}", f, "upload", f.name) for f in uploads]
    sources += [(f"url:{url}:{signature}", url, "source", url) for url in urls]
    sources += [(f"path:{path}:{signature}", path, "source", path)] if path else []
    sources += [(f"inbox:{p}", p, "inbox", Path(p).name) for p in inbox_picks]
    if not sources:
        st.warning("Add something to process first: upload a file, paste a URL or pick a file on the server.",
                   icon=":material/info:")
        return
    new = [source for source in sources if source[0] not in already_queued]
    if not new:
        st.info("These are already queued (" + ", ".join(f"job #{already_queued[s[0]]}" for s in sources)
                + "). Add another file, or use Retry on the Jobs page to process one again.")
        return

    common = {"title": title if len(new) == 1 else "", "options": job_options, "priority": priority}
    queued = []
    for key, source, how, name in new:
        try:
            if how == "source":
                episode_id, job_id = jobs.enqueue(settings, source, c.dispatch, **common)
            else:
                saved = take_from_inbox(source) if how == "inbox" else jobs.save_upload(settings, name, source)
                episode_id, job_id = jobs.enqueue(settings, str(saved), c.dispatch, source_kind="upload", **common)
        except PipelineError as exc:
            c.show_error(f"{name}: {exc}" if how != "source" or len(new) > 1 else exc)
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
    if (depth := backlog.notice(settings))["message"]:   # back-pressure (issue 21): accepted, but say how deep
        st.info(depth["message"], icon=":material/hourglass_top:")
    if not jobs.queue_overview(settings)["workers_alive"]:
        st.warning(f"No worker is running, so the job will wait in the queue. {c.WORKER_HINT}",
                   icon=":material/warning:")
    st.page_link(c.JOBS, label="Follow progress on the Jobs page", icon=":material/list_alt:",
                 query_params={"job": str(queued[-1][2])})


st.title("New episode")
st.caption("Clipdesk transcribes the episode, picks the best moments and renders each one as "
           "vertical and horizontal clips, with and without captions.")

tab_upload, tab_urls, tab_server = st.tabs(["Upload", "URLs", "On the server"])
with tab_upload:
    uploads = st.file_uploader("Upload episodes", type=MEDIA_TYPES, accept_multiple_files=True, key="uploads",
                               max_upload_size=settings.dashboard.max_upload_mb,
                               help=f"Video or audio, up to {settings.dashboard.max_upload_mb} MB per file.")
with tab_urls:
    urls_text = st.text_area("Episode URLs, one per line", key="urls", height=120,
                             placeholder="https://example.com/episode-42.mp4\nhttps://www.youtube.com/watch?v=…",
                             help="Direct media links or pages yt-dlp understands. Each URL becomes one episode.")
with tab_server:
    local_path = st.text_input("A file path on the server", key="local_path",
                               placeholder="/srv/media/episode-42.mp4",
                               help="A file in the data dir, the inbox or paths.allowed_source_dirs on the "
                                    "Clipdesk server. It is copied; the original stays untouched.")
    waiting = inbox_files()
    inbox_picks = st.multiselect(f"Files in the inbox folder ({inbox.inbox_dir(settings)})", [str(p) for p in waiting],
                                 key="inbox_picks", format_func=lambda p: Path(p).name,
                                 placeholder="Pick files" if waiting else "The inbox folder is empty")
    if settings.inbox.enabled:
        st.caption("The worker takes files dropped in the inbox by itself once they stop growing; pick one here "
                   "to start it right away with the options below (it leaves the inbox).")

left, middle, right = st.columns([3, 1, 1.2])
title = left.text_input("Title (optional)", key="title",
                        help="Used when you add a single episode. Without one, the title comes from the transcript.")
middle.number_input("Max clips", min_value=1, max_value=50, value=settings.enrich.max_clips, step=1,
                    key="opt_max_clips")
right.segmented_control("Priority", list(PRIORITIES), default="Normal", key="opt_priority",
                        help="Higher runs first. Low is what feeds use.")

with st.expander("Processing options", icon=":material/tune:"):
    col1, col2, col3 = st.columns(3)
    col1.selectbox("Engine", options.ENGINES, index=options.ENGINES.index(settings.transcribe.engine),
                   key="opt_engine")
    col2.text_input("Model", value=settings.transcribe.model, key="opt_model",
                    help="tiny.en (English) and base (multilingual) are bundled and work offline; other names download on first use.")
    col3.text_input("Language", value=settings.transcribe.language, key="opt_language", placeholder="auto",
                    help="A language code such as en or de; empty lets the model detect it.")
    configured = ", ".join(settings.transcribe.vocabulary)
    st.text_input("Vocabulary", key="opt_vocabulary", placeholder="e.g. Ada Quist, Quorbex, Kubernetes",
                  help="Names, brands and jargon to spell right in the transcript and captions, separated by "
                       "commas." + (f" Always added from the config: {configured}." if configured else ""))
    st.slider("Clip length (seconds)", min_value=5.0, max_value=180.0, step=1.0, key="opt_duration",
              value=(settings.enrich.min_clip_seconds, min(settings.enrich.max_clip_seconds, 180.0)))
    col1, col2, col3 = st.columns(3)
    col1.multiselect("Aspect ratios", options.ASPECTS, default=["9x16", "16x9"], key="opt_aspects")
    styles = options.caption_styles(settings)
    if styles:
        col2.selectbox("Caption style", styles, index=None, key="opt_caption_style", placeholder="Config default")
    col3.selectbox("Reframe", options.REFRAME_MODES, key="opt_reframe",
                   index=options.REFRAME_MODES.index(settings.render.reframe),
                   format_func=lambda m: f"{m} — {REFRAME_HELP[m]}")
    st.checkbox("Also render the full episode with subtitles (16x9)", key="opt_full_episode")
    st.checkbox("Jump cuts: cut pauses inside clips", key="opt_remove_silences", value=settings.render.remove_silences,
                help=f"Pauses longer than {settings.render.max_pause_seconds:g} s are cut (render.max_pause_seconds).")
    st.number_input("Hook title banner (seconds, 0 = off)", 0.0, 30.0, float(settings.render.title_overlay_seconds),
                    0.5, key="opt_title_seconds", help="The clip's title over its first seconds, in the caption style.")

if st.button("Process", type="primary", icon=":material/play_arrow:", key="process"):
    process(uploads or [], urls_text, local_path.strip().strip("'\""), inbox_picks, title.strip())
