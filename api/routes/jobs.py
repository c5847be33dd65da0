"""``/v1/jobs``: list, one job, its events, cancel and retry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ClientDep, SettingsDep, dispatch
from pipeline import jobs
from pipeline.jobs import feed

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("", summary="List jobs, newest first, with filters; page on with ?before=<next>")
def list_jobs(settings: SettingsDep, client: ClientDep, status: str | None = None, stage: str | None = None,
              episode_id: str | None = None, search: str = "",
              created_since: Annotated[datetime | None, Query(description="ISO 8601, e.g. 2026-12-01T00:00:00Z")] = None,
              before: Annotated[int | None, Query(ge=1, description="the previous page's next")] = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 50):
    if created_since is not None and created_since.tzinfo is None:   # a time without zone is UTC
        created_since = created_since.replace(tzinfo=UTC)
    since = created_since.timestamp() if created_since else None
    return jobs.page(settings, status, stage, episode_id, search, since, before, limit)


@router.get("/{job_id}", summary="One job: status, stage, progress, ETA, error")
def get_job(job_id: int, settings: SettingsDep, client: ClientDep):
    return jobs.get(settings, job_id)


@router.get("/{job_id}/events", summary="The job's events, oldest first (ids as on /v1/events)")
def job_events(job_id: int, settings: SettingsDep, client: ClientDep,
               after: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=1000)] = 500):
    jobs.get(settings, job_id)   # 404 for an unknown job
    return {"events": feed.after(settings, after, job_id=job_id, limit=limit)}


@router.post("/{job_id}/cancel", summary="Cancel: a waiting job at once, a running one within about a second")
def cancel(job_id: int, settings: SettingsDep, client: ClientDep):
    return jobs.cancel(settings, job_id)


@router.post("/{job_id}/retry", summary="Retry a failed, cancelled or retrying job now, ahead of routine work")
def retry(job_id: int, settings: SettingsDep, client: ClientDep):
    return jobs.retry(settings, job_id, dispatch)
