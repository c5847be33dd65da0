"""Whole tables, for ``db copy`` (an installation moving from SQLite to PostgreSQL): the app's tables in an
order that keeps every reference valid, and their rows read, written and counted as they are."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pipeline.db.connection import PostgresConnection

# Parents before children (every foreign key points up this list). tests/test_db_copy.py holds it to the schema.
APP_TABLES = (
    "episodes", "jobs", "job_events", "job_event_summaries", "stage_checkpoints", "clips", "renders",
    "episode_renders", "render_units", "workers", "feeds", "feed_entries", "inbox_files", "webhook_deliveries",
    "webhook_attempts", "api_keys", "idempotency_keys", "retention_deletions", "leases",
)
# Tables whose integer ``id`` the database hands out: after rows come in with their ids, the counter moves past them.
GENERATED_IDS = ("jobs", "job_events", "render_units", "feeds", "feed_entries", "webhook_deliveries",
                 "webhook_attempts", "api_keys", "retention_deletions")
BATCH = 1000


def _known(table: str) -> str:
    if table not in APP_TABLES:   # names go into the statement text: only our own
        raise ValueError(f"not an app table: {table!r}")
    return table


def schema_tables(conn) -> set[str]:
    """The tables the migrations created (not the migration log, Huey's queue or SQLite's own)."""
    if isinstance(conn, PostgresConnection):
        rows = conn.execute("SELECT table_name FROM information_schema.tables"
                            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'").fetchall()
    else:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {row[0] for row in rows
            if row[0] != "schema_migrations" and not row[0].startswith(("sqlite_", "huey_"))}


def present_tables(conn) -> tuple[str, ...]:
    """``APP_TABLES`` that exist here (an older schema may lack the newest)."""
    existing = schema_tables(conn)
    return tuple(table for table in APP_TABLES if table in existing)


def count_rows(conn, table: str) -> int:
    return conn.execute(f"SELECT COUNT(*) FROM {_known(table)}").fetchone()[0]


def table_columns(conn, table: str) -> list[str]:
    cursor = conn.execute(f"SELECT * FROM {_known(table)} WHERE 1 = 0")
    return [column[0] for column in cursor.description]


def read_rows(conn, table: str, names: list[str]) -> Iterator[tuple]:
    """Every row, in primary-key order, ``BATCH`` at a time (an installation's events can be millions)."""
    quoted = ", ".join(f'"{name}"' for name in names)
    cursor = conn.execute(f"SELECT {quoted} FROM {_known(table)} ORDER BY 1")
    while batch := cursor.fetchmany(BATCH):
        yield from (tuple(row) for row in batch)


def insert_rows(conn, table: str, names: list[str], rows: Iterable[tuple]) -> int:
    quoted = ", ".join(f'"{name}"' for name in names)
    statement = f"INSERT INTO {_known(table)} ({quoted}) VALUES ({', '.join('?' * len(names))})"
    count, batch = 0, []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            conn.executemany(statement, batch)
            count, batch = count + len(batch), []
    if batch:
        conn.executemany(statement, batch)
        count += len(batch)
    return count


def move_id_counter(conn, table: str) -> None:
    """After rows arrived with their ids: new rows get ids above them (PostgreSQL identity columns)."""
    if isinstance(conn, PostgresConnection):
        conn.execute(f"SELECT setval(pg_get_serial_sequence('{_known(table)}', 'id'),"
                     f" COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)")
