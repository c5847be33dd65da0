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


@dataclass(frozen=True)
class Snapshot:
    jobs_by_status: dict[str, int]
    queue_depth_by_priority: dict[int, int]
    running_units: dict[str, int]
    stage_rates: dict[str, list[float]]          # stage -> every run's seconds per media second
    failures_by_kind: dict[str, int]
    webhook_deliveries: dict[str, int]
    live_workers: int
    live_worker_threads: int


def snapshot(settings: Settings) -> Snapshot:
    with db.session(settings.app_db_path) as conn, db.snapshot(conn):
        counts = db.count_jobs_by_status(conn)
        rates: dict[str, list[float]] = {}
        for stage, rate in db.stage_seconds_per_media_second(conn):
            rates.setdefault(stage, []).append(rate)
        liveness = workers.liveness(settings, conn, time.time())
        return Snapshot(
            jobs_by_status={status: counts.get(status, 0) for status in states.JOB_STATUSES},
            queue_depth_by_priority=db.queue_depth_by_priority(conn),
            running_units=db.running_unit_counts(conn),
            stage_rates=rates,
            failures_by_kind=db.failures_by_kind(conn),
            webhook_deliveries=db.webhook_deliveries_by_status(conn),
            live_workers=liveness["workers_alive"], live_worker_threads=liveness["threads_alive"])


def histogram(values: list[float], buckets: tuple[float, ...] = RATE_BUCKETS) -> tuple[list[tuple[str, int]], float]:
    """Cumulative Prometheus buckets (``le`` label, count) including +Inf, and the sum."""
    cumulative = [(f"{bound:g}", sum(1 for v in values if v <= bound)) for bound in buckets]
    return cumulative + [("+Inf", len(values))], sum(values)


def stats(settings: Settings) -> dict:
    """``GET /v1/stats``: the CLI's ``stats`` plus the average processing time and the live workers."""
    data = jobs.stats(settings)
    with db.session(settings.app_db_path) as conn:
        average = db.average_processing_seconds(conn)
        liveness = workers.liveness(settings, conn, time.time())
    return {**data, "average_processing_seconds": None if average is None else round(average, 1),
            "live_workers": liveness["workers_alive"], "live_worker_threads": liveness["threads_alive"]}
