"""Idempotency-Key: a submit repeated with the same key gets the first answer, not a second job.

The key is claimed before the work (one ``INSERT OR IGNORE``), so two copies of a request that
arrive together cannot both create a job: the second is told the first is still in progress.
The same key with a different request is refused rather than silently answered for the other.
A request that fails releases its claim, so the corrected request may reuse the key.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from pipeline import db
from pipeline.config import Settings
from pipeline.errors import BadInput, NotAllowed

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict
    location: str | None = None


def fingerprint(parts: dict) -> str:
    """A stable hash of what a request asks for (its fields, and for an upload the file's digest)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def once(settings: Settings, client: str, key: str | None, request_hash: str, work: Callable[[], Answer]) -> Answer:
    """Run ``work`` unless this client already made this request with this key; return its answer."""
    if key is None:
        return work()
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise BadInput(f"The Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} characters.")
    with db.session(settings.app_db) as conn:
        earlier = db.claim_idempotency_key(conn, client, key, request_hash, time.time())
    if earlier is not None:
        if earlier["request_hash"] != request_hash:
            raise NotAllowed(f"Idempotency-Key '{key}' was already used for a different request;"
                             " use a new key for a new request.")
        if earlier["status_code"] is None:
            raise NotAllowed(f"The first request with Idempotency-Key '{key}' is still being handled; ask again.")
        return Answer(earlier["status_code"], json.loads(earlier["response_json"]), earlier["location"])
    try:
        answer = work()
    except BaseException:
        with db.session(settings.app_db) as conn:
            db.release_idempotency_key(conn, client, key)
        raise
    with db.session(settings.app_db) as conn:
        db.store_idempotent_answer(conn, client, key, answer.status_code, json.dumps(answer.body), answer.location)
    return answer
