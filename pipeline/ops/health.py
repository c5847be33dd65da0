"""Health checks for the Settings page: config, ffmpeg, models, LLM endpoint, disk, databases.

Every check returns plain data and never raises for an unhealthy system: a missing model
or an unreachable endpoint is a finding to show, not an error.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import requests

from pipeline import db
from pipeline.config import Settings
from pipeline.jobs import workers
from pipeline.media import ffmpeg_exe, ffmpeg_query
from pipeline.ops import serve
from pipeline.stages import transcribe

# Filters the pipeline relies on (render: crop/scale/pad/split, captions: subtitles/ass).
KEY_FILTERS = ("subtitles", "ass", "scale", "crop", "pad", "split", "asplit", "loudnorm")
SECRET_KEY = re.compile(r"(password|secret|token|api_?key)(?!_env)", re.IGNORECASE)
URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
MASK = "••••••"


def effective_config(settings: Settings) -> dict:
    """The settings in force as nested plain data, secrets masked.

    Keys that look like secrets are masked unless they only name an environment variable
    (``*_env``); credentials inside URLs (``https://user:pass@host``) are masked too.
    """
    return _mask(_plain(settings))


def _plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _mask(value, key: str = ""):
    if isinstance(value, dict):
        return {k: _mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, key) for v in value]
    if isinstance(value, str):
        if value and SECRET_KEY.search(key):
            return MASK
        return URL_CREDENTIALS.sub(MASK + "@", value)
    return value


def ffmpeg_info() -> dict:
    """The bundled ffmpeg's path, version line and which of the key filters it has."""
    exe = ffmpeg_exe()
    try:
        version = ffmpeg_query("-version").splitlines()[0].split(" Copyright")[0]
        listing = ffmpeg_query("-filters")
    except (OSError, subprocess.SubprocessError, IndexError) as exc:
        return {"path": exe, "ok": False, "version": f"ffmpeg could not be run: {exc}", "filters": {}}
    names = {parts[1] for line in listing.splitlines() if len(parts := line.split()) >= 2}
    filters = {name: name in names for name in KEY_FILTERS}
    return {"path": exe, "ok": all(filters.values()), "version": version, "filters": filters}


def model_status(settings: Settings) -> dict:
    """Whether the configured transcription model can be loaded without a download.

    The bundled model is on disk; a path must exist; any other name is available once a
    first job has downloaded it into ``<data_dir>/models/<engine>/`` (``transcribe.models_dir``).
    """
    engine, name = settings.transcribe.engine, settings.transcribe.model
    try:
        location = Path(transcribe.model_location(name, transcribe.models_dir(settings.data_dir))).expanduser()
    except Exception as exc:   # a broken model package is a finding, not a crash
        return {"engine": engine, "model": name, "available": False, "where": f"cannot locate the model: {exc}"}
    if name in transcribe.BUNDLED_MODELS or location.exists() or name.startswith(("/", "./", "../", "~")):
        ok = location.exists()
        return {"engine": engine, "model": name, "available": ok,
                "where": str(location) if ok else f"missing: {location} does not exist"}
    cache = transcribe.models_dir(settings.data_dir) / engine
    downloaded = (cache / f"models--Systran--faster-whisper-{name}" if engine == "faster-whisper"
                  else cache / f"{name}.pt")
    if downloaded.exists():
        return {"engine": engine, "model": name, "available": True, "where": str(downloaded)}
    return {"engine": engine, "model": name, "available": False,
            "where": "not on this machine yet: the first job downloads it (needs internet access once)"}


def llm_endpoint(settings: Settings, timeout: float = 3.0) -> dict:
    """Reachability of the configured OpenAI-compatible endpoint (``GET <base_url>/models``)."""
    llm = getattr(settings, "llm", None)
    base_url = (getattr(llm, "base_url", "") or "").rstrip("/")
    if not base_url:
        return {"configured": False, "reachable": None, "url": "", "detail": "No LLM endpoint configured; "
                "the offline heuristic picks clips, titles and chapters."}
    shown = URL_CREDENTIALS.sub(MASK + "@", base_url)
    headers = {}
    key_env = getattr(llm, "api_key_env", "") or ""
    if key_env and os.environ.get(key_env):
        headers["Authorization"] = f"Bearer {os.environ[key_env]}"
    try:
        response = requests.get(f"{base_url}/models", headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        return {"configured": True, "reachable": False, "url": shown,
                "detail": f"Cannot connect: {type(exc).__name__}."}
    ok = response.status_code < 400
    return {"configured": True, "reachable": ok, "url": shown,
            "detail": f"HTTP {response.status_code}" + ("" if ok else " — check the URL and the API key.")}


def disk(settings: Settings) -> dict:
    """Free and total bytes on the disk holding the data dir."""
    folder = settings.data_dir
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    usage = shutil.disk_usage(folder)
    return {"path": str(settings.data_dir), "total": usage.total, "free": usage.free, "used": usage.used}


def database_sizes(settings: Settings) -> dict[str, int]:
    """Bytes of the app DB and the queue DB: the SQLite files with their write-ahead logs, or on PostgreSQL
    the app's tables and Huey's (one database holds both)."""
    if settings.uses_postgres:
        with db.session(settings.app_db) as conn:
            return db.postgres_table_bytes(conn)
    sizes = {}
    for label, path in (("app", settings.app_db_path), ("queue", settings.queue_db_path)):
        sizes[label] = sum(p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())
    return sizes


def workers_by_host(settings: Settings) -> list[dict]:
    """Every machine's consumers, their slots and heartbeats (``workers.by_host``)."""
    with db.session(settings.app_db) as conn:
        return workers.by_host(settings, conn, time.time())


def worker_command(settings: Settings) -> list[str]:
    """The command line that starts a worker for this config (run it in the project folder)."""
    return serve.consumer_command(settings)
