"""The Huey instance and its thin tasks: ``huey_consumer queue_worker.huey``.

Job rows in the app DB are the source of truth; the queue only carries job ids. The
queue has its own SQLite file because Huey takes an exclusive lock on every poll.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from huey import SqliteHuey

from pipeline import db, runner
from pipeline.config import load_settings

settings = load_settings()
settings.data_dir.mkdir(parents=True, exist_ok=True)
huey = SqliteHuey("clipdesk", filename=str(settings.queue_db_path))
log = logging.getLogger("clipdesk.worker")


@huey.task()
def process_job(job_id: int) -> str:
    return runner.run_job(settings, job_id)


def dispatch(job_id: int, priority: int) -> str:
    """Put a job on the queue; returns the Huey task id (kept on the job row)."""
    return process_job(job_id, priority=priority).id


_heartbeat_started = threading.Event()
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


@huey.on_startup()
def start_heartbeat() -> None:
    """One heartbeat thread per consumer process, so the dashboard can tell it is alive."""
    if _heartbeat_started.is_set():
        return
    _heartbeat_started.set()
    threading.Thread(target=_beat, name="clipdesk-heartbeat", daemon=True).start()


def _beat() -> None:
    while True:
        try:
            with db.session(settings.app_db_path) as conn:
                db.worker_heartbeat(conn, WORKER_ID, time.time())
        except Exception:   # a locked DB must not kill the heartbeat; the next beat retries
            log.exception("worker heartbeat failed")
        time.sleep(settings.worker.heartbeat_seconds)


@huey.on_shutdown()
def stop_heartbeat() -> None:
    try:
        with db.session(settings.app_db_path) as conn:
            db.remove_worker(conn, WORKER_ID)
    except Exception:
        log.exception("could not remove worker row")
