"""What ``GET /metrics`` reports, read from the app database on each scrape (the API process runs
no jobs itself, so counters kept in memory would know nothing)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pipeline import db, jobs
from pipeline.config import Settings
from pipeline.jobs import states, workers

# Seconds of work per second of media: transcribing an hour in six minutes is 0.1.
RATE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# The stage histogram reads every finished run (~100 ms at 100,000 events): a scrape reuses one this recent.
HISTOGRAM_MAX_AGE_SECONDS = 10.0
_histograms: dict[str, tuple[float, dict]] = {}


def _rates(settings: Settings, conn) -> dict:
    key = str(settings.app_db)
    cached = _histograms.get(key)
    if cached is None or time.monotonic() - cached[0] > HISTOGRAM_MAX_AGE_SECONDS:
        rates = {stage: ([(f"{bound:g}", n) for bound, n in zip(RATE_BUCKETS, cumulative, strict=True)]
                         + [("+Inf", count)], total)
                 for stage, (cumulative, count, total) in db.stage_rate_histogram(conn, RATE_BUCKETS).items()}
        cached = _histograms[key] = (time.monotonic(), rates)
    return cached[1]


@dataclass(frozen=True)
class Snapshot:
    jobs_by_status: dict[str, int]
    queue_depth_by_priority: dict[int, int]
    running_units: dict[str, int]
    stage_rates: dict[str, tuple[list[tuple[str, int]], float]]   # stage -> (cumulative buckets incl. +Inf, sum)
    failures_by_kind: dict[str, int]
    webhook_deliveries: dict[str, int]
    live_workers: int
    live_worker_threads: int


def snapshot(settings: Settings) -> Snapshot:
    with db.session(settings.app_db) as conn, db.snapshot(conn):
        counts = db.count_jobs_by_status(conn)
        rates = _rates(settings, conn)
        liveness = workers.liveness(settings, conn, time.time())
        return Snapshot(
            jobs_by_status={status: counts.get(status, 0) for status in states.JOB_STATUSES},
            queue_depth_by_priority=db.queue_depth_by_priority(conn),
            running_units=db.running_unit_counts(conn),
            stage_rates=rates,
            failures_by_kind=db.failures_by_kind(conn),
            webhook_deliveries=db.webhook_deliveries_by_status(conn),
            live_workers=liveness["workers_alive"], live_worker_threads=liveness["threads_alive"])


def stats(settings: Settings) -> dict:
    """``GET /v1/stats``: the CLI's ``stats`` plus the average processing time and the live workers."""
    data = jobs.stats(settings)
    with db.session(settings.app_db) as conn:
        average = db.average_processing_seconds(conn)
        liveness = workers.liveness(settings, conn, time.time())
    return {**data, "average_processing_seconds": None if average is None else round(average, 1),
            "live_workers": liveness["workers_alive"], "live_worker_threads": liveness["threads_alive"]}
