"""Job events in id order for the live event stream, and the running jobs' progress beside them.

Rows of ``job_events`` get their ids in commit order (SQLite has one writer at a time; on PostgreSQL
every insert into ``job_events`` holds the write lock, see ``events.add_event``), so "every event
after id N" read again later never skips one and never repeats one.
"""

from __future__ import annotations

import sqlite3

from pipeline.jobs.states import RUNNING


def events_after(conn, after_id: int, job_id: int | None = None, episode_id: str | None = None,
                 limit: int = 500) -> list[sqlite3.Row]:
    """Events with an id above ``after_id`` (optionally of one job or one episode), oldest first,
    with their job's episode and current status and progress. Each filter has its own statement so
    that it seeks its index: (job_id, id) for a job, the episode's jobs for an episode, the id itself
    for everything."""
    select = ("SELECT ev.id, ev.job_id, ev.stage, ev.kind, ev.message, ev.created_at, j.episode_id,"
              " j.status AS job_status, j.progress AS job_progress FROM job_events ev JOIN jobs j ON j.id = ev.job_id")
    if job_id is not None:
        return conn.execute(select + " WHERE ev.job_id = ? AND ev.id > ? ORDER BY ev.id LIMIT ?",
                            (job_id, after_id, limit)).fetchall()
    if episode_id is not None:
        return conn.execute(select + " WHERE ev.job_id IN (SELECT id FROM jobs WHERE episode_id = ?) AND ev.id > ?"
                            " ORDER BY ev.id LIMIT ?", (episode_id, after_id, limit)).fetchall()
    return conn.execute(select + " WHERE ev.id > ? ORDER BY ev.id LIMIT ?", (after_id, limit)).fetchall()


def last_event_id(conn) -> int:
    return conn.execute("SELECT COALESCE(MAX(id), 0) FROM job_events").fetchone()[0]


def running_progress(conn, job_id: int | None = None, episode_id: str | None = None) -> list[sqlite3.Row]:
    """The running jobs (optionally one job, or an episode's) with their stage, progress and ETA."""
    return conn.execute(
        "SELECT id, episode_id, status, stage, progress, eta_seconds FROM jobs"
        " WHERE status = ? AND (? IS NULL OR id = ?) AND (? IS NULL OR episode_id = ?)",
        (RUNNING, job_id, job_id, episode_id, episode_id)).fetchall()
