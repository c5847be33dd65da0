"""Every SQL statement of the app database, with parameters.

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

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "db" / "migrations"
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
    """Apply the migrations not yet recorded; return the versions applied."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
    applied = []
    for file in sorted(MIGRATIONS_DIR.glob("*.sql")):
        version = int(file.name.split("_", 1)[0])
        with transaction(conn):
            if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
                continue
            for statement in _statements(file.read_text(encoding="utf-8")):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                         (version, time.time()))
            applied.append(version)
    return applied


def _statements(script: str) -> Iterable[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer
            buffer = ""


# --- episodes ---------------------------------------------------------------------------

def insert_episode(conn, episode_id: str, title: str, source_kind: str, source_uri: str, now: float) -> None:
    conn.execute(
        "INSERT INTO episodes (id, title, source_kind, source_uri, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?)", (episode_id, title, source_kind, source_uri, now, now))


def get_episode(conn, episode_id: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM episodes WHERE id = ?", (episode_id,)).fetchone()


def list_episodes(conn, limit: int = 200, include_deleted: bool = False) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT e.*, (SELECT COUNT(*) FROM clips c WHERE c.episode_id = e.id) AS clip_count"
        " FROM episodes e WHERE (? OR e.deleted_at IS NULL)"
        " ORDER BY e.created_at DESC LIMIT ?", (include_deleted, limit)).fetchall()


def set_episode_source(conn, episode_id: str, source_path: str, duration: float, media_json: str,
                       now: float) -> None:
    conn.execute("UPDATE episodes SET source_path = ?, duration = ?, media_json = ?, updated_at = ?"
                 " WHERE id = ?", (source_path, duration, media_json, now, episode_id))


def set_episode_status(conn, episode_id: str, status: str, now: float) -> None:
    conn.execute("UPDATE episodes SET status = ?, updated_at = ? WHERE id = ?", (status, now, episode_id))


def set_episode_language(conn, episode_id: str, language: str, now: float) -> None:
    conn.execute("UPDATE episodes SET language = ?, updated_at = ? WHERE id = ?", (language, now, episode_id))


def set_episode_enrichment(conn, episode_id: str, enrichment_json: str, now: float) -> None:
    conn.execute("UPDATE episodes SET enrichment_json = ?, updated_at = ? WHERE id = ?",
                 (enrichment_json, now, episode_id))


def set_episode_title_if_empty(conn, episode_id: str, title: str, now: float) -> None:
    conn.execute("UPDATE episodes SET title = ?, updated_at = ? WHERE id = ? AND title = ''",
                 (title, now, episode_id))


# --- jobs -------------------------------------------------------------------------------

def insert_job(conn, episode_id: str, priority: int, options_json: str, now: float) -> int:
    cursor = conn.execute("INSERT INTO jobs (episode_id, priority, options_json, created_at)"
                          " VALUES (?, ?, ?, ?)", (episode_id, priority, options_json, now))
    return cursor.lastrowid


def set_job_task_id(conn, job_id: int, task_id: str) -> None:
    conn.execute("UPDATE jobs SET huey_task_id = ? WHERE id = ?", (task_id, job_id))


def get_job(conn, job_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()


_JOB_VIEW = ("SELECT j.*, e.title AS episode_title, e.source_uri AS episode_source, e.duration AS episode_duration"
             " FROM jobs j JOIN episodes e ON e.id = j.episode_id")


def list_jobs(conn, status: str | None = None, limit: int = 100) -> list[sqlite3.Row]:
    """Jobs with their episode's title and source, newest first."""
    return conn.execute(_JOB_VIEW + " WHERE (? IS NULL OR j.status = ?) ORDER BY j.id DESC LIMIT ?",
                        (status, status, limit)).fetchall()


def get_job_view(conn, job_id: int) -> sqlite3.Row | None:
    """One job with its episode's title and source (the shape list_jobs returns)."""
    return conn.execute(_JOB_VIEW + " WHERE j.id = ?", (job_id,)).fetchone()


def jobs_for_episode(conn, episode_id: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM jobs WHERE episode_id = ? ORDER BY id", (episode_id,)).fetchall()


def count_jobs_by_status(conn) -> dict[str, int]:
    rows = conn.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status").fetchall()
    return {row["status"]: row["n"] for row in rows}


def start_job(conn, job_id: int, now: float) -> bool:
    """Mark a queued/retrying job running; False if it is finished or was cancelled."""
    cursor = conn.execute(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, error = NULL, error_kind = NULL,"
        " started_at = COALESCE(started_at, ?), heartbeat_at = ?, finished_at = NULL"
        " WHERE id = ? AND status IN ('queued', 'retrying', 'running') AND cancel_requested = 0",
        (now, now, job_id))
    return cursor.rowcount == 1


def set_job_stage(conn, job_id: int, stage: str, progress: float, now: float) -> None:
    conn.execute("UPDATE jobs SET stage = ?, stage_progress = 0, stage_started_at = ?,"
                 " progress = MAX(progress, ?), heartbeat_at = ? WHERE id = ?",
                 (stage, now, progress, now, job_id))


def set_job_progress(conn, job_id: int, stage_progress: float, progress: float,
                     eta_seconds: float | None, now: float) -> None:
    """Progress never goes backwards: the stored value only grows."""
    conn.execute("UPDATE jobs SET stage_progress = ?, progress = MAX(progress, ?), eta_seconds = ?,"
                 " heartbeat_at = ? WHERE id = ?", (stage_progress, progress, eta_seconds, now, job_id))


def finish_job(conn, job_id: int, status: str, now: float, error: str | None = None,
               error_kind: str | None = None) -> None:
    conn.execute("UPDATE jobs SET status = ?, error = ?, error_kind = ?, finished_at = ?,"
                 " eta_seconds = NULL, progress = CASE WHEN ? = 'succeeded' THEN 1.0 ELSE progress END"
                 " WHERE id = ?", (status, error, error_kind, now, status, job_id))


def requeue_job(conn, job_id: int, priority: int) -> bool:
    """Put a failed or cancelled job back in the queue (manual retry)."""
    cursor = conn.execute(
        "UPDATE jobs SET status = 'queued', cancel_requested = 0, error = NULL, error_kind = NULL,"
        " finished_at = NULL, eta_seconds = NULL, priority = ? WHERE id = ? AND status IN ('failed', 'cancelled')",
        (priority, job_id))
    return cursor.rowcount == 1


def request_cancel(conn, job_id: int, now: float) -> str | None:
    """Flag a job for cancellation; a queued job is cancelled at once. Returns the new status."""
    conn.execute("UPDATE jobs SET status = 'cancelled', cancel_requested = 1, finished_at = ?"
                 " WHERE id = ? AND status IN ('queued', 'retrying')", (now, job_id))
    conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status = 'running'", (job_id,))
    row = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return row["status"] if row else None


def is_cancel_requested(conn, job_id: int) -> bool:
    row = conn.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return bool(row and row["cancel_requested"])


# --- job events -------------------------------------------------------------------------

def add_event(conn, job_id: int, stage: str | None, kind: str, now: float, message: str | None = None,
              seconds: float | None = None, media_seconds: float | None = None) -> None:
    conn.execute("INSERT INTO job_events (job_id, stage, kind, message, seconds, media_seconds, created_at)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?)", (job_id, stage, kind, message, seconds, media_seconds, now))


def list_events(conn, job_id: int) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM job_events WHERE job_id = ? ORDER BY id", (job_id,)).fetchall()


def stage_rates(conn, recent: int = 20) -> dict[str, float]:
    """Seconds of work per second of media for each stage, pooled over its ``recent`` last runs."""
    rows = conn.execute(
        "SELECT stage, SUM(seconds) / SUM(media_seconds) AS rate FROM ("
        "  SELECT stage, seconds, media_seconds, ROW_NUMBER() OVER (PARTITION BY stage ORDER BY id DESC) AS n"
        "  FROM job_events WHERE kind = 'finished' AND media_seconds > 0 AND seconds IS NOT NULL"
        ") WHERE n <= ? GROUP BY stage", (recent,)).fetchall()
    return {row["stage"]: row["rate"] for row in rows if row["rate"] is not None}


# --- stage checkpoints ------------------------------------------------------------------

def completed_stages(conn, episode_id: str) -> set[str]:
    rows = conn.execute("SELECT stage FROM stage_checkpoints WHERE episode_id = ?", (episode_id,)).fetchall()
    return {row["stage"] for row in rows}


def mark_stage_done(conn, episode_id: str, stage: str, now: float) -> None:
    conn.execute("INSERT OR REPLACE INTO stage_checkpoints (episode_id, stage, finished_at) VALUES (?, ?, ?)",
                 (episode_id, stage, now))


# --- clips and renders --------------------------------------------------------------------

def replace_clips(conn, episode_id: str, clips: list[dict], now: float) -> None:
    conn.execute("DELETE FROM clips WHERE episode_id = ?", (episode_id,))
    conn.executemany(
        "INSERT INTO clips (id, episode_id, position, start, end, score, title, reason, created_at)"
        " VALUES (:id, :episode_id, :position, :start, :end, :score, :title, :reason, :created_at)",
        [dict(clip, episode_id=episode_id, position=i, created_at=now) for i, clip in enumerate(clips)])


def list_clips(conn, episode_id: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM clips WHERE episode_id = ? ORDER BY position", (episode_id,)).fetchall()


def set_clip_status(conn, clip_id: str, status: str) -> None:
    conn.execute("UPDATE clips SET status = ? WHERE id = ?", (status, clip_id))


def record_render(conn, clip_id: str, variant: str, path: str, width: int, height: int,
                  duration: float, size_bytes: int, now: float) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO renders (clip_id, variant, path, width, height, duration, size_bytes, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (clip_id, variant, path, width, height, duration, size_bytes, now))


def list_renders(conn, episode_id: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT r.* FROM renders r JOIN clips c ON c.id = r.clip_id"
                        " WHERE c.episode_id = ? ORDER BY c.position, r.variant", (episode_id,)).fetchall()


# --- workers ------------------------------------------------------------------------------

def worker_heartbeat(conn, worker_id: str, now: float) -> None:
    conn.execute("INSERT INTO workers (id, started_at, heartbeat_at) VALUES (?, ?, ?)"
                 " ON CONFLICT(id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
                 (worker_id, now, now))


def remove_worker(conn, worker_id: str) -> None:
    conn.execute("DELETE FROM workers WHERE id = ?", (worker_id,))


def list_workers(conn) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM workers ORDER BY heartbeat_at DESC").fetchall()
