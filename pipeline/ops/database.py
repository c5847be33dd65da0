"""The app database as a whole: migrate it, and move a SQLite installation into PostgreSQL.

``copy_to`` is how a user who outgrows one machine keeps their history: every app table (episodes,
jobs, events, clips, renders, feeds, keys, learned rates...) is copied row for row, ids included,
into an empty PostgreSQL database, in one transaction, and the row counts of both sides are compared
before it commits. Huey's queue is not copied: the reaper of the first worker on the new database
puts every unfinished job back on the queue.
"""

from __future__ import annotations

import time

from pipeline import db
from pipeline.config import Settings
from pipeline.errors import BadInput
from pipeline.jobs import workers


def migrate(settings: Settings) -> dict:
    """Apply the migrations the configured database lacks; report the backend and the versions."""
    conn = db.connect(settings.app_db, migrate=False)
    try:
        applied = db.apply_migrations(conn)
        versions = db.applied_migrations(conn)
    finally:
        conn.close()
    return {"database": db.describe(settings.app_db), "dialect": db.dialect(settings.app_db),
            "applied": applied, "version": max(versions, default=0), "versions": versions}


def copy_to(settings: Settings, target_url: str) -> dict:
    """Copy this installation's database into the empty PostgreSQL database at ``target_url``."""
    if not db.is_postgres(target_url):
        raise BadInput(f"db copy --to needs a postgresql:// URL, got {target_url!r}")
    if settings.uses_postgres and settings.database.url == target_url:
        raise BadInput("db copy --to names the database this installation already uses")
    started = time.monotonic()
    with db.session(settings.app_db) as source:
        alive = workers.liveness(settings, source, time.time())["workers_alive"]
        if alive:
            raise BadInput(f"{alive} worker(s) are still running on {db.describe(settings.app_db)}: stop them"
                           " (and the dashboard and API) first, so nothing changes while it is copied")
        try:
            target = db.connect(target_url)
        except db.DatabaseError as exc:
            raise BadInput(f"cannot open {db.describe(target_url)}: {exc}") from exc
        try:
            counts = _copy(source, target, target_url)
        finally:
            target.close()
    return {"from": db.describe(settings.app_db), "to": db.describe(target_url), "tables": counts,
            "rows": sum(c["rows"] for c in counts.values()), "seconds": round(time.monotonic() - started, 2)}


def _copy(source, target, target_url: str) -> dict[str, dict]:
    tables = db.present_tables(source)
    with db.transaction(target):
        occupied = {t: n for t in db.present_tables(target) if (n := db.count_rows(target, t))}
        if occupied:
            listed = ", ".join(f"{t} ({n})" for t, n in occupied.items())
            raise BadInput(f"{db.describe(target_url)} is not empty: {listed}. Copy into a new, empty database.")
        counts = {}
        with db.snapshot(source):
            for table in tables:
                names = db.table_columns(source, table)
                copied = db.insert_rows(target, table, names, db.read_rows(source, table, names))
                counts[table] = {"source": db.count_rows(source, table),
                                 "target": db.count_rows(target, table), "rows": copied}
        for table in db.GENERATED_IDS:
            if table in tables:
                db.move_id_counter(target, table)
        if mismatched := [t for t, c in counts.items() if not c["source"] == c["target"] == c["rows"]]:
            raise BadInput("row counts differ after the copy, nothing was kept: "
                           + ", ".join(f"{t} {counts[t]['source']} -> {counts[t]['target']}" for t in mismatched))
    return counts

