"""``python -m pipeline serve``: the worker and the dashboard as one foreground command.

Ctrl-C (or SIGTERM) stops both: the consumer gets SIGINT so a running task can finish
its current step, and is killed only if it does not stop within the grace period.
If either child dies, the other is stopped too and the exit code says so.
"""

from __future__ import annotations

import importlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from pipeline.config import PROJECT_ROOT, Settings

GRACE_SECONDS = 20.0
# The shell that owns the Huey queue, named here only: the consumer is started on
# ``<QUEUE_APP>.huey`` and the CLI puts jobs on the queue through ``<QUEUE_APP>.dispatch``.
QUEUE_APP = "queue_worker"


def queue_dispatch() -> Callable[[int, int], str]:
    """``dispatch(job_id, priority) -> task_id`` of the queue the consumers read. Loaded by name,
    as huey_consumer loads it, so no module of ``pipeline`` imports the Huey shell."""
    return importlib.import_module(QUEUE_APP).dispatch


def consumer_command(settings: Settings, workers: int | None = None) -> list[str]:
    return [sys.executable, "-m", "huey.bin.huey_consumer", f"{QUEUE_APP}.huey",
            "-w", str(workers or settings.worker.workers), "-k", "thread",
            "-m", str(settings.worker.poll_max_seconds), "-C"]


def dashboard_command(settings: Settings, port: int | None = None) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "dashboard.py"),
            "--server.address", settings.dashboard.address,
            "--server.port", str(port or settings.dashboard.port),
            "--server.headless", "true",
            "--server.maxUploadSize", str(settings.dashboard.max_upload_mb),
            "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "minimal"]   # no "Deploy" button on a self-hosted tool


def serve(settings: Settings, workers: int | None = None, port: int | None = None) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = subprocess.Popen(consumer_command(settings, workers), cwd=PROJECT_ROOT)
    dashboard = subprocess.Popen(dashboard_command(settings, port), cwd=PROJECT_ROOT)
    print(f"Clipdesk dashboard: http://{settings.dashboard.address}:{port or settings.dashboard.port}"
          f"  (data in {settings.data_dir}; Ctrl-C stops worker and dashboard)", flush=True)
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        while not stopping and worker.poll() is None and dashboard.poll() is None:
            time.sleep(0.2)
    finally:
        _stop(worker, signal.SIGINT)
        _stop(dashboard, signal.SIGTERM)
    if stopping:
        return 0
    died = "worker" if worker.returncode not in (None, 0) else "dashboard"
    print(f"Clipdesk {died} exited unexpectedly; stopped the other.", file=sys.stderr)
    return 1


def _stop(process: subprocess.Popen, sig: int) -> None:
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
