"""Followed channels, playlists and podcast feeds: their new entries become episodes by themselves.

A feed is listed with yt-dlp's flat extraction (nothing downloaded) every ``interval_minutes``.
Each entry is known by a stable id (RSS guid, video id, Atom id). An entry is *claimed* in
``feed_entries`` (UNIQUE per feed) before its job is created, so no entry is ever enqueued
twice, even if two checks race. While ``worker.max_queued_jobs`` jobs wait, new entries are left
unclaimed (back-pressure) and the feed is looked at again a minute later. A new feed starts from "now": what it lists when added is
marked seen, except the newest ``backfill`` entries, which the next check enqueues. A failing
feed records its error and backs off exponentially; the other feeds are checked regardless.
The worker's periodic task calls ``check_due`` every minute.
"""

from __future__ import annotations

import json
import logging
import time

from pipeline import db, jobs
from pipeline.backoff import Backoff
from pipeline.config import Settings
from pipeline.errors import BadInput, DuplicateSource, PipelineError
from pipeline.jobs import backlog
from pipeline.jobs import options as job_options
from pipeline.security import network
from pipeline.stages import download

log = logging.getLogger("clipdesk.feeds")

DEFAULT_INTERVAL_MINUTES = 15
MAX_INTERVAL_MINUTES = 7 * 24 * 60
MAX_BACKOFF_SECONDS = 24 * 3600
BACKLOG_RECHECK_SECONDS = 60   # entries left waiting by back-pressure: look again at the next minute's tick


def add(settings: Settings, url: str, options: dict | None = None, backfill: int = 0,
        interval_minutes: int = DEFAULT_INTERVAL_MINUTES, dispatch: jobs.Dispatch | None = None) -> dict:
    """Follow a feed. Reads it once (a feed that cannot be read is not added) and marks what it
    lists as seen, except the newest ``backfill`` entries; with ``dispatch`` those are queued now."""
    url = network.check_url(download.require_http_url(url), settings.network, resolve=False)
    if not 1 <= interval_minutes <= MAX_INTERVAL_MINUTES:
        raise BadInput(f"The check interval must be from 1 to {MAX_INTERVAL_MINUTES} minutes.")
    if backfill < 0:
        raise BadInput("Backfill is a number of recent entries to process, 0 or more.")
    options = job_options.validate(settings, options)
    key = download.source_key(url)
    with db.session(settings.app_db) as conn:
        existing = db.get_feed_by_key(conn, key)
    if existing is not None:
        raise BadInput(f"This feed is already followed as feed {existing['id']}.")
    listing = download.list_entries(url, settings)
    now = time.time()
    try:
        with db.session(settings.app_db) as conn, db.transaction(conn):
            next_check = now if backfill else now + interval_minutes * 60
            feed_id = db.insert_feed(conn, url, key, listing.title, listing.kind, json.dumps(options),
                                     interval_minutes, next_check, now)
            for entry in listing.entries[backfill:]:
                db.claim_feed_entry(conn, feed_id, entry.entry_id, entry.url, entry.title, entry.published_at, now)
    except db.IntegrityError:   # added by someone else while we were reading it
        raise BadInput("This feed is already followed.") from None
    log.info("following feed %s (%s): %d entries, backfill %d", feed_id, url, len(listing.entries), backfill)
    if dispatch is not None and backfill:
        check_feed(settings, feed_id, dispatch, now)
    return get(settings, feed_id)


def check_due(settings: Settings, dispatch: jobs.Dispatch, now: float | None = None) -> list[dict]:
    """Check every feed whose time has come; one failing feed never stops the others."""
    now = time.time() if now is None else now
    with db.session(settings.app_db) as conn:
        due = db.due_feed_ids(conn, now)
    results = []
    for feed_id in due:
        try:
            results.append(check_feed(settings, feed_id, dispatch, now))
        except BadInput:   # removed since the query; its errors are otherwise recorded, not raised
            continue
    return results


def check_all(settings: Settings, dispatch: jobs.Dispatch) -> list[dict]:
    """Check every feed now, due or not (``python -m pipeline feeds check``)."""
    return [check_feed(settings, feed["feed_id"], dispatch) for feed in list_feeds(settings)]


def check_feed(settings: Settings, feed_id: int, dispatch: jobs.Dispatch, now: float | None = None) -> dict:
    """List one feed, queue its unseen entries (oldest first), and schedule the next check.

    Returns ``{"feed_id", "queued": [job ids], "error"}``; errors are recorded on the feed, not raised.
    """
    now = time.time() if now is None else now
    feed = _require(settings, feed_id)
    queued: list[int] = []
    waiting = 0
    try:
        listing = download.list_entries(feed["url"], settings)
        options = json.loads(feed["options_json"] or "{}")
        with db.session(settings.app_db) as conn:
            seen = db.seen_feed_entry_ids(conn, feed_id)
        for entry in reversed(listing.entries):
            if entry.entry_id in seen:
                continue
            job_id = None if waiting else _enqueue_entry(settings, feed_id, entry, options, dispatch, now)
            if waiting or job_id == _QUEUE_FULL:   # back-pressure: left unclaimed, a later check queues it
                waiting += 1
            elif job_id is not None:
                queued.append(job_id)
    except Exception as exc:   # recorded on the feed with a back-off; the next feed is still checked
        return _record_failure(settings, feed, exc, queued, now)
    next_check = now + (BACKLOG_RECHECK_SECONDS if waiting else feed["interval_minutes"] * 60)
    with db.session(settings.app_db) as conn, db.transaction(conn):
        db.set_feed_checked(conn, feed_id, listing.title, next_check, now)
    if queued or waiting:
        log.info("feed %s: queued jobs %s; %d entries wait for room in the queue", feed_id, queued, waiting)
    return {"feed_id": feed_id, "queued": queued, "waiting": waiting, "error": None}


_QUEUE_FULL = -1   # _enqueue_entry: worker.max_queued_jobs jobs wait; the entry stays unclaimed


def _enqueue_entry(settings: Settings, feed_id: int, entry: download.Entry, options: dict,
                   dispatch: jobs.Dispatch, now: float) -> int | None:
    """Claim the entry, then create and queue its job; None when it was seen before or cannot be queued,
    ``_QUEUE_FULL`` when the queue is at ``worker.max_queued_jobs`` (checked in the claim's transaction)."""
    with db.session(settings.app_db) as conn, db.transaction(conn):
        if backlog.full(settings, conn):
            return _QUEUE_FULL
        if not db.claim_feed_entry(conn, feed_id, entry.entry_id, entry.url, entry.title, entry.published_at, now):
            return None
    episode_id = job_id = note = None
    try:
        episode_id, job_id = jobs.create(settings, entry.url, title=entry.title, priority=jobs.PRIORITY_FEED,
                                         options=options, source_kind="url")
    except DuplicateSource as exc:   # pasted by hand before the feed saw it: link it, don't redo it
        episode_id, note = exc.episode_id, f"Already added as episode {exc.episode_id}."
    except BadInput as exc:
        note = str(exc)
    except Exception:   # nothing was created: release the claim so the next check tries again
        with db.session(settings.app_db) as conn:
            db.delete_feed_entry(conn, feed_id, entry.entry_id)
        raise
    with db.session(settings.app_db) as conn:
        db.set_feed_entry_job(conn, feed_id, entry.entry_id, episode_id, job_id, note)
    if job_id is not None:
        jobs.submit(settings, job_id, dispatch)
    return job_id


def _record_failure(settings: Settings, feed, exc: Exception, queued: list[int], now: float) -> dict:
    failures = feed["failures"] + 1
    delay = Backoff(feed["interval_minutes"] * 60, cap=MAX_BACKOFF_SECONDS).delay(failures)
    message = str(exc) if isinstance(exc, PipelineError) else f"{type(exc).__name__}: {exc}"
    with db.session(settings.app_db) as conn, db.transaction(conn):
        db.set_feed_failed(conn, feed["id"], message, now + delay, now)
    log.warning("feed %s failed (%d in a row), next check in %.0f min: %s", feed["id"], failures, delay / 60, message)
    return {"feed_id": feed["id"], "queued": queued, "waiting": 0, "error": message}


def list_feeds(settings: Settings) -> list[dict]:
    with db.session(settings.app_db) as conn:
        return [to_json(row) for row in db.list_feeds(conn)]


def get(settings: Settings, feed_id: int, entries: int = 20) -> dict:
    """One feed with its most recent entries."""
    with db.session(settings.app_db) as conn:
        row = next((r for r in db.list_feeds(conn) if r["id"] == feed_id), None)
        if row is None:
            raise BadInput(f"There is no feed {feed_id}.")
        recent = db.list_feed_entries(conn, feed_id, entries)
    return dict(to_json(row), entries=[
        {"entry_id": e["entry_id"], "url": e["url"], "title": e["title"], "episode_id": e["episode_id"],
         "job_id": e["job_id"], "note": e["note"] or ("" if e["episode_id"] else "Listed when the feed was added."),
         "published_at": jobs.iso(e["published_at"]), "seen_at": jobs.iso(e["seen_at"])} for e in recent])


def remove(settings: Settings, feed_id: int) -> dict:
    """Stop following a feed; episodes it created are kept."""
    feed = get(settings, feed_id, entries=0)
    with db.session(settings.app_db) as conn, db.transaction(conn):
        db.delete_feed(conn, feed_id)
    return dict(feed, removed=True)


def to_json(row) -> dict:
    return {"feed_id": row["id"], "url": row["url"], "title": row["title"], "kind": row["kind"],
            "options": json.loads(row["options_json"] or "{}"), "interval_minutes": row["interval_minutes"],
            "created_at": jobs.iso(row["created_at"]), "last_checked_at": jobs.iso(row["last_checked_at"]),
            "next_check_at": jobs.iso(row["next_check_at"]), "last_error": row["last_error"],
            "failures": row["failures"], "entries_seen": row["entries_seen"],
            "entries_queued": row["entries_queued"]}


def _require(settings: Settings, feed_id: int):
    with db.session(settings.app_db) as conn:
        feed = db.get_feed(conn, feed_id)
    if feed is None:
        raise BadInput(f"There is no feed {feed_id}.")
    return feed
