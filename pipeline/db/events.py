"""Job events (the history the dashboard and the event stream read) and the stage rates learned from them."""

from __future__ import annotations

import sqlite3

from pipeline.db.connection import serialised


def add_event(conn, job_id: int, stage: str | None, kind: str, now: float, message: str | None = None,
              seconds: float | None = None, media_seconds: float | None = None, host: str | None = None,
              cpu_share: float | None = None) -> None:
    """Append to a job's history. Inserted under the write lock (``serialised``), so event ids are
    in commit order on PostgreSQL too, which the event stream's "after id N" relies on."""
    with serialised(conn):
        conn.execute("INSERT INTO job_events (job_id, stage, kind, message, seconds, media_seconds, created_at, host,"
                     " cpu_share) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (job_id, stage, kind, message, seconds, media_seconds, now, host, cpu_share))


def list_events(conn, job_id: int) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM job_events WHERE job_id = ? ORDER BY id", (job_id,)).fetchall()


def stage_rates(conn, host: str | None = None, recent: int = 20) -> dict[str, float]:
    """Seconds of work per second of media for each stage, pooled over its ``recent`` last runs,
    as if each run had had the whole machine (its seconds times its ``cpu_share``): so rates
    learned with ``-w 2`` and with ``-w 1`` mean the same.

    Render is measured per clip: its rate is seconds per second of clip, from the
    ``clip_finished`` events of single clips. Runs on ``host`` win over other machines' runs.
    Each stage is one backwards seek in the (kind, stage) index, so the cost does not grow
    with the history.
    """
    def rate(kind: str, stage: str, only_host: str | None) -> float | None:
        return conn.execute(
            "SELECT SUM(seconds * COALESCE(cpu_share, 1.0)) / SUM(media_seconds) FROM ("
            " SELECT seconds, media_seconds, cpu_share FROM job_events"
            " WHERE kind = ? AND stage = ? AND (? IS NULL OR host = ?) AND media_seconds > 0 AND seconds IS NOT NULL"
            " ORDER BY id DESC LIMIT ?) AS runs", (kind, stage, only_host, only_host, recent)).fetchone()[0]

    rates = {}
    for stage in finished_stages(conn):
        kind = "clip_finished" if stage == "render" else "finished"
        value = (rate(kind, stage, host) if host else None) or rate(kind, stage, None)
        if value is not None:
            rates[stage] = value
    return rates


def finished_stages(conn) -> list[str]:
    """The stages with a finished run: a skip-scan of the (kind, stage) index."""
    return [row["stage"] for row in conn.execute(
        "WITH RECURSIVE s(stage) AS ("
        "  SELECT MIN(stage) FROM job_events WHERE kind = 'finished'"
        "  UNION ALL"
        "  SELECT (SELECT MIN(stage) FROM job_events WHERE kind = 'finished' AND stage > s.stage)"
        "  FROM s WHERE s.stage IS NOT NULL"
        ") SELECT stage FROM s WHERE stage IS NOT NULL").fetchall()]

