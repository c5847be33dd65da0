"""The retention policy (``retention:`` in the config) and the cleanup that applies it.

A channel that adds an hour of 1080p every day fills a disk in weeks; this deletes what the
operator said may go, and records every deletion (``retention_deletions``: what, why, when):

- an episode's ``source.*`` and ``audio.wav``, ``source_days`` after its last job finished (the
  transcript, clips and renders stay; ingest and audio extraction run again before any stage
  that reads them: a URL is downloaded again, an upload must be uploaded again);
- the renders of clips rejected ``rejected_renders_days`` ago;
- soft-deleted episodes, for good, ``deleted_episodes_days`` after they went to the trash;
- the events of jobs finished ``events_days`` ago, compacted into one summary per job (the newest
  runs the learned rates and stage statistics read are kept).

Approved clips and pinned episodes and clips are never deleted; nothing of an episode with an
unfinished job is touched. Each deletion re-checks its rule inside a write transaction and moves
its files aside before committing, so cleanup may run beside itself (it is idempotent) and beside
jobs: a job cannot be created for the episode between the check and the deletion.
Every function returns JSON-able dicts, for the CLI, the worker and any API.
"""

from __future__ import annotations

import json
import os
import time
from functools import partial
from pathlib import Path

from pipeline import db, storage
from pipeline.config import Settings
from pipeline.errors import BadInput
from pipeline.jobs import iso

DAY = 86_400.0
ASIDE_SUFFIX = ".retention-deleting"   # a file moved aside by a deletion that is committing


def enabled(settings: Settings) -> bool:
    r = settings.retention
    return any(days > 0 for days in (r.source_days, r.rejected_renders_days, r.deleted_episodes_days, r.events_days))


def cleanup(settings: Settings, dry_run: bool = False, now: float | None = None) -> dict:
    """Apply the policy (or, with ``dry_run``, list what it would delete and change nothing).

    Returns ``{"dry_run", "deleted": [items], "bytes", "events", "policy"}``; each item names its
    ``kind`` (source | audio | rejected_render | deleted_episode | job_events), episode, clip,
    path (relative to the data dir), ``bytes`` and ``reason``.
    """
    now = time.time() if now is None else now
    r = settings.retention
    items: list[dict] = []
    with db.session(settings.app_db) as conn:
        if not dry_run:
            _sweep_aside(settings, conn)
        if r.source_days > 0:
            items += _sources(settings, conn, now - r.source_days * DAY, now, dry_run)
        if r.rejected_renders_days > 0:
            items += _rejected_renders(settings, conn, now - r.rejected_renders_days * DAY, now, dry_run)
        if r.deleted_episodes_days > 0:
            items += _deleted_episodes(settings, conn, now - r.deleted_episodes_days * DAY, now, dry_run)
        if r.events_days > 0:
            items += _events(conn, now - r.events_days * DAY, now, dry_run)
    return {"dry_run": dry_run, "deleted": items, "bytes": sum(i["bytes"] for i in items),
            "events": sum(i.get("events", 0) for i in items), "policy": policy(settings)}


def policy(settings: Settings) -> dict:
    r = settings.retention
    return {"source_days": r.source_days, "rejected_renders_days": r.rejected_renders_days,
            "deleted_episodes_days": r.deleted_episodes_days, "events_days": r.events_days}


def deletions(settings: Settings, limit: int = 100, episode_id: str | None = None) -> list[dict]:
    """The recorded deletions, newest first."""
    with db.session(settings.app_db) as conn:
        rows = db.list_deletions(conn, limit, episode_id)
    return [{"kind": row["kind"], "episode_id": row["episode_id"], "clip_id": row["clip_id"], "path": row["path"],
             "bytes": row["bytes"], "items": row["items"], "reason": row["reason"],
             "deleted_at": iso(row["deleted_at"])} for row in rows]


def event_summary(settings: Settings, job_id: int) -> dict | None:
    """What compaction kept of a job's events (``retention.events_days``), or None if they were not compacted."""
    with db.session(settings.app_db) as conn:
        row = db.get_event_summary(conn, job_id)
    if row is None:
        return None
    return {"job_id": job_id, "events": row["events"], "first_at": iso(row["first_at"]), "last_at": iso(row["last_at"]),
            "stages": json.loads(row["stages_json"]), "last_message": row["last_message"],
            "compacted_at": iso(row["compacted_at"])}


def pin_episode(settings: Settings, episode_id: str, pinned: bool = True) -> dict:
    """A pinned episode keeps everything (source, audio, every render) and is never purged from the trash."""
    with db.session(settings.app_db) as conn, db.transaction(conn):
        if not db.set_episode_pinned(conn, episode_id, pinned, time.time()):
            raise BadInput(f"There is no episode {episode_id}.")
    return {"episode_id": episode_id, "pinned": pinned}


def pin_clip(settings: Settings, clip_id: str, pinned: bool = True) -> dict:
    """A pinned clip keeps its renders even when it is rejected."""
    with db.session(settings.app_db) as conn, db.transaction(conn):
        if not db.set_clip_pinned(conn, clip_id, pinned):
            raise BadInput(f"There is no clip {clip_id}.")
    return {"clip_id": clip_id, "pinned": pinned}


# --- the four rules -------------------------------------------------------------------------------

def _sources(settings: Settings, conn, cutoff: float, now: float, dry_run: bool) -> list[dict]:
    items = []
    for row in db.source_candidates(conn, cutoff):
        files = _source_files(storage.episode_dir(settings.data_dir, row["id"]))
        if not files:
            continue
        reason = (f"retention.source_days = {settings.retention.source_days:g}: the last job finished"
                  f" {(now - row['last_finished_at']) / DAY:.1f} days ago")
        planned = [_file_item(settings, kind, row["id"], None, path, reason) for kind, path in files]
        if dry_run:
            items += planned
            continue
        if _delete_files(conn, [settings.data_dir / i["path"] for i in planned],
                         partial(db.source_still_removable, conn, row["id"], cutoff),
                         partial(_forget_source, conn, row["id"], planned, now)):
            items += planned
    return items


def _rejected_renders(settings: Settings, conn, cutoff: float, now: float, dry_run: bool) -> list[dict]:
    items = []
    for row in db.rejected_render_candidates(conn, cutoff):
        path = settings.data_dir / row["path"]
        if not path.is_file():
            continue
        reason = (f"retention.rejected_renders_days = {settings.retention.rejected_renders_days:g}: the clip was"
                  f" rejected {(now - row['rejected_at']) / DAY:.1f} days ago")
        item = dict(_file_item(settings, "rejected_render", row["episode_id"], row["clip_id"], path, reason),
                    variant=row["variant"])
        if dry_run:
            items.append(item)
            continue
        if _delete_files(conn, [path], partial(db.render_still_removable, conn, row["clip_id"], row["variant"], cutoff),
                         partial(_forget_render, conn, item, now)):
            items.append(item)
    return items


def _deleted_episodes(settings: Settings, conn, cutoff: float, now: float, dry_run: bool) -> list[dict]:
    items = []
    for row in db.deleted_episode_candidates(conn, cutoff):
        folder = storage.episode_dir(settings.data_dir, row["id"])
        files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
        reason = (f"retention.deleted_episodes_days = {settings.retention.deleted_episodes_days:g}: moved to the"
                  f" trash {(now - row['deleted_at']) / DAY:.1f} days ago")
        item = {"kind": "deleted_episode", "episode_id": row["id"], "clip_id": None,
                "path": str(folder.relative_to(settings.data_dir)), "bytes": sum(p.stat().st_size for p in files),
                "files": len(files), "reason": reason}
        if dry_run:
            items.append(item)
            continue
        trash = storage.trash_path(settings.data_dir, row["id"])
        with db.transaction(conn):
            if not db.episode_still_purgeable(conn, row["id"], cutoff):
                continue
            if folder.exists():
                os.replace(folder, trash)
            try:
                db.delete_episode(conn, row["id"])
                _record(conn, [item], now)
            except BaseException:
                if trash.exists():
                    os.replace(trash, folder)
                raise
        storage.remove_tree(trash)
        items.append(item)
    return items


def _events(conn, cutoff: float, now: float, dry_run: bool) -> list[dict]:
    if dry_run:
        events, job_count = db.compactable_events(conn, cutoff)
    else:
        with db.transaction(conn):
            events, job_count = db.compact_events(conn, cutoff, now)
    if not events:
        return []
    item = {"kind": "job_events", "episode_id": None, "clip_id": None, "path": None, "bytes": 0, "events": events,
            "jobs": job_count, "reason": "retention.events_days: events of jobs finished before"
                                         f" {iso(cutoff)}, compacted into one summary per job"}
    if not dry_run:
        with db.transaction(conn):
            db.record_deletion(conn, "job_events", None, None, None, 0, events, item["reason"], now)
    return [item]


# --- files ----------------------------------------------------------------------------------------

def _source_files(folder: Path) -> list[tuple[str, Path]]:
    """The episode's source (not a partial download) and its extracted audio, if present."""
    if not folder.is_dir():
        return []
    files = [("source", p) for p in sorted(folder.glob("source.*")) if ".partial" not in p.name and p.is_file()]
    audio = folder / "audio.wav"
    return files + ([("audio", audio)] if audio.is_file() else [])


def _file_item(settings: Settings, kind: str, episode_id: str, clip_id: str | None, path: Path, reason: str) -> dict:
    return {"kind": kind, "episode_id": episode_id, "clip_id": clip_id,
            "path": str(path.relative_to(settings.data_dir)), "bytes": path.stat().st_size, "reason": reason}


def _forget_source(conn, episode_id: str, items: list[dict], now: float) -> None:
    db.mark_source_deleted(conn, episode_id, now)
    _record(conn, items, now)


def _forget_render(conn, item: dict, now: float) -> None:
    db.delete_render(conn, item["clip_id"], item["variant"])
    _record(conn, [item], now)


def _record(conn, items: list[dict], now: float) -> None:
    for i in items:
        db.record_deletion(conn, i["kind"], i["episode_id"], i["clip_id"], i["path"], i["bytes"],
                           i.get("files", 1), i["reason"], now)


def _delete_files(conn, paths: list[Path], still_holds, apply) -> bool:
    """Delete files and their rows as one step: inside a write transaction, re-check the rule, move the
    files aside and change the rows; the files go once the transaction committed, or come back if it failed."""
    moved: list[tuple[Path, Path]] = []
    try:
        with db.transaction(conn):
            if not still_holds():
                return False
            for path in paths:
                aside = path.with_name(f".{path.name}{ASIDE_SUFFIX}")
                os.replace(path, aside)
                moved.append((path, aside))
            apply()
    except BaseException:
        for path, aside in moved:
            os.replace(aside, path)
        raise
    for _, aside in moved:
        aside.unlink(missing_ok=True)
    return True


def _sweep_aside(settings: Settings, conn) -> None:
    """Finish what a crash interrupted: a file moved aside whose deletion committed goes; one whose
    transaction never committed (its row still names it) is put back."""
    data_dir = settings.data_dir
    for leftover in (data_dir / "episodes").glob(f"*/**/.*{ASIDE_SUFFIX}"):
        original = leftover.with_name(leftover.name[1:-len(ASIDE_SUFFIX)])
        relative = original.relative_to(data_dir / "episodes")
        if db.file_still_recorded(conn, relative.parts[0], str(original.relative_to(data_dir)), original.name):
            os.replace(leftover, original)
        else:
            leftover.unlink(missing_ok=True)
    storage.sweep_trash(data_dir)
