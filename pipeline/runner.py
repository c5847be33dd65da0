"""Run one job: its episode through every stage not yet completed.

The worker's Huey task and ``python -m pipeline run`` both call ``run_job``, so the CLI
exercises exactly the code the queue runs. Stage completion is checkpointed per episode,
so a retried job resumes at the stage that failed. Errors map to job states:
BadInput -> failed at once, Cancelled -> cancelled, anything else -> failed with a
sentence naming the stage (retries with backoff come with the reliability work).
"""

from __future__ import annotations

import json
import logging
import time

from pipeline import audio, clips, db, enrich, ingest, transcribe
from pipeline.config import Settings
from pipeline.context import StageContext
from pipeline.errors import BadInput, Cancelled, PipelineError, TransientError
from pipeline.jobs import FINAL_STATUSES
from pipeline.progress import STAGES, Plan

log = logging.getLogger("clipdesk.runner")

STAGE_FUNCTIONS = {"ingest": ingest.run, "extract_audio": audio.run, "transcribe": transcribe.run,
                   "enrich": enrich.run, "render": clips.run}
STAGE_LABELS = {"ingest": "ingest", "extract_audio": "audio extraction", "transcribe": "transcription",
                "enrich": "enrichment", "render": "rendering"}
PROGRESS_WRITE_INTERVAL = 0.5
CANCEL_CHECK_INTERVAL = 1.0


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


def run_job(settings: Settings, job_id: int) -> str:
    """Run a job to an end state and return it ('succeeded', 'failed', 'cancelled')."""
    with db.session(settings.app_db_path) as conn, db.transaction(conn):
        job = db.get_job(conn, job_id)
        if job is None:
            log.warning("job %s does not exist; nothing to run", job_id)
            return "missing"
        if not db.start_job(conn, job_id, time.time()):
            if job["cancel_requested"] and job["status"] not in FINAL_STATUSES:
                db.finish_job(conn, job_id, "cancelled", time.time(), "The job was cancelled.", "cancelled")
            return db.get_job(conn, job_id)["status"]
        db.set_episode_status(conn, job["episode_id"], "processing", time.time())
        done = db.completed_stages(conn, job["episode_id"])
        rates = db.stage_rates(conn)
        episode = db.get_episode(conn, job["episode_id"])

    options = json.loads(job["options_json"] or "{}")
    media_seconds = episode["duration"]
    reporter = JobReporter(settings, job_id, Plan.for_media(media_seconds, rates))
    ctx = StageContext(settings, job["episode_id"], options, reporter)
    stage = STAGES[0]
    try:
        for stage in STAGES:
            if stage in done:
                _event(settings, job_id, stage, "skipped", "Already completed in an earlier attempt.")
                continue
            reporter.check_cancel()
            reporter.enter(stage)
            STAGE_FUNCTIONS[stage](ctx)
            if stage == "ingest":   # now the duration is known: plan the rest from it
                media_seconds = ctx.episode()["duration"]
                reporter.plan = Plan.for_media(media_seconds, rates)
            with db.session(settings.app_db_path) as conn, db.transaction(conn):
                db.mark_stage_done(conn, job["episode_id"], stage, time.time())
                db.add_event(conn, job_id, stage, "finished", time.time(), seconds=round(reporter.elapsed(), 3),
                             media_seconds=media_seconds)
    except Exception as exc:   # every failure ends the job with a sentence; the worker keeps running
        status, message, kind = _outcome(exc, job_id, stage)
        return _finish(settings, job_id, job["episode_id"], stage, status, message, kind)
    return _finish(settings, job_id, job["episode_id"], None, "succeeded", None, None)


def _outcome(exc: Exception, job_id: int, stage: str) -> tuple[str, str, str]:
    """(job status, error sentence, error kind) for an exception raised by a stage."""
    label = STAGE_LABELS[stage].capitalize()
    if isinstance(exc, Cancelled):
        return "cancelled", str(exc), "cancelled"
    if isinstance(exc, BadInput):
        return "failed", str(exc), "bad_input"
    if isinstance(exc, TransientError):
        return "failed", f"{label} hit a temporary problem: {exc}", "transient"
    if isinstance(exc, PipelineError):
        return "failed", f"{label} failed: {exc}", "internal"
    log.error("job %s crashed in %s", job_id, stage, exc_info=exc)   # a bug: keep the traceback
    return "failed", f"{label} failed unexpectedly ({type(exc).__name__}: {exc}).", "internal"


def _event(settings: Settings, job_id: int, stage: str | None, kind: str, message: str | None = None) -> None:
    with db.session(settings.app_db_path) as conn:
        db.add_event(conn, job_id, stage, kind, time.time(), message=message)


def _finish(settings: Settings, job_id: int, episode_id: str, stage: str | None, status: str,
            error: str | None, error_kind: str | None) -> str:
    episode_status = {"succeeded": "ready", "failed": "failed", "cancelled": "new"}[status]
    with db.session(settings.app_db_path) as conn, db.transaction(conn):
        db.finish_job(conn, job_id, status, time.time(), error, error_kind)
        db.add_event(conn, job_id, stage, status, time.time(), message=error)
        db.set_episode_status(conn, episode_id, episode_status, time.time())
    log.info("job %s %s%s", job_id, status, f": {error}" if error else "")
    return status
