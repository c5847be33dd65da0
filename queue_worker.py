"""The Huey instance and its thin tasks: ``huey_consumer queue_worker.huey``.

Job rows in the app DB are the source of truth; the queue only carries job ids. On SQLite
the queue has its own file because Huey takes an exclusive lock on every poll; with ``database.url``
set, Huey's ``PostgresHuey`` keeps it in the same PostgreSQL database (``FOR UPDATE SKIP LOCKED``
claims, ``LISTEN/NOTIFY`` wake-ups), shared by every machine.
Two tasks run the units of a job (``pipeline.jobs.runner``): ``process_job`` runs one stage and
``render_clip`` one clip of the render fan-out; the runner queues what follows through
``HueyQueue``. Reliability lives in ``pipeline.jobs.runner`` (retries, heartbeats) and
``pipeline.jobs.recovery`` (the reaper); this module connects them to Huey:

- ``-w N`` runs N units at once; each gets ``cores // N`` threads (``pipeline.jobs.threads``);
- SIGINT (graceful): running units finish, nothing new starts; the queue keeps the rest;
- SIGTERM (now): ffmpeg children are stopped and running units go back to the queue at once;
- every consumer reaps orphaned jobs at start and every ``worker.reap_seconds``;
- periodic work (reaper, feeds, inbox, webhook sweep, retention) runs on every consumer, on every
  machine, but each round is taken by one consumer at a time (``pipeline.jobs.leases``).
- each consumer writes its temp files in its own scratch folder and, at start, removes those of
  this host's consumers that died (``workers.sweep_scratch``).
"""

from __future__ import annotations

import logging
import threading
import time

from huey import PostgresHuey, SqliteHuey, crontab, signals
from huey.consumer import Consumer

from pipeline import db, media
from pipeline.automation import feeds, inbox, webhooks
from pipeline.config import load_settings
from pipeline.jobs import leases, recovery, runner, workers
from pipeline.ops import retention

settings = load_settings()
settings.data_dir.mkdir(parents=True, exist_ok=True)
log = logging.getLogger("clipdesk.worker")
WORKER_ID = workers.worker_id(settings)


class GracefulConsumer(Consumer):
    """Huey's consumer, telling running units to finish and nothing new to start on SIGINT."""

    def stop(self, graceful=False):
        if graceful:
            runner.STOP_AFTER_STAGE.set()
        super().stop(graceful=graceful)


class _Consumers:
    def create_consumer(self, **options):
        global WORKERS
        WORKERS = options.get("workers", 1)   # tasks at once: each gets cores // WORKERS threads
        for folder in workers.sweep_scratch(settings):   # before any task runs: nothing here is in use
            log.info("removed the scratch folder %s of a worker that is gone", folder)
        return GracefulConsumer(self, **options)


class ClipdeskSqliteHuey(_Consumers, SqliteHuey):
    pass


class ClipdeskPostgresHuey(_Consumers, PostgresHuey):
    pass


# No result store: job and unit rows hold every outcome, and unread results would pile up.
if settings.uses_postgres:   # the queue's tables sit beside the app's, in the one database every machine shares
    huey = ClipdeskPostgresHuey("clipdesk", dsn=settings.database.url, results=False)
else:
    huey = ClipdeskSqliteHuey("clipdesk", filename=str(settings.queue_db_path), results=False)
WORKERS = 1


@huey.task()
def process_job(job_id: int) -> str:
    """One stage of a job (the runner queues the next one)."""
    return runner.run_stage(settings, job_id, QUEUE, WORKER_ID, WORKERS)


@huey.task()
def render_clip(unit_id: int) -> str:
    """One clip of a job's render stage."""
    return runner.run_render_unit(settings, unit_id, QUEUE, WORKER_ID, WORKERS)


class HueyQueue:
    """The runner's ``TaskQueue`` on Huey."""

    def stage(self, job_id: int, priority: int, delay: float = 0.0) -> str:
        return _enqueue(process_job.s(job_id, priority=priority, delay=delay if delay > 0 else None))

    def render_unit(self, unit_id: int, priority: int) -> str:
        return _enqueue(render_clip.s(unit_id, priority=priority))


def _enqueue(task) -> str:
    huey.enqueue(task)   # with results=False it returns nothing; the task knows its id
    return task.id


QUEUE = HueyQueue()


def dispatch(job_id: int, priority: int) -> str:
    """Put a job on the queue; returns the Huey task id (kept on the job row)."""
    return QUEUE.stage(job_id, priority)


@huey.signal(signals.SIGNAL_INTERRUPTED)
def requeue_interrupted(signal, task, *args, **kwargs) -> None:
    """SIGTERM: the consumer exits now. Stop ffmpeg and put the job or clip back, to resume where it was."""
    try:
        runner.ABORT.set()
        media.stop_all()
        if task.name == process_job.task_class.__name__:
            runner.requeue_job(settings, QUEUE, task.args[0], "The worker was stopped; the job resumes where it left off.")
        elif task.name == render_clip.task_class.__name__:
            runner.requeue_unit(settings, QUEUE, task.args[0], "The worker was stopped; the clip renders again.")
    except Exception:   # a raising handler would stop Huey's other handlers
        log.exception("could not requeue interrupted task %s", task.id)


def waiting_ids() -> tuple[set[int], set[int]]:
    """(job ids, render unit ids) that have a task waiting in the queue, now or scheduled."""
    jobs, units = set(), set()
    for task in list(huey.pending()) + list(huey.scheduled()):
        if task.name == process_job.task_class.__name__ and task.args:
            jobs.add(task.args[0])
        elif task.name == render_clip.task_class.__name__ and task.args:
            units.add(task.args[0])
    return jobs, units


def reap() -> list[int] | None:
    """One reaper round, unless another consumer is doing one right now (None)."""
    with leases.Lease(settings, leases.REAPER, WORKER_ID) as taken:
        return recovery.reap(settings, *waiting_ids(), QUEUE) if taken else None


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
    with db.session(settings.app_db) as conn:
        db.worker_heartbeat(conn, WORKER_ID, time.time(), WORKERS)


@huey.on_shutdown()
def stop_heartbeat() -> None:
    try:
        with db.session(settings.app_db) as conn:
            db.remove_worker(conn, WORKER_ID)
    except Exception:
        log.exception("could not remove worker row")


# --- automation (issue 8): followed feeds, the watch folder, webhook retries -------------------

@huey.periodic_task(crontab(minute="*"), priority=200, expires=55)
def automation_tick() -> None:
    """Every minute: check due feeds, scan the inbox, retry pending webhooks; one failing never stops the others.

    A tick that waited longer than 55 s (busy workers) is dropped; the next one does the same work.
    Every consumer's scheduler queues one; while one runs, the others skip theirs (the feeds they would
    check are being checked, and are not due again when they could look).
    """
    with leases.Lease(settings, leases.AUTOMATION, WORKER_ID) as taken:
        if not taken:
            log.info("automation: another consumer is on it; skipped")
            return
        _automation()


def _automation() -> None:
    for name, action in (("feeds", lambda: feeds.check_due(settings, dispatch)),
                         ("inbox", lambda: inbox.scan(settings, dispatch)),
                         ("webhooks", lambda: webhooks.deliver_due(settings))):
        try:
            action()
        except Exception:
            log.exception("automation: %s failed", name)


# --- retention (issue 21): cleanup of old sources, rejected renders, trashed episodes, job events --

@huey.periodic_task(crontab(minute="17"), priority=200, expires=3000)
def retention_tick() -> dict | None:
    """Every hour: apply the retention policy (off while every retention.*_days is 0).

    Safe with several consumers: each deletion re-checks its rule in a write transaction, so a
    second run finds nothing left to do, and an episode with an unfinished job is never touched.
    """
    if not retention.enabled(settings):
        return None
    with leases.Lease(settings, leases.RETENTION, WORKER_ID) as taken:
        if not taken:
            log.info("retention: another consumer is on it; skipped")
            return None
        result = retention.cleanup(settings)
    if result["deleted"]:
        log.info("retention: deleted %d item(s), %d bytes, %d job events", len(result["deleted"]), result["bytes"],
                 result["events"])
    return result
