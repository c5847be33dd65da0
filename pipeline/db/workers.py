"""Worker processes and their heartbeats."""

from __future__ import annotations

import sqlite3


def worker_heartbeat(conn, worker_id: str, now: float, threads: int = 1) -> None:
    conn.execute("INSERT INTO workers (id, started_at, heartbeat_at, threads) VALUES (?, ?, ?, ?)"
                 " ON CONFLICT(id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, threads = excluded.threads",
                 (worker_id, now, now, threads))


def remove_worker(conn, worker_id: str) -> None:
    conn.execute("DELETE FROM workers WHERE id = ?", (worker_id,))


def list_workers(conn) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM workers ORDER BY heartbeat_at DESC").fetchall()

