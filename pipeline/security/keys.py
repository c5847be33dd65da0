"""API keys: ``python -m pipeline api-keys create NAME`` prints a key once; only its SHA-256 is kept.

A key is 32 random bytes (URL-safe text) behind the ``cdk_`` prefix: far too much entropy to
guess, so one unsalted SHA-256 is enough and lets a request's key be found with one index seek.
The stored hash is compared in constant time all the same.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time

from pipeline import db
from pipeline.config import Settings
from pipeline.errors import BadInput, NotFound
from pipeline.jobs import iso

PREFIX = "cdk_"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create(settings: Settings, name: str) -> dict:
    """A new key named ``name``; the returned ``key`` is the only time it is ever shown."""
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise BadInput("A key needs a name of 1 to 100 characters (who or what uses it).")
    key = PREFIX + secrets.token_urlsafe(32)
    with db.session(settings.app_db) as conn:
        key_id = db.insert_api_key(conn, name, key[:len(PREFIX) + 6], _hash(key), time.time())
    return {"key_id": key_id, "name": name, "key": key}


def list_keys(settings: Settings) -> list[dict]:
    with db.session(settings.app_db) as conn:
        return [{"key_id": r["id"], "name": r["name"], "prefix": r["prefix"], "created_at": iso(r["created_at"]),
                 "revoked_at": iso(r["revoked_at"])} for r in db.list_api_keys(conn)]


def revoke(settings: Settings, key_id: int) -> dict:
    with db.session(settings.app_db) as conn:
        if not db.revoke_api_key(conn, key_id, time.time()):
            raise NotFound(f"There is no active API key {key_id}.")
    return next(k for k in list_keys(settings) if k["key_id"] == key_id)


def any_active(settings: Settings) -> bool:
    with db.session(settings.app_db) as conn:
        return db.active_api_key_count(conn) > 0


def verify(settings: Settings, presented: str) -> int | None:
    """The id of the active key ``presented`` is, or None."""
    digest = _hash(presented)
    with db.session(settings.app_db) as conn:
        row = db.find_api_key(conn, digest)
    return row["id"] if row is not None and hmac.compare_digest(row["key_hash"], digest) else None


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def exposure_refusal(settings: Settings, address: str) -> str | None:
    """Why the API must not start on ``address``, or None: no key exists and it is not loopback."""
    if is_loopback(address) or any_active(settings):
        return None
    return (f"The API would listen on {address} with no API key: anyone who can reach this machine could use it."
            " Create a key first (python -m pipeline api-keys create NAME), or set api.address to 127.0.0.1.")
