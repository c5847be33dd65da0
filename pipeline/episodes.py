"""Episodes as the summary JSON of DESIGN.md, plus the transcript and export reads."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline import db, storage, transcript
from pipeline.config import Settings
from pipeline.errors import BadInput
from pipeline.jobs import iso


def _require(conn, episode_id: str):
    episode = db.get_episode(conn, episode_id)
    if episode is None:
        raise BadInput(f"There is no episode {episode_id}.")
    return episode


def summary(settings: Settings, episode_id: str) -> dict:
    with db.session(settings.app_db_path) as conn:
        episode = _require(conn, episode_id)
        clips = db.list_clips(conn, episode_id)
        renders = db.list_renders(conn, episode_id)
        jobs = db.jobs_for_episode(conn, episode_id)
    folder = storage.episode_dir(settings.data_dir, episode_id)
    transcript_paths = {fmt: str(path) for fmt in transcript.FORMATS
                        if (path := storage.transcript_path(settings.data_dir, episode_id, fmt)).exists()}
    enrichment = json.loads(episode["enrichment_json"]) if episode["enrichment_json"] else None
    by_clip: dict[str, dict] = {}
    for r in renders:
        by_clip.setdefault(r["clip_id"], {})[r["variant"]] = str(settings.data_dir / r["path"])
    return {
        "episode_id": episode_id,
        "title": episode["title"],
        "duration": episode["duration"],
        "status": episode["status"],
        "source": episode["source_uri"],
        "source_path": str(folder / episode["source_path"]) if episode["source_path"] else None,
        "media": json.loads(episode["media_json"]) if episode["media_json"] else None,
        "language": episode["language"],
        "created_at": iso(episode["created_at"]),
        "job_ids": [j["id"] for j in jobs],
        "transcript": transcript_paths,
        "enrichment": enrichment,
        "clips": [{"clip_id": c["id"], "start": c["start"], "end": c["end"], "score": c["score"],
                   "title": c["title"], "reason": c["reason"], "status": c["status"],
                   "renders": by_clip.get(c["id"], {})} for c in clips],
    }


def list_episodes(settings: Settings, limit: int = 200) -> list[dict]:
    with db.session(settings.app_db_path) as conn:
        rows = db.list_episodes(conn, limit)
    return [{"episode_id": r["id"], "title": r["title"] or Path(r["source_uri"]).name, "status": r["status"],
             "duration": r["duration"], "source": r["source_uri"], "clips": r["clip_count"],
             "created_at": iso(r["created_at"])} for r in rows]


def load_transcript(settings: Settings, episode_id: str) -> dict | None:
    path = storage.transcript_path(settings.data_dir, episode_id)
    return transcript.load(path) if path.exists() else None


def export(settings: Settings, episode_id: str, fmt: str) -> str:
    with db.session(settings.app_db_path) as conn:
        _require(conn, episode_id)
    doc = load_transcript(settings, episode_id)
    if doc is None:
        raise BadInput(f"Episode {episode_id} has no transcript yet.")
    if fmt not in transcript.FORMATS:
        raise BadInput(f"Unknown format '{fmt}'; use one of {', '.join(transcript.FORMATS)}.")
    return transcript.render(doc, fmt)
