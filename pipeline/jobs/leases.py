"""Periodic work taken by one consumer at a time: feed checks, inbox scan, webhook sweep, reaper, retention.

Every consumer (on every machine) runs the periodic ticks; each tick first takes a named lease in the
database (``db.acquire_lease``: one atomic upsert, portable to PostgreSQL). A consumer that finds the
lease held skips its turn, so two machines never check the same feed at the same moment, nor both
let one more feed entry in past ``worker.max_queued_jobs``. The holder renews the lease every
``worker.heartbeat_seconds`` while the work runs and deletes it at the end; a holder that is killed
stops renewing, and its lease expires after ``worker.stale_after_seconds`` (the liveness rule of
heartbeats), so nobody waits on a dead worker for longer than that.

Within one process, threads (``-w N`` runs N ticks at once) take a local lock first: the database
sees one holder per worker process, ``<host_id>:<pid>``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

from pipeline import db
from pipeline.config import Settings
from pipeline.jobs import workers

log = logging.getLogger("clipdesk.leases")

AUTOMATION = "automation"   # feeds, inbox, webhook sweep (one minute tick)
REAPER = "reaper"
RETENTION = "retention"

_local = defaultdict(threading.Lock)   # lease name -> this process's lock


class Lease:
    """``with Lease(settings, name) as taken:``: ``taken`` is True when this worker holds ``name``
    for the block (renewed while it runs, released after it), False when another worker has it."""

    def __init__(self, settings: Settings, name: str, holder: str | None = None):
        self.settings, self.name = settings, name
        self.holder = holder or workers.worker_id(settings)
        self.taken = False
        self._heartbeat: workers.Heartbeat | None = None

    def _expiry(self, now: float) -> float:
        return now + self.settings.worker.stale_after_seconds

    def __enter__(self) -> bool:
        lock = _local[self.name]
        if not lock.acquire(blocking=False):
            return False   # another thread of this worker is doing it
        try:
            now = time.time()
            with db.session(self.settings.app_db) as conn:
                self.taken = db.acquire_lease(conn, self.name, self.holder, now, self._expiry(now))
        finally:
            if not self.taken:
                lock.release()
        if self.taken:
            self._heartbeat = workers.Heartbeat(self.settings, f"lease-{self.name}", self._renew).__enter__()
        return self.taken

    def _renew(self, conn, now: float) -> None:
        if not db.renew_lease(conn, self.name, self.holder, self._expiry(now)):
            log.warning("lease %s of %s expired while its work still ran (it took longer than"
                        " worker.stale_after_seconds without a renewal)", self.name, self.holder)

    def __exit__(self, *exc) -> None:
        if not self.taken:
            return
        try:
            self._heartbeat.__exit__(None, None, None)
            with db.session(self.settings.app_db) as conn:
                db.release_lease(conn, self.name, self.holder)
        except Exception:   # the lease then expires by itself
            log.warning("could not release lease %s", self.name, exc_info=True)
        finally:
            self.taken = False
            _local[self.name].release()
