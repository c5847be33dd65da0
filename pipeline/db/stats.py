"""Counts and aggregates for the dashboard and ``stats``."""

from __future__ import annotations

import datetime

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


def throughput_by_day(conn, since: float) -> list[dict]:
    """Per UTC day since ``since``: episodes whose job succeeded and their media seconds (an episode
    counts on the day of its last success; the days are grouped here, the same on both databases)."""
    rows = conn.execute(
        "SELECT MAX(j.finished_at) AS finished_at, MAX(e.duration) AS duration"
        " FROM jobs j JOIN episodes e ON e.id = j.episode_id"
        " WHERE j.status = ? AND j.finished_at >= ? GROUP BY j.episode_id", (SUCCEEDED, since)).fetchall()
    days: dict[str, dict] = {}
    for row in rows:
        day = datetime.datetime.fromtimestamp(row["finished_at"], datetime.UTC).date().isoformat()
        totals = days.setdefault(day, {"day": day, "episodes": 0, "media_seconds": 0.0})
        totals["episodes"] += 1
        totals["media_seconds"] += row["duration"] or 0.0
    return [days[day] for day in sorted(days)]


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
            "  AND seconds IS NOT NULL ORDER BY id DESC LIMIT ?) AS runs", (stage, recent)).fetchone()
        if row["runs"]:
            result.append({"stage": stage, **dict(row)})
    return result



def postgres_table_bytes(conn) -> dict[str, int]:
    """On PostgreSQL: bytes of the app's tables and of Huey's queue tables (``huey_*``), indexes included."""
    rows = conn.execute(
        "SELECT CASE WHEN c.relname LIKE 'huey\\_%' THEN 'queue' ELSE 'app' END AS part,"
        " COALESCE(SUM(pg_total_relation_size(c.oid)), 0) AS bytes FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND n.nspname = current_schema() GROUP BY part").fetchall()
    sizes = {"app": 0, "queue": 0}
    sizes.update({row["part"]: int(row["bytes"]) for row in rows})
    return sizes
