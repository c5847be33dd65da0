"""Episodes: the searchable library, with open / reprocess / delete (soft or permanent) / restore."""

import pandas as pd
import streamlit as st

from pages import _common as c
from pipeline import jobs
from pipeline.errors import PipelineError
from pipeline.library import episodes
from pipeline.ops import disk, retention, stats

REPROCESS_FROM = {
    "transcribe": "Transcribe again (then new clips and renders)",
    "enrich": "Pick clips again (keeps the transcript)",
    "render": "Render again (keeps the clips)",
}

settings = c.settings()
st.title("Episodes")
c.show_notices()

left, right = st.columns([3, 1], vertical_alignment="bottom")
search = left.text_input("Search", key="episodes_search", placeholder="Title, source or episode id")
show_deleted = right.toggle("Show deleted", key="episodes_deleted")

listed = episodes.list_episodes(settings, search=search.strip(), include_deleted=show_deleted)
if not listed:
    if search.strip():
        st.info(f"No episode matches “{c.md_escape(search.strip())}”.", icon=":material/search_off:")
    else:
        st.info("No episodes yet — add one on **New episode**.", icon=":material/info:")
        st.page_link(c.NEW_EPISODE, label="New episode", icon=":material/add_circle:")
    st.stop()

by_id = {e["episode_id"]: e for e in listed}
sizes = disk.episode_sizes(settings, list(by_id))   # issue 21: what each episode holds on disk
st.dataframe(pd.DataFrame([{
    "Title": e["title"],
    "Source": e["source"],
    "Added": pd.Timestamp(e["created_at"]),
    "Duration": c.human_seconds(e["duration"]) if e["duration"] else "",
    "Status": "deleted" if e["deleted"] else e["status"],
    "Clips": e["clips"],
    "Size": c.human_bytes(sizes[e["episode_id"]]["total"]),
    "Kept": "pinned" if e["pinned"] else "source deleted" if e["source_deleted"] else "",
    "ID": e["episode_id"],
} for e in listed]), hide_index=True, column_config={
    "Title": st.column_config.TextColumn(width="large"),
    "Source": st.column_config.TextColumn(width="medium"),
    "Added": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
})
st.caption(f"{len(listed)} episode{'s' if len(listed) != 1 else ''}, newest first · "
           f"{c.human_bytes(sum(s['total'] for s in sizes.values()))} on disk. *Size* counts source, audio, "
           "renders and transcripts; *pinned* episodes are never touched by the retention policy.")

st.subheader("Actions")
if st.session_state.get("library_pick") not in by_id:
    st.session_state["library_pick"] = listed[0]["episode_id"]
episode_id = st.selectbox("Episode", list(by_id), key="library_pick",
                          format_func=lambda i: f"{by_id[i]['title']} · {by_id[i]['status']} · {i}")
episode = by_id[episode_id]
deleted = episode["deleted"]


def delete(episode_id: str, hard: bool) -> None:
    st.session_state.pop("confirm_hard_delete", None)
    what = "deleted permanently" if hard else "moved to the trash (restore it with “Show deleted”)"
    c.attempt(episodes.delete, f"“{by_id[episode_id]['title']}” was {what}.", settings, episode_id, hard=hard)


def reprocess(episode_id: str) -> None:
    stage = st.session_state["reprocess_from"]
    model = st.session_state.get("reprocess_model", "").strip()
    options = {"model": model} if stage == "transcribe" and model else None
    c.attempt(jobs.rework, lambda job_id: f"Job #{job_id} queued: {REPROCESS_FROM[stage].split(' (')[0].lower()}.",
              settings, episode_id, stage, c.dispatch, options=options)


with st.container(horizontal=True, gap="small"):
    if st.button("Open in Review", icon=":material/movie_edit:", type="primary", disabled=deleted):
        st.switch_page(c.REVIEW, query_params={"episode": episode_id})
    if deleted:
        st.button("Restore", icon=":material/restore_from_trash:", key="restore",
                  on_click=c.attempt, args=(episodes.restore, f"“{episode['title']}” is back in the library.",
                                            settings, episode_id))
    else:
        st.button("Move to trash", icon=":material/delete:", key="soft_delete", on_click=delete,
                  args=(episode_id, False), help="Hidden from the library; files are kept until deleted "
                                                 "permanently. Restore it any time.")
    st.button("Unpin" if episode["pinned"] else "Pin", icon=":material/keep:", key="pin_episode",
              on_click=c.attempt, args=(retention.pin_episode, "Unpinned." if episode["pinned"] else
                                        f"“{episode['title']}” is pinned: the retention policy keeps all of it.",
                                        settings, episode_id, not episode["pinned"]),
              help="Pinned episodes keep their source, audio and renders whatever retention.* says.")
    st.button("Delete permanently…", icon=":material/delete_forever:", key="hard_delete",
              on_click=lambda: st.session_state.update(confirm_hard_delete=episode_id))

if st.session_state.get("confirm_hard_delete") == episode_id:
    try:
        footprint = stats.episode_footprint(settings, episode_id)
    except PipelineError as exc:
        c.show_error(exc)
        st.stop()
    with st.container(border=True):
        st.warning(
            f"Delete **{c.md_escape(episode['title'])}** permanently? This removes its source media"
            f"{', transcript' if footprint['has_transcript'] else ''}, {footprint['clips']} clip(s) with "
            f"{footprint['renders']} render(s), and {footprint['jobs']} job record(s): {footprint['files']} files, "
            f"{c.human_bytes(footprint['bytes'])} in `{footprint['folder']}`. This cannot be undone.",
            icon=":material/delete_forever:")
        yes, no, _ = st.columns([1.3, 1, 3])
        yes.button("Yes, delete permanently", type="primary", key="confirm_delete", on_click=delete,
                   args=(episode_id, True))
        no.button("Keep it", key="keep_episode", on_click=lambda: st.session_state.pop("confirm_hard_delete", None))

if not deleted:
    with st.expander("Reprocess"):
        stage = st.radio("What to redo", list(REPROCESS_FROM), key="reprocess_from",
                         format_func=REPROCESS_FROM.get)
        if stage == "transcribe":
            st.text_input("Model", key="reprocess_model", placeholder=settings.transcribe.model,
                          help="Leave empty for the model the episode used last. tiny.en is bundled; other "
                               "names download on first use.")
        st.button("Reprocess", icon=":material/autorenew:", key="reprocess", on_click=reprocess,
                  args=(episode_id,))
