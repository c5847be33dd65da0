"""Jobs: create episodes and their jobs, read them back as the job JSON of DESIGN.md.

Putting a job on the queue is the caller's ``dispatch(job_id, priority) -> task_id``
(``queue_worker.dispatch`` for the worker), which keeps Huey out of ``pipeline/``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pipeline import db, ingest, storage
from pipeline.config import Settings
from pipeline.errors import BadInput

Dispatch = Callable[[int, int], str]

# Priorities: higher runs first.
PRIORITY_RETRY = 100
PRIORITY_INTERACTIVE = 50
PRIORITY_FEED = 10

FINAL_STATUSES = ("succeeded", "failed", "cancelled")
JOB_STATUSES = ("queued", "running", "retrying") + FINAL_STATUSES


def new_episode_id() -> str:
    return uuid.uuid4().hex[:12]


def safe_filename(name: str) -> str:
    """A file name that cannot escape its folder and survives any filesystem."""
    name = Path(name.replace("\\", "/")).name
    name = re.sub(r"[^\w.\- ]+", "_", name, flags=re.UNICODE).strip(" .")
    return name[:120] or "upload"


def save_upload(settings: Settings, filename: str, data: BinaryIO) -> Path:
    """Stream an uploaded file into ``<data_dir>/uploads/<token>/<name>``."""
    folder = storage.uploads_dir(settings.data_dir) / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    path = folder / safe_filename(filename)
    with open(path, "wb") as out:
        while chunk := data.read(1 << 20):
            out.write(chunk)
    return path


def create(settings: Settings, source: str, title: str = "", priority: int = PRIORITY_INTERACTIVE,
           options: dict | None = None, source_kind: str | None = None) -> tuple[str, int]:
    """Record an episode and its first job (status queued). Returns (episode_id, job_id)."""
    kind = source_kind or ingest.classify_source(source)
    if kind == "path":
        path = Path(source).expanduser()
        if not path.exists():
            raise BadInput(f"File not found: {source}")
        if path.is_dir():
            raise BadInput(f"'{source}' is a folder, not a media file.")
        source = str(path.resolve())
    elif kind == "url" and not re.match(r"^https?://", source, re.IGNORECASE):
        raise BadInput("Only http:// and https:// URLs are accepted.")
    episode_id = new_episode_id()
    with db.session(settings.app_db_path) as conn, db.transaction(conn):
        now = time.time()
        db.insert_episode(conn, episode_id, title.strip(), kind, source, now)
        job_id = db.insert_job(conn, episode_id, priority, json.dumps(options or {}), now)
        db.add_event(conn, job_id, None, "queued", now)
    return episode_id, job_id


def enqueue(settings: Settings, source: str, dispatch: Dispatch, **kwargs) -> tuple[str, int]:
    episode_id, job_id = create(settings, source, **kwargs)
    submit(settings, job_id, dispatch)
    return episode_id, job_id


def submit(settings: Settings, job_id: int, dispatch: Dispatch) -> None:
    with db.session(settings.app_db_path) as conn:
        priority = db.get_job(conn, job_id)["priority"]
    task_id = dispatch(job_id, priority)
    with db.session(settings.app_db_path) as conn:
        db.set_job_task_id(conn, job_id, task_id)


def retry(settings: Settings, job_id: int, dispatch: Dispatch) -> dict:
    """Requeue a failed or cancelled job ahead of routine work; completed stages are kept."""
    with db.session(settings.app_db_path) as conn, db.transaction(conn):
        job = _require(conn, job_id)
        if not db.requeue_job(conn, job_id, PRIORITY_RETRY):
            raise BadInput(f"Job {job_id} is {job['status']}; only failed or cancelled jobs can be retried.")
        db.add_event(conn, job_id, None, "queued", time.time(), message="Manual retry.")
    submit(settings, job_id, dispatch)
    return get(settings, job_id)


def cancel(settings: Settings, job_id: int) -> dict:
    """Cancel a queued job at once, or ask a running one to stop at its next check."""
    with db.session(settings.app_db_path) as conn, db.transaction(conn):
        job = _require(conn, job_id)
        if job["status"] in FINAL_STATUSES:
            raise BadInput(f"Job {job_id} already {job['status']}; there is nothing to cancel.")
        status = db.request_cancel(conn, job_id, time.time())
        if status == "cancelled":
            db.add_event(conn, job_id, job["stage"], "cancelled", time.time(), message="Cancelled before it started.")
    return get(settings, job_id)


def _require(conn, job_id: int):
    job = db.get_job(conn, job_id)
    if job is None:
        raise BadInput(f"There is no job {job_id}.")
    return job


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def display_title(row) -> str:
    """The episode's title, or until it has one the name of the file or URL it came from."""
    return row["episode_title"] or Path(row["episode_source"]).name or row["episode_source"]


def to_json(row) -> dict:
    """A job row from ``db.list_jobs``/``db.get_job_view`` as the job JSON of DESIGN.md."""
    return {
        "job_id": row["id"], "episode_id": row["episode_id"], "status": row["status"],
        "stage": row["stage"], "progress": round(row["progress"], 4),
        "eta_seconds": row["eta_seconds"] if row["status"] == "running" else None,
        "attempts": row["attempts"], "priority": row["priority"], "error": row["error"],
        "error_kind": row["error_kind"], "cancel_requested": bool(row["cancel_requested"]),
        "title": display_title(row),
        "created_at": iso(row["created_at"]), "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]), "heartbeat_at": iso(row["heartbeat_at"]),
    }


def get(settings: Settings, job_id: int) -> dict:
    with db.session(settings.app_db_path) as conn:
        _require(conn, job_id)
        return to_json(db.get_job_view(conn, job_id))


def list_jobs(settings: Settings, status: str | None = None, limit: int = 100) -> list[dict]:
    if status is not None and status not in JOB_STATUSES:
        raise BadInput(f"Unknown status '{status}'; use one of {', '.join(JOB_STATUSES)}.")
    with db.session(settings.app_db_path) as conn:
        return [to_json(row) for row in db.list_jobs(conn, status, limit)]


def events(settings: Settings, job_id: int) -> list[dict]:
    with db.session(settings.app_db_path) as conn:
        return [{"stage": e["stage"], "kind": e["kind"], "message": e["message"], "seconds": e["seconds"],
                 "at": iso(e["created_at"])} for e in db.list_events(conn, job_id)]


def queue_overview(settings: Settings, worker_stale_after: float = 30.0) -> dict:
    """Counts per status and whether a worker has sent a heartbeat recently."""
    with db.session(settings.app_db_path) as conn:
        counts = db.count_jobs_by_status(conn)
        workers = db.list_workers(conn)
    now = time.time()
    alive = [w for w in workers if now - w["heartbeat_at"] <= worker_stale_after]
    return {"counts": {s: counts.get(s, 0) for s in JOB_STATUSES},
            "workers_alive": len(alive),
            "last_heartbeat_age": round(now - workers[0]["heartbeat_at"], 1) if workers else None}
