"""Job and render-unit statuses, the transitions allowed between them, and the order of the stages:
the one owner of job state.

Every status change is one of the transitions below. The SQL layer makes each with one guarded
``UPDATE ... WHERE status IN (<the transition's sources>)``, so a caller acting on a stale view
changes nothing, and migration 009 adds ``CHECK`` constraints so the database refuses a status
that is not listed here.

    queued ──claim──> running ──succeed/fail──> succeeded | failed
      ^  ^              │  │
      │  └──requeue─────┘  └──schedule_retry──> retrying ──claim──> running
      └──retry_now── failed | cancelled | retrying
    queued | retrying | running (held by no task) ──cancel──> cancelled

A running job held by a worker is not cancelled at once: it is flagged (``cancel_requested``)
and its stage stops at the next check.
"""

from __future__ import annotations

from dataclasses import dataclass

# The stages a job runs, in order (a job's ``stage`` is one of them).
STAGES = ("ingest", "extract_audio", "transcribe", "enrich", "render")
ALL_STAGES = STAGES + ("episode_render",)   # the full-episode render runs only when a job asks for it


TARGET_STAGES = ("transcribe", "enrich", "render")   # where a job may stop (``target_stage``; render = all)


def stages_for(options: dict) -> tuple[str, ...]:
    """The stages a job with these options runs, in order: up to its ``target_stage`` (a
    transcript-only job stops after transcribe), plus the full-episode render when asked for."""
    target = options.get("target_stage") or "render"
    if target != "render":
        return STAGES[:STAGES.index(target) + 1]
    return ALL_STAGES if options.get("full_episode") else STAGES


QUEUED, RUNNING, RETRYING = "queued", "running", "retrying"
SUCCEEDED, FAILED, CANCELLED = "succeeded", "failed", "cancelled"
DONE = "done"   # a render unit whose clip rendered

JOB_STATUSES = (QUEUED, RUNNING, RETRYING, SUCCEEDED, FAILED, CANCELLED)
FINAL = (SUCCEEDED, FAILED, CANCELLED)
UNFINISHED = (QUEUED, RUNNING, RETRYING)
WAITING = (QUEUED, RETRYING)              # not started yet, or waiting out a retry backoff: they get a forecast
RETRYABLE = (FAILED, CANCELLED, RETRYING)  # what an operator may retry now

UNIT_STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
UNIT_ACTIVE = (QUEUED, RUNNING)


@dataclass(frozen=True)
class Transition:
    name: str
    sources: tuple[str, ...]
    target: str

    def allows(self, status: str) -> bool:
        return status in self.sources


# Jobs
CLAIM = Transition("claim", (QUEUED, RETRYING, RUNNING), RUNNING)   # running: only between stages, held by no task
SCHEDULE_RETRY = Transition("schedule_retry", (RUNNING,), RETRYING)
REQUEUE = Transition("requeue", (RUNNING,), QUEUED)                 # interrupted, or its worker died
RETRY_NOW = Transition("retry_now", RETRYABLE, QUEUED)              # an operator's retry
SUCCEED = Transition("succeed", (RUNNING,), SUCCEEDED)
FAIL = Transition("fail", (RUNNING,), FAILED)
CANCEL = Transition("cancel", UNFINISHED, CANCELLED)
JOB_TRANSITIONS = (CLAIM, SCHEDULE_RETRY, REQUEUE, RETRY_NOW, SUCCEED, FAIL, CANCEL)

# Render units (one per clip of a job's render fan-out)
UNIT_CLAIM = Transition("claim", (QUEUED,), RUNNING)
UNIT_REQUEUE = Transition("requeue", (RUNNING,), QUEUED)
UNIT_DONE = Transition("done", (RUNNING,), DONE)
UNIT_FAIL = Transition("fail", (RUNNING,), FAILED)
UNIT_CANCEL = Transition("cancel", UNIT_ACTIVE, CANCELLED)
UNIT_TRANSITIONS = (UNIT_CLAIM, UNIT_REQUEUE, UNIT_DONE, UNIT_FAIL, UNIT_CANCEL)


def ending(status: str) -> Transition:
    """The transition that ends a job with ``status`` (succeeded, failed or cancelled)."""
    return {SUCCEEDED: SUCCEED, FAILED: FAIL, CANCELLED: CANCEL}[status]


def unit_ending(status: str) -> Transition:
    """The transition that ends a render unit with ``status`` (done, failed or cancelled)."""
    return {DONE: UNIT_DONE, FAILED: UNIT_FAIL, CANCELLED: UNIT_CANCEL}[status]


def episode_status_after(job_status: str, stages_done: set[str]) -> str:
    """The episode's status once a job on it ended. An episode whose clips exist (every stage
    done) stays ready when a later job (a re-render, a full render) ends badly."""
    if job_status == SUCCEEDED or set(STAGES) <= stages_done:
        return "ready"
    return {FAILED: "failed", CANCELLED: "new"}[job_status]
