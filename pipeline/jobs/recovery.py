"""The reaper: puts jobs that lost their worker or their queue task back on the queue.

Huey has no acknowledgement: a task whose consumer is killed (SIGKILL, OOM, power loss)
is simply gone. Job rows are the source of truth, so every consumer, at start and every
``worker.reap_seconds``, compares them with the queue:

- a ``running`` job whose heartbeat is older than ``worker.stale_after_seconds``, or whose
  worker process on this host no longer exists (``workers.lost``, the one liveness rule), goes back to ``queued`` and is dispatched
  again; it resumes at the stage it was in (completed stages are checkpointed). A job that
  has lost its worker ``max_attempts`` times fails instead of crashing workers forever;
- a ``queued`` or ``retrying`` job, or a running one between stages, with no task waiting in
  the queue is dispatched again;
- render units (one per clip) get the same treatment: a running unit whose worker is gone goes
  back to the queue (or fails after ``max_attempts`` lost workers: the job then ends with its
  other clips), and a queued unit without a task is dispatched again.
A job or unit dispatched twice still runs once: claiming it (``db.start_job``,
``db.claim_unit``) is atomic.
"""

from __future__ import annotations

import logging
import time

from pipeline import db
from pipeline.automation import webhooks
from pipeline.config import Settings
from pipeline.jobs import runner, states, workers

log = logging.getLogger("clipdesk.recovery")


def reap(settings: Settings, waiting_job_ids: set[int], waiting_unit_ids: set[int], queue: runner.TaskQueue,
         now: float | None = None) -> list[int]:
    """Re-dispatch orphaned jobs and render units; ``waiting_*_ids`` have a task in the queue.

    Returns the ids of the jobs that were re-dispatched or had a unit re-dispatched."""
    now = time.time() if now is None else now
    recovered = []
    with db.session(settings.app_db) as conn:
        candidates = db.orphan_candidates(conn)
        units = db.unit_orphan_candidates(conn)
    for job in candidates:
        if job["status"] == states.RUNNING and job["worker_id"] is None:   # between units
            if job["active_units"] or job["id"] in waiting_job_ids:
                continue
        elif job["status"] == states.RUNNING:
            reason = workers.lost(settings, job, now)
            if reason is None or not _requeue_running(settings, job, reason, now):
                continue
        elif job["id"] in waiting_job_ids:
            continue
        delay = max(0.0, (job["next_attempt_at"] or now) - now) if job["status"] == states.RETRYING else 0.0
        runner.dispatch_stage(settings, queue, job["id"], job["priority"], delay)
        recovered.append(job["id"])
    for unit in units:
        if unit["status"] == states.RUNNING:
            reason = workers.lost(settings, unit, now)
            if reason is None or not _requeue_unit(settings, unit, reason, now, queue):
                continue
        elif unit["id"] in waiting_unit_ids:
            continue
        runner.dispatch_unit(settings, queue, unit["id"], unit["priority"])
        recovered.append(unit["job_id"])
    if recovered:
        log.info("reaper re-dispatched jobs %s", recovered)
    return recovered


def _requeue_unit(settings: Settings, unit, reason: str, now: float, queue: runner.TaskQueue) -> bool:
    """A clip whose worker is gone renders again, unless it has lost ``max_attempts`` workers."""
    with db.session(settings.app_db) as conn, db.transaction(conn):
        current = db.get_unit(conn, unit["id"])
        if current["status"] != states.RUNNING or current["heartbeat_at"] != unit["heartbeat_at"]:
            return False   # it moved on while we looked
        if current["attempts"] < unit["max_attempts"] and not unit["cancel_requested"]:
            db.return_unit_to_queue(conn, unit["id"])
            db.add_event(conn, unit["job_id"], "render", "recovered", now,
                         message=f"Clip {unit['clip_id']} back in the queue because {reason}.")
            return True
    if unit["cancel_requested"]:
        runner.end_unit(settings, unit["id"], states.CANCELLED, "The job was cancelled.", "cancelled", None, queue)
    else:
        runner.end_unit(settings, unit["id"], states.FAILED,
                        f"The worker rendering clip {unit['clip_id']} stopped {current['attempts']} times; giving up."
                        " Check the worker log for a crash or running out of memory.", "internal", None, queue)
    return False


def _settle_episode(conn, episode_id: str, job_status: str, now: float) -> None:
    """The episode's status after the reaper ended its job, by the rule the runner uses."""
    done = db.completed_stages(conn, episode_id)
    db.set_episode_status(conn, episode_id, states.episode_status_after(job_status, done), now)


def _requeue_running(settings: Settings, job, reason: str, now: float) -> bool:
    """Move a running job whose worker is gone back to the queue (or fail it); True if it should run again."""
    gave_up = False
    with db.session(settings.app_db) as conn, db.transaction(conn):
        current = db.get_job(conn, job["id"])
        if current["status"] != states.RUNNING or current["heartbeat_at"] != job["heartbeat_at"]:
            return False   # it moved on while we looked
        stage = current["stage"]
        if current["cancel_requested"]:
            db.finish_job(conn, job["id"], states.CANCELLED, now, "The job was cancelled.", "cancelled")
            db.add_event(conn, job["id"], stage, "cancelled", now, message=f"Cancelled; {reason}.")
            _settle_episode(conn, job["episode_id"], states.CANCELLED, now)
            return False
        if current["attempts"] >= current["max_attempts"]:
            message = (f"The worker running this job stopped {current['attempts']} times (last during {stage});"
                       " giving up. Check the worker log for a crash or running out of memory.")
            db.finish_job(conn, job["id"], states.FAILED, now, message, "internal")
            db.add_event(conn, job["id"], stage, "failed", now, message=message)
            _settle_episode(conn, job["episode_id"], states.FAILED, now)
            gave_up = True
        else:
            db.return_to_queue(conn, job["id"])
            db.add_event(conn, job["id"], stage, "recovered", now,
                         message=f"Back in the queue because {reason}; it resumes at {stage}.")
    if gave_up:
        webhooks.notify_job_finished(settings, job["id"])   # never raises
    return not gave_up
