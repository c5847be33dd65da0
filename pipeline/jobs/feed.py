"""The job event feed behind ``GET /v1/events``: stored events in id order, and live progress.

Each stored event keeps its ``job_events`` row id, so a client that reconnects asking for the
events after the last id it saw misses none and sees none twice. Progress is not stored as
events (it changes many times a second); the stream samples it from the job rows instead.
A stored event's ``progress`` is therefore its job's progress when it is read (1 once the job
succeeded), not a history of it.
"""

from __future__ import annotations

from pipeline import db
from pipeline.config import Settings
from pipeline.jobs import iso, states

# The job status an event announces (stage events happen while the job runs).
_STATUS_OF_KIND = {"queued": states.QUEUED, "retrying": states.RETRYING, "succeeded": states.SUCCEEDED,
                   "failed": states.FAILED, "cancelled": states.CANCELLED}
# What an event is called on the stream: job.<kind>, stage.<kind>, clip.<kind>.
_NAME_OF_KIND = {"started": "stage.started", "finished": "stage.finished", "skipped": "stage.skipped",
                 "fanned_out": "stage.fanned_out", "interrupted": "job.interrupted", "recovered": "job.recovered",
                 "clip_finished": "clip.rendered", "clip_failed": "clip.failed", "clip_cancelled": "clip.cancelled"}


def event_name(kind: str) -> str:
    return _NAME_OF_KIND.get(kind, f"job.{kind}")


def _event(row) -> dict:
    status = _STATUS_OF_KIND.get(row["kind"], states.RUNNING)
    progress = 1.0 if status == states.SUCCEEDED else row["job_progress"]
    return {"id": row["id"], "event": event_name(row["kind"]), "job_id": row["job_id"],
            "episode_id": row["episode_id"], "status": status, "stage": row["stage"], "kind": row["kind"],
            "progress": round(progress, 4), "message": row["message"], "at": iso(row["created_at"])}


def after(settings: Settings, after_id: int, job_id: int | None = None, episode_id: str | None = None,
          limit: int = 500) -> list[dict]:
    """The stored events after ``after_id``, oldest first."""
    with db.session(settings.app_db) as conn:
        return [_event(row) for row in db.events_after(conn, after_id, job_id, episode_id, limit)]


def last_id(settings: Settings) -> int:
    """The newest event's id: where a stream that wants only new events starts."""
    with db.session(settings.app_db) as conn:
        return db.last_event_id(conn)


def progress(settings: Settings, job_id: int | None = None, episode_id: str | None = None) -> list[dict]:
    """The running jobs' progress now (optionally of one job or one episode)."""
    with db.session(settings.app_db) as conn:
        rows = db.running_progress(conn, job_id, episode_id)
    return [{"event": "job.progress", "job_id": r["id"], "episode_id": r["episode_id"], "status": r["status"],
             "stage": r["stage"], "progress": round(r["progress"], 4),
             "eta_seconds": None if r["eta_seconds"] is None else round(r["eta_seconds"], 1)} for r in rows]
