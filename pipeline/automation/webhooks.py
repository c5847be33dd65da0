"""Webhooks: tell other systems (n8n, Zapier, a script) when a job succeeds or fails.

Each URL in ``webhooks.urls``, and the job's own ``webhook_url`` option, gets a POST of ``{"event", "job", "episode"}`` (the job JSON and
the episode summary: clip titles, scores, render paths relative to the data dir; no absolute
server path leaves the machine). With a secret in the env var ``webhooks.secret_env`` every
attempt carries ``X-Clipdesk-Timestamp: <unix seconds>`` and
``X-Clipdesk-Signature: t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>``:
the timestamp is signed with the body, so a receiver that refuses old timestamps (``verify``,
5 minutes) refuses a replayed delivery, and a changed byte fails the HMAC. Without a secret the
delivery goes out unsigned and is marked so (``signed`` on the delivery, shown in the dashboard).
``X-Clipdesk-Delivery`` is stable across retries, for de-duplication.

Deliveries never block or break the worker: the rows are written first, then a daemon
thread attempts them with back-off (``retry_delay_seconds``, doubling). If the process
exits meanwhile, ``deliver_due`` (the worker's periodic task) finishes the job from the
rows. Every attempt is logged (``deliveries(settings, job_id)`` for the job detail view).
URLs go through ``security.network`` like every outbound fetch.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import time
from pathlib import Path

import requests

from pipeline import db, jobs
from pipeline.backoff import Backoff
from pipeline.config import Settings
from pipeline.library import episodes
from pipeline.security import network

log = logging.getLogger("clipdesk.webhooks")

SIGNATURE_HEADER = "X-Clipdesk-Signature"
TIMESTAMP_HEADER = "X-Clipdesk-Timestamp"
TOLERANCE_SECONDS = 300   # receivers refuse deliveries signed longer ago than this
EVENTS = {"succeeded": "job.succeeded", "failed": "job.failed"}
LEASE_SECONDS = 300.0   # an attempt in flight is not taken by anyone else for this long


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Clipdesk-Signature`` value: HMAC-SHA256 over ``"<timestamp>." + body``."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, timestamp: str, signature: str, body: bytes, now: float | None = None,
           tolerance: float = TOLERANCE_SECONDS) -> bool:
    """What a receiver checks (the README shows the same code): a fresh timestamp, signed with this body."""
    now = time.time() if now is None else now
    fields = dict(part.split("=", 1) for part in signature.split(",") if "=" in part)
    if not timestamp.isdigit() or fields.get("t") != timestamp or abs(now - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields.get("v1", ""))


def without_server_paths(value, data_dir: Path):
    """The payload with every absolute path made relative to the data dir (any other one cut to its
    file name): receivers fetch files through the HTTP API, they need not learn the server's layout."""
    if isinstance(value, dict):
        return {key: without_server_paths(item, data_dir) for key, item in value.items()}
    if isinstance(value, list):
        return [without_server_paths(item, data_dir) for item in value]
    if isinstance(value, str) and value.startswith("/") and "\n" not in value:
        path = Path(value)
        return str(path.relative_to(data_dir)) if path.is_relative_to(data_dir) else path.name
    if isinstance(value, str):   # e.g. an error message naming a file
        return value.replace(f"{data_dir}/", "")
    return value


def notify_job_finished(settings: Settings, job_id: int) -> list[threading.Thread]:
    """Record one delivery per configured URL for a finished job and start delivering them.

    Never raises (it runs at the end of every job); returns the delivery threads (tests join them).
    """
    try:
        if not urls_for(settings, job_id):
            return []
        ids = record(settings, job_id)
    except Exception:
        log.exception("job %s: could not record webhook deliveries", job_id)
        return []
    threads = [threading.Thread(target=deliver, args=(settings, delivery_id), daemon=True,
                                name=f"clipdesk-webhook-{delivery_id}") for delivery_id in ids]
    for thread in threads:
        thread.start()
    return threads


def urls_for(settings: Settings, job_id: int) -> tuple[str, ...]:
    """The configured URLs plus the job's own ``webhook_url`` option (submitted through the API, say)."""
    with db.session(settings.app_db) as conn:
        row = db.get_job(conn, job_id)
    own = json.loads(row["options_json"] or "{}").get("webhook_url") if row is not None else None
    return tuple(dict.fromkeys((*settings.webhooks.urls, *((own,) if own else ()))))


def record(settings: Settings, job_id: int) -> list[int]:
    """One pending delivery row per configured URL (the exact body to sign and send); [] if nothing to announce."""
    job = jobs.get(settings, job_id)
    event = EVENTS.get(job["status"])
    if event is None:   # cancelled, or not finished: nothing to announce
        return []
    payload = {"event": event, "job": job, "episode": episodes.summary(settings, job["episode_id"]),
               "sent_at": jobs.iso(time.time())}
    payload = without_server_paths(payload, settings.data_dir)
    body = json.dumps(payload, sort_keys=True).encode("utf-8")
    with db.session(settings.app_db) as conn, db.transaction(conn):
        return [db.insert_webhook_delivery(conn, job_id, url, event, body, time.time())
                for url in urls_for(settings, job_id)]


def deliver(settings: Settings, delivery_id: int) -> None:
    """Attempt one delivery until it is delivered or out of attempts, sleeping through the back-off."""
    try:
        while (next_at := attempt(settings, delivery_id)) is not None:
            time.sleep(max(0.0, next_at - time.time()))
    except Exception:   # a background thread: log, the periodic sweep will pick the row up again
        log.exception("webhook delivery %s crashed", delivery_id)


def deliver_due(settings: Settings, now: float | None = None) -> int:
    """One attempt for every pending delivery whose time has come (after a restart, say)."""
    now = time.time() if now is None else now
    with db.session(settings.app_db) as conn:
        due = db.due_webhook_delivery_ids(conn, now)
    for delivery_id in due:
        attempt(settings, delivery_id, now)
    return len(due)


def attempt(settings: Settings, delivery_id: int, now: float | None = None) -> float | None:
    """POST once if the delivery is due (at ``now``) and pending; return when to try again, or None if finished."""
    now = time.time() if now is None else now
    with db.session(settings.app_db) as conn, db.transaction(conn):
        row = db.claim_webhook_delivery(conn, delivery_id, now + LEASE_SECONDS, now)
    if row is None:
        return None   # delivered, failed for good, or taken by another process
    config = settings.webhooks
    started = time.monotonic()
    status, error, signed = _post(settings, row)
    seconds = round(time.monotonic() - started, 3)
    number = row["attempts"]
    next_at = now + seconds + Backoff(config.retry_delay_seconds).delay(number - 1)
    if error is None:
        result = "delivered"
    elif number >= config.max_attempts:
        result = "failed"
    else:
        result = "pending"
    with db.session(settings.app_db) as conn, db.transaction(conn):
        db.record_webhook_attempt(conn, delivery_id, number, status, error, seconds, time.time())
        db.set_webhook_delivery_result(conn, delivery_id, result, error, next_at, time.time(), signed)
    log.info("webhook %s to %s attempt %d: %s", delivery_id, row["url"], number, error or "delivered")
    return next_at if result == "pending" else None


def _post(settings: Settings, row) -> tuple[int | None, str | None, bool]:
    """One POST; returns (HTTP status, error, whether it was signed)."""
    body = bytes(row["body"])
    headers = {"Content-Type": "application/json", "User-Agent": "Clipdesk-Webhooks/1",
               "X-Clipdesk-Event": row["event"], "X-Clipdesk-Delivery": str(row["id"])}
    secret = os.environ.get(settings.webhooks.secret_env, "")
    if secret:   # signed at each attempt: a retry carries a fresh timestamp
        timestamp = int(time.time())
        headers[TIMESTAMP_HEADER] = str(timestamp)
        headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
    try:
        response = network.post(row["url"], settings.network, data=body, headers=headers,
                                timeout=settings.webhooks.timeout_seconds)
    except network.RefusedFetch as exc:
        return None, str(exc), bool(secret)
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}", bool(secret)
    if 200 <= response.status_code < 300:
        return response.status_code, None, bool(secret)
    return response.status_code, f"HTTP {response.status_code}", bool(secret)


def deliveries(settings: Settings, job_id: int) -> list[dict]:
    """Every delivery of a job with its attempts (for the job detail view)."""
    with db.session(settings.app_db) as conn:
        rows = db.list_webhook_deliveries(conn, job_id)
        attempts = {row["id"]: db.list_webhook_attempts(conn, row["id"]) for row in rows}
    return [{"delivery_id": row["id"], "url": row["url"], "event": row["event"], "status": row["status"],
             "signed": None if row["signed"] is None else bool(row["signed"]),
             "attempts": row["attempts"], "last_error": row["last_error"],
             "next_attempt_at": jobs.iso(row["next_attempt_at"]) if row["status"] == "pending" else None,
             "delivered_at": jobs.iso(row["delivered_at"]), "created_at": jobs.iso(row["created_at"]),
             "log": [{"attempt": a["attempt"], "http_status": a["http_status"], "error": a["error"],
                      "seconds": a["seconds"], "at": jobs.iso(a["created_at"])} for a in attempts[row["id"]]]}
            for row in rows]
