"""Ingest: bring the episode's media into ``<episode_dir>/source.<ext>`` and probe it.

Uploads (already in our uploads folder) are moved; local paths are copied, since they
belong to the user; http(s) URLs are downloaded with yt-dlp (``pipeline.stages.download``), with
byte progress, resumable partial files, and the item's metadata kept on the episode.
The probe decides whether the file is media, not its extension.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

from pipeline import db, media, storage
from pipeline.errors import BadInput, Cancelled
from pipeline.stages import download
from pipeline.stages.context import StageContext

# Container name from the probe -> extension, for files whose name has none.
_FORMAT_EXTENSIONS = {"mov,mp4,m4a,3gp,3g2,mj2": "mp4", "matroska,webm": "mkv", "mp3": "mp3", "wav": "wav",
                      "ogg": "ogg", "flac": "flac", "avi": "avi", "mpegts": "ts", "aac": "aac"}
URL_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def classify_source(source: str) -> str:
    """'url' for anything with a scheme, else 'path'."""
    return "url" if URL_PATTERN.match(source) else "path"


def source_extension(name: str, info: media.MediaInfo) -> str:
    suffix = Path(name).suffix.lower().lstrip(".")
    if re.fullmatch(r"[a-z0-9]{2,5}", suffix):
        return suffix
    return _FORMAT_EXTENSIONS.get(info.format_name, "bin")


def source_gone_message(episode) -> str | None:
    """Why an episode whose source the retention policy deleted cannot be ingested again; None when it
    can (a URL is downloaded again, a local file still at its path is copied again)."""
    if episode["source_deleted_at"] is None or episode["source_kind"] == "url":
        return None
    if episode["source_kind"] == "path" and Path(episode["source_uri"]).is_file():
        return None
    what = ("upload the file again as a new episode" if episode["source_kind"] == "upload"
            else f"put the file back at {episode['source_uri']} or upload it again as a new episode")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(episode["source_deleted_at"]))
    return (f"The source of episode {episode['id']} was deleted by the retention policy (retention.source_days)"
            f" on {when}; to process it from a stage that needs the media, {what}.")


def run(ctx: StageContext) -> None:
    episode = ctx.episode()
    if episode["source_kind"] == "url":
        _ingest_url(ctx, episode["source_uri"])
        return
    origin = Path(episode["source_uri"])
    moved_earlier = _ingested_source(ctx.episode_dir)
    if episode["source_kind"] == "upload" and not origin.exists() and moved_earlier:
        origin = moved_earlier   # a previous attempt moved the upload, then stopped
    if not moved_earlier and (gone := source_gone_message(episode)):
        raise BadInput(gone)
    info = media.probe(origin)
    ctx.progress(0.2)
    final = ctx.episode_dir / f"source.{source_extension(origin.name, info)}"
    final.parent.mkdir(parents=True, exist_ok=True)
    if origin == final:
        pass   # an earlier attempt already put the file in place
    elif episode["source_kind"] == "upload":   # already complete in our uploads folder: a rename
        storage.publish(origin, final)
        if origin.parent.parent == storage.uploads_dir(ctx.settings.data_dir):
            shutil.rmtree(origin.parent, ignore_errors=True)
    else:   # the user's file may be anywhere: copied in scratch, then published
        with storage.scratch_space(ctx.scratch) as work:
            shutil.copyfile(origin, work / final.name)
            storage.publish(work / final.name, final)
    ctx.write(db.set_episode_source, ctx.episode_id, final.name, info.duration, json.dumps(info.to_dict()))
    ctx.progress(1.0)


def _ingest_url(ctx: StageContext, url: str) -> None:
    """Download with yt-dlp into the worker's scratch folder, then publish the file as ``source.<ext>``.

    A partial download is kept when the attempt fails transiently (a retry in this worker resumes it) and
    removed on cancel or when the URL can never work. A file already in place (an earlier attempt) is not
    fetched again.
    """
    final = _ingested_source(ctx.episode_dir)
    if final is None:   # not downloaded by an earlier attempt
        folder = download_folder(ctx)
        try:
            path, meta = download.download(download.require_http_url(url), folder, ctx.settings,
                                           _DownloadProgress(ctx))
        except (Cancelled, BadInput):   # a transient failure keeps the partial file for the retry to resume
            shutil.rmtree(folder, ignore_errors=True)
            raise
        ctx.write(db.set_episode_metadata, ctx.episode_id, json.dumps(meta))
        if meta["title"] and meta["extractor"] != "Generic":   # Generic's title is just the file name
            ctx.write(db.set_episode_title_if_empty, ctx.episode_id, meta["title"])
        try:
            info = media.probe(path)
        except BadInput as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise BadInput(f"The file downloaded from {url} is not playable media: {exc}") from None
        final = storage.publish(path, ctx.episode_dir / f"source.{source_extension(path.name, info)}")
        shutil.rmtree(folder, ignore_errors=True)
    else:
        info = media.probe(final)
    ctx.write(db.set_episode_source, ctx.episode_id, final.name, info.duration, json.dumps(info.to_dict()))
    ctx.progress(1.0)


def download_folder(ctx: StageContext) -> Path:
    """Where this worker downloads the episode's URL (in its scratch folder, kept between attempts)."""
    return ctx.scratch / f"download-{ctx.episode_id}"


class _DownloadProgress:
    """yt-dlp progress hook: stage progress (0..0.95) at every call, bytes/speed/ETA on the episode every second."""

    WRITE_INTERVAL = 1.0

    def __init__(self, ctx: StageContext):
        self.ctx, self.parts_done, self.last_write, self.fraction = ctx, 0, 0.0, 0.0

    def __call__(self, status: dict) -> None:
        fraction = download.progress_fraction(status, self.parts_done)
        if status.get("status") == "finished":
            self.parts_done += 1
        now = time.monotonic()
        if now - self.last_write >= self.WRITE_INTERVAL or status.get("status") == "finished":
            self.last_write = now
            state = {key: status.get(key) for key in ("status", "downloaded_bytes", "total_bytes",
                                                       "total_bytes_estimate", "speed", "eta")}
            self.ctx.write(db.set_episode_download, self.ctx.episode_id, json.dumps(state))
        self.fraction = max(self.fraction, fraction or 0.0)   # size estimates wobble; progress never goes back
        self.ctx.progress(0.95 * self.fraction)   # raises Cancelled when asked


def _ingested_source(episode_dir: Path) -> Path | None:
    return next((p for p in episode_dir.glob("source.*") if ".partial" not in p.name), None)
