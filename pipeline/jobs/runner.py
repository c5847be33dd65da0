"""Run jobs as separately queued units: one task per stage, and one task per clip for render.

A job's task claims the job, runs its next stage not yet completed, and queues the task of
the stage after it, so with ``-w N`` one episode's transcription overlaps another's
rendering. The render stage fans out: one render unit per pending clip, all queued at once,
so clips render in parallel; the unit that ends last closes the stage and queues the next.
Stage completion is checkpointed per episode, so a retried or resumed job continues at the
stage that failed, and a re-run render only renders the clips still missing.

The Huey tasks (``queue_worker``) and ``python -m pipeline run`` (a ``LocalQueue`` that runs
the same units in this process) both call ``run_stage`` / ``run_render_unit``. Errors map to
job states: BadInput -> failed at once; TransientError (and a locked database, a full disk)
-> retrying with exponential backoff until ``worker.max_attempts``; Cancelled -> cancelled;
Interrupted (worker shutting down) -> back to the queue; anything else -> failed with a
sentence naming the stage. A failed clip fails the job once its other clips have ended (the
rendered ones are kept for the retry). While a unit runs, a heartbeat thread stamps its row
so the reaper (``pipeline.jobs.recovery``) can tell a live unit from one whose worker died.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Protocol

from pipeline import db, storage
from pipeline.automation import webhooks
from pipeline.backoff import Backoff
from pipeline.config import Settings
from pipeline.errors import BadInput, Cancelled, Interrupted, PipelineError, TransientError
from pipeline.jobs import outage, states, threads, workers
from pipeline.jobs.progress import DEFAULT_MEDIA_SECONDS, Plan, plan_for
from pipeline.jobs.reporter import JobReporter, UnitReporter
from pipeline.jobs.states import stages_for
from pipeline.stages import registry, render
from pipeline.stages.context import StageContext

log = logging.getLogger("clipdesk.runner")

MB = 1 << 20
# The units of a job that has started go ahead of jobs not started yet at the same priority,
# so episodes finish one after another instead of all at the end.
CONTINUE_BOOST = 1

# Set by the worker on a graceful shutdown (SIGINT): running units finish, nothing new starts.
STOP_AFTER_STAGE = threading.Event()
# Set by the worker when it must exit now (SIGTERM): whatever a stage raises, the job goes back to the queue.
ABORT = threading.Event()


class TaskQueue(Protocol):
    """Where the runner puts the units that follow; each call returns the task id."""

    def stage(self, job_id: int, priority: int, delay: float = 0.0) -> str: ...

    def render_unit(self, unit_id: int, priority: int) -> str: ...


# --- one stage of a job -------------------------------------------------------------------------

def run_stage(settings: Settings, job_id: int, queue: TaskQueue, worker_id: str | None = None,
              worker_count: int = 1) -> str:
    """Claim the job, run its next stage, queue what follows; return the job's status.

    'running' (its next unit is queued), 'succeeded', 'failed', 'cancelled', 'retrying'
    (scheduled again: see ``next_attempt_at``), 'queued' (interrupted by a shutdown) or, when
    this call could not claim it, its current status.
    """
    worker_id = worker_id or workers.worker_id(settings)
    cpu_share = threads.machine_share(worker_count)
    def claim():
        with db.session(settings.app_db) as conn, db.transaction(conn):
            before = db.get_job(conn, job_id)
            if before is None:
                log.warning("job %s does not exist; nothing to run", job_id)
                return "missing", None, None, None
            if not db.start_job(conn, job_id, time.time(), worker_id):
                if before["cancel_requested"] and before["status"] in states.WAITING:   # flagged while it waited
                    db.finish_job(conn, job_id, states.CANCELLED, time.time(), "The job was cancelled.", "cancelled")
                return db.get_job(conn, job_id)["status"], None, None, None
            job = db.get_job(conn, job_id)
            db.set_episode_status(conn, job["episode_id"], "processing", time.time())
            return None, before, job, db.completed_stages(conn, job["episode_id"])

    unclaimed, before, job, done = outage.retried(settings, "claiming the job", claim, job_id)
    if unclaimed:
        return unclaimed
    plan = outage.retried(settings, "planning the job", lambda: _plan(settings, job, cpu_share), job_id)

    options = json.loads(job["options_json"] or "{}")
    stages = stages_for(options)
    todo = [stage for stage in stages if stage not in done]
    if not todo:
        return _finish(settings, job_id, job["episode_id"], None, states.SUCCEEDED, None, None)
    stage = todo[0]
    reporter = JobReporter(settings, job_id, plan)
    ctx = StageContext(threads.for_task(settings, worker_count), job["episode_id"], options, reporter)
    with workers.Heartbeat(settings, f"job-{job_id}", lambda conn, now: db.touch_job(conn, job_id, now)):
        try:
            if before["status"] != states.RUNNING:   # a new attempt: say what it keeps from earlier ones
                for skipped in stages[:stages.index(stage)]:
                    _event(settings, job_id, skipped, "skipped", "Already completed in an earlier attempt.")
            reporter.check_cancel()
            if STOP_AFTER_STAGE.is_set():
                raise Interrupted(f"The worker is shutting down; the job will resume at {registry.LABELS[stage]}.")
            _require_free_disk(settings, ctx, stage)
            reporter.enter(stage)
            if stage == "render" and (pending := render.pending(ctx)):
                _fan_out(settings, job, pending, queue)
                return states.RUNNING
            registry.RUN[stage](ctx)
            _stage_done(settings, job_id, job["episode_id"], stage, reporter.elapsed(), cpu_share)
        except Exception as exc:   # every failure ends the attempt with a sentence; the worker keeps running
            return _end_attempt(settings, job, stage, exc, queue)
    return _continue(settings, job, stage, stages, queue)


def job_plan(settings: Settings, conn, job, cpu_share: float) -> Plan:
    """What the job's stages should take on this machine with ``cpu_share`` of it, from the learned rates."""
    episode = db.get_episode(conn, job["episode_id"])
    clip_seconds, clip_count = db.clip_totals(conn, job["episode_id"])
    slots = workers.liveness(settings, conn, time.time())["threads_alive"]
    media_seconds = episode["duration"] or db.typical_media_seconds(conn) or DEFAULT_MEDIA_SECONDS   # before ingest
    return plan_for(settings.enrich, json.loads(job["options_json"] or "{}"), db.stage_rates(conn, settings.worker.host_id),
                    media_seconds, clip_seconds if clip_count else None, clip_count, slots, cpu_share)


def _plan(settings: Settings, job, cpu_share: float) -> Plan:
    with db.session(settings.app_db) as conn:   # outside the claim: it holds the write lock
        return job_plan(settings, conn, job, cpu_share)


def _stage_done(settings: Settings, job_id: int, episode_id: str, stage: str, seconds: float,
                cpu_share: float | None) -> None:
    def write():
        with db.session(settings.app_db) as conn, db.transaction(conn):
            media_seconds = db.get_episode(conn, episode_id)["duration"]   # known after ingest (decoding may correct it)
            db.mark_stage_done(conn, episode_id, stage, time.time())
            db.add_event(conn, job_id, stage, "finished", time.time(), seconds=round(seconds, 3),
                         media_seconds=media_seconds, host=settings.worker.host_id, cpu_share=cpu_share)
    outage.retried(settings, "saving the stage's checkpoint", write, job_id, stage)


def _continue(settings: Settings, job, stage: str, stages: tuple[str, ...], queue: TaskQueue) -> str:
    """After a stage: queue the next one, or finish the job after its last."""
    if stage == stages[-1]:
        return _finish(settings, job["id"], job["episode_id"], None, states.SUCCEEDED, None, None)
    def release():
        with db.session(settings.app_db) as conn:
            db.release_job(conn, job["id"])
    outage.retried(settings, "releasing the job", release, job["id"], stage)
    dispatch_stage(settings, queue, job["id"], job["priority"] + CONTINUE_BOOST)
    return states.RUNNING


def dispatch_stage(settings: Settings, queue: TaskQueue, job_id: int, priority: int, delay: float = 0.0) -> None:
    task_id = outage.retried(settings, "queueing the next stage", lambda: queue.stage(job_id, priority, delay), job_id)

    def remember():
        with db.session(settings.app_db) as conn:
            db.set_job_task_id(conn, job_id, task_id)
    outage.retried(settings, "saving the task id", remember, job_id)


def dispatch_unit(settings: Settings, queue: TaskQueue, unit_id: int, priority: int) -> None:
    task_id = outage.retried(settings, "queueing a clip", lambda: queue.render_unit(unit_id, priority))

    def remember():
        with db.session(settings.app_db) as conn:
            db.set_unit_task_id(conn, unit_id, task_id)
    outage.retried(settings, "saving the task id", remember)


# --- the render fan-out: one unit per clip -------------------------------------------------------

def _fan_out(settings: Settings, job, pending: list, queue: TaskQueue) -> None:
    """Queue one render unit per pending clip; the job waits, held by no worker, until they end."""
    priority = job["priority"] + CONTINUE_BOOST
    def write() -> list[int]:
        with db.session(settings.app_db) as conn, db.transaction(conn):
            unit_ids = db.replace_units(conn, job["id"], [(c["id"], c["end"] - c["start"]) for c in pending],
                                        priority, time.time())
            db.release_job(conn, job["id"])
            db.add_event(conn, job["id"], "render", "fanned_out", time.time(),
                         message=f"{len(unit_ids)} clip(s) queued to render, in parallel on free workers.")
            return unit_ids
    unit_ids = outage.retried(settings, "queueing the clips", write, job["id"], "render")
    for unit_id in unit_ids:
        dispatch_unit(settings, queue, unit_id, priority)


def run_render_unit(settings: Settings, unit_id: int, queue: TaskQueue, worker_id: str | None = None,
                    worker_count: int = 1) -> str:
    """Render one clip of a job's render stage; the unit that ends last closes the stage.

    Returns the unit's status: 'done', 'failed', 'cancelled', 'queued' (interrupted) or, when
    this call could not claim it, its current status.
    """
    worker_id = worker_id or workers.worker_id(settings)
    cpu_share = threads.machine_share(worker_count)
    def claim():
        with db.session(settings.app_db) as conn, db.transaction(conn):
            unit = db.get_unit(conn, unit_id)
            if unit is None:
                return "missing", None, None
            job = db.get_job(conn, unit["job_id"])
            if not db.claim_unit(conn, unit_id, worker_id, time.time()):
                return unit["status"], None, None
            return None, job, db.get_clip(conn, unit["clip_id"])

    unclaimed, job, clip = outage.retried(settings, "claiming the clip", claim)
    if unclaimed:
        return unclaimed

    def prepare() -> UnitReporter:
        with db.session(settings.app_db) as conn:
            return UnitReporter(settings, conn, job, job_plan(settings, conn, job, cpu_share), unit_id, cpu_share)
    reporter = outage.retried(settings, "planning the clip", prepare, job["id"], "render")
    options = json.loads(job["options_json"] or "{}")
    ctx = StageContext(threads.for_task(settings, worker_count), job["episode_id"], options, reporter)
    started = time.monotonic()
    with workers.Heartbeat(settings, f"unit-{unit_id}", lambda conn, now: db.touch_unit(conn, unit_id, now)):
        try:
            reporter.check_cancel()
            if STOP_AFTER_STAGE.is_set():
                raise Interrupted("The worker is shutting down; the clip renders on the next start.")
            _require_free_disk(settings, ctx, "render")
            render.render_one(ctx, clip, reporter)
            ending = (states.DONE, None, None)
        except Exception as exc:
            if ABORT.is_set() or isinstance(exc, Interrupted):
                requeue_unit(settings, queue, unit_id, f"Clip '{clip['title']}' was interrupted: {exc}")
                return states.QUEUED
            status, message, kind = _outcome(exc, job["id"], "render")
            ending = (status, f"Clip '{clip['title']}': {message}", kind)
    end_unit(settings, unit_id, *ending, seconds=time.monotonic() - started, queue=queue, worker_id=worker_id,
             reporter=reporter)
    return ending[0]


def requeue_job(settings: Settings, queue: TaskQueue, job_id: int, message: str, stage: str | None = None) -> bool:
    """The one path of an interrupted job (its worker is stopping): back to the queue, to resume at
    the stage it was in. False if it was no longer running (the reaper or a cancel got there first)."""
    def write():
        with db.session(settings.app_db) as conn, db.transaction(conn):
            job = db.get_job(conn, job_id)
            if job is None or not db.return_to_queue(conn, job_id):
                return None
            db.add_event(conn, job_id, stage or job["stage"], "interrupted", time.time(), message=message)
            return job
    if (job := outage.retried(settings, "putting the job back", write, job_id)) is None:
        return False
    dispatch_stage(settings, queue, job_id, job["priority"])
    log.info("job %s interrupted; back in the queue: %s", job_id, message)
    return True


def requeue_unit(settings: Settings, queue: TaskQueue, unit_id: int, message: str) -> bool:
    """The one path of an interrupted clip (its worker is stopping): back to the queue, to render again."""
    def write():
        with db.session(settings.app_db) as conn, db.transaction(conn):
            unit = db.get_unit(conn, unit_id)
            if unit is None or not db.return_unit_to_queue(conn, unit_id):
                return None
            db.add_event(conn, unit["job_id"], "render", "interrupted", time.time(), message=message)
            return unit
    if (unit := outage.retried(settings, "putting the clip back", write)) is None:
        return False
    dispatch_unit(settings, queue, unit_id, unit["priority"])
    return True


def end_unit(settings: Settings, unit_id: int, status: str, error: str | None, error_kind: str | None,
             seconds: float | None, queue: TaskQueue, worker_id: str | None = None,
             reporter: UnitReporter | None = None) -> None:
    """Record how a render unit ended; if it was the job's last one, close the render stage.

    ``reporter`` is the unit's own (None when the reaper ends a unit whose worker is gone)."""
    worker_id = worker_id or workers.worker_id(settings)
    now = time.time()

    def write():
        with db.session(settings.app_db) as conn, db.transaction(conn):
            unit = db.get_unit(conn, unit_id)
            if not db.end_unit(conn, unit_id, status, now, error, error_kind):
                return False, None   # no longer running: the reaper put it back or ended it
            if status == states.DONE:
                db.add_event(conn, unit["job_id"], "render", "clip_finished", now, seconds=round(seconds or 0.0, 3),
                             media_seconds=unit["clip_seconds"], host=settings.worker.host_id,
                             cpu_share=reporter.cpu_share if reporter else None,
                             message=f"Clip {unit['clip_id']} rendered in {seconds or 0.0:.1f} s.")
            else:
                db.add_event(conn, unit["job_id"], "render", f"clip_{status}", now, message=error)
            job = db.get_job(conn, unit["job_id"])
            if status == states.DONE and reporter:
                reporter.update_job(conn, now)
            last = (db.active_unit_count(conn, job["id"]) == 0
                    and db.take_job_after_units(conn, job["id"], worker_id, now))
            return last, db.get_job(conn, job["id"])
    last, job = outage.retried(settings, "saving the clip's outcome", write)
    if last:
        _close_render(settings, job, queue)


def _close_render(settings: Settings, job, queue: TaskQueue) -> str:
    """All units of the fan-out ended: the render stage is done, failed or cancelled."""
    def read():
        with db.session(settings.app_db) as conn:
            return db.list_units(conn, job["id"])
    units = outage.retried(settings, "reading the clips", read, job["id"], "render")
    started_at = job["stage_started_at"] or time.time()
    ended = {u["status"] for u in units}
    if job["cancel_requested"] or states.CANCELLED in ended:
        return _finish(settings, job["id"], job["episode_id"], "render", states.CANCELLED, "The job was cancelled.",
                       "cancelled")
    failed = [u for u in units if u["status"] == states.FAILED]
    if failed:
        return _conclude(settings, job, "render", states.FAILED, failed[0]["error"], failed[0]["error_kind"], queue)
    _stage_done(settings, job["id"], job["episode_id"], "render", time.time() - started_at, None)
    return _continue(settings, job, "render", stages_for(json.loads(job["options_json"] or "{}")), queue)


# --- running a whole job in this process ---------------------------------------------------------

class LocalQueue:
    """A queue that runs units in this process, one after another, best priority first
    (``python -m pipeline run`` and tests: the same units the worker runs)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.tasks: list[tuple[float, int, int, str, int]] = []   # (ready_at, -priority, seq, kind, id)
        self.seq = 0

    def stage(self, job_id: int, priority: int, delay: float = 0.0) -> str:
        return self._put("stage", job_id, priority, delay)

    def render_unit(self, unit_id: int, priority: int) -> str:
        return self._put("unit", unit_id, priority, 0.0)

    def _put(self, kind: str, ident: int, priority: int, delay: float) -> str:
        self.seq += 1
        self.tasks.append((time.time() + delay, -priority, self.seq, kind, ident))
        return f"local-{os.getpid()}-{self.seq}"

    def drain(self, wait: bool) -> None:
        """Run the queued units; with ``wait`` also those scheduled later (retry backoffs)."""
        while self.tasks:
            now = time.time()
            ready = [task for task in self.tasks if task[0] <= now]
            if not ready:
                if not wait:
                    return
                time.sleep(max(0.0, min(task[0] for task in self.tasks) - now))
                continue
            task = min(ready, key=lambda t: (t[1], t[2]))
            self.tasks.remove(task)
            if task[3] == "stage":
                run_stage(self.settings, task[4], self)
            else:
                run_render_unit(self.settings, task[4], self)


def run_job(settings: Settings, job_id: int) -> str:
    """Run a job's units in this process until it ends or waits for a retry; return its status."""
    return _run_here(settings, job_id, wait=False)


def run_until_done(settings: Settings, job_id: int) -> str:
    """Run a job in this process, waiting out its retry delays (``python -m pipeline run``)."""
    return _run_here(settings, job_id, wait=True)


def _run_here(settings: Settings, job_id: int, wait: bool) -> str:
    with db.session(settings.app_db) as conn:
        job = db.get_job(conn, job_id)
    if job is None:
        return "missing"
    queue = LocalQueue(settings)
    queue.stage(job_id, job["priority"], max(0.0, (job["next_attempt_at"] or 0) - time.time()) if wait else 0.0)
    queue.drain(wait)
    with db.session(settings.app_db) as conn:
        return db.get_job(conn, job_id)["status"]


def _require_free_disk(settings: Settings, ctx: StageContext, stage: str) -> None:
    """Ingest and render write the big files, first in scratch, then in the data dir: refuse to
    start them when either disk is nearly full."""
    if stage not in ("ingest", "render", "episode_render") or settings.worker.min_free_mb <= 0:
        return
    need = settings.worker.min_free_mb * MB
    episode = ctx.episode() if stage == "ingest" else None
    if episode is not None and episode["source_kind"] == "path":
        try:
            need += Path(episode["source_uri"]).stat().st_size
        except OSError:
            pass   # ingest itself reports a missing file
    for folder, what in ((settings.data_dir, ""), (settings.scratch_dir, " (paths.scratch_dir)")):
        free = storage.free_bytes(folder)
        if free < need:
            raise TransientError(f"Not enough free disk space in {folder}{what}: {free // MB} MB free,"
                                 f" {registry.LABELS[stage]} needs at least {need // MB} MB. Free some space;"
                                 " the job retries by itself.")


def _end_attempt(settings: Settings, job, stage: str, exc: Exception, queue: TaskQueue) -> str:
    """Record how an attempt ended: back to the queue, a scheduled retry, or a final state."""
    job_id = job["id"]
    if ABORT.is_set() and not isinstance(exc, Interrupted):   # e.g. ffmpeg killed by the shutdown
        exc = Interrupted(f"The worker was stopped; the job will resume at {registry.LABELS[stage]}.")
    if isinstance(exc, Interrupted):
        requeue_job(settings, queue, job_id, str(exc), stage)
        return states.QUEUED
    status, message, kind = _outcome(exc, job_id, stage)
    return _conclude(settings, job, stage, status, message, kind, queue)


def _conclude(settings: Settings, job, stage: str, status: str, message: str, kind: str, queue: TaskQueue) -> str:
    """A failed attempt: retry a transient failure after its backoff while attempts remain, else end the job."""
    job_id = job["id"]
    if kind == "transient" and job["attempts"] < job["max_attempts"]:
        delay = retry_delay(settings, job["attempts"])

        def write() -> str | None:
            with db.session(settings.app_db) as conn, db.transaction(conn):
                if not db.schedule_retry(conn, job_id, time.time() + delay, message, kind):
                    return db.get_job(conn, job_id)["status"]
                db.add_event(conn, job_id, stage, "retrying", time.time(),
                             message=f"Attempt {job['attempts']} of {job['max_attempts']} failed: {message}"
                                     f" Next attempt in {delay:.0f} s.")
                return None
        if moved_on := outage.retried(settings, "scheduling the retry", write, job_id, stage):
            return moved_on
        dispatch_stage(settings, queue, job_id, job["priority"], delay)
        log.info("job %s: %s; retrying in %.1f s", job_id, message, delay)
        return states.RETRYING
    if kind == "transient":
        message = f"{message} Gave up after {job['attempts']} attempts."
    return _finish(settings, job_id, job["episode_id"], stage, status, message, kind)


def _outcome(exc: Exception, job_id: int, stage: str) -> tuple[str, str, str]:
    """(job status, error sentence, error kind) for an exception raised by a stage."""
    label = registry.LABELS[stage].capitalize()
    if isinstance(exc, Cancelled):
        return states.CANCELLED, str(exc), "cancelled"
    if isinstance(exc, BadInput):
        return states.FAILED, str(exc), "bad_input"
    if isinstance(exc, TransientError):
        return states.FAILED, f"{label} hit a temporary problem: {exc}", "transient"
    if db.is_transient(exc):
        return states.FAILED, f"{label} hit a temporary problem: the database was unavailable ({exc}).", "transient"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return states.FAILED, f"{label} ran out of disk space in {exc.filename or 'the data folder'}.", "transient"
    if isinstance(exc, PipelineError):
        return states.FAILED, f"{label} failed: {exc}", "internal"
    log.error("job %s crashed in %s", job_id, stage, exc_info=exc)   # a bug: keep the traceback
    return states.FAILED, f"{label} failed unexpectedly ({type(exc).__name__}: {exc}).", "internal"


def _event(settings: Settings, job_id: int, stage: str | None, kind: str, message: str | None = None) -> None:
    def write():
        with db.session(settings.app_db) as conn:
            db.add_event(conn, job_id, stage, kind, time.time(), message=message)
    outage.retried(settings, "recording an event", write, job_id, stage)


def retry_delay(settings: Settings, attempts: int) -> float:
    """Seconds before the next attempt of a job that has made ``attempts``: 10, 40, 160 s ... +-20 %."""
    worker = settings.worker
    return Backoff(worker.retry_base_seconds, worker.retry_factor, spread=(0.8, 1.2)).delay(attempts - 1)


def _finish(settings: Settings, job_id: int, episode_id: str, stage: str | None, status: str,
            error: str | None, error_kind: str | None) -> str:
    def write() -> str | None:
        with db.session(settings.app_db) as conn, db.transaction(conn):
            if not db.finish_job(conn, job_id, status, time.time(), error, error_kind):
                return db.get_job(conn, job_id)["status"]   # it moved on (say, it was cancelled) while this task ran
            db.add_event(conn, job_id, stage, status, time.time(), message=error)
            done = db.completed_stages(conn, episode_id)
            db.set_episode_status(conn, episode_id, states.episode_status_after(status, done), time.time())
            return None
    if moved_on := outage.retried(settings, "ending the job", write, job_id, stage):
        return moved_on
    log.info("job %s %s%s", job_id, status, f": {error}" if error else "")
    webhooks.notify_job_finished(settings, job_id)   # never raises; delivers in background threads
    return status
