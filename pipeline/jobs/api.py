"""The job API the shells call (re-exported as ``pipeline.jobs``): create episodes and their jobs,
retry, rework, cancel, and read them back as the job JSON of DESIGN.md. The runner does not use
it: the machinery lives in the sibling modules.

Putting a job on the queue is the caller's ``dispatch(job_id, priority) -> task_id``
(``queue_worker.dispatch`` for the worker), which keeps Huey out of ``pipeline/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pipeline import db, media, storage
from pipeline.config import Settings
from pipeline.errors import BadInput, NotAllowed, NotFound, PipelineError, TooLarge
from pipeline.jobs import options as job_options
from pipeline.jobs import states, threads, workers
from pipeline.jobs.progress import DEFAULT_MEDIA_SECONDS, QueuedJob, forecast, plan_for
from pipeline.jobs.states import ALL_STAGES, JOB_STATUSES, WAITING
from pipeline.security import network
from pipeline.stages import download, ingest

Dispatch = Callable[[int, int], str]

# Priorities: higher runs first.
PRIORITY_RETRY = 100
PRIORITY_INTERACTIVE = 50
PRIORITY_FEED = 10


def new_episode_id() -> str:
    return uuid.uuid4().hex[:12]


def safe_filename(name: str) -> str:
    """A file name that cannot escape its folder and survives any filesystem."""
    name = Path(name.replace("\\", "/")).name
    name = re.sub(r"[^\w.\- ]+", "_", name, flags=re.UNICODE).strip(" .")
    return name[:120] or "upload"


def save_upload(settings: Settings, filename: str, data: BinaryIO, limit_key: str = "dashboard.max_upload_mb") -> Path:
    """Stream an uploaded file into ``<data_dir>/uploads/<token>/<name>``.

    The bytes go to this process's scratch folder and are published once the upload is whole.
    Refuses files over the limit of ``limit_key`` (each shell has its own) and uploads that
    would leave less than ``worker.min_free_mb`` of disk, removing what was written.
    """
    section, name = limit_key.split(".")
    limit_mb = getattr(getattr(settings, section), name)
    limit = limit_mb * (1 << 20)
    path = storage.uploads_dir(settings.data_dir) / uuid.uuid4().hex[:12] / safe_filename(filename)
    written = 0
    with storage.scratch_space(workers.scratch_dir(settings), prefix="upload-") as work:
        with open(work / path.name, "wb") as out:
            while chunk := data.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise TooLarge(f"'{path.name}' is larger than the upload limit of {limit_mb} MB ({limit_key}).")
                if min(storage.free_bytes(settings.data_dir), storage.free_bytes(work)) \
                        < settings.worker.min_free_mb * (1 << 20):
                    raise BadInput(f"Not enough free disk space in {settings.data_dir} to store '{path.name}'.")
                out.write(chunk)
        return storage.publish(work / path.name, path)


def create(settings: Settings, source: str, title: str = "", priority: int = PRIORITY_INTERACTIVE,
           options: dict | None = None, source_kind: str | None = None,
           allow_duplicate: bool = False, trusted_path: bool = False) -> tuple[str, int]:
    """Record an episode and its first job (status queued). Returns (episode_id, job_id).

    A URL already ingested raises DuplicateSource (naming the episode) unless allow_duplicate.
    A local path must lie under ``paths.allowed_source_dirs`` (default: the data dir and the inbox):
    the dashboard and the HTTP API pass what remote users typed. Only the CLI, whose user already
    has a shell on the machine, passes ``trusted_path=True`` to take any file it can read."""
    options = job_options.validate(settings, options, trusted=trusted_path)
    kind = source_kind or ingest.classify_source(source)
    duration = None
    if kind in ("path", "upload"):
        source = str(_local_source(settings, source, kind, trusted_path))
        duration = _declared_duration(source)
    elif kind == "url":   # checked again, resolved, at every request of the download
        network.check_url(source, settings.network, resolve=False)
    episode_id = new_episode_id()
    with db.session(settings.app_db) as conn, db.transaction(conn):
        now = time.time()
        key = download.check_not_duplicate(conn, source) if kind == "url" and not allow_duplicate else None
        db.insert_episode(conn, episode_id, title.strip(), kind, source, now)
        if duration:
            db.set_episode_declared_duration(conn, episode_id, duration)
        if kind == "url":
            db.set_episode_source_key(conn, episode_id, key or download.source_key(source))
        job_id = db.insert_job(conn, episode_id, priority, json.dumps(options), now, settings.worker.max_attempts)
        db.add_event(conn, job_id, None, "queued", now)
    return episode_id, job_id


def _declared_duration(path: str) -> float | None:
    """The file's duration from its header, so a queued job's forecast knows its length before
    ingest (which probes it properly and reports what is wrong with it)."""
    try:
        return media.probe(path).duration or None
    except PipelineError:
        return None


def _local_source(settings: Settings, source: str, kind: str, trusted_path: bool) -> Path:
    """Check a local source path; a name that is not valid UTF-8 is linked under a safe name."""
    path = Path(source).expanduser()
    shown = source.encode("utf-8", "replace").decode("utf-8")   # printable even if the name is not UTF-8
    if kind == "upload":   # ingest *moves* an upload: only our own uploads folder may be named
        _require_under(path, [storage.uploads_dir(settings.data_dir)], shown, "is not in the uploads folder")
    elif not trusted_path and settings.paths.allowed_source_dirs != ("*",):
        _require_under(path, allowed_source_dirs(settings), shown,
                       "is outside the folders files may be taken from; see paths.allowed_source_dirs")
    if not path.exists():
        raise BadInput(f"File not found: {shown}")
    if path.is_dir():
        raise BadInput(f"'{shown}' is a folder, not a media file.")
    path = path.resolve()
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:   # e.g. a Latin-1 name on a UTF-8 system: keep the bytes out of the DB
        safe = storage.uploads_dir(settings.data_dir) / uuid.uuid4().hex[:12] / safe_filename(shown)
        safe.parent.mkdir(parents=True)
        try:
            os.link(path, safe)
        except OSError:   # another filesystem: a copy, published whole
            with storage.scratch_space(workers.scratch_dir(settings)) as work:
                shutil.copyfile(path, work / safe.name)
                storage.publish(work / safe.name, safe)
        path = safe
    return path


def allowed_source_dirs(settings: Settings) -> list[Path]:
    """Folders interfaces may name files in: ``paths.allowed_source_dirs``, plus the data dir and the inbox."""
    configured = [Path(d) for d in settings.paths.allowed_source_dirs if d != "*"]
    return [*configured, settings.data_dir, storage.inbox_dir(settings.data_dir, settings.inbox.dir)]


def _require_under(path: Path, folders: list[Path], shown: str, reason: str) -> None:
    """Refuse ``path`` unless it lies under one of ``folders`` once ``..`` and symlinks are resolved.

    Checked before the file's existence, with one message either way, so nobody can probe the
    server's disk through the refusal.
    """
    real = Path(os.path.realpath(path))
    if not any(real.is_relative_to(os.path.realpath(folder)) for folder in folders):
        raise BadInput(f"'{shown}' {reason}.")


def enqueue(settings: Settings, source: str, dispatch: Dispatch, **kwargs) -> tuple[str, int]:
    episode_id, job_id = create(settings, source, **kwargs)
    submit(settings, job_id, dispatch)
    return episode_id, job_id


def submit(settings: Settings, job_id: int, dispatch: Dispatch) -> None:
    with db.session(settings.app_db) as conn:
        priority = db.get_job(conn, job_id)["priority"]
    task_id = dispatch(job_id, priority)
    with db.session(settings.app_db) as conn:
        db.set_job_task_id(conn, job_id, task_id)


def retry(settings: Settings, job_id: int, dispatch: Dispatch) -> dict:
    """Requeue a failed, cancelled or waiting job now, ahead of routine work; completed stages are kept."""
    with db.session(settings.app_db) as conn, db.transaction(conn):
        job = _require(conn, job_id)
        episode = db.get_episode(conn, job["episode_id"])
        if episode["deleted_at"] is not None:
            raise NotAllowed(f"Job {job_id} belongs to a deleted episode; restore the episode first.")
        if not db.requeue_job(conn, job_id, PRIORITY_RETRY, settings.worker.max_attempts):
            raise NotAllowed(f"Job {job_id} is {job['status']}; only {_either(states.RETRY_NOW.sources)} jobs"
                           " can be retried.")
        db.add_event(conn, job_id, None, "queued", time.time(), message="Manual retry.")
    submit(settings, job_id, dispatch)
    return get(settings, job_id)


def rework(settings: Settings, episode_id: str, from_stage: str, dispatch: Dispatch, options: dict | None = None,
           priority: int = PRIORITY_INTERACTIVE, trusted_path: bool = False) -> int:
    """Queue a new job for an existing episode that redoes ``from_stage`` and everything after it.

    Earlier stages stay done (no re-download, no re-ingest). Options are merged over the
    episode's previous job options. Files of redone stages are replaced only when each
    stage completes, so the old transcript or clips stay usable until then.
    """
    if from_stage not in ALL_STAGES:
        raise BadInput(f"Unknown stage '{from_stage}'; use one of {', '.join(ALL_STAGES)}.")
    with db.session(settings.app_db) as conn, db.transaction(conn):
        episode = db.get_episode(conn, episode_id)
        if episode is None or episode["deleted_at"] is not None:
            raise NotFound(f"There is no episode {episode_id}.")
        if active := db.active_jobs_for_episode(conn, episode_id):
            raise NotAllowed(f"Episode {episode_id} already has job {active[0]['id']} {active[0]['status']};"
                           " wait for it to finish or cancel it first.")
        if gone := ingest.source_gone_message(episode):   # retention deleted it (a URL is downloaded again)
            raise BadInput(gone)
        merged = json.loads(db.last_job_options(conn, episode_id) or "{}")
        merged.pop("full_episode", None)   # a full render is asked for each time, not inherited
        merged.pop("target_stage", None)   # so is stopping early: a reprocess runs to the end unless told
        merged.update(options or {})
        merged = job_options.validate(settings, merged, trusted=trusted_path)
        db.clear_stages(conn, episode_id, ALL_STAGES[ALL_STAGES.index(from_stage):])
        now = time.time()
        job_id = db.insert_job(conn, episode_id, priority, json.dumps(merged), now, settings.worker.max_attempts)
        db.add_event(conn, job_id, None, "queued", now, message=f"Redo from {from_stage}.")
    submit(settings, job_id, dispatch)
    return job_id


def cancel(settings: Settings, job_id: int) -> dict:
    """Cancel a job no task is working on at once; ask a running stage or clip to stop at its next check."""
    with db.session(settings.app_db) as conn, db.transaction(conn):
        job = _require(conn, job_id)
        if not states.CANCEL.allows(job["status"]):
            raise NotAllowed(f"Job {job_id} already {job['status']}; there is nothing to cancel.")
        now = time.time()
        status = db.request_cancel(conn, job_id, now)
        if status == states.CANCELLED:
            started = job["status"] == states.RUNNING
            db.add_event(conn, job_id, job["stage"], "cancelled", now,
                         message="Cancelled between stages." if started else "Cancelled before it started.")
            if started:
                done = db.completed_stages(conn, job["episode_id"])
                db.set_episode_status(conn, job["episode_id"], states.episode_status_after(status, done), now)
    return get(settings, job_id)


def _either(statuses: tuple[str, ...]) -> str:
    return ", ".join(statuses[:-1]) + " or " + statuses[-1]


def _require(conn, job_id: int):
    job = db.get_job(conn, job_id)
    if job is None:
        raise NotFound(f"There is no job {job_id}.")
    return job


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def display_title(row) -> str:
    """The episode's title, or until it has one the name of the file or URL it came from."""
    return row["episode_title"] or Path(row["episode_source"]).name or row["episode_source"]


def to_json(row, forecasts: dict[int, tuple[float, float]] | None = None) -> dict:
    """A job row from ``db.list_jobs``/``db.get_job_view`` as the job JSON of DESIGN.md.

    A queued or retrying job gets its forecast (``queue_forecast``): ``starts_in_seconds`` and,
    as ``eta_seconds``, the seconds until it should be done.
    """
    starts_in, done_in = (forecasts or {}).get(row["id"], (None, None))
    eta = row["eta_seconds"] if row["status"] == "running" else done_in
    return {
        "job_id": row["id"], "episode_id": row["episode_id"], "status": row["status"],
        "stage": row["stage"], "progress": round(row["progress"], 4),
        "eta_seconds": None if eta is None else round(eta, 1),
        "starts_in_seconds": None if starts_in is None else round(starts_in, 1),
        "attempts": row["attempts"], "priority": row["priority"], "error": row["error"],
        "error_kind": row["error_kind"], "cancel_requested": bool(row["cancel_requested"]),
        "title": display_title(row), "next_attempt_at": iso(row["next_attempt_at"]),
        "max_attempts": row["max_attempts"],
        "created_at": iso(row["created_at"]), "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]), "heartbeat_at": iso(row["heartbeat_at"]),
    }


def queue_forecast(settings: Settings, conn, now: float) -> dict[int, tuple[float, float]]:
    """{job_id: (starts_in, done_in)} for the queued and retrying jobs, from the learned rates,
    the running jobs' ETAs and the live workers' task slots."""
    rows = db.unfinished_jobs(conn)
    if all(row["status"] == "running" for row in rows):
        return {}
    slots = max(1, workers.liveness(settings, conn, now)["threads_alive"])
    cpu_share = threads.machine_share(slots)   # every slot busy: each has its share of the machine
    rates = db.stage_rates(conn, settings.worker.host_id)
    typical = db.typical_media_seconds(conn) or DEFAULT_MEDIA_SECONDS
    busy, queued = [], []
    for row in rows:
        plan = plan_for(settings.enrich, json.loads(row["options_json"] or "{}"), rates, row["duration"] or typical,
                        row["clip_seconds"] if row["clip_count"] else None, row["clip_count"], slots, cpu_share)
        remaining = plan.remaining(set((row["done_stages"] or "").split(",")))
        if row["status"] == "running":
            busy.append(remaining if row["eta_seconds"] is None else row["eta_seconds"])
        else:
            ready_in = max(0.0, (row["next_attempt_at"] or now) - now) if row["status"] == "retrying" else 0.0
            queued.append(QueuedJob(row["id"], ready_in, remaining))
    return forecast(busy, queued, slots)


def get(settings: Settings, job_id: int) -> dict:
    with db.session(settings.app_db) as conn, db.snapshot(conn):
        _require(conn, job_id)
        row = db.get_job_view(conn, job_id)
        return to_json(row, queue_forecast(settings, conn, time.time()) if row["status"] in WAITING else None)


def list_jobs(settings: Settings, status: str | None = None, limit: int = 100, search: str = "") -> list[dict]:
    if status is not None and status not in JOB_STATUSES:
        raise BadInput(f"Unknown status '{status}'; use one of {', '.join(JOB_STATUSES)}.")
    with db.session(settings.app_db) as conn, db.snapshot(conn):
        rows = db.list_jobs(conn, status, limit, search.strip())
        forecasts = queue_forecast(settings, conn, time.time()) if any(r["status"] in WAITING for r in rows) else None
        return [to_json(row, forecasts) for row in rows]


def page(settings: Settings, status: str | None = None, stage: str | None = None, episode_id: str | None = None,
         search: str = "", created_since: float | None = None, before: int | None = None,
         limit: int = 50) -> dict:
    """A page of jobs, newest first, and the cursor of the next page (``next``: pass it as ``before``)."""
    if status is not None and status not in JOB_STATUSES:
        raise BadInput(f"Unknown status '{status}'; use one of {', '.join(JOB_STATUSES)}.")
    if stage is not None and stage not in ALL_STAGES:
        raise BadInput(f"Unknown stage '{stage}'; use one of {', '.join(ALL_STAGES)}.")
    with db.session(settings.app_db) as conn, db.snapshot(conn):
        rows = db.page_jobs(conn, status, stage, episode_id, search.strip(), created_since, before, limit + 1)
        shown = rows[:limit]
        forecasts = queue_forecast(settings, conn, time.time()) if any(r["status"] in WAITING for r in shown) else None
        return {"jobs": [to_json(row, forecasts) for row in shown],
                "next": shown[-1]["id"] if len(rows) > limit else None}


def units(settings: Settings, job_id: int) -> list[dict]:
    """The job's render units: one per clip of its current render fan-out."""
    with db.session(settings.app_db) as conn:
        return [{"unit_id": u["id"], "clip_id": u["clip_id"], "clip_title": u["clip_title"], "status": u["status"],
                 "progress": round(u["progress"], 4), "clip_seconds": u["clip_seconds"], "attempts": u["attempts"],
                 "worker_id": u["worker_id"], "error": u["error"],
                 "seconds": round(u["finished_at"] - u["started_at"], 1) if u["finished_at"] and u["started_at"]
                 else None}
                for u in db.list_units(conn, job_id)]


def events(settings: Settings, job_id: int) -> list[dict]:
    with db.session(settings.app_db) as conn:
        return [{"stage": e["stage"], "kind": e["kind"], "message": e["message"], "seconds": e["seconds"],
                 "at": iso(e["created_at"])} for e in db.list_events(conn, job_id)]


def stats(settings: Settings) -> dict:
    """Success rate, processing seconds per media hour by stage, failures by error kind, queue latency,
    and the workers by host."""
    with db.session(settings.app_db) as conn, db.snapshot(conn):
        outcome = outcomes(conn)
        stages = db.stage_durations(conn)
        hosts = workers.by_host(settings, conn, time.time())
    latencies = outcome["latencies"]
    return {
        "jobs": outcome["counts"],
        "success_rate": outcome["success_rate"],
        "failures_by_kind": outcome["failures_by_kind"],
        "seconds_per_media_hour": {r["stage"]: round(r["seconds_per_media_hour"], 1)
                                   for r in stages if r["seconds_per_media_hour"] is not None},
        "queue_latency_seconds": {"median": _percentile(latencies, 0.5), "p95": _percentile(latencies, 0.95),
                                  "samples": len(latencies)},
        "workers_by_host": hosts,
    }


def outcomes(conn) -> dict:
    """Counts per status, success rate, failures by kind and sorted queue latencies, from one connection."""
    counts = db.count_jobs_by_status(conn)
    finished = counts.get("succeeded", 0) + counts.get("failed", 0)
    return {"counts": {s: counts.get(s, 0) for s in JOB_STATUSES},
            "success_rate": round(counts.get("succeeded", 0) / finished, 4) if finished else None,
            "failures_by_kind": db.failures_by_kind(conn),
            "latencies": sorted(db.queue_latencies(conn))}


def _percentile(values: list[float], q: float) -> float | None:
    return round(values[min(len(values) - 1, int(q * len(values)))], 3) if values else None


def queue_overview(settings: Settings) -> dict:
    """Counts per status and whether a worker is alive (``workers.liveness``)."""
    with db.session(settings.app_db) as conn:
        counts = db.count_jobs_by_status(conn)
        liveness = workers.liveness(settings, conn, time.time())
    return {"counts": {s: counts.get(s, 0) for s in JOB_STATUSES}, **liveness}
