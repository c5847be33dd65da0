"""API keys (stored as hashes only) and the answers remembered for Idempotency-Key requests."""

from __future__ import annotations

import sqlite3


def insert_api_key(conn, name: str, prefix: str, key_hash: str, now: float) -> int:
    return conn.execute("INSERT INTO api_keys (name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                        (name, prefix, key_hash, now)).fetchone()[0]


def list_api_keys(conn) -> list[sqlite3.Row]:
    return conn.execute("SELECT id, name, prefix, created_at, revoked_at FROM api_keys ORDER BY id").fetchall()


def find_api_key(conn, key_hash: str) -> sqlite3.Row | None:
    """The active key with this hash (the UNIQUE index makes it one seek)."""
    return conn.execute("SELECT * FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL", (key_hash,)).fetchone()


def revoke_api_key(conn, key_id: int, now: float) -> bool:
    return conn.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                        (now, key_id)).rowcount == 1


def active_api_key_count(conn) -> int:
    return conn.execute("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()[0]


def claim_idempotency_key(conn, client: str, key: str, request_hash: str, now: float) -> sqlite3.Row | None:
    """Claim ``key`` for a request; returns None when claimed now, else the row of the earlier request."""
    cursor = conn.execute("INSERT INTO idempotency_keys (client, key, request_hash, created_at)"
                          " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", (client, key, request_hash, now))
    if cursor.rowcount == 1:
        return None
    return conn.execute("SELECT * FROM idempotency_keys WHERE client = ? AND key = ?", (client, key)).fetchone()


def store_idempotent_answer(conn, client: str, key: str, status_code: int, response_json: str,
                            location: str | None) -> None:
    conn.execute("UPDATE idempotency_keys SET status_code = ?, response_json = ?, location = ?"
                 " WHERE client = ? AND key = ?", (status_code, response_json, location, client, key))


def release_idempotency_key(conn, client: str, key: str) -> None:
    """Forget a claim whose request failed, so the same key can carry the corrected request."""
    conn.execute("DELETE FROM idempotency_keys WHERE client = ? AND key = ? AND status_code IS NULL", (client, key))
