"""`python -m pipeline serve` (what `make run` calls): worker, dashboard and API start, Ctrl-C stops all three."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import ROOT

from pipeline import jobs

pytestmark = pytest.mark.timeout(120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of(pid: int) -> list[int]:
    path = f"/proc/{pid}/task/{pid}/children"
    return [int(p) for p in open(path).read().split()] if os.path.exists(path) else []


def test_serve_starts_worker_dashboard_and_api_and_ctrl_c_stops_all(settings):
    port, api_port = free_port(), free_port()
    env = dict(os.environ, CLIPDESK_DATA_DIR=str(settings.data_dir))
    serve = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--port", str(port),
                              "--api-port", str(api_port)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert f"http://127.0.0.1:{port}" in serve.stdout.readline()
        assert f"http://127.0.0.1:{api_port}" in serve.stdout.readline()
        deadline = time.monotonic() + 60
        health = api_health = worker_seen = None
        while time.monotonic() < deadline and not (health and api_health and worker_seen):
            try:
                health = urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read()
                api_health = urllib.request.urlopen(f"http://127.0.0.1:{api_port}/healthz", timeout=2).read()
            except OSError:
                pass
            worker_seen = jobs.queue_overview(settings)["workers_alive"] == 1
            time.sleep(0.5)
        assert health == b"ok" and api_health == b'{"status":"ok"}' and worker_seen
        kids = children_of(serve.pid)
        assert len(kids) == 3
    finally:
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=40) == 0
    for pid in kids:
        assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2]
    assert jobs.queue_overview(settings)["workers_alive"] == 0   # the worker removed its heartbeat row
