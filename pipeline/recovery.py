"""The reaper: puts jobs that lost their worker or their queue task back on the queue.

Huey has no acknowledgement: a task whose consumer is killed (SIGKILL, OOM, power loss)
is simply gone. Job rows are the source of truth, so every consumer, at start and every
``worker.reap_seconds``, compares them with the queue:

- a ``running`` job whose heartbeat is older than ``worker.stale_after_seconds``, or whose
  worker process on this host no longer exists, goes back to ``queued`` and is dispatched
  again; it resumes at the stage it was in (completed stages are checkpointed). A job that
  has lost its worker ``max_attempts`` times fails instead of crashing workers forever;
- a ``queued`` or ``retrying`` job with no task waiting in the queue is dispatched again.
A job dispatched twice still runs once: claiming it (``db.start_job``) is atomic.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

from pipeline import db, webhooks
from pipeline.config import Settings

log = logging.getLogger("clipdesk.recovery")

# (job_id, priority, delay_seconds) -> task id
Schedule = Callable[[int, int, float], str]


def reap(settings: Settings, waiting_job_ids: set[int], schedule: Schedule, now: float | None = None) -> list[int]:
    """Re-dispatch orphaned jobs; ``waiting_job_ids`` are the jobs with a task in the queue. Returns their ids."""
    now = time.time() if now is None else now
    recovered = []
    with db.session(settings.app_db_path) as conn:
        candidates = db.orphan_candidates(conn)
    for job in candidates:
        if job["status"] == "running":
            reason = _lost_worker(settings, job, now)
            if reason is None:
                continue
            if not _requeue_running(settings, job, reason, now):
                continue
        elif job["id"] in waiting_job_ids:
            continue
        delay = max(0.0, (job["next_attempt_at"] or now) - now) if job["status"] == "retrying" else 0.0
        task_id = schedule(job["id"], job["priority"], delay)
        with db.session(settings.app_db_path) as conn:
            db.set_job_task_id(conn, job["id"], task_id)
        recovered.append(job["id"])
    if recovered:
        log.info("reaper re-dispatched jobs %s", recovered)
    return recovered


def _lost_worker(settings: Settings, job, now: float) -> str | None:
    """Why a running job has no live worker, or None if it may still be running."""
    host, _, pid = (job["worker_id"] or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not _process_alive(int(pid)):
        return f"its worker process {pid} has exited"
    age = now - (job["heartbeat_at"] or job["started_at"] or now)
    if age > settings.worker.stale_after_seconds:
        return f"its worker has not been heard from for {age:.0f} s"
    return None


def _requeue_running(settings: Settings, job, reason: str, now: float) -> bool:
    """Move a running job whose worker is gone back to the queue (or fail it); True if it should run again."""
    gave_up = False
    with db.session(settings.app_db_path) as conn, db.transaction(conn):
        current = db.get_job(conn, job["id"])
        if current["status"] != "running" or current["heartbeat_at"] != job["heartbeat_at"]:
            return False   # it moved on while we looked
        stage = current["stage"]
        if current["cancel_requested"]:
            db.finish_job(conn, job["id"], "cancelled", now, "The job was cancelled.", "cancelled")
            db.add_event(conn, job["id"], stage, "cancelled", now, message=f"Cancelled; {reason}.")
            return False
        if current["attempts"] >= current["max_attempts"]:
            message = (f"The worker running this job stopped {current['attempts']} times (last during {stage});"
                       " giving up. Check the worker log for a crash or running out of memory.")
            db.finish_job(conn, job["id"], "failed", now, message, "internal")
            db.add_event(conn, job["id"], stage, "failed", now, message=message)
            db.set_episode_status(conn, job["episode_id"], "failed", now)
            gave_up = True
        else:
            db.return_to_queue(conn, job["id"])
            db.add_event(conn, job["id"], stage, "recovered", now,
                         message=f"Back in the queue because {reason}; it resumes at {stage}.")
    if gave_up:
        webhooks.notify_job_finished(settings, job["id"])   # never raises
    return not gave_up


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
