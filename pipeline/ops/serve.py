"""``python -m pipeline serve``: the worker, the dashboard and the HTTP API as one foreground command.

Ctrl-C (or SIGTERM) stops all three: the consumer gets SIGINT so a running task can finish
its current step, and is killed only if it does not stop within the grace period.
If any child dies, the others are stopped too and the exit code says so.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from pipeline.config import PROJECT_ROOT, Settings
from pipeline.security import keys

GRACE_SECONDS = 20.0
# The shell that owns the Huey queue, named here only: the consumer is started on
# ``<QUEUE_APP>.huey`` and the CLI puts jobs on the queue through ``<QUEUE_APP>.dispatch``.
QUEUE_APP = "queue_worker"
# The HTTP API shell, likewise named only: uvicorn runs this app factory.
API_APP = "api.app:create_app"


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


def api_command(settings: Settings, address: str | None = None, port: int | None = None) -> list[str]:
    """uvicorn on the API app; the address also reaches the app (CLIPDESK_API_ADDRESS, see ``api_env``),
    which refuses a public address while no API key exists."""
    return [sys.executable, "-m", "uvicorn", "--factory", API_APP,
            "--host", address or settings.api.address, "--port", str(port or settings.api.port),
            "--no-access-log", "--timeout-graceful-shutdown", "5"]


def api_env(settings: Settings, address: str | None = None) -> dict[str, str]:
    return dict(os.environ, CLIPDESK_API_ADDRESS=address or settings.api.address)


def api_url(settings: Settings, address: str | None = None, port: int | None = None) -> str:
    return f"http://{address or settings.api.address}:{port or settings.api.port}"


def run_api(settings: Settings, address: str | None = None, port: int | None = None) -> int:
    """``python -m pipeline api``: the API alone, in the foreground (Ctrl-C stops it)."""
    if refusal := keys.exposure_refusal(settings, address or settings.api.address):
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    print(f"Clipdesk API: {api_url(settings, address, port)}  (docs at /docs; Ctrl-C stops it)", flush=True)
    process = subprocess.Popen(api_command(settings, address, port), cwd=PROJECT_ROOT, env=api_env(settings, address))
    try:
        return process.wait()
    except KeyboardInterrupt:
        _stop(process, signal.SIGINT)
        return 0


def serve(settings: Settings, workers: int | None = None, port: int | None = None, api_port: int | None = None) -> int:
    if refusal := keys.exposure_refusal(settings, settings.api.address):
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = subprocess.Popen(consumer_command(settings, workers), cwd=PROJECT_ROOT)
    dashboard = subprocess.Popen(dashboard_command(settings, port), cwd=PROJECT_ROOT)
    api = subprocess.Popen(api_command(settings, port=api_port), cwd=PROJECT_ROOT, env=api_env(settings))
    children = {"worker": worker, "dashboard": dashboard, "API": api}
    print(f"Clipdesk dashboard: http://{settings.dashboard.address}:{port or settings.dashboard.port}\n"
          f"Clipdesk API:       {api_url(settings, port=api_port)}  (docs at {api_url(settings, port=api_port)}/docs)\n"
          f"Clipdesk worker:    {worker_description(settings, workers)}\n"
          f"(data in {settings.data_dir}; Ctrl-C stops worker, dashboard and API)", flush=True)
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        while not stopping and all(child.poll() is None for child in children.values()):
            time.sleep(0.2)
    finally:
        _stop(worker, signal.SIGINT)
        _stop(dashboard, signal.SIGTERM)
        _stop(api, signal.SIGTERM)
    if stopping:
        return 0
    died = next((name for name, child in children.items() if child.returncode not in (None, 0)), "a child")
    print(f"Clipdesk {died} exited unexpectedly; stopped the others.", file=sys.stderr)
    return 1


def worker_description(settings: Settings, workers: int | None = None) -> str:
    return f"huey_consumer {QUEUE_APP}.huey with {workers or settings.worker.workers} worker(s)"


def _stop(process: subprocess.Popen, sig: int) -> None:
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
