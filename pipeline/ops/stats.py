"""What the Overview page shows, read in one snapshot: counts, workers, throughput, stage durations.

The Overview polls this every few seconds, so it is one short read transaction over
indexed columns (``bench/dashboard.py`` measures it with 10,000 jobs).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from pipeline import db, jobs, storage
from pipeline.config import Settings
from pipeline.jobs import workers
from pipeline.jobs.states import ALL_STAGES
from pipeline.library import episodes

_STAGE_INDEX = {stage: i for i, stage in enumerate(ALL_STAGES)}   # pipeline order for charts and tables


def overview(settings: Settings, days: int = 14, failures: int = 5) -> dict:
    """Job counts, success rate, queue latency, worker liveness, media hours, a per-day throughput
    series, stage durations and the last failures."""
    now = time.time()
    today = datetime.fromtimestamp(now, UTC).date()
    first_day = today - timedelta(days=days - 1)
    since = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC).timestamp()
    with db.session(settings.app_db) as conn, db.snapshot(conn):
        outcome = jobs.outcomes(conn)
        liveness = workers.liveness(settings, conn, now)
        per_day = {row["day"]: row for row in db.throughput_by_day(conn, since)}
        media_seconds = db.media_seconds_processed(conn)
        stages = db.stage_durations(conn)
        failed = [jobs.to_json(row) for row in db.list_jobs(conn, status="failed", limit=failures)]
    latencies = outcome["latencies"]
    throughput = []
    for offset in range(days):
        day = (first_day + timedelta(days=offset)).isoformat()
        row = per_day.get(day)
        throughput.append({"day": day, "episodes": row["episodes"] if row else 0,
                           "media_hours": round(row["media_seconds"] / 3600, 3) if row else 0.0})
    stage_rows = sorted(stages, key=lambda r: _STAGE_INDEX.get(r["stage"], len(_STAGE_INDEX)))
    return {
        "counts": outcome["counts"],
        "success_rate": outcome["success_rate"],
        "queue_latency_median": round(latencies[len(latencies) // 2], 1) if latencies else None,
        "failures_by_kind": outcome["failures_by_kind"],
        **liveness,
        "media_hours": round(media_seconds / 3600, 3),
        "throughput": throughput,
        "stages": [{"stage": r["stage"], "runs": r["runs"], "mean_seconds": round(r["mean_seconds"], 2),
                    "seconds_per_media_hour": None if r["seconds_per_media_hour"] is None
                    else round(r["seconds_per_media_hour"], 1)} for r in stage_rows],
        "failures": failed,
    }


def stage_timeline(events: list[dict]) -> list[dict]:
    """One job's stage durations from its events (``jobs.events``): the last finished/failed run per stage."""
    seconds: dict[str, float] = {}
    for event in events:
        if event["stage"] and event["kind"] in ("finished", "failed") and event["seconds"] is not None:
            seconds[event["stage"]] = event["seconds"]
    return [{"stage": stage, "seconds": round(value, 2)}
            for stage, value in sorted(seconds.items(), key=lambda kv: _STAGE_INDEX.get(kv[0], len(_STAGE_INDEX)))]


def episode_footprint(settings: Settings, episode_id: str) -> dict:
    """What an episode holds on disk: file count and bytes under its folder, plus clip and render counts.

    The Episodes page names these in the confirmation of a permanent delete.
    """
    summary = episodes.summary(settings, episode_id)
    folder = storage.episode_dir(settings.data_dir, episode_id)
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    return {"folder": str(folder), "files": len(files), "bytes": sum(p.stat().st_size for p in files),
            "clips": len(summary["clips"]), "renders": sum(len(c["renders"]) for c in summary["clips"]),
            "jobs": len(summary["job_ids"]), "has_transcript": bool(summary["transcript"])}
