"""Retention: what the cleanup policy may delete, pins, the record of every deletion, and job-event compaction."""

from __future__ import annotations

import json
import sqlite3

from pipeline.jobs import states


def _in(values: tuple[str, ...]) -> str:
    return ", ".join("?" for _ in values)


def set_episode_pinned(conn, episode_id: str, pinned: bool, now: float) -> bool:
    return conn.execute("UPDATE episodes SET pinned = ?, updated_at = ? WHERE id = ?",
                        (int(pinned), now, episode_id)).rowcount == 1


def set_clip_pinned(conn, clip_id: str, pinned: bool) -> bool:
    return conn.execute("UPDATE clips SET pinned = ? WHERE id = ?", (int(pinned), clip_id)).rowcount == 1


def source_candidates(conn, finished_before: float) -> list[sqlite3.Row]:
    """Episodes not pinned, with no unfinished job, whose last job finished before the cutoff and whose
    source was not already removed: their source and audio may go."""
    return conn.execute(
        "SELECT e.id, e.source_kind, e.source_uri, MAX(j.finished_at) AS last_finished_at"
        " FROM episodes e JOIN jobs j ON j.episode_id = e.id"
        f" WHERE e.pinned = 0 AND e.source_deleted_at IS NULL"
        f" AND NOT EXISTS (SELECT 1 FROM jobs a WHERE a.episode_id = e.id AND a.status IN ({_in(states.UNFINISHED)}))"
        " GROUP BY e.id HAVING MAX(j.finished_at) < ? ORDER BY last_finished_at",
        (*states.UNFINISHED, finished_before)).fetchall()


def source_still_removable(conn, episode_id: str, finished_before: float) -> bool:
    """The same rule for one episode, re-checked inside the transaction that removes its files."""
    row = conn.execute(
        "SELECT e.pinned, e.source_deleted_at, MAX(j.finished_at) AS last_finished_at,"
        f" SUM(CASE WHEN j.status IN ({_in(states.UNFINISHED)}) THEN 1 ELSE 0 END) AS active"
        " FROM episodes e JOIN jobs j ON j.episode_id = e.id WHERE e.id = ? GROUP BY e.id",
        (*states.UNFINISHED, episode_id)).fetchone()
    return (row is not None and not row["pinned"] and row["source_deleted_at"] is None and not row["active"]
            and row["last_finished_at"] is not None and row["last_finished_at"] < finished_before)


def mark_source_deleted(conn, episode_id: str, now: float) -> None:
    """The source and audio are gone: ingest and audio extraction must run again before any stage that reads them."""
    conn.execute("UPDATE episodes SET source_deleted_at = ?, source_path = NULL, updated_at = ? WHERE id = ?",
                 (now, now, episode_id))
    conn.execute("DELETE FROM stage_checkpoints WHERE episode_id = ? AND stage IN ('ingest', 'extract_audio')",
                 (episode_id,))


def rejected_render_candidates(conn, rejected_before: float) -> list[sqlite3.Row]:
    """Renders of rejected clips (not pinned, episode not pinned, no unfinished job) rejected before the cutoff."""
    return conn.execute(
        "SELECT r.clip_id, r.variant, r.path, c.episode_id, COALESCE(c.edited_at, c.created_at) AS rejected_at"
        " FROM renders r JOIN clips c ON c.id = r.clip_id JOIN episodes e ON e.id = c.episode_id"
        " WHERE c.status = 'rejected' AND c.pinned = 0 AND e.pinned = 0"
        " AND COALESCE(c.edited_at, c.created_at) < ?"
        f" AND NOT EXISTS (SELECT 1 FROM jobs a WHERE a.episode_id = e.id AND a.status IN ({_in(states.UNFINISHED)}))"
        " ORDER BY c.episode_id, r.clip_id, r.variant", (rejected_before, *states.UNFINISHED)).fetchall()


def render_still_removable(conn, clip_id: str, variant: str, rejected_before: float) -> bool:
    row = conn.execute(
        "SELECT 1 FROM renders r JOIN clips c ON c.id = r.clip_id JOIN episodes e ON e.id = c.episode_id"
        " WHERE r.clip_id = ? AND r.variant = ? AND c.status = 'rejected' AND c.pinned = 0 AND e.pinned = 0"
        " AND COALESCE(c.edited_at, c.created_at) < ?"
        f" AND NOT EXISTS (SELECT 1 FROM jobs a WHERE a.episode_id = e.id AND a.status IN ({_in(states.UNFINISHED)}))",
        (clip_id, variant, rejected_before, *states.UNFINISHED)).fetchone()
    return row is not None


def delete_render(conn, clip_id: str, variant: str) -> None:
    conn.execute("DELETE FROM renders WHERE clip_id = ? AND variant = ?", (clip_id, variant))


def deleted_episode_candidates(conn, deleted_before: float) -> list[sqlite3.Row]:
    """Soft-deleted episodes (not pinned, no unfinished job) deleted before the cutoff."""
    return conn.execute(
        "SELECT e.id, e.deleted_at FROM episodes e WHERE e.deleted_at IS NOT NULL AND e.deleted_at < ?"
        f" AND e.pinned = 0 AND NOT EXISTS (SELECT 1 FROM jobs a WHERE a.episode_id = e.id"
        f" AND a.status IN ({_in(states.UNFINISHED)})) ORDER BY e.deleted_at",
        (deleted_before, *states.UNFINISHED)).fetchall()


def episode_still_purgeable(conn, episode_id: str, deleted_before: float) -> bool:
    return any(row["id"] == episode_id for row in conn.execute(
        "SELECT e.id FROM episodes e WHERE e.id = ? AND e.deleted_at IS NOT NULL AND e.deleted_at < ?"
        f" AND e.pinned = 0 AND NOT EXISTS (SELECT 1 FROM jobs a WHERE a.episode_id = e.id"
        f" AND a.status IN ({_in(states.UNFINISHED)}))", (episode_id, deleted_before, *states.UNFINISHED)))


# The events stage_rates / stage_durations read: the newest runs per (kind, stage, host) are never compacted.
KEPT_RUNS = 50


def _compactable(cutoff_sql: str) -> str:
    return (
        "SELECT e.id, e.job_id FROM job_events e JOIN jobs j ON j.id = e.job_id"
        f" WHERE j.status IN ({_in(states.FINAL)}) AND j.finished_at < {cutoff_sql}"
        " AND e.id NOT IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY kind, stage, host"
        "   ORDER BY id DESC) AS n FROM job_events WHERE kind IN ('finished', 'clip_finished')) AS ranked WHERE n <= ?)")


def compactable_events(conn, finished_before: float) -> tuple[int, int]:
    """(events, jobs) that compaction would remove: events of jobs that ended before the cutoff,
    except the newest runs the learned rates read."""
    row = conn.execute(f"SELECT COUNT(*) AS events, COUNT(DISTINCT job_id) AS jobs FROM ({_compactable('?')}) AS compactable",
                       (*states.FINAL, finished_before, KEPT_RUNS)).fetchone()
    return row["events"], row["jobs"]


def compact_events(conn, finished_before: float, now: float) -> tuple[int, int]:
    """Summarise (once per job) and delete the compactable events; returns (events, jobs) removed."""
    job_ids = [row["job_id"] for row in conn.execute(
        f"SELECT DISTINCT job_id FROM ({_compactable('?')}) AS compactable", (*states.FINAL, finished_before, KEPT_RUNS))]
    for job_id in job_ids:
        if conn.execute("SELECT 1 FROM job_event_summaries WHERE job_id = ?", (job_id,)).fetchone():
            continue
        events = conn.execute("SELECT * FROM job_events WHERE job_id = ? ORDER BY id", (job_id,)).fetchall()
        stages = {e["stage"]: e["seconds"] for e in events
                  if e["stage"] and e["kind"] in ("finished", "failed") and e["seconds"] is not None}
        last = next((e["message"] for e in reversed(events) if e["message"]), None)
        conn.execute("INSERT INTO job_event_summaries (job_id, events, first_at, last_at, stages_json, last_message,"
                     " compacted_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (job_id, len(events), events[0]["created_at"] if events else None,
                      events[-1]["created_at"] if events else None, json.dumps(stages), last, now))
    deleted = conn.execute(f"DELETE FROM job_events WHERE id IN (SELECT id FROM ({_compactable('?')}) AS compactable)",
                           (*states.FINAL, finished_before, KEPT_RUNS)).rowcount
    return deleted, len(job_ids)


def get_event_summary(conn, job_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM job_event_summaries WHERE job_id = ?", (job_id,)).fetchone()


def record_deletion(conn, kind: str, episode_id: str | None, clip_id: str | None, path: str | None, size: int,
                    items: int, reason: str, now: float) -> None:
    conn.execute("INSERT INTO retention_deletions (kind, episode_id, clip_id, path, bytes, items, reason, deleted_at)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (kind, episode_id, clip_id, path, size, items, reason, now))


def list_deletions(conn, limit: int = 100, episode_id: str | None = None) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM retention_deletions WHERE (? IS NULL OR episode_id = ?)"
                        " ORDER BY id DESC LIMIT ?", (episode_id, episode_id, limit)).fetchall()


def deletion_totals(conn, since: float) -> sqlite3.Row:
    return conn.execute("SELECT COUNT(*) AS deletions, COALESCE(SUM(bytes), 0) AS bytes FROM retention_deletions"
                        " WHERE deleted_at >= ?", (since,)).fetchone()


def file_still_recorded(conn, episode_id: str, relative_path: str, name: str) -> bool:
    """Whether a file moved aside by an interrupted cleanup is still one the database counts on: a render
    row names it, or it is the source / audio of an episode whose source was not marked deleted."""
    if conn.execute("SELECT 1 FROM renders WHERE path = ?", (relative_path,)).fetchone():
        return True
    if name != "audio.wav" and not name.startswith("source."):
        return False
    row = conn.execute("SELECT source_deleted_at FROM episodes WHERE id = ?", (episode_id,)).fetchone()
    return row is not None and row["source_deleted_at"] is None
