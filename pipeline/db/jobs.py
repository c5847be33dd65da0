"""Jobs and their render units (one per clip). Every status change is one guarded UPDATE whose
allowed source statuses come from ``pipeline.jobs.states``."""

from __future__ import annotations

import sqlite3

from pipeline.jobs import states
from pipeline.jobs.states import Transition


def _in(statuses: tuple[str, ...]) -> str:
    """Placeholders for ``status IN (...)``; the statuses go in as parameters."""
    return ", ".join("?" * len(statuses))


def _move(conn, table: str, row_id: int, transition: Transition, assignments: str, params: tuple = (),
          guard: str = "", guard_params: tuple = ()) -> bool:
    """The one guarded UPDATE of every status change: it happens only from the transition's sources."""
    cursor = conn.execute(
        f"UPDATE {table} SET status = ?{', ' if assignments else ''}{assignments}"
        f" WHERE id = ? AND status IN ({_in(transition.sources)}){guard}",
        (transition.target, *params, row_id, *transition.sources, *guard_params))
    return cursor.rowcount == 1


def insert_job(conn, episode_id: str, priority: int, options_json: str, now: float, max_attempts: int = 4) -> int:
    cursor = conn.execute("INSERT INTO jobs (episode_id, priority, options_json, created_at, max_attempts)"
                          " VALUES (?, ?, ?, ?, ?) RETURNING id", (episode_id, priority, options_json, now, max_attempts))
    return cursor.fetchone()[0]


def set_job_task_id(conn, job_id: int, task_id: str) -> None:
    conn.execute("UPDATE jobs SET huey_task_id = ? WHERE id = ?", (task_id, job_id))


def get_job(conn, job_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()


_JOB_VIEW = ("SELECT j.*, e.title AS episode_title, e.source_uri AS episode_source, e.duration AS episode_duration"
             " FROM jobs j JOIN episodes e ON e.id = j.episode_id")


def list_jobs(conn, status: str | None = None, limit: int = 100, search: str = "") -> list[sqlite3.Row]:
    """Jobs with their episode's title and source, newest first; ``search`` matches title, source or id."""
    pattern = f"%{search}%" if search else None
    return conn.execute(
        _JOB_VIEW + " WHERE (? IS NULL OR j.status = ?)"
        " AND (? IS NULL OR lower(e.title) LIKE lower(?) OR lower(e.source_uri) LIKE lower(?) OR e.id = ? OR CAST(j.id AS TEXT) = ?)"
        " ORDER BY j.id DESC LIMIT ?",
        (status, status, pattern, pattern, pattern, search, search, limit)).fetchall()


def get_job_view(conn, job_id: int) -> sqlite3.Row | None:
    """One job with its episode's title and source (the shape list_jobs returns)."""
    return conn.execute(_JOB_VIEW + " WHERE j.id = ?", (job_id,)).fetchone()


def jobs_for_episode(conn, episode_id: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM jobs WHERE episode_id = ? ORDER BY id", (episode_id,)).fetchall()


def start_job(conn, job_id: int, now: float, worker_id: str | None = None) -> bool:
    """Claim a job to run its next stage; False when another task has it or it is not runnable.

    Claimable: a queued job, a retrying one whose time has come (both count an attempt), or a
    running one between stages (no worker holds it and no clip is rendering). Only one task can
    win, so a job dispatched twice (say by the reaper and a late original task) still runs once.
    """
    return _move(
        conn, "jobs", job_id, states.CLAIM,
        "attempts = attempts + CASE WHEN status = ? THEN 0 ELSE 1 END, error = NULL, error_kind = NULL, started_at = COALESCE(started_at, ?),"
        " heartbeat_at = ?, finished_at = NULL, next_attempt_at = NULL, worker_id = ?",
        (states.RUNNING, now, now, worker_id),
        " AND cancel_requested = 0 AND (status = ? OR (status = ? AND COALESCE(next_attempt_at, 0) <= ?)"
        "   OR (status = ? AND worker_id IS NULL AND NOT EXISTS ("
        f"      SELECT 1 FROM render_units u WHERE u.job_id = jobs.id AND u.status IN ({_in(states.UNIT_ACTIVE)}))))",
        (states.QUEUED, states.RETRYING, now, states.RUNNING, *states.UNIT_ACTIVE))


def release_job(conn, job_id: int) -> None:
    """A stage ended well: the job stays running, waiting in the queue for its next unit."""
    conn.execute("UPDATE jobs SET worker_id = NULL WHERE id = ? AND status = ?", (job_id, states.RUNNING))


def take_job_after_units(conn, job_id: int, worker_id: str | None, now: float) -> bool:
    """The task that ended a job's last clip unit takes the job over to close its render stage."""
    cursor = conn.execute("UPDATE jobs SET worker_id = ?, heartbeat_at = ? WHERE id = ? AND status = ?"
                          " AND worker_id IS NULL", (worker_id, now, job_id, states.RUNNING))
    return cursor.rowcount == 1


def touch_job(conn, job_id: int, now: float) -> None:
    """The running job's heartbeat: proves its worker is alive even while a stage is silent."""
    conn.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND status = ?", (now, job_id, states.RUNNING))


def schedule_retry(conn, job_id: int, next_attempt_at: float, error: str, error_kind: str) -> bool:
    """A running job's attempt failed for a passing reason: it runs again at ``next_attempt_at``."""
    return _move(conn, "jobs", job_id, states.SCHEDULE_RETRY,
                 "next_attempt_at = ?, error = ?, error_kind = ?, eta_seconds = NULL",
                 (next_attempt_at, error, error_kind))


def return_to_queue(conn, job_id: int) -> bool:
    """A running job goes back to the queue (worker shut down or died); completed stages stay done."""
    return _move(conn, "jobs", job_id, states.REQUEUE, "eta_seconds = NULL, worker_id = NULL")


def orphan_candidates(conn) -> list[sqlite3.Row]:
    """Unfinished jobs, for the reaper to check against workers and the queue."""
    return conn.execute(f"SELECT j.*, (SELECT COUNT(*) FROM render_units u WHERE u.job_id = j.id"
                        f" AND u.status IN ({_in(states.UNIT_ACTIVE)})) AS active_units"
                        f" FROM jobs j WHERE j.status IN ({_in(states.UNFINISHED)})"
                        " ORDER BY j.priority DESC, j.id", (*states.UNIT_ACTIVE, *states.UNFINISHED)).fetchall()


def active_jobs_for_episode(conn, episode_id: str) -> list[sqlite3.Row]:
    return conn.execute(f"SELECT * FROM jobs WHERE episode_id = ? AND status IN ({_in(states.UNFINISHED)})",
                        (episode_id, *states.UNFINISHED)).fetchall()


def last_job_options(conn, episode_id: str) -> str | None:
    row = conn.execute("SELECT options_json FROM jobs WHERE episode_id = ? ORDER BY id DESC LIMIT 1",
                       (episode_id,)).fetchone()
    return row["options_json"] if row else None


def set_job_stage(conn, job_id: int, stage: str, progress: float, now: float) -> None:
    conn.execute("UPDATE jobs SET stage = ?, stage_progress = 0, stage_started_at = ?,"
                 " progress = CASE WHEN progress > ? THEN progress ELSE ? END, heartbeat_at = ? WHERE id = ?",
                 (stage, now, progress, progress, now, job_id))


def set_job_progress(conn, job_id: int, stage_progress: float, progress: float,
                     eta_seconds: float | None, now: float) -> None:
    """Progress never goes backwards: the stored value only grows."""
    conn.execute("UPDATE jobs SET stage_progress = ?, progress = CASE WHEN progress > ? THEN progress ELSE ? END,"
                 " eta_seconds = ?, heartbeat_at = ? WHERE id = ?",
                 (stage_progress, progress, progress, eta_seconds, now, job_id))


def finish_job(conn, job_id: int, status: str, now: float, error: str | None = None,
               error_kind: str | None = None) -> bool:
    """End a job as succeeded, failed or cancelled (``states.ending``); False if its status does not allow it."""
    return _move(conn, "jobs", job_id, states.ending(status),
                 "error = ?, error_kind = ?, finished_at = ?, eta_seconds = NULL,"
                 " progress = CASE WHEN ? THEN 1.0 ELSE progress END",
                 (error, error_kind, now, status == states.SUCCEEDED))


def requeue_job(conn, job_id: int, priority: int, more_attempts: int) -> bool:
    """Put a failed, cancelled or waiting-to-retry job back in the queue now (manual retry).

    Attempts keep counting (the history stays visible) and it gets ``more_attempts`` fresh ones.
    """
    return _move(conn, "jobs", job_id, states.RETRY_NOW,
                 "cancel_requested = 0, error = NULL, error_kind = NULL, max_attempts = attempts + ?,"
                 " finished_at = NULL, eta_seconds = NULL, next_attempt_at = NULL, priority = ?",
                 (more_attempts, priority))


def request_cancel(conn, job_id: int, now: float) -> str | None:
    """Flag a job for cancellation. A job no task is working on (queued, waiting to retry, or
    between stages with no clip rendering) is cancelled at once, with its queued clip units.
    Returns the new status."""
    conn.execute("UPDATE render_units SET status = ?, finished_at = ? WHERE job_id = ? AND status = ?",
                 (states.UNIT_CANCEL.target, now, job_id, states.QUEUED))   # running clips stop at their next check
    _move(conn, "jobs", job_id, states.CANCEL, "cancel_requested = 1, finished_at = ?, eta_seconds = NULL", (now,),
          " AND (status != ? OR (worker_id IS NULL AND NOT EXISTS ("
          "  SELECT 1 FROM render_units u WHERE u.job_id = jobs.id AND u.status = ?)))",
          (states.RUNNING, states.RUNNING))
    conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status = ?", (job_id, states.RUNNING))
    row = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return row["status"] if row else None


def is_cancel_requested(conn, job_id: int) -> bool:
    row = conn.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return bool(row and row["cancel_requested"])


def unfinished_jobs(conn) -> list[sqlite3.Row]:
    """Queued, running and retrying jobs in queue order, with what their forecast needs."""
    return conn.execute(
        f"SELECT j.id, j.status, j.priority, j.stage, j.stage_started_at, j.stage_progress, j.eta_seconds,"
        " j.next_attempt_at, j.options_json, e.duration,"
        " (SELECT SUM(c.\"end\" - c.start) FROM clips c WHERE c.episode_id = j.episode_id AND c.status != 'rejected')"
        "   AS clip_seconds,"
        " (SELECT COUNT(*) FROM clips c WHERE c.episode_id = j.episode_id AND c.status != 'rejected') AS clip_count,"
        " (SELECT string_agg(stage, ',') FROM stage_checkpoints s WHERE s.episode_id = j.episode_id) AS done_stages"
        " FROM jobs j JOIN episodes e ON e.id = j.episode_id"
        f" WHERE j.status IN ({_in(states.UNFINISHED)}) ORDER BY j.priority DESC, j.id", states.UNFINISHED).fetchall()


def replace_units(conn, job_id: int, clips: list[tuple[str, float]], priority: int, now: float) -> list[int]:
    """Start a fan-out: drop the job's ended units of earlier attempts, add one queued unit per
    (clip_id, clip_seconds). Returns the new unit ids."""
    conn.execute(f"DELETE FROM render_units WHERE job_id = ? AND status NOT IN ({_in(states.UNIT_ACTIVE)})",
                 (job_id, *states.UNIT_ACTIVE))
    return [conn.execute("INSERT INTO render_units (job_id, clip_id, priority, clip_seconds, created_at)"
                         " VALUES (?, ?, ?, ?, ?) RETURNING id", (job_id, clip_id, priority, seconds, now)).fetchone()[0]
            for clip_id, seconds in clips]


def set_unit_task_id(conn, unit_id: int, task_id: str) -> None:
    conn.execute("UPDATE render_units SET huey_task_id = ? WHERE id = ?", (task_id, unit_id))


def get_unit(conn, unit_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM render_units WHERE id = ?", (unit_id,)).fetchone()


def list_units(conn, job_id: int) -> list[sqlite3.Row]:
    return conn.execute("SELECT u.*, c.title AS clip_title FROM render_units u JOIN clips c ON c.id = u.clip_id"
                        " WHERE u.job_id = ? ORDER BY u.id", (job_id,)).fetchall()


def claim_unit(conn, unit_id: int, worker_id: str | None, now: float) -> bool:
    return _move(conn, "render_units", unit_id, states.UNIT_CLAIM,
                 "attempts = attempts + 1, worker_id = ?, started_at = ?, heartbeat_at = ?, progress = 0",
                 (worker_id, now, now))


def touch_unit(conn, unit_id: int, now: float) -> None:
    conn.execute("UPDATE render_units SET heartbeat_at = ? WHERE id = ? AND status = ?",
                 (now, unit_id, states.RUNNING))


def set_unit_progress(conn, unit_id: int, progress: float, now: float) -> None:
    conn.execute("UPDATE render_units SET progress = ?, heartbeat_at = ? WHERE id = ?", (progress, now, unit_id))


def end_unit(conn, unit_id: int, status: str, now: float, error: str | None = None,
             error_kind: str | None = None) -> bool:
    """End a render unit as done, failed or cancelled (``states.unit_ending``)."""
    return _move(conn, "render_units", unit_id, states.unit_ending(status),
                 "error = ?, error_kind = ?, finished_at = ?, worker_id = NULL,"
                 " progress = CASE WHEN ? THEN 1.0 ELSE progress END",
                 (error, error_kind, now, status == states.DONE))


def return_unit_to_queue(conn, unit_id: int) -> bool:
    return _move(conn, "render_units", unit_id, states.UNIT_REQUEUE, "worker_id = NULL")


def active_unit_count(conn, job_id: int) -> int:
    return conn.execute(f"SELECT COUNT(*) FROM render_units WHERE job_id = ? AND status IN ({_in(states.UNIT_ACTIVE)})",
                        (job_id, *states.UNIT_ACTIVE)).fetchone()[0]


def units_progress(conn, job_id: int) -> float:
    """The job's render progress: its units' progress weighted by clip length."""
    row = conn.execute("SELECT SUM(CASE WHEN status = ? THEN 1.0 ELSE progress END * clip_seconds)"
                       " / SUM(clip_seconds) FROM render_units WHERE job_id = ?", (states.DONE, job_id)).fetchone()
    return row[0] or 0.0


def unit_orphan_candidates(conn) -> list[sqlite3.Row]:
    return conn.execute("SELECT u.*, j.max_attempts, j.cancel_requested FROM render_units u"
                        f" JOIN jobs j ON j.id = u.job_id WHERE u.status IN ({_in(states.UNIT_ACTIVE)})"
                        " ORDER BY u.priority DESC, u.id", states.UNIT_ACTIVE).fetchall()



def count_waiting_jobs(conn) -> int:
    """Jobs queued or waiting out a retry: the depth back-pressure compares with ``worker.max_queued_jobs``."""
    return conn.execute(f"SELECT COUNT(*) FROM jobs WHERE status IN ({_in(states.WAITING)})",
                        states.WAITING).fetchone()[0]


def page_jobs(conn, status: str | None = None, stage: str | None = None, episode_id: str | None = None,
              search: str = "", created_since: float | None = None, before_id: int | None = None,
              limit: int = 100) -> list[sqlite3.Row]:
    """One page of jobs, newest first, filtered; the next page continues ``before_id`` the last one's id
    (a cursor: jobs added meanwhile shift nothing)."""
    pattern = f"%{search}%" if search else None
    return conn.execute(
        _JOB_VIEW + " WHERE (? IS NULL OR j.status = ?) AND (? IS NULL OR j.stage = ?)"
        " AND (? IS NULL OR j.episode_id = ?) AND (? IS NULL OR j.created_at >= ?) AND (? IS NULL OR j.id < ?)"
        " AND (? IS NULL OR lower(e.title) LIKE lower(?) OR lower(e.source_uri) LIKE lower(?) OR e.id = ? OR CAST(j.id AS TEXT) = ?)"
        " ORDER BY j.id DESC LIMIT ?",
        (status, status, stage, stage, episode_id, episode_id, created_since, created_since, before_id, before_id,
         pattern, pattern, pattern, search, search, limit)).fetchall()
