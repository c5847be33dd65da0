"""Leases: periodic work that every consumer runs but only one at a time may take.

Portable SQL (SQLite and PostgreSQL): taking a lease is one atomic upsert that succeeds only when
the lease is free, expired or already ours, and says so through ``RETURNING``.
"""

from __future__ import annotations


def acquire_lease(conn, name: str, holder: str, now: float, expires_at: float) -> bool:
    """Take (or extend) ``name`` for ``holder`` until ``expires_at``; False while someone else holds it."""
    rows = conn.execute("INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)"
                        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
                        " WHERE leases.expires_at < ? OR leases.holder = ?"
                        " RETURNING holder",
                        (name, holder, expires_at, now, holder)).fetchall()   # fetch all: the statement completes
    return len(rows) == 1


def renew_lease(conn, name: str, holder: str, expires_at: float) -> bool:
    """Push the expiry of a lease we hold; False if it is no longer ours (it expired and was taken)."""
    return conn.execute("UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ?",
                        (expires_at, name, holder)).rowcount == 1


def release_lease(conn, name: str, holder: str) -> None:
    conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))


def get_lease(conn, name: str):
    return conn.execute("SELECT name, holder, expires_at FROM leases WHERE name = ?", (name,)).fetchone()
