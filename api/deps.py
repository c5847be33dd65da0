"""What routes share: the settings, the client's identity and the queue's dispatch."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pipeline.config import Settings
from pipeline.ops import serve


async def settings(request: Request) -> Settings:
    """Async on purpose, like ``client``: a sync dependency would cost every request a thread hop."""
    return request.app.state.settings


async def client(request: Request) -> str:
    """The authenticated client (``key:<id>`` or ``open``); 401/429 problems otherwise."""
    return await request.app.state.gate(request)


def dispatch(job_id: int, priority: int) -> str:
    """Put a job on the queue the consumers read (the worker shell's dispatch, loaded by name)."""
    return serve.queue_dispatch()(job_id, priority)


SettingsDep = Annotated[Settings, Depends(settings)]
ClientDep = Annotated[str, Depends(client)]
