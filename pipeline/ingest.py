"""Ingest: bring the episode's media into ``<episode_dir>/source.<ext>`` and probe it.

Uploads (already in our uploads folder) are moved; local paths are copied, since they
belong to the user. The probe decides whether the file is media, not its extension.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from pipeline import db, media, storage
from pipeline.context import StageContext
from pipeline.errors import BadInput

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


def run(ctx: StageContext) -> None:
    episode = ctx.episode()
    if episode["source_kind"] == "url":
        raise BadInput("Downloading from URLs is not supported yet; download the file and upload it instead.")
    origin = Path(episode["source_uri"])
    moved_earlier = _ingested_source(ctx.episode_dir)
    if episode["source_kind"] == "upload" and not origin.exists() and moved_earlier:
        origin = moved_earlier   # a previous attempt moved the upload, then stopped
    info = media.probe(origin)
    ctx.progress(0.2)
    final = ctx.episode_dir / f"source.{source_extension(origin.name, info)}"
    final.parent.mkdir(parents=True, exist_ok=True)
    if origin == final:
        pass   # an earlier attempt already put the file in place
    elif episode["source_kind"] == "upload":
        shutil.move(origin, final)
        if origin.parent.parent == storage.uploads_dir(ctx.settings.data_dir):
            shutil.rmtree(origin.parent, ignore_errors=True)
    else:
        partial = storage.temp_path(final)
        shutil.copyfile(origin, partial)
        os.replace(partial, final)
    ctx.write(db.set_episode_source, ctx.episode_id, final.name, info.duration, json.dumps(info.to_dict()))
    ctx.progress(1.0)


def _ingested_source(episode_dir: Path) -> Path | None:
    return next((p for p in episode_dir.glob("source.*") if ".partial" not in p.name), None)
