"""Worker identity, heartbeats and the one liveness rule.

A worker is a consumer process, named ``<host_id>:<pid>`` (``worker.host_id``, env ``CLIPDESK_HOST_ID``,
else the hostname: the one place a host is recorded, in worker ids and in stage events). While it runs, it stamps its row in
``workers`` (its consumer thread) and the row of each job or render unit it is working on
(``Heartbeat``). One rule says whether a heartbeat is still alive: it is younger than
``worker.stale_after_seconds``. The reaper (``pipeline.jobs.recovery``) applies it to jobs and
units, the dashboard and ``stats`` to consumers; a process on this host can also be checked
directly, one on another host only by its heartbeat (its pid means nothing here).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pipeline import db, storage
from pipeline.config import Settings

log = logging.getLogger("clipdesk.workers")

def worker_id(settings: Settings, pid: int | None = None) -> str:
    """This process's worker id: ``<host_id>:<pid>``."""
    return f"{settings.worker.host_id}:{os.getpid() if pid is None else pid}"


def host_of(worker: str) -> str:
    """The host part of a worker id (host ids hold no colon)."""
    return worker.rpartition(":")[0]


def scratch_dir(settings: Settings) -> Path:
    """This process's own scratch folder (``paths.scratch_dir``/<host>-<pid>), where its files are
    written until they are complete."""
    return storage.process_scratch(settings.scratch_dir, settings.worker.host_id, os.getpid())


def sweep_scratch(settings: Settings) -> list[Path]:
    """Remove the scratch folders of this host's processes that have exited (a killed worker's
    half-written files), and a leftover of an earlier process that had this pid. Called once as a
    consumer starts, before it runs anything; other hosts' folders are never touched.

    Returns the folders removed."""
    root = settings.scratch_dir
    removed = []
    for folder in sorted(root.iterdir()) if root.is_dir() else ():
        owner = storage.scratch_owner(folder)
        if owner is None or owner[0] != settings.worker.host_id or not folder.is_dir():
            continue
        if owner[1] == os.getpid() or not process_alive(owner[1]):
            storage.remove_tree(folder)
            removed.append(folder)
    return removed


def is_fresh(settings: Settings, heartbeat_at: float | None, now: float) -> bool:
    """The liveness rule: a heartbeat younger than ``worker.stale_after_seconds`` is alive."""
    return heartbeat_at is not None and now - heartbeat_at <= settings.worker.stale_after_seconds


def lost(settings: Settings, row, now: float) -> str | None:
    """Why the worker of a running job or unit is gone, or None while it may still be running.

    A worker on this host whose process has exited is gone at once; any other is judged by its heartbeat
    (a pid of another host may well name some unrelated process here, or none).
    """
    host, _, pid = (row["worker_id"] or "").rpartition(":")
    if host == settings.worker.host_id and pid.isdigit() and not process_alive(int(pid)):
        return f"its worker process {pid} has exited"
    last = row["heartbeat_at"] or row["started_at"] or now
    if not is_fresh(settings, last, now):
        return f"its worker has not been heard from for {now - last:.0f} s"
    return None


def liveness(settings: Settings, conn, now: float) -> dict:
    """How many consumers (and task threads: their ``-w``) are alive by the liveness rule, and the
    newest heartbeat's age."""
    workers = db.list_workers(conn)   # newest heartbeat first
    alive = [w for w in workers if is_fresh(settings, w["heartbeat_at"], now)]
    return {"workers_alive": len(alive), "threads_alive": sum(w["threads"] for w in alive),
            "last_heartbeat_age": round(now - workers[0]["heartbeat_at"], 1) if workers else None}


def by_host(settings: Settings, conn, now: float) -> list[dict]:
    """The consumers grouped by host (hosts by name, consumers newest heartbeat first): each host's
    live consumers and task slots (their ``-w``), its newest heartbeat's age, and every consumer with
    its worker id, slots, heartbeat age and whether it is alive by the liveness rule or stale."""
    hosts: dict[str, list[dict]] = {}
    for row in db.list_workers(conn):   # newest heartbeat first
        alive = is_fresh(settings, row["heartbeat_at"], now)
        hosts.setdefault(host_of(row["id"]), []).append(
            {"worker_id": row["id"], "slots": row["threads"], "started_at": row["started_at"],
             "heartbeat_age": round(now - row["heartbeat_at"], 1), "alive": alive})
    return [{"host": host, "consumers_alive": sum(c["alive"] for c in consumers),
             "slots_alive": sum(c["slots"] for c in consumers if c["alive"]),
             "last_heartbeat_age": consumers[0]["heartbeat_age"],
             "status": "alive" if any(c["alive"] for c in consumers) else "stale",
             "consumers": [dict(c, status="alive" if c["alive"] else "stale") for c in consumers]}
            for host, consumers in sorted(hosts.items())]


def process_alive(pid: int) -> bool:
    """Whether a process of this host is running (a zombie is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class Heartbeat:
    """Stamps a job's or unit's row every ``worker.heartbeat_seconds`` while it runs in this process.

    It runs beside the stage, so a stage that reports no progress for minutes (one long
    model call) is still seen as alive; when the process dies, the stamps stop.
    """

    def __init__(self, settings: Settings, name: str, touch: Callable):
        self.settings, self.name, self.touch = settings, name, touch
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"{name}-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.settings.worker.heartbeat_seconds):
            try:
                with db.session(self.settings.app_db) as conn:
                    self.touch(conn, time.time())
            except db.DatabaseError:   # a busy or unreachable DB must not end the heartbeat; the next beat retries
                log.warning("heartbeat for %s failed", self.name, exc_info=True)
