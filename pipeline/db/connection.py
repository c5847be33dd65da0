"""Connections, transactions and migrations of the app database.

Connections are short-lived and opened per unit of work (WAL lets the dashboard read
while a worker writes). Writes that belong together run in ``transaction(conn)``, which
takes the write lock up front (BEGIN IMMEDIATE) so two writers never deadlock on upgrade.
Migrations are the numbered files in ``db/migrations``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

MIGRATIONS_ROOT = Path(__file__).resolve().parents[2] / "db" / "migrations"
MIGRATIONS_DIR = MIGRATIONS_ROOT / "sqlite"


BUSY_TIMEOUT_MS = 15_000


_migrated: set[str] = set()


_migrate_lock = threading.Lock()


def connect(path: Path) -> sqlite3.Connection:
    """Open the app DB (creating and migrating it on first use in this process)."""
    path = Path(path)
    conn = _open(path)
    key = str(path.resolve())
    if key not in _migrated:
        with _migrate_lock:
            if key not in _migrated:
                migrate(conn)
                _migrated.add(key)
    return conn


@contextlib.contextmanager
def session(path: Path) -> Iterator[sqlite3.Connection]:
    conn = connect(path)
    try:
        yield conn
    finally:
        conn.close()


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply the migrations not yet recorded; return the versions applied.

    Foreign keys are off while a migration runs (SQLite can only add a constraint by rebuilding a
    table, and dropping the old one must not cascade to the rows that point at it); the migration
    commits only if every reference still holds.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
    applied = []
    conn.execute("PRAGMA foreign_keys=OFF")   # a no-op inside a transaction: set before each BEGIN
    try:
        for file in sorted(MIGRATIONS_DIR.glob("*.sql")):
            version = int(file.name.split("_", 1)[0])
            with transaction(conn):
                if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
                    continue
                for statement in _statements(file.read_text(encoding="utf-8")):
                    conn.execute(statement)
                if broken := conn.execute("PRAGMA foreign_key_check").fetchall():
                    raise sqlite3.IntegrityError(f"migration {file.name} leaves {len(broken)} broken references")
                conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                             (version, time.time()))
                applied.append(version)
    finally:
        conn.execute("PRAGMA foreign_keys=ON")
    return applied


def _statements(script: str) -> Iterable[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer
            buffer = ""


@contextlib.contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A read transaction: several SELECTs that see one consistent state (one poll = one snapshot)."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")

