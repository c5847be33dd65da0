"""``GET /v1/events``: Server-Sent Events of jobs, read from the database (workers are other processes).

Each stored event goes out with ``id: <job_events row id>``; a client reconnecting with
``Last-Event-ID`` (header, or ``last_event_id`` query) gets exactly the events after it.
Without it, a stream filtered by job or episode starts from that job's/episode's first event,
an unfiltered one from now. Progress goes out as ``job.progress`` events without an id (it is a
sample, not history), at most one per job per ``api.progress_interval_seconds``; an idle stream
gets a comment line every ``api.keepalive_seconds``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import ClientDep, SettingsDep
from api.problems import Problem
from pipeline import jobs
from pipeline.jobs import feed
from pipeline.library import episodes

router = APIRouter(tags=["events"])
BATCH = 500


def _message(data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {data['event']}\ndata: {json.dumps(data)}\n\n"


@router.get("/v1/events", summary="Live job events as Server-Sent Events; resume with Last-Event-ID",
            response_class=StreamingResponse)
async def events(request: Request, settings: SettingsDep, client: ClientDep,
                 job_id: int | None = None, episode_id: str | None = None,
                 last_event_id_query: Annotated[int | None, Query(alias="last_event_id", ge=0)] = None,
                 last_event_id: Annotated[str | None, Header()] = None):
    if last_event_id is not None and not last_event_id.strip().isdigit():
        raise Problem(400, f"Last-Event-ID must be the id of an event (a whole number), got '{last_event_id}'.")
    resume = int(last_event_id) if last_event_id is not None else last_event_id_query
    if job_id is not None:
        await run_in_threadpool(jobs.get, settings, job_id)          # 404 for an unknown job
    if episode_id is not None:
        await run_in_threadpool(episodes.summary, settings, episode_id)
    if resume is None:
        resume = 0 if (job_id or episode_id) else await run_in_threadpool(feed.last_id, settings)
    api = settings.api

    async def stream():
        cursor, last_sent = resume, time.monotonic()
        sampled: dict[int, tuple[float, float, str | None]] = {}   # job -> (when, progress, stage) last sent
        yield f"retry: 2000\n: stream of job events after id {cursor}\n\n"
        while not await request.is_disconnected():
            batch = await run_in_threadpool(feed.after, settings, cursor, job_id, episode_id, BATCH)
            out = []
            for event in batch:
                out.append(_message(event, event["id"]))
                cursor = event["id"]
            now = time.monotonic()
            for sample in await run_in_threadpool(feed.progress, settings, job_id, episode_id):
                when, value, stage = sampled.get(sample["job_id"], (-1e9, -1.0, None))
                if (sample["progress"], sample["stage"]) != (value, stage) and now - when >= api.progress_interval_seconds:
                    sampled[sample["job_id"]] = (now, sample["progress"], sample["stage"])
                    out.append(_message(sample))
            if out:
                yield "".join(out)
                last_sent = now
            elif now - last_sent >= api.keepalive_seconds:
                yield ": keep-alive\n\n"
                last_sent = now
            if len(batch) < BATCH:
                await asyncio.sleep(api.event_poll_seconds)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
