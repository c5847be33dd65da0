"""Monitored feeds and their entries, the watch folder's files, and webhook deliveries."""

from __future__ import annotations

import sqlite3


def insert_feed(conn, url: str, source_key: str, title: str, kind: str, options_json: str,
                interval_minutes: int, next_check_at: float, now: float) -> int:
    cursor = conn.execute(
        "INSERT INTO feeds (url, source_key, title, kind, options_json, interval_minutes, next_check_at,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (url, source_key, title, kind, options_json, interval_minutes, next_check_at, now))
    return cursor.fetchone()[0]


def get_feed(conn, feed_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM feeds WHERE id = ?", (feed_id,)).fetchone()


def get_feed_by_key(conn, source_key: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM feeds WHERE source_key = ?", (source_key,)).fetchone()


def list_feeds(conn) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT f.*, (SELECT COUNT(*) FROM feed_entries e WHERE e.feed_id = f.id) AS entries_seen,"
        " (SELECT COUNT(*) FROM feed_entries e WHERE e.feed_id = f.id AND e.job_id IS NOT NULL) AS entries_queued"
        " FROM feeds f ORDER BY f.id").fetchall()


def delete_feed(conn, feed_id: int) -> bool:
    return conn.execute("DELETE FROM feeds WHERE id = ?", (feed_id,)).rowcount == 1


def due_feed_ids(conn, now: float) -> list[int]:
    rows = conn.execute("SELECT id FROM feeds WHERE next_check_at <= ? ORDER BY next_check_at, id", (now,))
    return [row["id"] for row in rows.fetchall()]


def set_feed_checked(conn, feed_id: int, title: str, next_check_at: float, now: float) -> None:
    conn.execute("UPDATE feeds SET title = CASE WHEN ? = '' THEN title ELSE ? END, last_checked_at = ?,"
                 " next_check_at = ?, last_error = NULL, failures = 0 WHERE id = ?",
                 (title, title, now, next_check_at, feed_id))


def set_feed_failed(conn, feed_id: int, error: str, next_check_at: float, now: float) -> None:
    conn.execute("UPDATE feeds SET last_checked_at = ?, next_check_at = ?, last_error = ?, failures = failures + 1"
                 " WHERE id = ?", (now, next_check_at, error, feed_id))


def claim_feed_entry(conn, feed_id: int, entry_id: str, url: str, title: str, published_at: float | None,
                     now: float) -> bool:
    """Record an entry as seen; False if it already was (the UNIQUE key makes this the one gate)."""
    cursor = conn.execute(
        "INSERT INTO feed_entries (feed_id, entry_id, url, title, published_at, seen_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", (feed_id, entry_id, url, title, published_at, now))
    return cursor.rowcount == 1


def set_feed_entry_job(conn, feed_id: int, entry_id: str, episode_id: str | None, job_id: int | None,
                       note: str | None) -> None:
    conn.execute("UPDATE feed_entries SET episode_id = ?, job_id = ?, note = ? WHERE feed_id = ? AND entry_id = ?",
                 (episode_id, job_id, note, feed_id, entry_id))


def delete_feed_entry(conn, feed_id: int, entry_id: str) -> None:
    conn.execute("DELETE FROM feed_entries WHERE feed_id = ? AND entry_id = ?", (feed_id, entry_id))


def list_feed_entries(conn, feed_id: int, limit: int = 100) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM feed_entries WHERE feed_id = ? ORDER BY id DESC LIMIT ?",
                        (feed_id, limit)).fetchall()


def list_inbox_files(conn) -> dict[str, sqlite3.Row]:
    return {row["name"]: row for row in conn.execute("SELECT * FROM inbox_files").fetchall()}


def upsert_inbox_file(conn, name: str, size: int, mtime_ns: int, stable_since: float) -> None:
    conn.execute("INSERT INTO inbox_files (name, size, mtime_ns, stable_since) VALUES (?, ?, ?, ?)"
                 " ON CONFLICT(name) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,"
                 " stable_since = excluded.stable_since", (name, size, mtime_ns, stable_since))


def delete_inbox_file(conn, name: str) -> None:
    conn.execute("DELETE FROM inbox_files WHERE name = ?", (name,))


def insert_webhook_delivery(conn, job_id: int, url: str, event: str, body: bytes, now: float) -> int:
    cursor = conn.execute("INSERT INTO webhook_deliveries (job_id, url, event, body, next_attempt_at, created_at)"
                          " VALUES (?, ?, ?, ?, ?, ?) RETURNING id", (job_id, url, event, body, now, now))
    return cursor.fetchone()[0]


def claim_webhook_delivery(conn, delivery_id: int, lease_until: float, now: float) -> sqlite3.Row | None:
    """Take a due pending delivery for one attempt (pushes next_attempt_at to lease_until so nobody else does)."""
    cursor = conn.execute("UPDATE webhook_deliveries SET next_attempt_at = ?, attempts = attempts + 1"
                          " WHERE id = ? AND status = 'pending' AND next_attempt_at <= ?",
                          (lease_until, delivery_id, now))
    if cursor.rowcount != 1:
        return None
    return conn.execute("SELECT * FROM webhook_deliveries WHERE id = ?", (delivery_id,)).fetchone()


def record_webhook_attempt(conn, delivery_id: int, attempt: int, http_status: int | None, error: str | None,
                           seconds: float, now: float) -> None:
    conn.execute("INSERT INTO webhook_attempts (delivery_id, attempt, http_status, error, seconds, created_at)"
                 " VALUES (?, ?, ?, ?, ?, ?)", (delivery_id, attempt, http_status, error, seconds, now))


def set_webhook_delivery_result(conn, delivery_id: int, status: str, error: str | None, next_attempt_at: float,
                                now: float, signed: bool | None = None) -> None:
    conn.execute("UPDATE webhook_deliveries SET status = ?, last_error = ?, next_attempt_at = ?,"
                 " delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END,"
                 " signed = COALESCE(?, signed) WHERE id = ?",
                 (status, error, next_attempt_at, status, now, None if signed is None else int(signed), delivery_id))


def due_webhook_delivery_ids(conn, now: float) -> list[int]:
    rows = conn.execute("SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?"
                        " ORDER BY id", (now,)).fetchall()
    return [row["id"] for row in rows]


def list_webhook_deliveries(conn, job_id: int) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM webhook_deliveries WHERE job_id = ? ORDER BY id", (job_id,)).fetchall()


def list_webhook_attempts(conn, delivery_id: int) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM webhook_attempts WHERE delivery_id = ? ORDER BY id",
                        (delivery_id,)).fetchall()



def seen_feed_entry_ids(conn, feed_id: int) -> set[str]:
    """The entry ids a feed has already shown us (claimed)."""
    return {row["entry_id"] for row in conn.execute("SELECT entry_id FROM feed_entries WHERE feed_id = ?",
                                                    (feed_id,)).fetchall()}
