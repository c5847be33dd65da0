"""Watch folder: media dropped into the inbox becomes an episode by itself.

A file is taken only once it has stopped changing: its size and mtime must be the same at
two scans at least ``inbox.stable_seconds`` apart (a copy or an upload in progress keeps
changing them). What each file looked like is kept in the app DB, so this survives restarts.
The probe, not the extension, decides whether a file is media: media is moved into the
uploads folder (the inbox empties) and queued; anything unreadable goes to ``rejected/``
with ``<name>.error.txt`` beside it. Hidden files and usual partial-download names are ignored.
The worker's periodic task calls ``scan`` every minute.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from pathlib import Path

from pipeline import db, jobs, media, storage
from pipeline.config import Settings
from pipeline.errors import BadInput
from pipeline.stages import ingest

log = logging.getLogger("clipdesk.inbox")

IN_PROGRESS_SUFFIXES = (".part", ".partial", ".crdownload", ".download", ".tmp", ".error.txt")
MEDIA_EXTENSIONS = {"mp4", "m4v", "mov", "mkv", "webm", "avi", "ts", "mts", "mpg", "mpeg", "mp3", "wav", "m4a",
                    "aac", "flac", "ogg", "oga", "opus", "wma", "wmv"}


def inbox_dir(settings: Settings) -> Path:
    """``inbox.dir`` (relative paths are under the data dir), default ``<data_dir>/inbox``."""
    return storage.inbox_dir(settings.data_dir, settings.inbox.dir)


def rejected_dir(settings: Settings) -> Path:
    return inbox_dir(settings) / "rejected"


def scan(settings: Settings, dispatch: jobs.Dispatch, now: float | None = None) -> list[dict]:
    """Take every file that has been stable long enough; returns what happened to each."""
    if not settings.inbox.enabled:
        return []
    now = time.time() if now is None else now
    folder = inbox_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    with db.session(settings.app_db) as conn:
        known = db.list_inbox_files(conn)
    present, results = set(), []
    for path in sorted(folder.iterdir()):
        if not _candidate(path):
            continue
        stat = path.stat()
        present.add(path.name)
        seen = known.get(path.name)
        if seen is None or (seen["size"], seen["mtime_ns"]) != (stat.st_size, stat.st_mtime_ns):
            with db.session(settings.app_db) as conn:   # new, or still changing: start the clock again
                db.upsert_inbox_file(conn, path.name, stat.st_size, stat.st_mtime_ns, now)
            continue
        if now - seen["stable_since"] < settings.inbox.stable_seconds:
            continue
        try:
            results.append(_take(settings, path, dispatch))
        except Exception:   # one bad file (permissions, a full disk) must not stop the others
            log.exception("inbox: could not take %s", path.name)
            continue
        present.discard(path.name)
    with db.session(settings.app_db) as conn:
        for name in set(known) - present:
            db.delete_inbox_file(conn, name)
    return results


def _candidate(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and not name.startswith((".", "~")) and not name.endswith(IN_PROGRESS_SUFFIXES)


def _take(settings: Settings, path: Path, dispatch: jobs.Dispatch) -> dict:
    if path.is_symlink():   # would make the worker read (and move) a file from anywhere on the disk
        reason = f"'{path.name}' is a symbolic link; the inbox takes only files dropped into it."
        rejected = _reject(settings, path, reason)
        log.warning("inbox: rejected %s: %s", path.name, reason)
        return {"file": path.name, "rejected": str(rejected), "error": reason}
    try:
        info = media.probe(path)
    except BadInput as exc:
        rejected = _reject(settings, path, str(exc))
        log.warning("inbox: rejected %s: %s", path.name, exc)
        return {"file": path.name, "rejected": str(rejected), "error": str(exc)}
    name = Path(jobs.safe_filename(path.name))
    if name.suffix.lower().lstrip(".") not in MEDIA_EXTENSIONS:   # media under another name: say what it is
        name = Path(f"{name.stem}.{ingest.source_extension('', info)}")
    upload = storage.uploads_dir(settings.data_dir) / uuid.uuid4().hex[:12] / name
    storage.publish(path, upload)   # a rename, or (inbox on another filesystem) a copy that appears whole
    try:
        episode_id, job_id = jobs.create(settings, str(upload), priority=jobs.PRIORITY_FEED, source_kind="upload")
    except BadInput as exc:   # e.g. the uploads folder is outside paths.allowed_source_dirs
        rejected = _reject(settings, upload, str(exc))
        shutil.rmtree(upload.parent, ignore_errors=True)
        return {"file": path.name, "rejected": str(rejected), "error": str(exc)}
    jobs.submit(settings, job_id, dispatch)
    log.info("inbox: %s became episode %s (job %s)", path.name, episode_id, job_id)
    return {"file": path.name, "episode_id": episode_id, "job_id": job_id}


def _reject(settings: Settings, path: Path, reason: str) -> Path:
    folder = rejected_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    counter = 1
    while target.exists():
        target = folder / f"{path.stem} ({counter}){path.suffix}"
        counter += 1
    shutil.move(path, target)
    target.with_name(target.name + ".error.txt").write_text(reason + "\n", encoding="utf-8")
    return target
