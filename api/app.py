"""The FastAPI app: ``create_app()`` is what uvicorn runs (``uvicorn --factory api.app:create_app``).

Docs are served offline (``fastapi-offline`` ships Swagger UI's assets). The app refuses to be
created for a non-loopback ``api.address`` while no API key exists.
"""

from __future__ import annotations

import os
import sys

from fastapi_offline import FastAPIOffline

from api import problems
from api.auth import Gate
from api.routes import clips, episodes, events, jobs, ops
from pipeline.config import Settings, load_settings
from pipeline.security.keys import exposure_refusal

DESCRIPTION = """Drive Clipdesk from scripts, n8n or Zapier: submit episodes, follow their jobs live
(`/v1/events`, Server-Sent Events), control them, and download transcripts and clips.

Auth: `Authorization: Bearer <key>` or `X-API-Key: <key>` (keys: `python -m pipeline api-keys create NAME`).
Errors are `application/problem+json` (RFC 9457)."""


def create_app(settings: Settings | None = None, address: str | None = None) -> FastAPIOffline:
    settings = settings or load_settings()
    address = address or os.environ.get("CLIPDESK_API_ADDRESS") or settings.api.address
    if refusal := exposure_refusal(settings, address):
        print(f"error: {refusal}", file=sys.stderr)
        raise SystemExit(2)
    app = FastAPIOffline(title="Clipdesk API", version="1", description=DESCRIPTION, redoc_url=None)
    app.state.settings = settings
    app.state.gate = Gate(settings, address)
    problems.install(app)
    for module in (episodes, jobs, clips, events, ops):
        app.include_router(module.router)
    return app
