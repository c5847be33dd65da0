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

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "db" / "migrations"
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


def list_episodes(conn, limit: int = 200, include_deleted: bool = False, search: str = "") -> list[sqlite3.Row]:
    """Newest first; ``search`` matches title, source or id."""
    pattern = f"%{search}%" if search else None
    return conn.execute(
        "SELECT e.*, (SELECT COUNT(*) FROM clips c WHERE c.episode_id = e.id) AS clip_count"
        " FROM episodes e WHERE (? OR e.deleted_at IS NULL)"
        " AND (? IS NULL OR e.title LIKE ? OR e.source_uri LIKE ? OR e.id = ?)"
        " ORDER BY e.created_at DESC LIMIT ?", (include_deleted, pattern, pattern, pattern, search, limit)).fetchall()


def set_episode_deleted(conn, episode_id: str, deleted_at: float | None, now: float) -> None:
    """Soft delete (a time) or restore (None)."""
    conn.execute("UPDATE episodes SET deleted_at = ?, updated_at = ? WHERE id = ?", (deleted_at, now, episode_id))


def delete_episode(conn, episode_id: str) -> None:
    """Hard delete: the episode and, by cascade, its jobs, events, checkpoints, clips and renders."""
    conn.execute("DELETE FROM episodes WHERE id = ?", (episode_id,))


def set_episode_source(conn, episode_id: str, source_path: str, duration: float, media_json: str,
                       now: float) -> None:
    conn.execute("UPDATE episodes SET source_path = ?, duration = ?, media_json = ?, updated_at = ?"
                 " WHERE id = ?", (source_path, duration, media_json, now, episode_id))


def set_episode_declared_duration(conn, episode_id: str, duration: float) -> None:
    """The length a file's header claims, known at enqueue (ingest and audio extraction correct it)."""
    conn.execute("UPDATE episodes SET duration = ? WHERE id = ?", (duration, episode_id))


def set_episode_duration(conn, episode_id: str, duration: float, media_json: str, now: float) -> None:
    conn.execute("UPDATE episodes SET duration = ?, media_json = ?, updated_at = ? WHERE id = ?",
                 (duration, media_json, now, episode_id))


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

def insert_job(conn, episode_id: str, priority: int, options_json: str, now: float, max_attempts: int = 4) -> int:
    cursor = conn.execute("INSERT INTO jobs (episode_id, priority, options_json, created_at, max_attempts)"
                          " VALUES (?, ?, ?, ?, ?)", (episode_id, priority, options_json, now, max_attempts))
    return cursor.lastrowid


def set_job_task_id(conn, job_id: int, task_id: str) -> None:
    conn.execute("UPDATE jobs SET huey_task_id = ? WHERE id = ?", (task_id, job_id))


def get_job(conn, job_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()


_JOB_VIEW = ("SELECT j.*, e.title AS episode_title, e.source_uri AS episode_source, e.duration AS episode_duration"
             " FROM jobs j JOIN episodes e ON e.id = j.episode_id")


def list_jobs(conn, status: str | None = None, limit: int = 100, search: str = "") -> list[sqlite3.Row]:
    """Jobs with their episode's title and source, newest first; ``search`` matches title, source or id."""
    pattern = f"%{search}%" if search else None
    return conn.execute(
        _JOB_VIEW + " WHERE (? IS NULL OR j.status = ?)"
        " AND (? IS NULL OR e.title LIKE ? OR e.source_uri LIKE ? OR e.id = ? OR CAST(j.id AS TEXT) = ?)"
        " ORDER BY j.id DESC LIMIT ?",
        (status, status, pattern, pattern, pattern, search, search, limit)).fetchall()


def get_job_view(conn, job_id: int) -> sqlite3.Row | None:
    """One job with its episode's title and source (the shape list_jobs returns)."""
    return conn.execute(_JOB_VIEW + " WHERE j.id = ?", (job_id,)).fetchone()


def jobs_for_episode(conn, episode_id: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM jobs WHERE episode_id = ? ORDER BY id", (episode_id,)).fetchall()


def count_jobs_by_status(conn) -> dict[str, int]:
    rows = conn.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status").fetchall()
    return {row["status"]: row["n"] for row in rows}


def start_job(conn, job_id: int, now: float, worker_id: str | None = None) -> bool:
    """Claim a job to run its next stage; False when another task has it or it is not runnable.

    Claimable: a queued job, a retrying one whose time has come (both count an attempt), or a
    running one between stages (no worker holds it and no clip is rendering). Only one task can
    win, so a job dispatched twice (say by the reaper and a late original task) still runs once.
    """
    cursor = conn.execute(
        "UPDATE jobs SET attempts = attempts + (status != 'running'), status = 'running', error = NULL,"
        " error_kind = NULL, started_at = COALESCE(started_at, ?), heartbeat_at = ?, finished_at = NULL,"
        " next_attempt_at = NULL, worker_id = ?"
        " WHERE id = ? AND cancel_requested = 0"
        " AND (status = 'queued' OR (status = 'retrying' AND COALESCE(next_attempt_at, 0) <= ?)"
        "      OR (status = 'running' AND worker_id IS NULL AND NOT EXISTS ("
        "          SELECT 1 FROM render_units u WHERE u.job_id = jobs.id AND u.status IN ('queued', 'running'))))",
        (now, now, worker_id, job_id, now))
    return cursor.rowcount == 1


def release_job(conn, job_id: int) -> None:
    """A stage ended well: the job stays running, waiting in the queue for its next unit."""
    conn.execute("UPDATE jobs SET worker_id = NULL WHERE id = ? AND status = 'running'", (job_id,))


def take_job_after_units(conn, job_id: int, worker_id: str | None, now: float) -> bool:
    """The task that ended a job's last clip unit takes the job over to close its render stage."""
    cursor = conn.execute("UPDATE jobs SET worker_id = ?, heartbeat_at = ? WHERE id = ? AND status = 'running'"
                          " AND worker_id IS NULL", (worker_id, now, job_id))
    return cursor.rowcount == 1


def failures_by_kind(conn) -> dict[str, int]:
    rows = conn.execute("SELECT COALESCE(error_kind, 'internal') AS kind, COUNT(*) AS n FROM jobs"
                        " WHERE status = 'failed' GROUP BY kind").fetchall()
    return {row["kind"]: row["n"] for row in rows}


def queue_latencies(conn, recent: int = 200) -> list[float]:
    """Seconds from enqueue to first start for the ``recent`` last jobs that started."""
    rows = conn.execute("SELECT started_at - created_at AS latency FROM jobs WHERE started_at IS NOT NULL"
                        " ORDER BY id DESC LIMIT ?", (recent,)).fetchall()
    return [row["latency"] for row in rows]


def touch_job(conn, job_id: int, now: float) -> None:
    """The running job's heartbeat: proves its worker is alive even while a stage is silent."""
    conn.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND status = 'running'", (now, job_id))


def schedule_retry(conn, job_id: int, next_attempt_at: float, error: str, error_kind: str) -> None:
    conn.execute("UPDATE jobs SET status = 'retrying', next_attempt_at = ?, error = ?, error_kind = ?,"
                 " eta_seconds = NULL WHERE id = ?", (next_attempt_at, error, error_kind, job_id))


def return_to_queue(conn, job_id: int) -> bool:
    """A running job goes back to the queue (worker shut down or died); completed stages stay done."""
    cursor = conn.execute("UPDATE jobs SET status = 'queued', eta_seconds = NULL, worker_id = NULL"
                          " WHERE id = ? AND status = 'running'", (job_id,))
    return cursor.rowcount == 1


def orphan_candidates(conn) -> list[sqlite3.Row]:
    """Unfinished jobs, for the reaper to check against workers and the queue."""
    return conn.execute("SELECT j.*, (SELECT COUNT(*) FROM render_units u WHERE u.job_id = j.id"
                        " AND u.status IN ('queued', 'running')) AS active_units"
                        " FROM jobs j WHERE j.status IN ('queued', 'running', 'retrying')"
                        " ORDER BY j.priority DESC, j.id").fetchall()


def active_jobs_for_episode(conn, episode_id: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM jobs WHERE episode_id = ? AND status IN ('queued', 'running', 'retrying')",
                        (episode_id,)).fetchall()


def last_job_options(conn, episode_id: str) -> str | None:
    row = conn.execute("SELECT options_json FROM jobs WHERE episode_id = ? ORDER BY id DESC LIMIT 1",
                       (episode_id,)).fetchone()
    return row["options_json"] if row else None


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


def requeue_job(conn, job_id: int, priority: int, more_attempts: int) -> bool:
    """Put a failed, cancelled or waiting-to-retry job back in the queue now (manual retry).

    Attempts keep counting (the history stays visible) and it gets ``more_attempts`` fresh ones.
    """
    cursor = conn.execute(
        "UPDATE jobs SET status = 'queued', cancel_requested = 0, error = NULL, error_kind = NULL,"
        " max_attempts = attempts + ?, finished_at = NULL, eta_seconds = NULL, next_attempt_at = NULL, priority = ?"
        " WHERE id = ? AND status IN ('failed', 'cancelled', 'retrying')",
        (more_attempts, priority, job_id))
    return cursor.rowcount == 1


def request_cancel(conn, job_id: int, now: float) -> str | None:
    """Flag a job for cancellation. A job no task is working on (queued, waiting to retry, or
    between stages with no clip rendering) is cancelled at once, with its queued clip units.
    Returns the new status."""
    conn.execute("UPDATE render_units SET status = 'cancelled', finished_at = ? WHERE job_id = ?"
                 " AND status = 'queued'", (now, job_id))
    conn.execute("UPDATE jobs SET status = 'cancelled', cancel_requested = 1, finished_at = ?, eta_seconds = NULL"
                 " WHERE id = ? AND (status IN ('queued', 'retrying') OR (status = 'running' AND worker_id IS NULL"
                 " AND NOT EXISTS (SELECT 1 FROM render_units u WHERE u.job_id = jobs.id AND u.status = 'running')))",
                 (now, job_id))
    conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status = 'running'", (job_id,))
    row = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return row["status"] if row else None


def is_cancel_requested(conn, job_id: int) -> bool:
    row = conn.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return bool(row and row["cancel_requested"])


# --- job events -------------------------------------------------------------------------

def add_event(conn, job_id: int, stage: str | None, kind: str, now: float, message: str | None = None,
              seconds: float | None = None, media_seconds: float | None = None, host: str | None = None,
              cpu_share: float | None = None) -> None:
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
            " ORDER BY id DESC LIMIT ?)", (kind, stage, only_host, only_host, recent)).fetchone()[0]

    rates = {}
    for stage in _finished_stages(conn):
        kind = "clip_finished" if stage == "render" else "finished"
        value = (rate(kind, stage, host) if host else None) or rate(kind, stage, None)
        if value is not None:
            rates[stage] = value
    return rates


def _finished_stages(conn) -> list[str]:
    """The stages with a finished run: a skip-scan of the (kind, stage) index."""
    return [row["stage"] for row in conn.execute(
        "WITH RECURSIVE s(stage) AS ("
        "  SELECT MIN(stage) FROM job_events WHERE kind = 'finished'"
        "  UNION ALL"
        "  SELECT (SELECT MIN(stage) FROM job_events WHERE kind = 'finished' AND stage > s.stage)"
        "  FROM s WHERE s.stage IS NOT NULL"
        ") SELECT stage FROM s WHERE stage IS NOT NULL").fetchall()]


def clip_totals(conn, episode_id: str) -> tuple[float, int]:
    """Total length and number of the episode's clips that are not rejected."""
    row = conn.execute("SELECT COALESCE(SUM(end - start), 0), COUNT(*) FROM clips WHERE episode_id = ?"
                       " AND status != 'rejected'", (episode_id,)).fetchone()
    return row[0], row[1]


def typical_media_seconds(conn, recent: int = 20) -> float | None:
    """Mean duration of the last ``recent`` episodes with a known duration (for jobs not yet probed)."""
    row = conn.execute("SELECT AVG(duration) AS seconds FROM (SELECT duration FROM episodes WHERE duration > 0"
                       " ORDER BY created_at DESC LIMIT ?)", (recent,)).fetchone()
    return row["seconds"]


def unfinished_jobs(conn) -> list[sqlite3.Row]:
    """Queued, running and retrying jobs in queue order, with what their forecast needs."""
    return conn.execute(
        "SELECT j.id, j.status, j.priority, j.stage, j.stage_started_at, j.stage_progress, j.eta_seconds,"
        " j.next_attempt_at, j.options_json, e.duration,"
        " (SELECT SUM(c.end - c.start) FROM clips c WHERE c.episode_id = j.episode_id AND c.status != 'rejected')"
        "   AS clip_seconds,"
        " (SELECT COUNT(*) FROM clips c WHERE c.episode_id = j.episode_id AND c.status != 'rejected') AS clip_count,"
        " (SELECT group_concat(stage) FROM stage_checkpoints s WHERE s.episode_id = j.episode_id) AS done_stages"
        " FROM jobs j JOIN episodes e ON e.id = j.episode_id"
        " WHERE j.status IN ('queued', 'running', 'retrying') ORDER BY j.priority DESC, j.id").fetchall()


# --- render units: one queued task per clip -------------------------------------------------

def replace_units(conn, job_id: int, clips: list[tuple[str, float]], priority: int, now: float) -> list[int]:
    """Start a fan-out: drop the job's ended units of earlier attempts, add one queued unit per
    (clip_id, clip_seconds). Returns the new unit ids."""
    conn.execute("DELETE FROM render_units WHERE job_id = ? AND status NOT IN ('queued', 'running')", (job_id,))
    return [conn.execute("INSERT INTO render_units (job_id, clip_id, priority, clip_seconds, created_at)"
                         " VALUES (?, ?, ?, ?, ?)", (job_id, clip_id, priority, seconds, now)).lastrowid
            for clip_id, seconds in clips]


def set_unit_task_id(conn, unit_id: int, task_id: str) -> None:
    conn.execute("UPDATE render_units SET huey_task_id = ? WHERE id = ?", (task_id, unit_id))


def get_unit(conn, unit_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM render_units WHERE id = ?", (unit_id,)).fetchone()


def list_units(conn, job_id: int) -> list[sqlite3.Row]:
    return conn.execute("SELECT u.*, c.title AS clip_title FROM render_units u JOIN clips c ON c.id = u.clip_id"
                        " WHERE u.job_id = ? ORDER BY u.id", (job_id,)).fetchall()


def claim_unit(conn, unit_id: int, worker_id: str | None, now: float) -> bool:
    cursor = conn.execute("UPDATE render_units SET status = 'running', attempts = attempts + 1, worker_id = ?,"
                          " started_at = ?, heartbeat_at = ?, progress = 0 WHERE id = ? AND status = 'queued'",
                          (worker_id, now, now, unit_id))
    return cursor.rowcount == 1


def touch_unit(conn, unit_id: int, now: float) -> None:
    conn.execute("UPDATE render_units SET heartbeat_at = ? WHERE id = ? AND status = 'running'", (now, unit_id))


def set_unit_progress(conn, unit_id: int, progress: float, now: float) -> None:
    conn.execute("UPDATE render_units SET progress = ?, heartbeat_at = ? WHERE id = ?", (progress, now, unit_id))


def end_unit(conn, unit_id: int, status: str, now: float, error: str | None = None,
             error_kind: str | None = None) -> None:
    conn.execute("UPDATE render_units SET status = ?, error = ?, error_kind = ?, finished_at = ?, worker_id = NULL,"
                 " progress = CASE WHEN ? = 'done' THEN 1.0 ELSE progress END WHERE id = ?",
                 (status, error, error_kind, now, status, unit_id))


def return_unit_to_queue(conn, unit_id: int) -> bool:
    cursor = conn.execute("UPDATE render_units SET status = 'queued', worker_id = NULL WHERE id = ?"
                          " AND status = 'running'", (unit_id,))
    return cursor.rowcount == 1


def active_unit_count(conn, job_id: int) -> int:
    return conn.execute("SELECT COUNT(*) FROM render_units WHERE job_id = ? AND status IN ('queued', 'running')",
                        (job_id,)).fetchone()[0]


def units_progress(conn, job_id: int) -> float:
    """The job's render progress: its units' progress weighted by clip length."""
    row = conn.execute("SELECT SUM(CASE WHEN status = 'done' THEN 1.0 ELSE progress END * clip_seconds)"
                       " / SUM(clip_seconds) FROM render_units WHERE job_id = ?", (job_id,)).fetchone()
    return row[0] or 0.0


def unit_orphan_candidates(conn) -> list[sqlite3.Row]:
    return conn.execute("SELECT u.*, j.max_attempts, j.cancel_requested FROM render_units u"
                        " JOIN jobs j ON j.id = u.job_id WHERE u.status IN ('queued', 'running')"
                        " ORDER BY u.priority DESC, u.id").fetchall()


# --- stage checkpoints ------------------------------------------------------------------

def completed_stages(conn, episode_id: str) -> set[str]:
    rows = conn.execute("SELECT stage FROM stage_checkpoints WHERE episode_id = ?", (episode_id,)).fetchall()
    return {row["stage"] for row in rows}


def mark_stage_done(conn, episode_id: str, stage: str, now: float) -> None:
    conn.execute("INSERT OR REPLACE INTO stage_checkpoints (episode_id, stage, finished_at) VALUES (?, ?, ?)",
                 (episode_id, stage, now))


def clear_stages(conn, episode_id: str, stages: Iterable[str]) -> None:
    conn.executemany("DELETE FROM stage_checkpoints WHERE episode_id = ? AND stage = ?",
                     [(episode_id, stage) for stage in stages])


# --- clips and renders --------------------------------------------------------------------

def list_clips(conn, episode_id: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM clips WHERE episode_id = ? ORDER BY position", (episode_id,)).fetchall()


def record_render(conn, clip_id: str, variant: str, path: str, width: int, height: int,
                  duration: float, size_bytes: int, now: float) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO renders (clip_id, variant, path, width, height, duration, size_bytes, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (clip_id, variant, path, width, height, duration, size_bytes, now))


def list_renders(conn, episode_id: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT r.* FROM renders r JOIN clips c ON c.id = r.clip_id"
                        " WHERE c.episode_id = ? ORDER BY c.position, r.variant", (episode_id,)).fetchall()


# --- workers ------------------------------------------------------------------------------

def worker_heartbeat(conn, worker_id: str, now: float, threads: int = 1) -> None:
    conn.execute("INSERT INTO workers (id, started_at, heartbeat_at, threads) VALUES (?, ?, ?, ?)"
                 " ON CONFLICT(id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, threads = excluded.threads",
                 (worker_id, now, now, threads))


def remove_worker(conn, worker_id: str) -> None:
    conn.execute("DELETE FROM workers WHERE id = ?", (worker_id,))


def list_workers(conn) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM workers ORDER BY heartbeat_at DESC").fetchall()


# --- dashboard (issue 6) ------------------------------------------------------------------

@contextlib.contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A read transaction: several SELECTs that see one consistent state (one poll = one snapshot)."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def throughput_by_day(conn, since: float) -> list[sqlite3.Row]:
    """Per UTC day since ``since``: episodes whose job succeeded and their media seconds."""
    return conn.execute(
        "SELECT day, COUNT(*) AS episodes, COALESCE(SUM(duration), 0) AS media_seconds FROM ("
        "  SELECT date(MAX(j.finished_at), 'unixepoch') AS day, e.duration AS duration"
        "  FROM jobs j JOIN episodes e ON e.id = j.episode_id"
        "  WHERE j.status = 'succeeded' AND j.finished_at >= ? GROUP BY j.episode_id"
        ") GROUP BY day ORDER BY day", (since,)).fetchall()


def media_seconds_processed(conn) -> float:
    """Total duration of the episodes with at least one succeeded job (each counted once)."""
    row = conn.execute(
        "SELECT COALESCE(SUM(duration), 0) AS seconds FROM episodes"
        " WHERE id IN (SELECT episode_id FROM jobs WHERE status = 'succeeded')").fetchone()
    return float(row["seconds"])


def stage_durations(conn, recent: int = 50) -> list[dict]:
    """Per stage, over its ``recent`` last completed runs: run count, mean seconds, seconds per media hour.

    The stages come from a skip-scan of the (kind, stage) index and each stage's last runs from
    the same index, newest first, so the cost does not grow with the history.
    """
    stages = _finished_stages(conn)
    result = []
    for stage in stages:
        row = conn.execute(
            "SELECT COUNT(*) AS runs, AVG(seconds) AS mean_seconds,"
            " SUM(seconds) * 3600.0 / NULLIF(SUM(media_seconds), 0) AS seconds_per_media_hour FROM ("
            "  SELECT seconds, media_seconds FROM job_events WHERE kind = 'finished' AND stage = ?"
            "  AND seconds IS NOT NULL ORDER BY id DESC LIMIT ?)", (stage, recent)).fetchone()
        if row["runs"]:
            result.append({"stage": stage, **dict(row)})
    return result


# --- enrichment and review (issue 4) ------------------------------------------------------

def replace_clips(conn, episode_id: str, clips: list[dict], now: float) -> None:
    """Swap an episode's clips for new suggestions (their renders go with them, by cascade).

    ``source``, ``hashtags_json`` and ``score_detail_json`` are optional per clip.
    """
    conn.execute("DELETE FROM clips WHERE episode_id = ?", (episode_id,))
    conn.executemany(
        "INSERT INTO clips (id, episode_id, position, start, end, score, title, reason, source, hashtags_json,"
        " score_detail_json, created_at) VALUES (:id, :episode_id, :position, :start, :end, :score, :title,"
        " :reason, :source, :hashtags_json, :score_detail_json, :created_at)",
        [{"source": "heuristic", "hashtags_json": "[]", "score_detail_json": None, **clip,
          "episode_id": episode_id, "position": i, "created_at": now} for i, clip in enumerate(clips)])


def get_clip(conn, clip_id: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM clips WHERE id = ?", (clip_id,)).fetchone()


def set_clip_review_status(conn, clip_id: str, status: str, now: float) -> None:
    conn.execute("UPDATE clips SET status = ?, edited_at = ? WHERE id = ?", (status, now, clip_id))


def set_clip_bounds(conn, clip_id: str, start: float, end: float, now: float) -> None:
    conn.execute("UPDATE clips SET start = ?, end = ?, edited_at = ? WHERE id = ?", (start, end, now, clip_id))


def set_clip_render_choices(conn, clip_id: str, reframe: str | None, caption_style: str | None,
                            now: float) -> None:
    conn.execute("UPDATE clips SET reframe = ?, caption_style = ?, edited_at = ? WHERE id = ?",
                 (reframe, caption_style, now, clip_id))


def list_clip_renders(conn, clip_id: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM renders WHERE clip_id = ? ORDER BY variant", (clip_id,)).fetchall()


def delete_clip_renders(conn, clip_id: str) -> None:
    conn.execute("DELETE FROM renders WHERE clip_id = ?", (clip_id,))


# --- ingestion and automation (issue 8) ---------------------------------------------------

def set_episode_metadata(conn, episode_id: str, metadata_json: str, now: float) -> None:
    conn.execute("UPDATE episodes SET metadata_json = ?, updated_at = ? WHERE id = ?",
                 (metadata_json, now, episode_id))


def set_episode_download(conn, episode_id: str, download_json: str, now: float) -> None:
    conn.execute("UPDATE episodes SET download_json = ?, updated_at = ? WHERE id = ?",
                 (download_json, now, episode_id))


def set_episode_source_key(conn, episode_id: str, source_key: str) -> None:
    conn.execute("UPDATE episodes SET source_key = ? WHERE id = ?", (source_key, episode_id))


def find_episode_by_source_key(conn, source_key: str) -> sqlite3.Row | None:
    """The newest episode (not deleted) that came from this normalised URL."""
    return conn.execute("SELECT * FROM episodes WHERE source_key = ? AND deleted_at IS NULL"
                        " ORDER BY created_at DESC LIMIT 1", (source_key,)).fetchone()


def insert_feed(conn, url: str, source_key: str, title: str, kind: str, options_json: str,
                interval_minutes: int, next_check_at: float, now: float) -> int:
    cursor = conn.execute(
        "INSERT INTO feeds (url, source_key, title, kind, options_json, interval_minutes, next_check_at,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (url, source_key, title, kind, options_json, interval_minutes, next_check_at, now))
    return cursor.lastrowid


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
        "INSERT OR IGNORE INTO feed_entries (feed_id, entry_id, url, title, published_at, seen_at)"
        " VALUES (?, ?, ?, ?, ?, ?)", (feed_id, entry_id, url, title, published_at, now))
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
                          " VALUES (?, ?, ?, ?, ?, ?)", (job_id, url, event, body, now, now))
    return cursor.lastrowid


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
                                now: float) -> None:
    conn.execute("UPDATE webhook_deliveries SET status = ?, last_error = ?, next_attempt_at = ?,"
                 " delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END WHERE id = ?",
                 (status, error, next_attempt_at, status, now, delivery_id))


def due_webhook_delivery_ids(conn, now: float) -> list[int]:
    rows = conn.execute("SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ?"
                        " ORDER BY id", (now,)).fetchall()
    return [row["id"] for row in rows]


def list_webhook_deliveries(conn, job_id: int) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM webhook_deliveries WHERE job_id = ? ORDER BY id", (job_id,)).fetchall()


def list_webhook_attempts(conn, delivery_id: int) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM webhook_attempts WHERE delivery_id = ? ORDER BY id",
                        (delivery_id,)).fetchall()


def set_episode_title(conn, episode_id: str, title: str, now: float) -> None:
    conn.execute("UPDATE episodes SET title = ?, updated_at = ? WHERE id = ?", (title, now, episode_id))


# --- rendering (issue 5) ------------------------------------------------------------------

def record_episode_render(conn, episode_id: str, kind: str, path: str, width: int, height: int,
                          duration: float, size_bytes: int, now: float) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO episode_renders (episode_id, kind, path, width, height, duration, size_bytes,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (episode_id, kind, path, width, height, duration, size_bytes, now))


def list_episode_renders(conn, episode_id: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM episode_renders WHERE episode_id = ? ORDER BY kind",
                        (episode_id,)).fetchall()
