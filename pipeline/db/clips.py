"""Clip suggestions, operator edits, and the rendered files of clips and whole episodes."""

from __future__ import annotations

import sqlite3


def clip_totals(conn, episode_id: str) -> tuple[float, int]:
    """Total length and number of the episode's clips that are not rejected."""
    row = conn.execute("SELECT COALESCE(SUM(\"end\" - start), 0), COUNT(*) FROM clips WHERE episode_id = ?"
                       " AND status != 'rejected'", (episode_id,)).fetchone()
    return row[0], row[1]


def list_clips(conn, episode_id: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM clips WHERE episode_id = ? ORDER BY position", (episode_id,)).fetchall()


def record_render(conn, clip_id: str, variant: str, path: str, width: int, height: int,
                  duration: float, size_bytes: int, now: float) -> None:
    conn.execute(
        "INSERT INTO renders (clip_id, variant, path, width, height, duration, size_bytes, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (clip_id, variant) DO UPDATE SET path = excluded.path,"
        " width = excluded.width, height = excluded.height, duration = excluded.duration,"
        " size_bytes = excluded.size_bytes, created_at = excluded.created_at", (clip_id, variant, path, width, height, duration, size_bytes, now))


def list_renders(conn, episode_id: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT r.* FROM renders r JOIN clips c ON c.id = r.clip_id"
                        " WHERE c.episode_id = ? ORDER BY c.position, r.variant", (episode_id,)).fetchall()


def replace_clips(conn, episode_id: str, clips: list[dict], now: float) -> None:
    """Swap an episode's clips for new suggestions (their renders go with them, by cascade).

    ``source``, ``hashtags_json`` and ``score_detail_json`` are optional per clip.
    """
    conn.execute("DELETE FROM clips WHERE episode_id = ?", (episode_id,))
    conn.executemany(
        "INSERT INTO clips (id, episode_id, position, start, \"end\", score, title, reason, source, hashtags_json,"
        " score_detail_json, created_at) VALUES (:id, :episode_id, :position, :start, :end, :score, :title,"
        " :reason, :source, :hashtags_json, :score_detail_json, :created_at)",
        [{"source": "heuristic", "hashtags_json": "[]", "score_detail_json": None, **clip,
          "episode_id": episode_id, "position": i, "created_at": now} for i, clip in enumerate(clips)])


def get_clip(conn, clip_id: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM clips WHERE id = ?", (clip_id,)).fetchone()


def set_clip_review_status(conn, clip_id: str, status: str, now: float) -> None:
    conn.execute("UPDATE clips SET status = ?, edited_at = ? WHERE id = ?", (status, now, clip_id))


def set_clip_bounds(conn, clip_id: str, start: float, end: float, now: float) -> None:
    conn.execute("UPDATE clips SET start = ?, \"end\" = ?, edited_at = ? WHERE id = ?", (start, end, now, clip_id))


def set_clip_render_choices(conn, clip_id: str, reframe: str | None, caption_style: str | None,
                            now: float) -> None:
    conn.execute("UPDATE clips SET reframe = ?, caption_style = ?, edited_at = ? WHERE id = ?",
                 (reframe, caption_style, now, clip_id))


def set_clip_remove_silences(conn, clip_id: str, remove_silences: bool | None, now: float) -> None:
    value = None if remove_silences is None else int(bool(remove_silences))
    conn.execute("UPDATE clips SET remove_silences = ?, edited_at = ? WHERE id = ?", (value, now, clip_id))


def list_clip_renders(conn, clip_id: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM renders WHERE clip_id = ? ORDER BY variant", (clip_id,)).fetchall()


def delete_clip_renders(conn, clip_id: str) -> None:
    conn.execute("DELETE FROM renders WHERE clip_id = ?", (clip_id,))


def record_episode_render(conn, episode_id: str, kind: str, path: str, width: int, height: int,
                          duration: float, size_bytes: int, now: float) -> None:
    conn.execute(
        "INSERT INTO episode_renders (episode_id, kind, path, width, height, duration, size_bytes,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (episode_id, kind) DO UPDATE SET"
        " path = excluded.path, width = excluded.width, height = excluded.height, duration = excluded.duration,"
        " size_bytes = excluded.size_bytes, created_at = excluded.created_at",
        (episode_id, kind, path, width, height, duration, size_bytes, now))


def list_episode_renders(conn, episode_id: str) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM episode_renders WHERE episode_id = ? ORDER BY kind",
                        (episode_id,)).fetchall()

