"""Who may call the API: a key from ``python -m pipeline api-keys create`` in ``Authorization:
Bearer`` or ``X-API-Key``; with no key created, a loopback-bound API is open like the dashboard.

Failed attempts are throttled per client address (``security.throttle``): after a few, the
client is answered 429 with ``Retry-After`` until its delay has passed, without the key checked.
"""

from __future__ import annotations

import math
import time

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from api.problems import Problem
from pipeline.backoff import Backoff
from pipeline.config import Settings
from pipeline.security import keys
from pipeline.security.keys import is_loopback
from pipeline.security.throttle import Throttle

OPEN_CLIENT = "open"    # the idempotency scope of requests on an open (keyless, loopback) API
KEYS_CACHE_SECONDS = 1.0


class Gate:
    """The auth check one app instance uses (its throttle state lives as long as the process)."""

    def __init__(self, settings: Settings, address: str):
        self.settings, self.address = settings, address
        self.throttle = Throttle("API key", free=3, backoff=Backoff(base=1.0, factor=2.0, cap=300.0))
        self._keys_checked_at, self._keys_exist = -math.inf, False

    async def _any_keys(self) -> bool:
        now = time.monotonic()
        if now - self._keys_checked_at > KEYS_CACHE_SECONDS:
            self._keys_exist = await run_in_threadpool(keys.any_active, self.settings)
            self._keys_checked_at = now
        return self._keys_exist

    async def __call__(self, request: Request) -> str:
        """The client's identity (``key:<id>`` or ``open``), or a 401/429 problem."""
        presented = _presented_key(request)
        if presented is None and not await self._any_keys():
            if is_loopback(self.address):
                return OPEN_CLIENT
            raise Problem(401, "This API listens on a public address and no API key exists; create one with"
                               " python -m pipeline api-keys create NAME.")
        client = request.client.host if request.client else "unknown"
        wait = self.throttle.wait(client)
        if wait > 0:
            raise Problem(429, f"Too many failed authentications from {client}; try again in {math.ceil(wait)} s.",
                          {"Retry-After": str(math.ceil(wait))})
        if presented is None:
            self.throttle.failed(client)
            raise Problem(401, "This API needs a key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
                          {"WWW-Authenticate": "Bearer"})
        key_id = await run_in_threadpool(keys.verify, self.settings, presented)
        if key_id is None:
            self.throttle.failed(client)
            raise Problem(401, "The API key is not valid (unknown or revoked).", {"WWW-Authenticate": "Bearer"})
        self.throttle.succeeded(client)
        return f"key:{key_id}"


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return header   # checked (and refused) like any wrong key
        return value.strip()
    return request.headers.get("x-api-key") or None
