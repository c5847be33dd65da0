"""Back-pressure: how deep the queue is, and how much automation may still add (``worker.max_queued_jobs``).

A feed backfill can list hundreds of episodes at once; queuing them all would bury an operator's
upload behind days of work and fill the disk with sources. With a limit, feed discoveries wait
(the entries stay unclaimed, so a later check queues them, never twice) while an interactive
submit is always accepted, with a note saying how deep the queue is.
"""

from __future__ import annotations

import time

from pipeline import db
from pipeline.config import Settings
from pipeline.jobs.api import queue_forecast


def depth(settings: Settings) -> int:
    """Jobs waiting to run (queued, or waiting out a retry)."""
    with db.session(settings.app_db) as conn:
        return db.count_waiting_jobs(conn)


def full(settings: Settings, conn) -> bool:
    """Whether automation must wait: ``worker.max_queued_jobs`` jobs (or more) are waiting. Call it in the
    transaction that claims the work, so checks that follow one another each see the jobs the last one added."""
    limit = settings.worker.max_queued_jobs
    return limit > 0 and db.count_waiting_jobs(conn) >= limit


def notice(settings: Settings) -> dict:
    """What a shell tells an operator after a submit: the depth, the limit, and a sentence once the limit is reached."""
    waiting, limit = depth(settings), settings.worker.max_queued_jobs
    message = None
    if limit > 0 and waiting > limit:
        message = (f"Accepted; the queue is deep: {waiting} jobs are waiting (worker.max_queued_jobs is {limit},"
                   " so feeds wait until it drains).")
    elif limit > 0 and waiting == limit:
        message = f"Accepted; the queue is full: {waiting} jobs are waiting, feeds wait until it drains."
    return {"queue_depth": waiting, "max_queued_jobs": limit, "message": message}


def overview(settings: Settings) -> dict:
    """The backlog and its forecast: jobs waiting, the limit, whether feeds are held back, and when the
    last waiting job should be done (from the learned rates and the live workers, as on the Jobs page)."""
    with db.session(settings.app_db) as conn, db.snapshot(conn):
        waiting = db.count_waiting_jobs(conn)
        forecasts = queue_forecast(settings, conn, time.time()) if waiting else {}
    limit = settings.worker.max_queued_jobs
    drains_in = max((done for _, done in forecasts.values()), default=None)
    return {"queue_depth": waiting, "max_queued_jobs": limit, "feeds_held_back": 0 < limit <= waiting,
            "drains_in_seconds": None if drains_in is None else round(drains_in, 1)}
