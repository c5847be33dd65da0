"""Run one job: its episode through every stage not yet completed.

The worker's Huey task and ``python -m pipeline run`` both call ``run_job``, so the CLI
exercises exactly the code the queue runs. Stage completion is checkpointed per episode,
so a retried or resumed job continues at the stage that failed. Errors map to job states:
BadInput -> failed at once; TransientError (and a locked database, a full disk) -> retrying
with exponential backoff until ``worker.max_attempts``; Cancelled -> cancelled;
Interrupted (worker shutting down) -> back to queued; anything else -> failed with a
sentence naming the stage. While a job runs, a heartbeat thread stamps its row so the
reaper (``pipeline.recovery``) can tell a live job from one whose worker died.
"""

from __future__ import annotations

import errno
import importlib
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path

from pipeline import db, storage, webhooks
from pipeline.config import Settings
from pipeline.context import StageContext
from pipeline.errors import BadInput, Cancelled, Interrupted, PipelineError, TransientError
from pipeline.jobs import FINAL_STATUSES, retry_delay
from pipeline.progress import STAGES, Plan, stages_for

log = logging.getLogger("clipdesk.runner")

# Stage -> module with ``run(ctx)``; imported when the stage first runs.
STAGE_MODULES = {"ingest": "ingest", "extract_audio": "audio", "transcribe": "transcribe", "enrich": "enrich",
                 "render": "clips", "episode_render": "episode_render"}
STAGE_LABELS = {"ingest": "ingest", "extract_audio": "audio extraction", "transcribe": "transcription",
                "enrich": "enrichment", "render": "rendering", "episode_render": "full-episode rendering"}
PROGRESS_WRITE_INTERVAL = 0.5
CANCEL_CHECK_INTERVAL = 1.0
MB = 1 << 20

# Set by the worker on a graceful shutdown (SIGINT): running jobs stop after their current stage.
STOP_AFTER_STAGE = threading.Event()
# Set by the worker when it must exit now (SIGTERM): whatever a stage raises, the job goes back to the queue.
ABORT = threading.Event()


class JobReporter:
    """Turns a stage's 0..1 progress into job progress + ETA rows, and checks for cancel.

    Writes are throttled so a chatty stage costs at most a couple of short transactions
    a second; the cancel flag is read at least every second while a stage reports.
    """

    def __init__(self, settings: Settings, job_id: int, plan: Plan):
        self.settings, self.job_id, self.plan = settings, job_id, plan
        self.stage = STAGES[0]
        self.stage_started = time.monotonic()
        self.last_write = self.last_cancel_check = 0.0

    def enter(self, stage: str) -> None:
        self.stage, self.stage_started = stage, time.monotonic()
        self.last_write = 0.0
        with db.session(self.settings.app_db_path) as conn, db.transaction(conn):
            db.set_job_stage(conn, self.job_id, stage, self.plan.overall(stage, 0.0), time.time())
            db.add_event(conn, self.job_id, stage, "started", time.time())

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self.last_cancel_check >= CANCEL_CHECK_INTERVAL:
            self.last_cancel_check = now
            self.check_cancel()
        if fraction < 1.0 and now - self.last_write < PROGRESS_WRITE_INTERVAL:
            return
        self.last_write = now
        eta = self.plan.eta(self.stage, fraction, now - self.stage_started)
        with db.session(self.settings.app_db_path) as conn:
            db.set_job_progress(conn, self.job_id, fraction, self.plan.overall(self.stage, fraction),
                                round(eta, 1), time.time())

    def check_cancel(self) -> None:
        with db.session(self.settings.app_db_path) as conn:
            if db.is_cancel_requested(conn, self.job_id):
                raise Cancelled("The job was cancelled.")

    def elapsed(self) -> float:
        return time.monotonic() - self.stage_started


def run_job(settings: Settings, job_id: int, worker_id: str | None = None) -> str:
    """Run a job until it ends or waits; return its status.

    'succeeded', 'failed', 'cancelled', 'retrying' (scheduled again: see ``next_attempt_at``),
    'queued' (interrupted by a shutdown) or, when this call could not claim it, its current status.
    """
    with db.session(settings.app_db_path) as conn, db.transaction(conn):
        job = db.get_job(conn, job_id)
        if job is None:
            log.warning("job %s does not exist; nothing to run", job_id)
            return "missing"
        if not db.start_job(conn, job_id, time.time(), worker_id):
            if job["cancel_requested"] and job["status"] not in FINAL_STATUSES + ("running",):
                db.finish_job(conn, job_id, "cancelled", time.time(), "The job was cancelled.", "cancelled")
            return db.get_job(conn, job_id)["status"]
        job = db.get_job(conn, job_id)
        db.set_episode_status(conn, job["episode_id"], "processing", time.time())
        done = db.completed_stages(conn, job["episode_id"])
        rates = db.stage_rates(conn)
        episode = db.get_episode(conn, job["episode_id"])

    options = json.loads(job["options_json"] or "{}")
    stages = stages_for(options)
    media_seconds = episode["duration"]
    reporter = JobReporter(settings, job_id, Plan.for_media(media_seconds, rates, stages))
    ctx = StageContext(settings, job["episode_id"], options, reporter)
    stage = stages[0]
    with JobHeartbeat(settings, job_id):
        try:
            for stage in stages:
                if stage in done:
                    _event(settings, job_id, stage, "skipped", "Already completed in an earlier attempt.")
                    continue
                reporter.check_cancel()
                if STOP_AFTER_STAGE.is_set():
                    raise Interrupted(f"The worker is shutting down; the job will resume at {STAGE_LABELS[stage]}.")
                _require_free_disk(settings, ctx, stage)
                reporter.enter(stage)
                importlib.import_module(f"pipeline.{STAGE_MODULES[stage]}").run(ctx)
                if stage in ("ingest", "extract_audio"):   # the duration is known (decoding may correct it)
                    media_seconds = ctx.episode()["duration"]
                    reporter.plan = Plan.for_media(media_seconds, rates, stages)
                with db.session(settings.app_db_path) as conn, db.transaction(conn):
                    db.mark_stage_done(conn, job["episode_id"], stage, time.time())
                    db.add_event(conn, job_id, stage, "finished", time.time(), seconds=round(reporter.elapsed(), 3),
                                 media_seconds=media_seconds)
        except Exception as exc:   # every failure ends the attempt with a sentence; the worker keeps running
            return _end_attempt(settings, job, stage, exc)
    return _finish(settings, job_id, job["episode_id"], None, "succeeded", None, None)


def run_until_done(settings: Settings, job_id: int, worker_id: str | None = None) -> str:
    """Run a job in this process, waiting out its retry delays (``python -m pipeline run``)."""
    status = run_job(settings, job_id, worker_id)
    while status == "retrying":
        with db.session(settings.app_db_path) as conn:
            job = db.get_job(conn, job_id)
        if job["status"] != "retrying":
            return job["status"]
        time.sleep(max(0.0, (job["next_attempt_at"] or 0) - time.time()))
        status = run_job(settings, job_id, worker_id)
    return status


class JobHeartbeat:
    """Stamps the job row every ``worker.heartbeat_seconds`` while the job runs in this process.

    It runs beside the stage, so a stage that reports no progress for minutes (one long
    model call) is still seen as alive; when the process dies, the stamps stop.
    """

    def __init__(self, settings: Settings, job_id: int):
        self.settings, self.job_id = settings, job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"job-{job_id}-heartbeat", daemon=True)

    def __enter__(self) -> JobHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.settings.worker.heartbeat_seconds):
            try:
                with db.session(self.settings.app_db_path) as conn:
                    db.touch_job(conn, self.job_id, time.time())
            except sqlite3.Error:   # a busy DB must not end the heartbeat; the next beat retries
                log.warning("heartbeat for job %s failed", self.job_id, exc_info=True)


def _require_free_disk(settings: Settings, ctx: StageContext, stage: str) -> None:
    """Ingest and render write the big files: refuse to start them on a nearly full disk."""
    if stage not in ("ingest", "render", "episode_render") or settings.worker.min_free_mb <= 0:
        return
    free = storage.free_bytes(settings.data_dir)
    need = settings.worker.min_free_mb * MB
    episode = ctx.episode() if stage == "ingest" else None
    if episode is not None and episode["source_kind"] == "path":
        try:
            need += Path(episode["source_uri"]).stat().st_size
        except OSError:
            pass   # ingest itself reports a missing file
    if free < need:
        raise TransientError(f"Not enough free disk space in {settings.data_dir}: {free // MB} MB free,"
                             f" {STAGE_LABELS[stage]} needs at least {need // MB} MB. Free some space;"
                             " the job retries by itself.")


def _end_attempt(settings: Settings, job, stage: str, exc: Exception) -> str:
    """Record how an attempt ended: back to the queue, a scheduled retry, or a final state."""
    job_id, episode_id = job["id"], job["episode_id"]
    if ABORT.is_set() and not isinstance(exc, Interrupted):   # e.g. ffmpeg killed by the shutdown
        exc = Interrupted(f"The worker was stopped; the job will resume at {STAGE_LABELS[stage]}.")
    if isinstance(exc, Interrupted):
        with db.session(settings.app_db_path) as conn, db.transaction(conn):
            if db.return_to_queue(conn, job_id):
                db.add_event(conn, job_id, stage, "interrupted", time.time(), message=str(exc))
        log.info("job %s interrupted before %s; back in the queue", job_id, stage)
        return "queued"
    status, message, kind = _outcome(exc, job_id, stage)
    if kind == "transient" and job["attempts"] < job["max_attempts"]:
        delay = retry_delay(settings, job["attempts"])
        with db.session(settings.app_db_path) as conn, db.transaction(conn):
            db.schedule_retry(conn, job_id, time.time() + delay, message, kind)
            db.add_event(conn, job_id, stage, "retrying", time.time(),
                         message=f"Attempt {job['attempts']} of {job['max_attempts']} failed: {message}"
                                 f" Next attempt in {delay:.0f} s.")
        log.info("job %s: %s; retrying in %.1f s", job_id, message, delay)
        return "retrying"
    if kind == "transient":
        message = f"{message} Gave up after {job['attempts']} attempts."
    return _finish(settings, job_id, episode_id, stage, status, message, kind)


def _outcome(exc: Exception, job_id: int, stage: str) -> tuple[str, str, str]:
    """(job status, error sentence, error kind) for an exception raised by a stage."""
    label = STAGE_LABELS[stage].capitalize()
    if isinstance(exc, Cancelled):
        return "cancelled", str(exc), "cancelled"
    if isinstance(exc, BadInput):
        return "failed", str(exc), "bad_input"
    if isinstance(exc, TransientError):
        return "failed", f"{label} hit a temporary problem: {exc}", "transient"
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return "failed", f"{label} hit a temporary problem: the database was busy ({exc}).", "transient"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "failed", f"{label} ran out of disk space in {exc.filename or 'the data folder'}.", "transient"
    if isinstance(exc, PipelineError):
        return "failed", f"{label} failed: {exc}", "internal"
    log.error("job %s crashed in %s", job_id, stage, exc_info=exc)   # a bug: keep the traceback
    return "failed", f"{label} failed unexpectedly ({type(exc).__name__}: {exc}).", "internal"


def _event(settings: Settings, job_id: int, stage: str | None, kind: str, message: str | None = None) -> None:
    with db.session(settings.app_db_path) as conn:
        db.add_event(conn, job_id, stage, kind, time.time(), message=message)


def _finish(settings: Settings, job_id: int, episode_id: str, stage: str | None, status: str,
            error: str | None, error_kind: str | None) -> str:
    with db.session(settings.app_db_path) as conn, db.transaction(conn):
        # An episode whose clips exist stays ready when a later job (a re-render, a full render) ends badly.
        ready = status == "succeeded" or set(STAGES) <= db.completed_stages(conn, episode_id)
        episode_status = "ready" if ready else {"failed": "failed", "cancelled": "new"}[status]
        db.finish_job(conn, job_id, status, time.time(), error, error_kind)
        db.add_event(conn, job_id, stage, status, time.time(), message=error)
        db.set_episode_status(conn, episode_id, episode_status, time.time())
    log.info("job %s %s%s", job_id, status, f": {error}" if error else "")
    webhooks.notify_job_finished(settings, job_id)   # never raises; delivers in background threads
    return status
