"""Episodes as the summary JSON of DESIGN.md, plus the transcript and export reads."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from pipeline import db, jobs, storage, transcript
from pipeline.config import Settings
from pipeline.errors import BadInput, NotAllowed, NotFound
from pipeline.jobs import iso
from pipeline.stages import episode_render


def _require(conn, episode_id: str):
    episode = db.get_episode(conn, episode_id)
    if episode is None:
        raise NotFound(f"There is no episode {episode_id}.")
    return episode


def summary(settings: Settings, episode_id: str) -> dict:
    with db.session(settings.app_db) as conn:
        episode = _require(conn, episode_id)
        clips = db.list_clips(conn, episode_id)
        renders = db.list_renders(conn, episode_id)
        jobs = db.jobs_for_episode(conn, episode_id)
    folder = storage.episode_dir(settings.data_dir, episode_id)
    transcript_paths = {fmt: str(path) for fmt in transcript.FORMATS
                        if (path := storage.transcript_path(settings.data_dir, episode_id, fmt)).exists()}
    enrichment = json.loads(episode["enrichment_json"]) if episode["enrichment_json"] else None
    by_clip: dict[str, dict] = {}
    rendered: dict[str, float] = {}   # the clip's length as rendered (shorter after jump cuts)
    for r in renders:
        by_clip.setdefault(r["clip_id"], {})[r["variant"]] = str(settings.data_dir / r["path"])
        if r["duration"]:
            rendered[r["clip_id"]] = min(rendered.get(r["clip_id"], r["duration"]), r["duration"])
    return {
        "episode_id": episode_id,
        "title": episode["title"],
        "duration": episode["duration"],
        "status": episode["status"],
        "source": episode["source_uri"],
        "source_path": str(folder / episode["source_path"]) if episode["source_path"] else None,
        "media": json.loads(episode["media_json"]) if episode["media_json"] else None,
        # URL episodes (issue 8): yt-dlp metadata (title, uploader, upload_date...) and the last download progress
        "source_metadata": json.loads(episode["metadata_json"]) if episode["metadata_json"] else None,
        "download": json.loads(episode["download_json"]) if episode["download_json"] else None,
        "language": episode["language"],
        "pinned": bool(episode["pinned"]),   # issue 21: never cleaned by the retention policy
        "source_deleted_at": iso(episode["source_deleted_at"]),   # the policy removed source and audio
        "deleted_at": iso(episode["deleted_at"]),
        "created_at": iso(episode["created_at"]),
        "job_ids": [j["id"] for j in jobs],
        "transcript": transcript_paths,
        "enrichment": enrichment,
        "clips": [{"clip_id": c["id"], "start": c["start"], "end": c["end"], "score": c["score"],
                   "title": c["title"], "reason": c["reason"], "status": c["status"],
                   "source": c["source"], "hashtags": json.loads(c["hashtags_json"] or "[]"),
                   "score_detail": json.loads(c["score_detail_json"] or "{}"),
                   "reframe": c["reframe"], "caption_style": c["caption_style"], "pinned": bool(c["pinned"]),
                   "remove_silences": None if c["remove_silences"] is None else bool(c["remove_silences"]),
                   "rendered_seconds": rendered.get(c["id"]),
                   "renders": by_clip.get(c["id"], {})} for c in clips],
        "full_episode_render": episode_render.summary(settings, episode_id),   # issue 5: subtitled 16x9 of it all
    }


def list_episodes(settings: Settings, search: str = "", include_deleted: bool = False,
                  limit: int = 200) -> list[dict]:
    with db.session(settings.app_db) as conn:
        rows = db.list_episodes(conn, limit, include_deleted, search.strip())
    return [_list_entry(r) for r in rows]


def page(settings: Settings, search: str = "", include_deleted: bool = False, limit: int = 50,
         after: str | None = None) -> dict:
    """A page of the library, newest first, and ``next``: the cursor (an episode id) of the page after."""
    with db.session(settings.app_db) as conn:
        if after is not None and db.get_episode(conn, after) is None:
            raise NotFound(f"There is no episode {after} to continue after.")
        rows = db.page_episodes(conn, limit + 1, include_deleted, search.strip(), after)
    shown = [_list_entry(r) for r in rows[:limit]]
    return {"episodes": shown, "next": shown[-1]["episode_id"] if len(rows) > limit else None}


def _list_entry(r) -> dict:
    return {"episode_id": r["id"], "title": r["title"] or Path(r["source_uri"]).name, "status": r["status"],
            "duration": r["duration"], "source": r["source_uri"], "clips": r["clip_count"],
            "created_at": iso(r["created_at"]), "deleted": r["deleted_at"] is not None,
            "pinned": bool(r["pinned"]), "source_deleted": r["source_deleted_at"] is not None}


def delete(settings: Settings, episode_id: str, hard: bool = False, wait_seconds: float = 15.0) -> dict:
    """Soft delete hides the episode (undo with ``restore``); hard delete removes its rows and files.

    Unfinished jobs of the episode are cancelled first; a hard delete waits for a running
    one to stop so no worker writes into a folder that is being removed.
    """
    with db.session(settings.app_db) as conn:
        _require(conn, episode_id)
        active = [job["id"] for job in db.active_jobs_for_episode(conn, episode_id)]
    for job_id in active:
        with contextlib.suppress(BadInput):   # it may have finished meanwhile
            jobs.cancel(settings, job_id)
    if hard:
        _wait_until_stopped(settings, episode_id, wait_seconds)
        return _delete_hard(settings, episode_id)
    with db.session(settings.app_db) as conn:
        db.set_episode_deleted(conn, episode_id, time.time(), time.time())
    return {"episode_id": episode_id, "deleted": "soft", "cancelled_jobs": active}


def restore(settings: Settings, episode_id: str) -> dict:
    with db.session(settings.app_db) as conn:
        episode = _require(conn, episode_id)
        if episode["deleted_at"] is None:
            raise NotAllowed(f"Episode {episode_id} is not deleted.")
        db.set_episode_deleted(conn, episode_id, None, time.time())
    return summary(settings, episode_id)


def _wait_until_stopped(settings: Settings, episode_id: str, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        with db.session(settings.app_db) as conn:
            running = [j["id"] for j in db.active_jobs_for_episode(conn, episode_id) if j["status"] == "running"]
        if not running:
            return
        if time.monotonic() > deadline:
            raise NotAllowed(f"Job {running[0]} of episode {episode_id} is still stopping; try the delete again"
                           " in a few seconds.")
        time.sleep(0.2)


def _delete_hard(settings: Settings, episode_id: str) -> dict:
    with db.session(settings.app_db) as conn:
        episode = db.get_episode(conn, episode_id)
    folder = storage.episode_dir(settings.data_dir, episode_id)
    trash = storage.trash_path(settings.data_dir, episode_id)
    if folder.exists():
        folder.rename(trash)   # atomic: from here on the files are gone from the episode's view
    with db.session(settings.app_db) as conn, db.transaction(conn):
        db.delete_episode(conn, episode_id)
    storage.remove_tree(trash)
    upload = Path(episode["source_uri"])
    uploads = storage.uploads_dir(settings.data_dir).resolve()
    if episode["source_kind"] == "upload" and upload.resolve().parent.parent == uploads:
        storage.remove_tree(upload.parent)   # an upload that was never ingested
    storage.sweep_trash(settings.data_dir)
    return {"episode_id": episode_id, "deleted": "hard"}


def load_transcript(settings: Settings, episode_id: str) -> dict | None:
    path = storage.transcript_path(settings.data_dir, episode_id)
    return transcript.load(path) if path.exists() else None


def export(settings: Settings, episode_id: str, fmt: str) -> str:
    with db.session(settings.app_db) as conn:
        _require(conn, episode_id)
    doc = load_transcript(settings, episode_id)
    if doc is None:
        raise BadInput(f"Episode {episode_id} has no transcript yet.")
    if fmt not in transcript.FORMATS:
        raise BadInput(f"Unknown format '{fmt}'; use one of {', '.join(transcript.FORMATS)}.")
    return transcript.render(doc, fmt)
