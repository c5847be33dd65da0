"""Aggregates for the Prometheus ``/metrics`` scrape that the other stats queries do not give."""

from __future__ import annotations

from pipeline.jobs.states import RUNNING, SUCCEEDED, WAITING


def _in(values: tuple[str, ...]) -> str:
    return ", ".join("?" * len(values))


def queue_depth_by_priority(conn) -> dict[int, int]:
    """Jobs waiting to start or to retry, per priority."""
    rows = conn.execute(f"SELECT priority, COUNT(*) AS n FROM jobs WHERE status IN ({_in(WAITING)})"
                        " GROUP BY priority", WAITING).fetchall()
    return {row["priority"]: row["n"] for row in rows}


def running_unit_counts(conn) -> dict[str, int]:
    """Units of work running now: stages (a job held by a worker) and clips (render units)."""
    stages = conn.execute("SELECT COUNT(*) FROM jobs WHERE status = ? AND worker_id IS NOT NULL",
                          (RUNNING,)).fetchone()[0]
    clips = conn.execute("SELECT COUNT(*) FROM render_units WHERE status = ?", (RUNNING,)).fetchone()[0]
    return {"stage": stages, "clip": clips}


def stage_rate_histogram(conn, buckets: tuple[float, ...]) -> dict[str, tuple[list[int], int, float]]:
    """Per stage, over every finished stage run and rendered clip, seconds of work per second of media
    as a histogram: (cumulative count at each bound of ``buckets``, count, sum). One pass."""
    bounds = ", ".join("SUM(CASE WHEN rate <= ? THEN 1 ELSE 0 END)" for _ in buckets)
    rows = conn.execute(
        f"SELECT stage, {bounds}, COUNT(*), SUM(rate) FROM ("
        "  SELECT stage, seconds / media_seconds AS rate FROM job_events"
        "  WHERE kind IN ('finished', 'clip_finished') AND media_seconds > 0 AND seconds IS NOT NULL"
        ") AS rates GROUP BY stage", tuple(float(b) for b in buckets)).fetchall()
    return {row[0]: (list(row[1:1 + len(buckets)]), row[1 + len(buckets)], row[2 + len(buckets)]) for row in rows}


def webhook_deliveries_by_status(conn) -> dict[str, int]:
    rows = conn.execute("SELECT status, COUNT(*) AS n FROM webhook_deliveries GROUP BY status").fetchall()
    return {row["status"]: row["n"] for row in rows}


def average_processing_seconds(conn) -> float | None:
    """Mean seconds from first start to finish of the succeeded jobs."""
    return conn.execute("SELECT AVG(finished_at - started_at) FROM jobs WHERE status = ? AND started_at IS NOT NULL",
                        (SUCCEEDED,)).fetchone()[0]
