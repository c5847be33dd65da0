"""Connections, transactions and migrations of the app database: a SQLite file or a PostgreSQL server.

The target is what ``Settings.database`` gives: a ``Path`` (SQLite, the embedded default) or a
``postgresql://`` URL. The SQL layer writes one portable dialect with ``?`` placeholders; on
PostgreSQL they become ``%s`` (and ``:name`` becomes ``%(name)s``), rows behave like ``sqlite3.Row``
(by index, by name, ``dict(row)``), and numerics come back as floats.

Connections are short-lived and opened per unit of work (on SQLite, WAL lets the dashboard read while
a worker writes). Writes that belong together run in ``transaction(conn)``, which takes the write lock
up front: ``BEGIN IMMEDIATE`` on SQLite, one transaction-scoped advisory lock on PostgreSQL, so the
check-then-write steps of the SQL layer see the same one-writer-at-a-time world on both. Statements
outside a transaction commit on their own (autocommit). Migrations are the numbered files in
``db/migrations/<dialect>/``; both dialects have the same numbers and reach the same schema.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.numeric import FloatLoader

MIGRATIONS_ROOT = Path(__file__).resolve().parents[2] / "db" / "migrations"
MIGRATIONS_DIR = MIGRATIONS_ROOT / "sqlite"
POSTGRES_MIGRATIONS_DIR = MIGRATIONS_ROOT / "postgresql"

BUSY_TIMEOUT_MS = 15_000
CONNECT_TIMEOUT_S = 10
# A process keeps up to this many PostgreSQL connections open for its next sessions: opening one costs
# more than the short unit of work a session is (bench/cluster.py: new connections, not the write lock,
# were what limited a cluster).
KEEP_IDLE = 8

# Advisory lock keys (any 64-bit numbers, the same on every machine): one writer at a time, one migrator.
WRITE_LOCK = 0x436C_6970_0001
MIGRATE_LOCK = 0x436C_6970_0002

IntegrityError = (sqlite3.IntegrityError, psycopg.IntegrityError)
DatabaseError = (sqlite3.Error, psycopg.Error)

_migrated: set[str] = set()
_migrate_lock = threading.Lock()
_idle: dict[str, list[psycopg.Connection]] = {}
_idle_pid = os.getpid()
_idle_lock = threading.Lock()


def is_postgres(target) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def dialect(target) -> str:
    """"postgresql" for a ``postgresql://`` URL, else "sqlite" (a file path)."""
    return "postgresql" if is_postgres(target) else "sqlite"


def error_line(exc: BaseException) -> str:
    """A database error in one line for people (psycopg's messages run over several)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def describe(target) -> str:
    """The target for people and logs: a file path, or the URL without its password."""
    if is_postgres(target):
        return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", target)
    return str(target)


def connect(target, migrate: bool = True):
    """Open the app DB (creating and migrating it on first use in this process, unless ``migrate`` is off)."""
    if is_postgres(target):
        conn, key = _open_postgres(target), target
    else:
        path = Path(target)
        conn, key = _open_sqlite(path), str(path.resolve())
    if migrate and key not in _migrated:
        with _migrate_lock:
            if key not in _migrated:
                apply_migrations(conn)
                _migrated.add(key)
    return conn


@contextlib.contextmanager
def session(target) -> Iterator:
    conn = connect(target)
    try:
        yield conn
    finally:
        conn.close()


def is_transient(exc: BaseException) -> bool:
    """A database problem that passes: SQLite busy/locked, or a PostgreSQL server that went away or is
    restarting (connection lost, shutdown, too many connections, a serialisation conflict)."""
    if isinstance(exc, sqlite3.OperationalError):
        return "locked" in str(exc) or "busy" in str(exc)
    return isinstance(exc, (psycopg.OperationalError, psycopg.errors.SerializationFailure,
                            psycopg.errors.DeadlockDetected))


def _open_sqlite(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.create_aggregate("string_agg", 2, _StringAgg)   # PostgreSQL's name for group_concat
    return conn


class _StringAgg:
    def __init__(self):
        self.parts: list[str] = []

    def step(self, value, separator):
        if value is not None:
            self.parts.append(str(value))
            self.separator = separator

    def finalize(self):
        return self.separator.join(self.parts) if self.parts else None


class Row(tuple):
    """A PostgreSQL row that reads like ``sqlite3.Row``: ``row[0]``, ``row["name"]``, ``dict(row)``."""

    def __new__(cls, values, names: list[str], index: dict[str, int]):
        row = super().__new__(cls, values)
        row._names, row._index = names, index
        return row

    def __getitem__(self, key):
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor):
    names = [column.name for column in cursor.description or ()]
    index = {name: i for i, name in enumerate(names)}
    return lambda values: Row(values, names, index)


class PostgresConnection:
    """A psycopg connection speaking the SQL layer's dialect (``?`` placeholders, sqlite3-like rows);
    ``close()`` keeps it for the process's next session when it is healthy and idle."""

    def __init__(self, raw: psycopg.Connection, url: str):
        self.raw, self.url = raw, url

    def execute(self, sql: str, params=()):
        cursor = self.raw.cursor()
        if params:
            cursor.execute(_pyformat(sql), _parameters(params))
        else:   # no parameters: psycopg sends the text as it is
            cursor.execute(sql)
        return cursor

    def executemany(self, sql: str, rows: Iterable):
        cursor = self.raw.cursor()
        cursor.executemany(_pyformat(sql), [_parameters(p) for p in rows])
        return cursor

    def close(self) -> None:
        raw, self.raw = self.raw, None
        if raw is None:
            return
        healthy = not raw.closed and not raw.broken and raw.info.transaction_status == TransactionStatus.IDLE
        with _idle_lock:
            kept = _idle.setdefault(self.url, [])
            if healthy and os.getpid() == _idle_pid and len(kept) < KEEP_IDLE:
                kept.append(raw)
                return
        _close_quietly(raw)


def _open_postgres(url: str) -> PostgresConnection:
    """A kept connection that still answers, else a new one (which fails at once while the server is
    away: the caller's error is the server's, not a wait in a pool).

    Why not psycopg_pool: it reconnects in the background with a growing delay and makes callers wait
    for it, so after an outage sessions stalled for seconds; here every session sees the server as it is."""
    global _idle_pid
    while True:
        with _idle_lock:
            if os.getpid() != _idle_pid:   # a forked child must not share its parent's sockets
                _idle.clear()
                _idle_pid = os.getpid()
            kept = _idle.get(url)
            raw = kept.pop() if kept else None
        if raw is None:
            return PostgresConnection(_new_postgres(url), url)
        try:
            raw.execute("")   # one round trip: a server restarted since has closed this socket
        except psycopg.Error:
            _close_quietly(raw)
            continue
        return PostgresConnection(raw, url)


def _new_postgres(url: str) -> psycopg.Connection:
    # Client-side binding: values are quoted into the statement, so an untyped "? IS NULL" works
    # as it does in SQLite (server-side binding could not infer the parameter's type).
    raw = psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor, row_factory=_row_factory,
                          connect_timeout=CONNECT_TIMEOUT_S, application_name="clipdesk")
    raw.adapters.register_loader("numeric", FloatLoader)   # SUM/AVG of integers: float, as in SQLite
    return raw


def _close_quietly(raw: psycopg.Connection) -> None:
    with contextlib.suppress(psycopg.Error):
        raw.close()


_TOKENS = re.compile(r"'(?:[^']|'')*'|\?|%|(?<!:):([A-Za-z_]\w*)")
_translated: dict[str, str] = {}


def _pyformat(sql: str) -> str:
    """``?`` -> ``%s``, ``:name`` -> ``%(name)s``, ``%`` -> ``%%``; inside string literals only ``%`` changes."""
    if (done := _translated.get(sql)) is None:
        def swap(match: re.Match) -> str:
            token = match.group(0)
            if token.startswith("'"):
                return token.replace("%", "%%")
            if token == "?":
                return "%s"
            if token == "%":
                return "%%"
            return f"%({match.group(1)})s"
        done = _translated[sql] = _TOKENS.sub(swap, sql)
    return done


def _parameters(params):
    if params is None or isinstance(params, dict):
        return params
    return tuple(params)


@contextlib.contextmanager
def transaction(conn) -> Iterator:
    if isinstance(conn, PostgresConnection):
        conn.execute("BEGIN")
        try:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK,))
        except BaseException:
            _rollback(conn)
            raise
    else:
        conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        _rollback(conn)
        raise
    conn.execute("COMMIT")


def serialised(conn):
    """A write that must take the write lock even alone: its own transaction, unless one is open.
    (SQLite's single statements take it anyway.)"""
    if isinstance(conn, PostgresConnection) and conn.raw.info.transaction_status == TransactionStatus.IDLE:
        return transaction(conn)
    return contextlib.nullcontext(conn)


def _rollback(conn) -> None:
    with contextlib.suppress(*DatabaseError):   # a lost connection has nothing left to roll back
        conn.execute("ROLLBACK")


@contextlib.contextmanager
def snapshot(conn) -> Iterator:
    """A read transaction: several SELECTs that see one consistent state (one poll = one snapshot)."""
    pg = isinstance(conn, PostgresConnection)
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" if pg else "BEGIN")
    try:
        yield conn
    finally:
        with contextlib.suppress(*DatabaseError) if pg else contextlib.nullcontext():
            conn.execute("COMMIT")


def apply_migrations(conn) -> list[int]:
    """Apply the migrations not yet recorded; return the versions applied."""
    if isinstance(conn, PostgresConnection):
        return _migrate_postgres(conn)
    return _migrate_sqlite(conn)


def applied_migrations(conn) -> list[int]:
    """The schema versions this database has, in order."""
    return [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()]


def migration_files(dialect_name: str) -> list[tuple[int, Path]]:
    folder = POSTGRES_MIGRATIONS_DIR if dialect_name == "postgresql" else MIGRATIONS_DIR
    return [(int(file.name.split("_", 1)[0]), file) for file in sorted(folder.glob("*.sql"))]


def _migrate_sqlite(conn: sqlite3.Connection) -> list[int]:
    """Foreign keys are off while a migration runs (SQLite can only add a constraint by rebuilding a
    table, and dropping the old one must not cascade to the rows that point at it); the migration
    commits only if every reference still holds."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
    applied = []
    conn.execute("PRAGMA foreign_keys=OFF")   # a no-op inside a transaction: set before each BEGIN
    try:
        for version, file in migration_files("sqlite"):
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


def _migrate_postgres(conn: PostgresConnection) -> list[int]:
    """Each file in one transaction; a session advisory lock makes machines starting together take turns."""
    applied = []
    conn.execute("SELECT pg_advisory_lock(?)", (MIGRATE_LOCK,))
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                     " applied_at DOUBLE PRECISION)")
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations").fetchall()}
        for version, file in migration_files("postgresql"):
            if version in done:
                continue
            conn.execute("BEGIN")
            try:
                conn.raw.execute(file.read_text(encoding="utf-8"))   # the whole script, no parameters
                conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                             (version, time.time()))
            except BaseException:
                _rollback(conn)
                raise
            conn.execute("COMMIT")
            applied.append(version)
    finally:
        with contextlib.suppress(*DatabaseError):
            conn.execute("SELECT pg_advisory_unlock(?)", (MIGRATE_LOCK,))
    return applied


def _statements(script: str) -> Iterable[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer
            buffer = ""
