"""Worker identity, heartbeats and the one liveness rule.

A worker is a consumer process, named ``<host>:<pid>``. While it runs, it stamps its row in
``workers`` (its consumer thread) and the row of each job or render unit it is working on
(``Heartbeat``). One rule says whether a heartbeat is still alive: it is younger than
``worker.stale_after_seconds``. The reaper (``pipeline.jobs.recovery``) applies it to jobs and
units, the dashboard and ``stats`` to consumers; a process on this host can also be checked
directly.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pipeline import db, storage
from pipeline.config import Settings

log = logging.getLogger("clipdesk.workers")

HOST = socket.gethostname()   # stage events record where they ran: rates are learned per machine


def worker_id(pid: int | None = None) -> str:
    """This process's worker id: ``<host>:<pid>``."""
    return f"{HOST}:{os.getpid() if pid is None else pid}"


def scratch_dir(settings: Settings) -> Path:
    """This process's own scratch folder (``paths.scratch_dir``/<host>-<pid>), where its files are
    written until they are complete."""
    return storage.process_scratch(settings.scratch_dir, HOST, os.getpid())


def sweep_scratch(settings: Settings) -> list[Path]:
    """Remove the scratch folders of this host's processes that have exited (a killed worker's
    half-written files), and a leftover of an earlier process that had this pid. Called once as a
    consumer starts, before it runs anything; other hosts' folders are never touched.

    Returns the folders removed."""
    root = settings.scratch_dir
    removed = []
    for folder in sorted(root.iterdir()) if root.is_dir() else ():
        owner = storage.scratch_owner(folder)
        if owner is None or owner[0] != HOST or not folder.is_dir():
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

    A worker on this host whose process has exited is gone at once; any other is judged by its heartbeat.
    """
    host, _, pid = (row["worker_id"] or "").rpartition(":")
    if host == HOST and pid.isdigit() and not process_alive(int(pid)):
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
                with db.session(self.settings.app_db_path) as conn:
                    self.touch(conn, time.time())
            except sqlite3.Error:   # a busy DB must not end the heartbeat; the next beat retries
                log.warning("heartbeat for %s failed", self.name, exc_info=True)
