"""Episodes: their source, media facts, enrichment and status, and which stages are done (checkpoints)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable


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
        " AND (? IS NULL OR lower(e.title) LIKE lower(?) OR lower(e.source_uri) LIKE lower(?) OR e.id = ?)"
        " ORDER BY e.created_at DESC LIMIT ?", (include_deleted, pattern, pattern, pattern, search, limit)).fetchall()


def set_episode_deleted(conn, episode_id: str, deleted_at: float | None, now: float) -> None:
    """Soft delete (a time) or restore (None)."""
    conn.execute("UPDATE episodes SET deleted_at = ?, updated_at = ? WHERE id = ?", (deleted_at, now, episode_id))


def delete_episode(conn, episode_id: str) -> None:
    """Hard delete: the episode and, by cascade, its jobs, events, checkpoints, clips and renders."""
    conn.execute("DELETE FROM episodes WHERE id = ?", (episode_id,))


def set_episode_source(conn, episode_id: str, source_path: str, duration: float, media_json: str,
                       now: float) -> None:
    """The ingested source is in place (again, after a retention cleanup: ``source_deleted_at`` is cleared)."""
    conn.execute("UPDATE episodes SET source_path = ?, duration = ?, media_json = ?, source_deleted_at = NULL,"
                 " updated_at = ? WHERE id = ?", (source_path, duration, media_json, now, episode_id))


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


def typical_media_seconds(conn, recent: int = 20) -> float | None:
    """Mean duration of the last ``recent`` episodes with a known duration (for jobs not yet probed)."""
    row = conn.execute("SELECT AVG(duration) AS seconds FROM (SELECT duration FROM episodes WHERE duration > 0"
                       " ORDER BY created_at DESC LIMIT ?) AS recent", (recent,)).fetchone()
    return row["seconds"]


def completed_stages(conn, episode_id: str) -> set[str]:
    rows = conn.execute("SELECT stage FROM stage_checkpoints WHERE episode_id = ?", (episode_id,)).fetchall()
    return {row["stage"] for row in rows}


def mark_stage_done(conn, episode_id: str, stage: str, now: float) -> None:
    conn.execute("INSERT INTO stage_checkpoints (episode_id, stage, finished_at) VALUES (?, ?, ?)"
                 " ON CONFLICT (episode_id, stage) DO UPDATE SET finished_at = excluded.finished_at",
                 (episode_id, stage, now))


def clear_stages(conn, episode_id: str, stages: Iterable[str]) -> None:
    conn.executemany("DELETE FROM stage_checkpoints WHERE episode_id = ? AND stage = ?",
                     [(episode_id, stage) for stage in stages])


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


def set_episode_title(conn, episode_id: str, title: str, now: float) -> None:
    conn.execute("UPDATE episodes SET title = ?, updated_at = ? WHERE id = ?", (title, now, episode_id))



def page_episodes(conn, limit: int, include_deleted: bool = False, search: str = "",
                  after_id: str | None = None) -> list[sqlite3.Row]:
    """Like ``list_episodes``, continuing after the episode ``after_id`` (a cursor: newest first by
    creation time, then id), so pages neither skip nor repeat an episode while others are added."""
    pattern = f"%{search}%" if search else None
    return conn.execute(
        "SELECT e.*, (SELECT COUNT(*) FROM clips c WHERE c.episode_id = e.id) AS clip_count"
        " FROM episodes e WHERE (? OR e.deleted_at IS NULL)"
        " AND (? IS NULL OR lower(e.title) LIKE lower(?) OR lower(e.source_uri) LIKE lower(?) OR e.id = ?)"
        " AND (? IS NULL OR (e.created_at, e.id) < (SELECT created_at, id FROM episodes WHERE id = ?))"
        " ORDER BY e.created_at DESC, e.id DESC LIMIT ?",
        (include_deleted, pattern, pattern, pattern, search, after_id, after_id, limit)).fetchall()
