"""Counts and aggregates for the dashboard and ``stats``."""

from __future__ import annotations

import sqlite3

from pipeline.db.events import finished_stages
from pipeline.jobs.states import FAILED, SUCCEEDED


def count_jobs_by_status(conn) -> dict[str, int]:
    rows = conn.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status").fetchall()
    return {row["status"]: row["n"] for row in rows}


def failures_by_kind(conn) -> dict[str, int]:
    rows = conn.execute("SELECT COALESCE(error_kind, 'internal') AS kind, COUNT(*) AS n FROM jobs"
                        " WHERE status = ? GROUP BY kind", (FAILED,)).fetchall()
    return {row["kind"]: row["n"] for row in rows}


def queue_latencies(conn, recent: int = 200) -> list[float]:
    """Seconds from enqueue to first start for the ``recent`` last jobs that started."""
    rows = conn.execute("SELECT started_at - created_at AS latency FROM jobs WHERE started_at IS NOT NULL"
                        " ORDER BY id DESC LIMIT ?", (recent,)).fetchall()
    return [row["latency"] for row in rows]


def throughput_by_day(conn, since: float) -> list[sqlite3.Row]:
    """Per UTC day since ``since``: episodes whose job succeeded and their media seconds."""
    return conn.execute(
        "SELECT day, COUNT(*) AS episodes, COALESCE(SUM(duration), 0) AS media_seconds FROM ("
        "  SELECT date(MAX(j.finished_at), 'unixepoch') AS day, e.duration AS duration"
        "  FROM jobs j JOIN episodes e ON e.id = j.episode_id"
        "  WHERE j.status = ? AND j.finished_at >= ? GROUP BY j.episode_id"
        ") GROUP BY day ORDER BY day", (SUCCEEDED, since)).fetchall()


def media_seconds_processed(conn) -> float:
    """Total duration of the episodes with at least one succeeded job (each counted once)."""
    row = conn.execute(
        "SELECT COALESCE(SUM(duration), 0) AS seconds FROM episodes"
        " WHERE id IN (SELECT episode_id FROM jobs WHERE status = ?)", (SUCCEEDED,)).fetchone()
    return float(row["seconds"])


def stage_durations(conn, recent: int = 50) -> list[dict]:
    """Per stage, over its ``recent`` last completed runs: run count, mean seconds, seconds per media hour.

    The stages come from a skip-scan of the (kind, stage) index and each stage's last runs from
    the same index, newest first, so the cost does not grow with the history.
    """
    stages = finished_stages(conn)
    result = []
    for stage in stages:
        row = conn.execute(
            "SELECT COUNT(*) AS runs, AVG(seconds) AS mean_seconds,"
            " SUM(seconds) * 3600.0 / NULLIF(SUM(media_seconds), 0) AS seconds_per_media_hour FROM ("
            "  SELECT seconds, media_seconds FROM job_events WHERE kind = 'finished' AND stage = ?"
            "  AND seconds IS NOT NULL ORDER BY id DESC LIMIT ?)", (stage, recent)).fetchone()
        if row["runs"]:
            result.append({"stage": stage, **dict(row)})
    return result

