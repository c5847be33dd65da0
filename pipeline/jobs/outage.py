"""Database outages: a running stage waits for the database instead of failing.

A PostgreSQL server that restarts, or a network that drops for a moment, is not the job's fault. The
runner's writes (claims, progress, checkpoints, events, the next unit on the queue) go through
``retried``: on a transient database error it waits with backoff and tries again, for up to
``worker.db_outage_seconds``; when it gets through, the job's history says so with a
``write_retried`` event. Only an outage longer than that ends the attempt, as a transient error
(the job then retries like any other).

Each action is one short unit of work (a session, often one transaction), so running it again is
safe: every status change is a guarded move that happens once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from pipeline import db
from pipeline.backoff import Backoff
from pipeline.config import Settings

log = logging.getLogger("clipdesk.outage")

WAIT = Backoff(base=0.25, factor=2.0, cap=5.0, spread=(0.8, 1.2))
RETRIED = "write_retried"

T = TypeVar("T")


def retried(settings: Settings, what: str, action: Callable[[], T], job_id: int | None = None,
            stage: str | None = None) -> T:
    """``action()``, again after each transient database error until it succeeds or the outage outlasts
    ``worker.db_outage_seconds``. ``what`` names the write for people ("saving progress")."""
    started = None
    attempt = 0
    last_error = ""
    while True:
        try:
            result = action()
        except Exception as exc:
            if not db.is_transient(exc):
                raise
            now = time.monotonic()
            started = started if started is not None else now
            if now - started >= settings.worker.db_outage_seconds:
                log.error("database unreachable for %.0f s while %s: giving up", now - started, what)
                raise
            last_error = db.error_line(exc)
            log.warning("database unreachable while %s (%s); retrying", what, last_error)
            time.sleep(WAIT.delay(attempt))
            attempt += 1
            continue
        if started is not None and job_id is not None:
            _record(settings, job_id, stage, what, time.monotonic() - started, attempt, last_error)
        return result


def _record(settings: Settings, job_id: int, stage: str | None, what: str, seconds: float, attempts: int,
            error: str) -> None:
    message = (f"The database was unreachable for {seconds:.1f} s ({error}); {what} was retried"
               f" {attempts} time{'s' if attempts != 1 else ''} and went through.")

    def write() -> None:
        with db.session(settings.app_db) as conn:
            db.add_event(conn, job_id, stage, RETRIED, time.time(), message=message)
    retried(settings, "recording the outage", write)

