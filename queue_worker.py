"""The Huey instance and its thin tasks: ``huey_consumer queue_worker.huey``.

Job rows in the app DB are the source of truth; the queue only carries job ids. The
queue has its own SQLite file because Huey takes an exclusive lock on every poll.
Reliability lives in ``pipeline.runner`` (retries, heartbeats) and ``pipeline.recovery``
(the reaper); this module connects them to Huey:

- a job that ends an attempt as ``retrying`` is scheduled again after its backoff delay;
- SIGINT (graceful): running jobs stop after their current stage and go back to the queue;
- SIGTERM (now): ffmpeg children are stopped and running jobs go back to the queue at once;
- every consumer reaps orphaned jobs at start and every ``worker.reap_seconds``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from huey import SqliteHuey, crontab, signals
from huey.consumer import Consumer

from pipeline import db, feeds, inbox, media, recovery, runner, webhooks
from pipeline.config import load_settings

settings = load_settings()
settings.data_dir.mkdir(parents=True, exist_ok=True)
log = logging.getLogger("clipdesk.worker")
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


class GracefulConsumer(Consumer):
    """Huey's consumer, telling running jobs to stop at the next stage boundary on SIGINT."""

    def stop(self, graceful=False):
        if graceful:
            runner.STOP_AFTER_STAGE.set()
        super().stop(graceful=graceful)


class ClipdeskHuey(SqliteHuey):
    def create_consumer(self, **options):
        return GracefulConsumer(self, **options)


huey = ClipdeskHuey("clipdesk", filename=str(settings.queue_db_path))


@huey.task()
def process_job(job_id: int) -> str:
    status = runner.run_job(settings, job_id, WORKER_ID)
    if status in ("retrying", "queued"):   # a backoff wait, or interrupted by a graceful shutdown
        _schedule_saved(job_id)
    return status


def dispatch(job_id: int, priority: int) -> str:
    """Put a job on the queue; returns the Huey task id (kept on the job row)."""
    return process_job(job_id, priority=priority).id


def schedule(job_id: int, priority: int, delay: float) -> str:
    """Put a job on the queue to run after ``delay`` seconds (retries, recovered jobs)."""
    if delay <= 0:
        return dispatch(job_id, priority)
    return process_job.schedule((job_id,), delay=delay, priority=priority).id


def _schedule_saved(job_id: int) -> None:
    with db.session(settings.app_db_path) as conn:
        job = db.get_job(conn, job_id)
    delay = max(0.0, (job["next_attempt_at"] or 0) - time.time())
    task_id = schedule(job_id, job["priority"], delay)
    with db.session(settings.app_db_path) as conn:
        db.set_job_task_id(conn, job_id, task_id)


@huey.signal(signals.SIGNAL_INTERRUPTED)
def requeue_interrupted(signal, task, *args, **kwargs) -> None:
    """SIGTERM: the consumer exits now. Stop ffmpeg and put the job back, to resume at its stage."""
    try:
        runner.ABORT.set()
        media.stop_all()
        if task.name != process_job.task_class.__name__:
            return
        job_id = task.args[0]
        with db.session(settings.app_db_path) as conn, db.transaction(conn):
            if db.return_to_queue(conn, job_id):
                db.add_event(conn, job_id, None, "interrupted", time.time(),
                             message="The worker was stopped; the job resumes where it left off.")
        _schedule_saved(job_id)
    except Exception:   # a raising handler would stop Huey's other handlers
        log.exception("could not requeue interrupted task %s", task.id)


def waiting_job_ids() -> set[int]:
    """Jobs that have a task waiting in the queue, now or scheduled."""
    name = process_job.task_class.__name__
    tasks = list(huey.pending()) + list(huey.scheduled())
    return {task.args[0] for task in tasks if task.name == name and task.args}


def reap() -> list[int]:
    return recovery.reap(settings, waiting_job_ids(), schedule)


_threads_started = threading.Event()


@huey.on_startup()
def start_background_threads() -> None:
    """Once per consumer process: the worker heartbeat and the reaper."""
    if _threads_started.is_set():
        return
    _threads_started.set()
    threading.Thread(target=_every, args=(settings.worker.heartbeat_seconds, _beat),
                     name="clipdesk-heartbeat", daemon=True).start()
    threading.Thread(target=_every, args=(settings.worker.reap_seconds, reap),
                     name="clipdesk-reaper", daemon=True).start()


def _every(seconds: float, action) -> None:
    while True:
        try:
            action()
        except Exception:   # a locked DB must not end the loop; the next round retries
            log.exception("%s failed", action.__name__)
        time.sleep(seconds)


def _beat() -> None:
    with db.session(settings.app_db_path) as conn:
        db.worker_heartbeat(conn, WORKER_ID, time.time())


@huey.on_shutdown()
def stop_heartbeat() -> None:
    try:
        with db.session(settings.app_db_path) as conn:
            db.remove_worker(conn, WORKER_ID)
    except Exception:
        log.exception("could not remove worker row")


# --- automation (issue 8): followed feeds, the watch folder, webhook retries -------------------

@huey.periodic_task(crontab(minute="*"), priority=200, expires=55)
def automation_tick() -> None:
    """Every minute: check due feeds, scan the inbox, retry pending webhooks; one failing never stops the others.

    A tick that waited longer than 55 s (busy workers) is dropped; the next one does the same work.
    """
    for name, action in (("feeds", lambda: feeds.check_due(settings, dispatch)),
                         ("inbox", lambda: inbox.scan(settings, dispatch)),
                         ("webhooks", lambda: webhooks.deliver_due(settings))):
        try:
            action()
        except Exception:
            log.exception("automation: %s failed", name)
