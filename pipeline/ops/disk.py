"""Where the disk goes (issue 21): sources, audio, renders and the databases, per episode too; what the
retention policy frees next; and a warning while there is still time, before ``worker.min_free_mb`` stops
ingest and render.

Sizes are read from the files under the data dir (a walk of ``episodes/``), so they are right even
for files the database does not know (partial downloads, leftovers).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Settings
from pipeline.ops import health, retention

MB = 1 << 20
WARN_FACTOR = 2   # warn once free space is below twice worker.min_free_mb


def classify(relative: Path) -> str:
    """source | audio | renders | other, for a path under an episode folder (``<id>/...``)."""
    parts = relative.parts
    if len(parts) > 2 and parts[1] == "clips":
        return "renders"
    name = parts[-1]
    if len(parts) == 2 and name == "audio.wav":
        return "audio"
    if len(parts) == 2 and (name.startswith("source.") or name == "download.partial"):
        return "source"
    if len(parts) > 2 and parts[1] == "download.partial":
        return "source"
    if name.startswith("full_") and name.endswith(".mp4"):
        return "renders"
    return "other"


def episode_sizes(settings: Settings, episode_ids: list[str] | None = None) -> dict[str, dict[str, int]]:
    """{episode_id: {"source", "audio", "renders", "other", "total"}} bytes; every episode folder if no ids."""
    root = Path(settings.data_dir) / "episodes"
    folders = ([root / i for i in episode_ids] if episode_ids is not None
               else [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")] if root.is_dir() else [])
    sizes = {}
    for folder in folders:
        parts = {"source": 0, "audio": 0, "renders": 0, "other": 0}
        if folder.is_dir():
            for path in folder.rglob("*"):
                if path.is_file():
                    parts[classify(path.relative_to(root))] += path.stat().st_size
        sizes[folder.name] = dict(parts, total=sum(parts.values()))
    return sizes


def usage(settings: Settings, with_forecast: bool = True) -> dict:
    """Bytes used by kind, free space, the warning, and (``with_forecast``) what cleanup would free now."""
    totals = {"source": 0, "audio": 0, "renders": 0, "other": 0}
    per_episode = episode_sizes(settings)
    for sizes in per_episode.values():
        for kind in totals:
            totals[kind] += sizes[kind]
    databases = health.database_sizes(settings)
    space = health.disk(settings)
    min_free = settings.worker.min_free_mb * MB
    warning = None
    if min_free and space["free"] < min_free:
        warning = (f"Only {space['free'] // MB} MB free: below worker.min_free_mb ({settings.worker.min_free_mb} MB),"
                   " so ingest and render wait. Free space or shorten the retention.*_days.")
    elif min_free and space["free"] < WARN_FACTOR * min_free:
        warning = (f"Only {space['free'] // MB} MB free: ingest and render stop below worker.min_free_mb"
                   f" ({settings.worker.min_free_mb} MB). Free space or shorten the retention.*_days.")
    result = {**totals, "database": databases["app"], "queue_database": databases["queue"],
              "episodes": len(per_episode), "free": space["free"], "total": space["total"],
              "min_free_mb": settings.worker.min_free_mb, "warning": warning}
    if with_forecast:
        result["policy_frees_next"] = frees_next(settings)
    return result


def frees_next(settings: Settings) -> dict:
    """What a cleanup would delete now: bytes and item count per kind (a dry run)."""
    plan = retention.cleanup(settings, dry_run=True)
    by_kind: dict[str, dict] = {}
    for item in plan["deleted"]:
        entry = by_kind.setdefault(item["kind"], {"items": 0, "bytes": 0})
        entry["items"] += item.get("events", 1)
        entry["bytes"] += item["bytes"]
    return {"bytes": plan["bytes"], "by_kind": by_kind, "policy": plan["policy"]}


